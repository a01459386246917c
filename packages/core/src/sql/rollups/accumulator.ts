import { addCall, type AggregateRow, type AggregateState, emptyAggregate } from '../../storage/aggregate.js'
import type { CallRecord } from '../../call/types.js'
import { bucketStart } from '../../time.js'
import type { GrainRows } from './levels.js'
import { fineBucket } from './plan.js'

/** One level of {@link RollupAccumulator}'s nested maps. */
type Level = Map<unknown, unknown>

/** The map under `key` in `map`, made when missing. */
function level(map: Level, key: unknown): Level {
  let next = map.get(key) as Level | undefined
  if (next === undefined) {
    next = new Map()
    map.set(key, next)
  }
  return next
}

/**
 * The groups of one value of the five fields both grains share: hourly (by hour, then four fields) and 5-minute (by
 * 5 minutes, then method and route).
 */
interface BaseGroups {
  hourly: Level
  fine: Level
}

/**
 * Calls aggregated in memory at the rollup grains as they are added: hourly rows at the full grain and 5-minute rows
 * at `FINE_GRAIN`. Bounded: past `maxEntries` groups it stops and says so ({@link overflowed}).
 */
export class GrainAggregates {
  /**
   * The groups, found through nested maps keyed by each field's value in turn: the five fields both grains share,
   * then per grain its time bucket (and, hourly, the four more fields). A call's strings are the same objects for
   * every call of a batch (the worker's columns are dictionaries), so each map lookup reuses the string's cached hash;
   * one composite key string per grain and call was over half of the accumulator's time (10% of the worker's ingest).
   */
  private groups: Level = new Map()
  private hourly: AggregateRow[] = []
  private fine: AggregateRow[] = []
  /** More groups than the bound: the rows are incomplete and must not be used (they are let go). */
  overflowed = false
  /** The earliest call timestamp added (ms). */
  earliest = Infinity

  constructor(private readonly maxEntries = 200_000) {}

  /** Adds calls; returns false (and keeps nothing more) once the bound is passed. */
  add(calls: readonly CallRecord[]): boolean {
    if (this.overflowed) return false
    for (const call of calls) {
      if (call.timestamp < this.earliest) this.earliest = call.timestamp
      const status = call.statusCode ?? null
      const outcomes = level(level(level(level(this.groups, call.service), call.direction), call.api ?? null), status)
      let base = outcomes.get(call.outcome) as BaseGroups | undefined
      if (base === undefined) {
        base = { hourly: new Map(), fine: new Map() }
        outcomes.set(call.outcome, base)
      }
      const hour = bucketStart(call.timestamp, 'hour')
      const models = level(level(level(level(base.hourly, hour), call.method), call.route), call.tenantId ?? null)
      const model = call.model ?? null
      let state = models.get(model) as AggregateState | undefined
      if (state === undefined) {
        const keys = [call.service, call.direction, call.api ?? null, status === null ? null : String(status), call.outcome, call.method, call.route, call.tenantId ?? null, model]
        state = newGroup(this.hourly, hour, keys)
        models.set(model, state)
      }
      addCall(state, call)
      const fiveMinutes = fineBucket(call.timestamp)
      const routes = level(level(base.fine, fiveMinutes), call.method)
      let fine = routes.get(call.route) as AggregateState | undefined
      if (fine === undefined) {
        fine = newGroup(this.fine, fiveMinutes, [call.service, call.direction, call.api ?? null, status === null ? null : String(status), call.outcome, call.method, call.route])
        routes.set(call.route, fine)
      }
      addCall(fine, call)
    }
    if (this.size > this.maxEntries) {
      this.overflowed = true
      this.groups = new Map()
      this.hourly = []
      this.fine = []
      return false
    }
    return true
  }

  /** How many groups it holds. */
  get size(): number {
    return this.hourly.length + this.fine.length
  }

  /** The rows so far (the arrays are copies; the rows' states are live). */
  rows(): GrainRows {
    return { hourly: [...this.hourly], fine: [...this.fine] }
  }
}

/** A new group with its keys (ROLLUP_GRAIN order, or its FINE_GRAIN prefix), listed in `rows`. */
function newGroup(rows: AggregateRow[], start: number, keys: (string | null)[]): AggregateState {
  const group = { start, keys, state: emptyAggregate() }
  rows.push(group)
  return group.state
}

/**
 * The calls this process wrote, aggregated in memory at the rollup grains as they are written, with the id ranges
 * they occupy (SQLite: ids grow in commit order). When they are exactly the calls above the cursor (one writing
 * process, the common case), a rollup run merges these aggregates instead of reading the calls back from the
 * database. Anything else — calls of another process in between, a restart, an overflow — and the run reads the
 * database instead; this is only ever a shortcut, never a second source of truth.
 */
export class RollupAccumulator {
  private aggregates: GrainAggregates
  private ranges: [number, number][] = []
  private invalid = false

  constructor(private readonly maxEntries = 200_000) {
    this.aggregates = new GrainAggregates(maxEntries)
  }

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
    if (!this.aggregates.add(calls)) this.invalid = true
  }

  /**
   * The aggregates, when they are exactly the calls with ids in (cursor, upto] — and, when `count` (how many ids the
   * table holds there) is given, when none of them was deleted since.
   */
  rowsFor(cursor: number, upto: number, count?: number): GrainRows | null {
    if (this.invalid || this.ranges.length !== 1) return null
    const [first, last] = this.ranges[0]!
    if (first !== cursor + 1 || last !== upto || (count !== undefined && count !== last - first + 1)) return null
    return this.aggregates.rows()
  }

  reset(): void {
    this.aggregates = new GrainAggregates(this.maxEntries)
    this.ranges = []
    this.invalid = false
  }
}
