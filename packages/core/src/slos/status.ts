import { type AggregateState, coarserResolution, emptyAggregate, mergeAggregate, type Resolution } from '../storage/aggregate.js'
import type { StorageAdapter } from '../storage/adapter.js'
import type { CallFilter, Dimension } from '../storage/filter.js'
import { RELATIVE_ACCURACY } from '../storage/sketch.js'
import { ensureStorageReady, NO_VALUE_KEY, resolveFilter } from '../stats/stats.js'
import { bucketStart } from '../time.js'
import { BURN_ALERTS, BURN_WINDOW_MS, BURN_WINDOWS, type BurnWindow, burnBound, type ResolvedSlo } from './slo.js'

/** The alert level of an SLO: a page, a ticket, or nothing (see `BURN_ALERTS`). */
export type SloAlertLevel = 'none' | 'ticket' | 'page'

/** Good and total calls of an SLI over some range, from exact rollup counts. */
export interface SliCounts {
  good: number
  total: number
  /**
   * Latency SLIs: calls in the sketch bucket that holds the threshold, which may be counted good although they
   * took up to `RELATIVE_ACCURACY × 2` longer than it (the exact good count is in [good - edge, good]). 0 for
   * availability SLIs.
   */
  edge: number
  resolution: Resolution
}

/**
 * The stated error of a latency SLI. Good calls are counted from the mergeable latency sketch of the rollups: every
 * call at or under `thresholdMs` is counted good, and so may be calls in the sketch bucket holding the threshold
 * that took up to `edgeMs` (less than `thresholdMs × (1 + relativeError)`). The exact count of good calls lies in
 * [`goodMin`, `good`]. Choosing a threshold at a bucket's upper edge makes it exact.
 */
export interface LatencyBound {
  thresholdMs: number
  /** Upper edge of the threshold's bucket: calls up to this long may be counted good. */
  edgeMs: number
  /** `edgeMs / thresholdMs - 1` is at most this (about 1%). */
  relativeError: number
  /** The lowest the exact good count can be. */
  goodMin: number
  /** Calls that may be counted good while slower than the threshold. */
  uncertain: number
}

/** The state of one SLO at a moment; what `monitor.slos.status()` returns per SLO. */
export interface SloStatus {
  name: string
  objective: number
  /** `'7d'`, `'28d'`, `'30d'`… or `'month'` (UTC calendar month). */
  window: string
  indicator: 'availability' | 'latency'
  /** Start of the window (inclusive) and the moment of the status (exclusive). */
  from: Date
  to: Date
  /** `good / total`; null when the window has no calls. */
  sli: number | null
  good: number
  total: number
  /** `total - good`. */
  bad: number
  budget: {
    /** Bad calls the objective allows for the calls so far: `total × (1 - objective)`. */
    allowed: number
    /** Fraction of the error budget spent: `bad / allowed` (0 with no calls; above 1 once overspent). */
    consumed: number
    /** `1 - consumed` (negative once overspent). */
    remaining: number
    /** The budget is spent (`bad > 0` and `bad >= allowed`). */
    exhausted: boolean
  }
  /** Error rate over each window divided by the error budget (1 = spending exactly the budget); 0 with no calls. */
  burnRates: Record<BurnWindow, number>
  /** The burn-rate alert level now (see `BURN_ALERTS`). */
  alert: SloAlertLevel
  /** The part of the window so far that has data: from the first call in the window (to the minute) until now. */
  coverage: number
  /** The first minute of the window holding a call. */
  firstDataAt: Date | null
  /** Latency SLIs: the stated error of the good count. */
  latencyBound?: LatencyBound
  /** Whether retention coarsened the range (see `StatsSummary.resolution`). */
  resolution: Resolution
}

/** Start of an SLO's window at `now`: the rolling length back, or the start of the UTC month. */
export function sloWindowStart(slo: ResolvedSlo, now: number): number {
  return 'rollingMs' in slo.window ? now - slo.window.rollingMs : bucketStart(now, 'month')
}

/** The resolved call filter of an SLI over `[from, to)`. */
export function sloCallFilter(slo: ResolvedSlo, from: number, to: number): CallFilter {
  return resolveFilter({ ...(slo.filter as Parameters<typeof resolveFilter>[0]), from, to }, to, `slos.${slo.name}`)
}

/** Good calls of an aggregate for an SLO, and the calls whose classification the sketch leaves open. */
export function goodOf(slo: ResolvedSlo, state: AggregateState): { good: number; edge: number; edgeMs: number } {
  if (slo.indicator.kind === 'availability') {
    let good = 0
    for (const o of slo.indicator.goodOutcomes) good += state.outcomes[o]
    return { good, edge: 0, edgeMs: 0 }
  }
  const c = state.sketch.countAtOrBelow(slo.indicator.thresholdMs)
  return { good: c.atOrBelow, edge: c.edge, edgeMs: c.edgeMs }
}

/**
 * Good and total calls of an SLI over `[from, to)`, one entry per group of `groupBy` (the key `''` when ungrouped;
 * a missing value is `(none)`). Rows are merged per group before counting, never averaged.
 */
export async function sliCounts(storage: StorageAdapter, slo: ResolvedSlo, from: number, to: number, groupBy: readonly Dimension[] = []): Promise<Map<string, SliCounts>> {
  await ensureStorageReady(storage)
  const filter = sloCallFilter(slo, from, to)
  const rows = await storage.aggregate({ filter, groupBy })
  const groups = new Map<string, { state: AggregateState; resolution: Resolution }>()
  for (const row of rows) {
    const key = groupBy.length === 0 ? '' : (row.keys[0] ?? NO_VALUE_KEY)
    let g = groups.get(key)
    if (g === undefined) groups.set(key, (g = { state: emptyAggregate(), resolution: 'raw' }))
    mergeAggregate(g.state, row.state)
    g.resolution = coarserResolution(g.resolution, row.resolution ?? 'raw')
  }
  const out = new Map<string, SliCounts>()
  for (const [key, g] of groups) {
    const { good, edge } = goodOf(slo, g.state)
    out.set(key, { good, total: g.state.requests, edge, resolution: g.resolution })
  }
  return out
}

const ZERO: SliCounts = { good: 0, total: 0, edge: 0, resolution: 'raw' }

/** Burn rate of counts: their error rate divided by the error budget; 0 with no calls. */
export function burnRateOf(slo: ResolvedSlo, c: { good: number; total: number }): number {
  return c.total === 0 ? 0 : (c.total - c.good) / c.total / slo.errorBudget
}

/** The burn rates of an SLO over the given windows ending at `now`. */
export async function burnRates(storage: StorageAdapter, slo: ResolvedSlo, now: number, windows: readonly BurnWindow[] = BURN_WINDOWS): Promise<Partial<Record<BurnWindow, number>>> {
  const out: Partial<Record<BurnWindow, number>> = {}
  await Promise.all(
    windows.map(async (w) => {
      const counts = (await sliCounts(storage, slo, now - BURN_WINDOW_MS[w], now)).get('') ?? ZERO
      out[w] = burnRateOf(slo, counts)
    }),
  )
  return out
}

/**
 * How far past its bound the strongest alert of a severity is: for each of its window pairs, the smaller of the two
 * burn rates divided by the pair's bound; the largest of those. At or above 1 the alert condition holds.
 */
export function burnAlertValue(slo: ResolvedSlo, rates: Partial<Record<BurnWindow, number>>, severity: 'page' | 'ticket'): number {
  let value = 0
  for (const a of BURN_ALERTS) {
    if (a.severity !== severity) continue
    const bound = burnBound(slo, a)
    value = Math.max(value, Math.min(rates[a.long] ?? 0, rates[a.short] ?? 0) / bound)
  }
  return value
}

/** The windows the burn alerts of a severity read. */
export function burnAlertWindows(severity: 'page' | 'ticket'): BurnWindow[] {
  return [...new Set(BURN_ALERTS.filter((a) => a.severity === severity).flatMap((a) => [a.long, a.short]))]
}

/** The first minute holding a call of the SLI in `[from, to)`, or null. */
async function firstDataAt(storage: StorageAdapter, slo: ResolvedSlo, from: number, to: number): Promise<number | null> {
  const first = async (start: number, end: number, interval: 'hour' | 'minute'): Promise<number | null> => {
    const filter = sloCallFilter(slo, start, end)
    const rows = await storage.aggregate({ filter, groupBy: [], interval })
    let min: number | null = null
    for (const r of rows) if (r.state.requests > 0 && r.start !== null && (min === null || r.start < min)) min = r.start
    return min
  }
  const hour = await first(from, to, 'hour')
  if (hour === null) return null
  const minute = await first(Math.max(from, hour), Math.min(to, hour + 3_600_000), 'minute')
  return Math.max(from, minute ?? hour)
}

/** Computes the status of one SLO at `now` from the storage's exact counts. */
export async function sloStatus(storage: StorageAdapter, slo: ResolvedSlo, now: number): Promise<SloStatus> {
  const from = sloWindowStart(slo, now)
  const [window, rates, first] = await Promise.all([
    sliCounts(storage, slo, from, now).then((m) => m.get('') ?? ZERO),
    burnRates(storage, slo, now),
    firstDataAt(storage, slo, from, now),
  ])
  const { good, total } = window
  const bad = total - good
  const allowed = total * slo.errorBudget
  const consumed = total === 0 ? 0 : bad / allowed
  const alert: SloAlertLevel = burnAlertValue(slo, rates, 'page') >= 1 ? 'page' : burnAlertValue(slo, rates, 'ticket') >= 1 ? 'ticket' : 'none'
  const span = now - from
  const status: SloStatus = {
    name: slo.name,
    objective: slo.objective,
    window: slo.window.label,
    indicator: slo.indicator.kind,
    from: new Date(from),
    to: new Date(now),
    sli: total === 0 ? null : good / total,
    good,
    total,
    bad,
    budget: { allowed, consumed, remaining: 1 - consumed, exhausted: bad > 0 && bad >= allowed * (1 - 1e-12) },
    burnRates: Object.fromEntries(BURN_WINDOWS.map((w) => [w, rates[w] ?? 0])) as Record<BurnWindow, number>,
    alert,
    coverage: first === null || span <= 0 ? 0 : (now - first) / span,
    firstDataAt: first === null ? null : new Date(first),
    resolution: window.resolution,
  }
  if (slo.indicator.kind === 'latency') {
    const t = slo.indicator.thresholdMs
    status.latencyBound = { thresholdMs: t, edgeMs: edgeOf(t), relativeError: 2 * RELATIVE_ACCURACY / (1 - RELATIVE_ACCURACY), goodMin: good - window.edge, uncertain: window.edge }
  }
  return status
}

function edgeOf(thresholdMs: number): number {
  return emptyAggregate().sketch.countAtOrBelow(thresholdMs).edgeMs
}
