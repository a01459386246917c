import { z } from 'zod'
import { emptyAggregate, mergeAggregate, type StatsSummary, toSummary } from '../storage/aggregate.js'
import type { StorageAdapter } from '../storage/adapter.js'
import { type ResolvedSlo, resolveSlo, type SloDefinition, slosSchema } from '../slos/slo.js'
import { sliCounts, sloWindowStart } from '../slos/status.js'
import { filterShape } from './filter-shape.js'
import { ensureStorageReady, NO_VALUE_KEY, resolveFilter, type StatsFilter } from './stats.js'

/** What `stats.health()` groups by. */
export const HEALTH_DIMENSIONS = ['tenant', 'api', 'route'] as const
/** The health of one key. */
export type HealthStatus = 'healthy' | 'degraded' | 'critical'

/** A pair of bounds: at (or past) `degraded` a key is degraded, at (or past) `critical` it is critical. */
export interface HealthBounds {
  degraded?: number
  critical?: number
}

/**
 * The bounds `stats.health()` judges each key by. Every field is optional; the defaults are in
 * {@link DEFAULT_HEALTH_THRESHOLDS}.
 *
 * @example
 * ```ts
 * await monitor.stats.health({ by: 'tenant', from: '-1h', thresholds: { errorRate: { degraded: 0.02, critical: 0.1 }, p95Ms: { critical: 5000 } } })
 * ```
 */
export interface HealthThresholds {
  /**
   * Share of calls that failed on the server side (outcome `server_error`, `timeout` or `network_error`), at or above.
   * @default { degraded: 0.01, critical: 0.05 }
   * @example
   * ```ts
   * { errorRate: { degraded: 0.02, critical: 0.1 } }
   * ```
   */
  errorRate?: HealthBounds
  /**
   * p95 duration in ms, at or above.
   * @default { degraded: 1000, critical: 3000 }
   * @example
   * ```ts
   * { p95Ms: { degraded: 500, critical: 2000 } }
   * ```
   */
  p95Ms?: HealthBounds
  /**
   * Remaining error budget of an SLO for the key (a fraction; negative when overspent), at or below.
   * @default { degraded: 0.25, critical: 0 }
   * @example
   * ```ts
   * { budgetRemaining: { degraded: 0.5, critical: 0.1 } }
   * ```
   */
  budgetRemaining?: HealthBounds
  /**
   * Keys with fewer calls in the range are not judged on error rate and p95 (too few to tell).
   * @default 10
   * @example
   * ```ts
   * { minRequests: 50 }
   * ```
   */
  minRequests?: number
}

/** The defaults of {@link HealthThresholds}. */
export const DEFAULT_HEALTH_THRESHOLDS = {
  errorRate: { degraded: 0.01, critical: 0.05 },
  p95Ms: { degraded: 1000, critical: 3000 },
  budgetRemaining: { degraded: 0.25, critical: 0 },
  minRequests: 10,
} as const

/**
 * A health query: the grouping, the range and filter of the error-rate and p95 judgement, and optionally other
 * thresholds and SLOs.
 *
 * @example
 * ```ts
 * const rows = await monitor.stats.health({ by: 'tenant', from: '-1h' })
 * ```
 */
export interface HealthQuery extends StatsFilter {
  /**
   * Start of the range the error rate and p95 are judged over (SLO budgets use their own windows).
   * @default '-1h'
   * @example
   * ```ts
   * { by: 'route', from: '-15m' }
   * ```
   */
  from?: StatsFilter['from']
  /**
   * What each row is: a tenant, an API or a route.
   * @example
   * ```ts
   * { by: 'api' }
   * ```
   */
  by: (typeof HEALTH_DIMENSIONS)[number]
  /**
   * See {@link HealthThresholds}.
   * @example
   * ```ts
   * { by: 'tenant', thresholds: { p95Ms: { critical: 5000 } } }
   * ```
   */
  thresholds?: HealthThresholds
  /**
   * SLOs whose remaining budget per key is judged (each over its own window and filter, grouped by `by`).
   * @default the monitor's `slos` on `monitor.stats`; none on `createStats()` unless given there
   * @example
   * ```ts
   * { by: 'tenant', slos: [{ name: 'checkout', objective: 0.999, window: '30d', indicator: { kind: 'availability' } }] }
   * ```
   */
  slos?: readonly SloDefinition[]
}

/** Why a key is not healthy. */
export interface HealthReason {
  metric: 'errorRate' | 'p95' | 'sloBudget'
  level: 'degraded' | 'critical'
  /** The measured value: a fraction (error rate, budget remaining) or ms (p95). */
  value: number
  /** The bound it reached. */
  threshold: number
  /** `sloBudget` reasons: the SLO. */
  slo?: string
  /** One line for people. */
  text: string
}

/** One key's health. */
export interface HealthRow {
  key: string
  status: HealthStatus
  /** Calls of the key in the range. */
  requests: number
  /** Server-side failure rate in the range (see {@link HealthThresholds.errorRate}); null with no calls. */
  errorRate: number | null
  /** p95 duration in the range, ms; null with no calls. */
  p95: number | null
  /** Every bound reached, most severe first; empty when healthy. */
  reasons: HealthReason[]
}

const bounds = z.strictObject({
  degraded: z.number({ error: 'a finite number' }).refine(Number.isFinite, { error: 'a finite number' }).optional(),
  critical: z.number({ error: 'a finite number' }).refine(Number.isFinite, { error: 'a finite number' }).optional(),
}, { error: 'an object { degraded?, critical? }' })

/** The zod schema of a {@link HealthQuery}. */
export const healthQuerySchema = z.strictObject({
  ...filterShape,
  by: z.enum(HEALTH_DIMENSIONS, { error: `one of ${HEALTH_DIMENSIONS.join(', ')}` }),
  thresholds: z
    .strictObject({
      errorRate: bounds.optional(),
      p95Ms: bounds.optional(),
      budgetRemaining: bounds.optional(),
      minRequests: z.number({ error: 'a whole number >= 1' }).int({ error: 'a whole number >= 1' }).min(1, { error: 'a whole number >= 1' }).optional(),
    })
    .optional(),
  slos: slosSchema.optional(),
})

const RANK: Record<HealthStatus, number> = { critical: 0, degraded: 1, healthy: 2 }
const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits

/** The bad outcomes of the health error rate. */
function serverErrors(s: StatsSummary): number {
  return s.outcomes.server_error + s.outcomes.timeout + s.outcomes.network_error
}

/**
 * Per key: `critical` when any bound's critical level is reached, else `degraded` when any degraded level is, else
 * `healthy`; rows ordered critical, degraded, healthy, then by key. Keys are those with calls in the range, and
 * those with calls in an SLO's window.
 */
export async function computeHealth(storage: StorageAdapter, query: z.infer<typeof healthQuerySchema>, now: number, defaultSlos: readonly ResolvedSlo[]): Promise<HealthRow[]> {
  const t = query.thresholds ?? {}
  const er = { ...DEFAULT_HEALTH_THRESHOLDS.errorRate, ...t.errorRate }
  const p95 = { ...DEFAULT_HEALTH_THRESHOLDS.p95Ms, ...t.p95Ms }
  const budget = { ...DEFAULT_HEALTH_THRESHOLDS.budgetRemaining, ...t.budgetRemaining }
  const minRequests = t.minRequests ?? DEFAULT_HEALTH_THRESHOLDS.minRequests
  const slos = query.slos ? (query.slos as SloDefinition[]).map(resolveSlo) : defaultSlos
  const { by, thresholds: _t, slos: _s, ...filter } = query
  void _t
  void _s
  const resolved = resolveFilter({ from: '-1h', ...filter }, now)
  await ensureStorageReady(storage)
  const [rows, budgets] = await Promise.all([
    storage.aggregate({ filter: resolved, groupBy: [by] }),
    Promise.all(slos.map(async (slo) => ({ slo, counts: await sliCounts(storage, slo, sloWindowStart(slo, now), now, [by]) }))),
  ])
  const states = new Map<string, ReturnType<typeof emptyAggregate>>()
  for (const row of rows) {
    const key = row.keys[0] ?? NO_VALUE_KEY
    let s = states.get(key)
    if (s === undefined) states.set(key, (s = emptyAggregate()))
    mergeAggregate(s, row.state)
  }
  const keys = new Set([...states.keys(), ...budgets.flatMap((b) => [...b.counts.keys()])])
  const out: HealthRow[] = []
  for (const key of keys) {
    const summary = toSummary(states.get(key) ?? emptyAggregate())
    const reasons: HealthReason[] = []
    const above = (metric: 'errorRate' | 'p95', value: number, b: HealthBounds, show: (v: number) => string): void => {
      const level = b.critical !== undefined && value >= b.critical ? 'critical' : b.degraded !== undefined && value >= b.degraded ? 'degraded' : null
      if (level === null) return
      const threshold = level === 'critical' ? b.critical! : b.degraded!
      reasons.push({ metric, level, value, threshold, text: `${metric === 'p95' ? 'p95' : 'error rate'} ${show(value)} is at or above ${show(threshold)}` })
    }
    const errorRate = summary.requests === 0 ? null : serverErrors(summary) / summary.requests
    if (summary.requests >= minRequests) {
      above('errorRate', errorRate!, er, (v) => `${round(v * 100, 2)}%`)
      above('p95', summary.latency!.p95, p95, (v) => `${round(v, 1)} ms`)
    }
    for (const { slo, counts } of budgets) {
      const c = counts.get(key)
      if (c === undefined || c.total === 0) continue
      const remaining = 1 - (c.total - c.good) / (c.total * slo.errorBudget)
      const level = budget.critical !== undefined && remaining <= budget.critical ? 'critical' : budget.degraded !== undefined && remaining <= budget.degraded ? 'degraded' : null
      if (level === null) continue
      const threshold = level === 'critical' ? budget.critical : budget.degraded
      reasons.push({ metric: 'sloBudget', level, value: remaining, threshold, slo: slo.name, text: `SLO ${slo.name}: ${round(remaining * 100, 2)}% of the error budget left, at or below ${round(threshold * 100, 2)}%` })
    }
    reasons.sort((a, b) => RANK[a.level] - RANK[b.level])
    const status: HealthStatus = reasons[0]?.level ?? 'healthy'
    out.push({ key, status, requests: summary.requests, errorRate, p95: summary.latency?.p95 ?? null, reasons })
  }
  return out.sort((a, b) => RANK[a.status] - RANK[b.status] || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}
