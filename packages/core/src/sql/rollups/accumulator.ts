import { addCall, type AggregateRow, type AggregateState, emptyAggregate } from '../../storage/aggregate.js'
import type { CallRecord } from '../../call/types.js'
import { bucketStart } from '../../time.js'
import type { GrainRows } from './levels.js'
import { fineBucket } from './plan.js'

/**
 * The calls this process wrote, aggregated in memory at the rollup grains as they are written, with the id ranges
 * they occupy. When they are exactly the calls above the cursor (one writing process, the common case), a rollup
 * run merges these aggregates instead of reading the calls back from the database. Anything else — calls of
 * another process in between, a restart, an overflow — and the run reads the database instead; this is only ever
 * a shortcut, never a second source of truth.
 */
export class RollupAccumulator {
  private grain = new Map<string, AggregateRow>()
  private fine = new Map<string, AggregateRow>()
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
      // Each group's id is written straight from the fields (this runs for every call written), and its key list
      // built only for a new group; a NUL byte stands for null, as no stored string holds one.
      const base = `${call.service}\u0001${call.direction}\u0001${call.api ?? '\u0000'}\u0001${call.statusCode ?? '\u0000'}\u0001${call.outcome}`
      const hour = bucketStart(call.timestamp, 'hour')
      addCall(this.groupOf(this.grain, `${hour}\u0001${base}\u0001${call.method}\u0001${call.route}\u0001${call.tenantId ?? '\u0000'}\u0001${call.model ?? '\u0000'}`, hour, call, true), call)
      const fiveMinutes = fineBucket(call.timestamp)
      addCall(this.groupOf(this.fine, `${fiveMinutes}\u0001${base}`, fiveMinutes, call, false), call)
    }
    if (this.entries > this.maxEntries) this.invalid = true
  }

  /** The group of `id`, created with its keys (ROLLUP_GRAIN order, or its FINE_GRAIN prefix) when new. */
  private groupOf(groups: Map<string, AggregateRow>, id: string, start: number, call: CallRecord, fullGrain: boolean): AggregateState {
    const known = groups.get(id)
    if (known !== undefined) return known.state
    const status = call.statusCode === null ? null : String(call.statusCode)
    const keys = fullGrain
      ? [call.service, call.direction, call.api, status, call.outcome, call.method, call.route, call.tenantId, call.model]
      : [call.service, call.direction, call.api, status, call.outcome]
    const group = { start, keys, state: emptyAggregate() }
    groups.set(id, group)
    this.entries++
    return group.state
  }

  /**
   * The aggregates, when they are exactly the calls with ids in (cursor, upto] — and, when `count` (how many ids the
   * table holds there) is given, when none of them was deleted since.
   */
  rowsFor(cursor: number, upto: number, count?: number): GrainRows | null {
    if (this.invalid || this.ranges.length !== 1) return null
    const [first, last] = this.ranges[0]!
    if (first !== cursor + 1 || last !== upto || (count !== undefined && count !== last - first + 1)) return null
    return { hourly: [...this.grain.values()], fine: [...this.fine.values()] }
  }

  reset(): void {
    this.grain = new Map()
    this.fine = new Map()
    this.entries = 0
    this.ranges = []
    this.invalid = false
  }
}
