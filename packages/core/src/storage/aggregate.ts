import type { CallRecord } from '../call/types.js'
import { OUTCOMES, type Outcome } from '../call/outcome.js'
import { LatencySketch } from './sketch.js'

/**
 * The mergeable aggregate of a set of calls. Storage adapters return these (one per group and time bucket); rollups
 * store them; the stats API turns them into {@link StatsSummary}. Every sum is an exact integer: cost in nano-USD,
 * durations in microseconds, so two adapters adding the same calls in any order agree to the last digit.
 */
export interface AggregateState {
  requests: number
  outcomes: Record<Outcome, number>
  cached: number
  /** Sum of known costs, integer nano-USD. */
  costNanos: number
  /** Calls priced but whose usage never arrived (`costSource: 'unknown'`). */
  costUnknown: number
  /** The part of `costNanos` that is estimated (`costSource: 'estimated'`: usage was partial), integer nano-USD. */
  costEstimatedNanos: number
  inputTokens: number
  outputTokens: number
  cachedInputTokens: number
  requestBytes: number
  responseBytes: number
  /** Sum of durations in integer microseconds. */
  durationSumUs: number
  /** Smallest duration (ms), `Infinity` when empty. */
  durationMin: number
  /** Largest duration (ms), `-Infinity` when empty. */
  durationMax: number
  sketch: LatencySketch
}

/** Counts per outcome; every outcome is present. */
export type OutcomeCounts = Record<Outcome, number>

/**
 * Usage of a set of calls: what `stats.summary()` returns, and each row of `timeseries()` / `breakdown()`.
 * All numbers are plain JS numbers; `cost` is USD, exact to 1e-9.
 */
export interface StatsSummary {
  requests: number
  /** Calls whose outcome is `success`. */
  successes: number
  /** `requests - successes`. */
  errors: number
  /** `errors / requests`, 0 when there are no requests. */
  errorRate: number
  outcomes: OutcomeCounts
  cached: number
  /** `cached / requests`, 0 when there are no requests. */
  cacheHitRate: number
  /** USD. */
  cost: number
  /** Calls that are priced but whose cost is unknown (a cut stream): not counted in `cost`. */
  costUnknown: number
  /**
   * The part of `cost` that is estimated (USD): calls whose usage arrived only in part (a stream cut short) are priced
   * from what arrived, marked `estimated`. Budgets count it by default; `cost - costEstimated` is the exact part.
   */
  costEstimated: number
  tokens: { input: number; output: number; cachedInput: number }
  /** Milliseconds; `null` when there are no requests. Percentiles are within 1% of the exact nearest-rank value. */
  latency: { avg: number; min: number; max: number; p50: number; p90: number; p95: number; p99: number } | null
  requestBytes: number
  responseBytes: number
  /**
   * How precisely the requested time range was honoured: `raw` (exactly). After retention deleted finer data,
   * `hour` / `day` / `month` say an edge was widened to a whole bucket of that size, and `partial` that raw calls
   * the query needed (a user filter, for instance, which no rollup keeps) are gone.
   */
  resolution: Resolution
}

/** An aggregate of no calls. */
export function emptyAggregate(): AggregateState {
  return {
    requests: 0,
    outcomes: emptyOutcomes(),
    cached: 0,
    costNanos: 0,
    costUnknown: 0,
    costEstimatedNanos: 0,
    inputTokens: 0,
    outputTokens: 0,
    cachedInputTokens: 0,
    requestBytes: 0,
    responseBytes: 0,
    durationSumUs: 0,
    durationMin: Infinity,
    durationMax: -Infinity,
    sketch: new LatencySketch(),
  }
}

/** Zero for every outcome. */
export function emptyOutcomes(): OutcomeCounts {
  return {
    success: 0,
    client_error: 0,
    server_error: 0,
    rate_limited: 0,
    timeout: 0,
    network_error: 0,
    aborted: 0,
  }
}

/** Adds one call to an aggregate. */
export function addCall(state: AggregateState, call: CallRecord): void {
  state.requests++
  state.outcomes[call.outcome]++
  if (call.cached) state.cached++
  if (call.costNanos !== null) {
    state.costNanos += call.costNanos
    if (call.costSource === 'estimated') state.costEstimatedNanos += call.costNanos
  } else if (call.costSource === 'unknown') state.costUnknown++
  state.inputTokens += call.inputTokens ?? 0
  state.outputTokens += call.outputTokens ?? 0
  state.cachedInputTokens += call.cachedInputTokens ?? 0
  state.requestBytes += call.requestBytes ?? 0
  state.responseBytes += call.responseBytes ?? 0
  const d = call.durationMs
  state.durationSumUs += Math.round(d * 1000)
  if (d < state.durationMin) state.durationMin = d
  if (d > state.durationMax) state.durationMax = d
  state.sketch.add(d)
}

/** Adds `other` into `into`. */
export function mergeAggregate(into: AggregateState, other: AggregateState): void {
  into.requests += other.requests
  for (const outcome of OUTCOMES) into.outcomes[outcome] += other.outcomes[outcome]
  into.cached += other.cached
  into.costNanos += other.costNanos
  into.costUnknown += other.costUnknown
  into.costEstimatedNanos += other.costEstimatedNanos
  into.inputTokens += other.inputTokens
  into.outputTokens += other.outputTokens
  into.cachedInputTokens += other.cachedInputTokens
  into.requestBytes += other.requestBytes
  into.responseBytes += other.responseBytes
  into.durationSumUs += other.durationSumUs
  if (other.durationMin < into.durationMin) into.durationMin = other.durationMin
  if (other.durationMax > into.durationMax) into.durationMax = other.durationMax
  into.sketch.merge(other.sketch)
}

/** A new aggregate equal to `state` (which is left as it is). */
export function copyAggregate(state: AggregateState): AggregateState {
  const copy = emptyAggregate()
  mergeAggregate(copy, state)
  return copy
}

/** The percentiles of a summary's latency. */
const SUMMARY_QUANTILES = [0.5, 0.9, 0.95, 0.99]
/** Where {@link toSummary} reads them (no array per summary). */
const summaryQuantiles = new Float64Array(SUMMARY_QUANTILES.length)

/** How many percentiles a summary has (p50, p90, p95, p99). */
export const SUMMARY_PERCENTILES = SUMMARY_QUANTILES.length

/**
 * The p50, p90, p95 and p99 a summary of `state` shows, written into `out` from index `at`: what a storage hands
 * over as {@link AggregateRow.percentiles}.
 */
export function summaryPercentiles(state: AggregateState, out: { [i: number]: number }, at = 0): void {
  const q = summaryQuantiles
  state.sketch.quantilesInto(SUMMARY_QUANTILES, state.durationMin, state.durationMax, q, state.requests)
  for (let i = 0; i < q.length; i++) out[at + i] = q[i]!
}

/**
 * Turns an aggregate into the public summary shape. `percentiles`: those {@link summaryPercentiles} gave for it
 * (where the aggregate was made), read instead of its sketch.
 */
export function toSummary(state: AggregateState, resolution: Resolution = 'raw', percentiles?: ArrayLike<number>): StatsSummary {
  const requests = state.requests
  const successes = state.outcomes.success
  const errors = requests - successes
  let latency: StatsSummary['latency'] = null
  if (requests > 0) {
    let q = percentiles
    if (q === undefined) {
      state.sketch.quantilesInto(SUMMARY_QUANTILES, state.durationMin, state.durationMax, summaryQuantiles, state.requests)
      q = summaryQuantiles
    }
    latency = {
      avg: state.durationSumUs / requests / 1000,
      min: state.durationMin,
      max: state.durationMax,
      p50: q[0]!,
      p90: q[1]!,
      p95: q[2]!,
      p99: q[3]!,
    }
  }
  return {
    requests,
    successes,
    errors,
    errorRate: requests === 0 ? 0 : errors / requests,
    outcomes: { ...state.outcomes },
    cached: state.cached,
    cacheHitRate: requests === 0 ? 0 : state.cached / requests,
    cost: state.costNanos / 1e9,
    costUnknown: state.costUnknown,
    costEstimated: state.costEstimatedNanos / 1e9,
    tokens: { input: state.inputTokens, output: state.outputTokens, cachedInput: state.cachedInputTokens },
    latency,
    requestBytes: state.requestBytes,
    responseBytes: state.responseBytes,
    resolution,
  }
}

/**
 * How precisely a result honours the requested time range. `raw`: exactly (to the millisecond). `hour` / `day` /
 * `month`: retention deleted the finer data at an edge of the range, so that edge was widened to the enclosing
 * bucket of that size. `partial`: the query needs raw calls (a filter or grouping no rollup keeps, such as a user)
 * over a range where retention deleted them, so those calls are missing.
 */
export type Resolution = 'raw' | 'hour' | 'day' | 'month' | 'partial'
const RESOLUTION_ORDER: Record<Resolution, number> = { raw: 0, hour: 1, day: 2, month: 3, partial: 4 }

/** The coarser of two resolutions. */
export function coarserResolution(a: Resolution, b: Resolution): Resolution {
  return RESOLUTION_ORDER[a] >= RESOLUTION_ORDER[b] ? a : b
}

/** One group of an aggregation. `keys` follow `groupBy` order; a status key is its code as a string. */
export interface AggregateRow {
  /** Bucket start (epoch ms) when the query had an interval, else null. */
  start: number | null
  keys: (string | null)[]
  state: AggregateState
  /** How precisely this group honours the time range; absent means `raw`. */
  resolution?: Resolution
  /**
   * The summary's p50, p90, p95 and p99 ({@link summaryPercentiles}), given by a storage asked for summaries only
   * (`AggregateQuery.summariesOnly`); its `state.sketch` is then empty.
   */
  percentiles?: readonly number[]
}

/** Collects aggregate rows by (bucket start, keys), creating each group on first use. */
export class AggregateGroups {
  private readonly groups = new Map<string, AggregateRow>()
  /**
   * Groups of at most one key, by bucket start then key: a grouped timeseries looks up thousands of groups, and
   * building a string id for each cost more than the lookup.
   */
  private readonly byStart = new Map<number | null, Map<string | null | undefined, AggregateRow>>()
  /** Every group, in the order they were created. */
  private readonly list: AggregateRow[] = []

  /** The group of a bucket and key list (created empty when new). */
  get(start: number | null, keys: (string | null)[]): AggregateRow {
    if (keys.length <= 1) {
      let inner = this.byStart.get(start)
      if (inner === undefined) {
        inner = new Map()
        this.byStart.set(start, inner)
      }
      const key = keys.length === 0 ? undefined : keys[0]
      let row = inner.get(key)
      if (row === undefined) {
        row = this.add(start, keys)
        inner.set(key, row)
      }
      return row
    }
    let id = start === null ? '' : String(start)
    for (const k of keys) id += k === null ? '\u0001\u0000' : `\u0001${k}`
    let row = this.groups.get(id)
    if (row === undefined) {
      row = this.add(start, keys)
      this.groups.set(id, row)
    }
    return row
  }

  private add(start: number | null, keys: (string | null)[]): AggregateRow {
    const row: AggregateRow = { start, keys, state: emptyAggregate() }
    this.list.push(row)
    return row
  }

  /** Every group collected. */
  rows(): AggregateRow[] {
    return [...this.list]
  }
}
