import { z } from 'zod'
import { type NotifierInput, notifierSchema } from '../alerts/rules.js'
import { OUTCOMES, type Outcome } from '../call/outcome.js'
import { filterShape } from '../stats/filter-shape.js'
import type { StatsFilter } from '../stats/stats.js'
import { parseOrThrow } from '../validation.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** The windows burn rates are reported over, shortest first. */
export const BURN_WINDOWS = ['5m', '30m', '1h', '6h', '1d', '3d'] as const
/** One of {@link BURN_WINDOWS}. */
export type BurnWindow = (typeof BURN_WINDOWS)[number]
/** Length of each burn window, ms. */
export const BURN_WINDOW_MS: Record<BurnWindow, number> = { '5m': 5 * MINUTE, '30m': 30 * MINUTE, '1h': HOUR, '6h': 6 * HOUR, '1d': DAY, '3d': 3 * DAY }

/** Outcomes that are bad for an availability SLO unless `goodOutcomes` says otherwise. */
export const DEFAULT_BAD_OUTCOMES: readonly Outcome[] = ['server_error', 'timeout', 'network_error']

/**
 * The multi-window, multi-burn-rate alerts of the SRE workbook (chapter 5, "Alerting on SLOs"): each fires when the
 * burn rate over its long window and over its short window are both at or above its bound. `budget` is the
 * fraction of the whole error budget that burning at the bound for the long window spends; the bound is
 * `budget × SLO period / long window`, which gives the workbook's 14.4, 6 and 1 for a 30-day SLO (and, for a 28-day
 * one, 13.44, 5.6 and 0.93: the same share of the budget over the same windows).
 */
export const BURN_ALERTS = [
  { severity: 'page', long: '1h', short: '5m', budget: 0.02 },
  { severity: 'page', long: '6h', short: '30m', budget: 0.05 },
  { severity: 'ticket', long: '3d', short: '6h', budget: 0.1 },
] as const satisfies readonly { severity: 'page' | 'ticket'; long: BurnWindow; short: BurnWindow; budget: number }[]

/** The call filter of an SLI: what a stats query takes, without the time range (the SLO window sets it). */
export type SloFilter = Omit<StatsFilter, 'from' | 'to'>

/**
 * Availability: the share of calls whose outcome is good.
 *
 * @example
 * ```ts
 * { kind: 'availability', filter: { route: '/checkout', direction: 'inbound' } }
 * ```
 */
export interface AvailabilityIndicator {
  kind: 'availability'
  /**
   * Which calls count (a stats filter without `from` / `to`).
   * @default {} (every call)
   * @example
   * ```ts
   * { kind: 'availability', filter: { api: 'payments', direction: 'outbound' } }
   * ```
   */
  filter?: SloFilter
  /**
   * The outcomes that count as good.
   * @default every outcome but server_error, timeout and network_error
   * @example
   * ```ts
   * { kind: 'availability', goodOutcomes: ['success'] }   // client errors count against the SLO too
   * ```
   */
  goodOutcomes?: readonly Outcome[]
}

/**
 * Latency: the share of calls that took at most `thresholdMs`.
 *
 * @example
 * ```ts
 * { kind: 'latency', thresholdMs: 300, filter: { route: '/search' } }
 * ```
 */
export interface LatencyIndicator {
  kind: 'latency'
  /**
   * The bound of a good call, ms (good: duration <= thresholdMs).
   * @example
   * ```ts
   * { kind: 'latency', thresholdMs: 300 }
   * ```
   */
  thresholdMs: number
  /**
   * Which calls count (a stats filter without `from` / `to`).
   * @default {} (every call)
   * @example
   * ```ts
   * { kind: 'latency', thresholdMs: 300, filter: { route: '/search', outcome: 'success' } }
   * ```
   */
  filter?: SloFilter
}

/** What an SLO measures. */
export type SloIndicator = AvailabilityIndicator | LatencyIndicator

/** An SLO window: a rolling number of days (`'7d'`, `'28d'`, `'30d'`), or the current UTC calendar month. */
export type SloWindow = '7d' | '28d' | '30d' | `${number}d` | { calendar: 'month' }

/**
 * One service level objective (see docs/slos.md).
 *
 * @example
 * ```ts
 * createMonitor({ slos: [
 *   { name: 'checkout-availability', objective: 0.999, window: '30d', indicator: { kind: 'availability', filter: { route: '/checkout' } } },
 *   { name: 'search-latency', objective: 0.99, window: '28d', indicator: { kind: 'latency', thresholdMs: 300, filter: { route: '/search' } } },
 * ] })
 * ```
 */
export interface SloDefinition {
  /**
   * Unique name (letters, digits, `.`, `_`, `-`; at most 100 characters).
   * @example
   * ```ts
   * { name: 'checkout-availability' }
   * ```
   */
  name: string
  /**
   * The target share of good calls, greater than 0 and less than 1.
   * @example
   * ```ts
   * { objective: 0.999 }   // 99.9%: an error budget of 0.1% of calls
   * ```
   */
  objective: number
  /**
   * The compliance window: rolling days, or `{ calendar: 'month' }` (UTC; the budget resets at the month turn).
   * @example
   * ```ts
   * { window: '28d' }
   * { window: { calendar: 'month' } }
   * ```
   */
  window: SloWindow
  /**
   * What is measured.
   * @example
   * ```ts
   * { indicator: { kind: 'availability', filter: { route: '/checkout' } } }
   * ```
   */
  indicator: SloIndicator
  /**
   * A description, kept with the stored definition and in OpenSLO exports.
   * @example
   * ```ts
   * { description: 'Checkout answers without a server error' }
   * ```
   */
  description?: string
  /**
   * Burn-rate alerts (page and ticket) through the alert machinery; `false` turns them off for this SLO.
   * @default true
   * @example
   * ```ts
   * { alerts: false }
   * ```
   */
  alerts?: boolean
  /**
   * Where this SLO's burn-rate alerts go, besides `monitor.on('alert')` and `onAlert` (as for alert rules).
   * @example
   * ```ts
   * { notify: ['log', 'webhook:https://hooks.example.com/slo'] }
   * ```
   */
  notify?: readonly NotifierInput[]
}

/** A validated SLO with its derived numbers. */
export interface ResolvedSlo {
  name: string
  objective: number
  /** `1 - objective`, rounded to 12 decimals so 0.999 gives exactly 0.001. */
  errorBudget: number
  window: { rollingMs: number; label: string } | { calendar: 'month'; label: 'month' }
  /** Length of the SLO period for burn-alert bounds: the rolling window, or 30 days for calendar months. */
  periodMs: number
  indicator: { kind: 'availability'; goodOutcomes: Outcome[] } | { kind: 'latency'; thresholdMs: number }
  filter: SloFilter
  alerts: boolean
  notify: readonly NotifierInput[]
  /** The definition as given (for storage and export). */
  definition: SloDefinition
}

const { from: _from, to: _to, ...sloFilterShape } = filterShape
void _from
void _to
const filterSchema = z.strictObject(sloFilterShape, { error: 'a stats filter such as { route: "/checkout" } (without from / to)' })

const NAME = 'a non-empty name of at most 100 letters, digits, ".", "_" or "-"'
const WINDOW = `'7d', '28d', '30d' (any whole number of days from 1 to 365) or { calendar: 'month' }`
const OBJECTIVE = 'a number greater than 0 and less than 1 (0.999 = 99.9%)'

const indicatorSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({
      kind: z.literal('availability'),
      filter: filterSchema.optional(),
      goodOutcomes: z.array(z.enum(OUTCOMES, { error: `one of ${OUTCOMES.join(', ')}` }), { error: `a list of outcomes (${OUTCOMES.join(', ')})` }).min(1, { error: 'a non-empty list of outcomes' }).optional(),
    }),
    z.strictObject({
      kind: z.literal('latency'),
      thresholdMs: z.number({ error: 'a number of milliseconds greater than 0' }).gt(0, { error: 'a number of milliseconds greater than 0' }).refine(Number.isFinite, { error: 'a finite number of milliseconds' }),
      filter: filterSchema.optional(),
    }),
  ],
  { error: `{ kind: 'availability', filter?, goodOutcomes? } or { kind: 'latency', thresholdMs, filter? }` },
)

const windowDays = (w: string): number | undefined => {
  const m = /^(\d{1,3})d$/.exec(w)
  const days = m ? Number(m[1]) : NaN
  return days >= 1 && days <= 365 ? days : undefined
}

/** The zod schema of one {@link SloDefinition}. */
export const sloSchema = z.strictObject({
  name: z.string({ error: NAME }).regex(/^[A-Za-z0-9._-]{1,100}$/, { error: NAME }),
  objective: z.number({ error: OBJECTIVE }).gt(0, { error: OBJECTIVE }).lt(1, { error: OBJECTIVE }),
  window: z.union([z.string().refine((w) => windowDays(w) !== undefined, { error: WINDOW }), z.strictObject({ calendar: z.literal('month') })], { error: WINDOW }),
  indicator: indicatorSchema,
  description: z.string({ error: 'a string of at most 1000 characters' }).max(1000, { error: 'a string of at most 1000 characters' }).optional(),
  alerts: z.boolean({ error: 'true or false' }).optional(),
  notify: z.array(notifierSchema, { error: 'a list of notifiers' }).optional(),
})

/** The zod schema of the `slos` option: a list of SLOs with unique names. */
export const slosSchema = z.array(sloSchema, { error: 'a list of SLOs' }).superRefine((slos, ctx) => {
  const seen = new Set<string>()
  slos.forEach((slo, i) => {
    if (seen.has(slo.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: 'a name no other SLO has', input: slo.name })
    seen.add(slo.name)
  })
})

/** Turns a validated SLO into its resolved form. */
export function resolveSlo(slo: SloDefinition): ResolvedSlo {
  const w = slo.window
  const window: ResolvedSlo['window'] = typeof w === 'string' ? { rollingMs: windowDays(w)! * DAY, label: w } : { calendar: 'month', label: 'month' }
  const ind = slo.indicator
  return {
    name: slo.name,
    objective: slo.objective,
    errorBudget: Math.round((1 - slo.objective) * 1e12) / 1e12,
    window,
    periodMs: 'rollingMs' in window ? window.rollingMs : 30 * DAY,
    indicator:
      ind.kind === 'availability'
        ? { kind: 'availability', goodOutcomes: ind.goodOutcomes ? [...new Set(ind.goodOutcomes)] : OUTCOMES.filter((o) => !DEFAULT_BAD_OUTCOMES.includes(o)) }
        : { kind: 'latency', thresholdMs: ind.thresholdMs },
    filter: { ...ind.filter },
    alerts: slo.alerts ?? true,
    notify: slo.notify ?? [],
    definition: slo,
  }
}

/** Validates a list of SLOs (as `createMonitor({ slos })` does) and resolves them; `root` names the field in errors. */
export function parseSlos(input: unknown, root = 'options.slos'): ResolvedSlo[] {
  return (parseOrThrow(slosSchema, input, root) as SloDefinition[]).map(resolveSlo)
}

/** The burn-rate bound of one alert of {@link BURN_ALERTS} for an SLO. */
export function burnBound(slo: ResolvedSlo, alert: (typeof BURN_ALERTS)[number]): number {
  return Math.round(((alert.budget * slo.periodMs) / BURN_WINDOW_MS[alert.long]) * 1e9) / 1e9
}
