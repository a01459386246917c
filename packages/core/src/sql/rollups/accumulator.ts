import { addCall, type AggregateRow, emptyAggregate } from '../../storage/aggregate.js'
import type { CallRecord } from '../../call/types.js'
import { bucketStart } from '../../time.js'

/**
 * The calls this process wrote, aggregated in memory at the rollup grain as they are written, with the id ranges
 * they occupy. When they are exactly the calls above the cursor (one writing process, the common case), a rollup
 * run merges these aggregates instead of reading the calls back from the database. Anything else — calls of
 * another process in between, a restart, an overflow — and the run reads the database instead; this is only ever
 * a shortcut, never a second source of truth.
 */
export class RollupAccumulator {
  private grain = new Map<string, AggregateRow>()
  private entries = 0
  private ranges: [number, number][] = []
  private invalid = false

  constructor(private readonly maxEntries = 200_000) {}

  /** Adds a committed batch whose rows got the ids firstId…lastId. */
  add(calls: readonly CallRecord[], firstId: number, lastId: number): void {
    if (this.invalid) return
    if (lastId - firstId + 1 !== calls.length) {
      this.invalid = true
      return
    }
    const last = this.ranges[this.ranges.length - 1]
    if (last && last[1] + 1 === firstId) last[1] = lastId
    else this.ranges.push([firstId, lastId])
    for (const call of calls) {
      const start = bucketStart(call.timestamp, 'hour')
      // The group's id, written straight from the fields (this runs for every call written); a NUL byte stands for
      // null, as no stored string holds one.
      const id = `${start}\u0001${call.service}\u0001${call.direction}\u0001${call.api ?? '\u0000'}\u0001${call.statusCode ?? '\u0000'}\u0001${call.outcome}\u0001${call.method}\u0001${call.route}\u0001${call.tenantId ?? '\u0000'}\u0001${call.model ?? '\u0000'}`
      let group = this.grain.get(id)
      if (group === undefined) {
        // keys in ROLLUP_GRAIN order
        const keys = [call.service, call.direction, call.api, call.statusCode === null ? null : String(call.statusCode), call.outcome, call.method, call.route, call.tenantId, call.model]
        group = { start, keys, state: emptyAggregate() }
        this.grain.set(id, group)
        this.entries++
      }
      addCall(group.state, call)
    }
    if (this.entries > this.maxEntries) this.invalid = true
  }

  /** The aggregates, when they are exactly the calls with ids in (cursor, upto]. */
  rowsFor(cursor: number, upto: number): AggregateRow[] | null {
    if (this.invalid || this.ranges.length !== 1) return null
    const [first, last] = this.ranges[0]!
    return first === cursor + 1 && last === upto ? [...this.grain.values()] : null
  }

  reset(): void {
    this.grain = new Map()
    this.entries = 0
    this.ranges = []
    this.invalid = false
  }
}
