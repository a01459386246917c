import { createHash } from 'node:crypto'
import { z } from 'zod'
import { intInRange } from '../validation.js'
import { maskUrl } from '../call/route.js'
import { filterShape } from '../stats/filter-shape.js'
import type { StatsFilter } from '../stats/stats.js'
import { type Dimension, DIMENSIONS } from '../storage/filter.js'
import { parseDuration } from '../time.js'
import type { ResolvedSlo } from '../slos/slo.js'

/** The rule kinds. */
export const ALERT_KINDS = ['error_rate', 'latency', 'requests', 'cost', 'rate_limit', 'status'] as const
/**
 * One of {@link ALERT_KINDS}, or `'slo_burn'`: the burn-rate alerts apimeter derives from each SLO (see docs/slos.md),
 * which are not written as rules.
 */
export type AlertKind = (typeof ALERT_KINDS)[number] | 'slo_burn'
/** Which latency statistic a `latency` rule watches. */
export const LATENCY_STATS = ['avg', 'p50', 'p90', 'p95', 'p99', 'max'] as const
/** What a rule does when its window holds no calls to judge (see {@link AlertRule.noData}). */
export const NO_DATA_POLICIES = ['ok', 'keep', 'alert'] as const

/** A duration: `'30s'`, `'5m'`, `'2h'`, `'1d'`, or milliseconds. */
export type DurationInput = string | number

/**
 * A webhook notifier: POSTs the alert as JSON (with a Slack-compatible `text` field).
 *
 * @example
 * ```ts
 * { webhook: 'https://hooks.slack.com/services/T000/B000/XXX', secret: process.env.HOOK_SECRET, retries: 5 }
 * ```
 */
export interface WebhookNotifier {
  /**
   * The URL to POST to.
   * @example
   * ```ts
   * { webhook: 'https://hooks.slack.com/services/T000/B000/XXX' }
   * ```
   */
  webhook: string
  /**
   * Signs each body with HMAC-SHA256: header `x-apimeter-signature: sha256=<hex>`. Never stored.
   * @example
   * ```ts
   * { webhook: 'https://hooks.example.com/x', secret: process.env.HOOK_SECRET }
   * ```
   */
  secret?: string
  /**
   * Time limit of one attempt, ms.
   * @default 5000
   * @example
   * ```ts
   * { webhook: 'https://hooks.example.com/x', timeoutMs: 2000 }
   * ```
   */
  timeoutMs?: number
  /**
   * Further attempts after a network error, a timeout, a 429 or a 5xx (other statuses are not retried).
   * @default 3
   * @example
   * ```ts
   * { webhook: 'https://hooks.example.com/x', retries: 5 }
   * ```
   */
  retries?: number
  /**
   * Delay before the first retry, doubled for each further one (capped at 60 s), ms.
   * @default 500
   * @example
   * ```ts
   * { webhook: 'https://hooks.example.com/x', backoffMs: 1000 }
   * ```
   */
  backoffMs?: number
  /**
   * Extra request headers (an `authorization` header, say). Never stored.
   * @example
   * ```ts
   * { webhook: 'https://hooks.example.com/x', headers: { authorization: `Bearer ${token}` } }
   * ```
   */
  headers?: Record<string, string>
}

/**
 * Where a rule's notifications go, besides `monitor.on('alert')` and the monitor's `onAlert` callback:
 * `'log'` (one line through the monitor's logger, else `console.warn`), `'webhook:<url>'`, a
 * {@link WebhookNotifier} object, or a scheme a plugin registers (`'slack'`, `'pagerduty:<routing key>'`: the part
 * after the colon is the plugin's target, never stored as given).
 *
 * @example
 * ```ts
 * notify: ['log', 'webhook:https://hooks.example.com/apimeter', { webhook: 'https://hooks.example.com/x', secret: 's3cret' }, 'slack']
 * ```
 */
export type NotifierInput = 'log' | `webhook:${string}` | WebhookNotifier | (string & {})

/**
 * One alert rule. Every rule watches a window of recorded calls (filtered like a stats query: `api`, `route`,
 * `tenantId`, `direction`, …) and compares a value
 * with `threshold`: at or above it (below it for `requests` with `when: 'below'`) the condition holds.
 *
 * | kind | value | threshold |
 * |---|---|---|
 * | `error_rate` | errors / requests in the window | a fraction (0.05 = 5%) |
 * | `latency` | the `percentile` of durations (default p95) | milliseconds |
 * | `requests` | calls in the window | a count (`when: 'below'` for too few) |
 * | `cost` | USD spent in the window (rolling, or calendar `'day'` / `'month'`, UTC) | USD; `warn` (e.g. 0.8) warns first |
 * | `rate_limit` | fraction of a limit used: calls in `limit.per` / `limit.requests`, or from recorded rate-limit headers | a fraction, default 1; `warn` defaults to 0.8 |
 * | `status` | calls answered with one of `codes` | a count |
 *
 * @example
 * ```ts
 * createMonitor({
 *   alerts: [
 *     { name: 'openai-daily-budget', kind: 'cost', api: 'openai', window: 'day', threshold: 50, warn: 0.8 },
 *     { name: 'api-errors', kind: 'error_rate', window: '5m', threshold: 0.05, for: '2m', groupBy: 'api', notify: ['log'] },
 *   ],
 * })
 * ```
 */
export interface AlertRule extends Omit<StatsFilter, 'from' | 'to'> {
  /**
   * Unique name; the key of its state and history.
   * @example
   * ```ts
   * { name: 'openai-daily-budget', kind: 'cost', threshold: 50 }
   * ```
   */
  name: string
  /**
   * What is measured (see the table above).
   * @example
   * ```ts
   * { name: 'p95', kind: 'latency', threshold: 800 }
   * ```
   */
  kind: AlertKind
  /**
   * The bound (see the table above). Required except for `rate_limit` (default 1 = 100% of the limit).
   * @example
   * ```ts
   * { name: 'errors', kind: 'error_rate', threshold: 0.05 }   // 5% of calls failing
   * ```
   */
  threshold?: number
  /**
   * How far back each evaluation looks: a duration (`'5m'`, `'1h'`, `'1d'`), or `'day'` / `'month'` for the current
   * UTC calendar day or month (budgets). For `rate_limit` with `limit`, the window is `limit.per`.
   * @default '5m' ('day' for cost rules)
   * @example
   * ```ts
   * { name: 'budget', kind: 'cost', window: 'month', threshold: 500 }
   * ```
   */
  window?: 'day' | 'month' | (string & {}) | number
  /**
   * How long the condition must hold before the alert fires (pending until then).
   * @default 0 (fires at the first evaluation that sees it)
   * @example
   * ```ts
   * { name: 'errors', kind: 'error_rate', threshold: 0.05, for: '2m' }
   * ```
   */
  for?: DurationInput
  /**
   * How long a firing alert keeps firing after its condition stopped holding (smooths flapping).
   * @default 0
   * @example
   * ```ts
   * { name: 'p95', kind: 'latency', threshold: 800, keepFiringFor: '5m' }
   * ```
   */
  keepFiringFor?: DurationInput
  /**
   * While an alert keeps firing, notify again once this long has passed since the last notification.
   * @default never (one notification per firing)
   * @example
   * ```ts
   * { name: '5xx', kind: 'status', codes: ['5xx'], threshold: 20, cooldown: '1h' }
   * ```
   */
  cooldown?: DurationInput
  /**
   * One alert instance per value of these dimensions (`'tenant'`, `'api'`, `'route'`, …).
   * @example
   * ```ts
   * { name: 'tenant-budget', kind: 'cost', window: 'day', threshold: 5, groupBy: 'tenant' }
   * ```
   */
  groupBy?: Dimension | readonly Dimension[]
  /**
   * Notifiers of this rule (see {@link NotifierInput}).
   * @example
   * ```ts
   * { name: 'errors', kind: 'error_rate', threshold: 0.05, notify: ['log', 'webhook:https://hooks.example.com/x'] }
   * ```
   */
  notify?: readonly NotifierInput[]
  /**
   * When the window has nothing to judge (no calls for `error_rate` and `latency`; no rate-limit headers):
   * `'ok'` treats it as fine (a firing alert resolves), `'keep'` leaves the state as it is, `'alert'` treats it
   * as the condition holding. Counting kinds (`requests`, `cost`, `status`, configured `rate_limit`) count 0.
   * @default 'ok'
   * @example
   * ```ts
   * { name: 'headroom', kind: 'rate_limit', noData: 'keep' }
   * ```
   */
  noData?: (typeof NO_DATA_POLICIES)[number]
  /**
   * Warn first at this fraction of the threshold (0 < warn < 1): a `warning` firing, then `critical` at the threshold.
   * @example
   * ```ts
   * { name: 'budget', kind: 'cost', window: 'day', threshold: 50, warn: 0.8 }
   * ```
   */
  warn?: number
  /**
   * `cost` only: whether estimated costs count toward the budget — calls priced from partial usage (a stream cut
   * short). Counting them errs on the safe side. @default 'include'
   * @example
   * ```ts
   * { name: 'budget', kind: 'cost', window: 'month', threshold: 500, estimates: 'exclude' }
   * ```
   */
  estimates?: 'include' | 'exclude'
  /**
   * `latency` only: the statistic compared. @default 'p95'
   * @example
   * ```ts
   * { name: 'p99', kind: 'latency', percentile: 'p99', threshold: 2000 }
   * ```
   */
  percentile?: (typeof LATENCY_STATS)[number]
  /**
   * `requests` only: fire when the count is at or above (`'above'`) or below (`'below'`) the threshold. @default 'above'
   * @example
   * ```ts
   * { name: 'quiet', kind: 'requests', when: 'below', window: '15m', threshold: 1 }
   * ```
   */
  when?: 'above' | 'below'
  /**
   * `status` only (required): status codes counted; `'4xx'` / `'5xx'` stand for the whole class.
   * @example
   * ```ts
   * { name: 'throttled', kind: 'status', codes: [429], threshold: 10 }
   * ```
   */
  codes?: readonly (number | '1xx' | '2xx' | '3xx' | '4xx' | '5xx')[]
  /**
   * `rate_limit` only: a configured limit. Without it, the latest recorded rate-limit headers are used.
   * @example
   * ```ts
   * { name: 'quota', kind: 'rate_limit', api: 'finnhub', limit: { requests: 60, per: '1m' } }
   * ```
   */
  limit?: { requests: number; per: DurationInput }
  /**
   * `error_rate` and `latency`: fewer calls than this in the window count as no data. @default 1
   * @example
   * ```ts
   * { name: 'errors', kind: 'error_rate', threshold: 0.05, minRequests: 50 }
   * ```
   */
  minRequests?: number
  /**
   * A disabled rule is stored but never evaluated. @default true
   * @example
   * ```ts
   * { name: 'budget', kind: 'cost', threshold: 50, enabled: false }
   * ```
   */
  enabled?: boolean
}

/** A webhook notifier with its defaults filled in. */
export interface ResolvedWebhook {
  type: 'webhook'
  url: string
  secret: string | undefined
  timeoutMs: number
  retries: number
  backoffMs: number
  headers: Record<string, string>
}
/** A notifier a plugin registered, by scheme (`target`: what follows `scheme:`, or ''). */
export interface ResolvedPluginNotifier {
  type: 'plugin'
  scheme: string
  target: string
}
/** A notifier after validation. */
export type ResolvedNotifier = { type: 'log' } | ResolvedWebhook | ResolvedPluginNotifier

/** A validated rule with durations in ms and defaults filled in. */
export interface ResolvedRule {
  name: string
  kind: AlertKind
  threshold: number
  /** Rolling window in ms, or a calendar period. */
  window: { rollingMs: number } | { calendar: 'day' | 'month' }
  forMs: number
  keepFiringForMs: number
  cooldownMs: number
  groupBy: Dimension[]
  notify: ResolvedNotifier[]
  noData: (typeof NO_DATA_POLICIES)[number]
  warn: number | undefined
  /** `cost` rules: whether estimated costs count. */
  estimates: 'include' | 'exclude'
  percentile: (typeof LATENCY_STATS)[number]
  when: 'above' | 'below'
  /** Expanded status codes (`status` rules). */
  codes: number[]
  limit: { requests: number; perMs: number } | undefined
  minRequests: number
  enabled: boolean
  /** The stats filter fields of the rule. */
  filter: Record<string, unknown>
  /** The rule as given, for storage (secrets masked). */
  definition: Record<string, unknown>
  /** `slo_burn` rules: the SLO and which of its burn alerts (page: critical, ticket: warning). */
  slo?: { slo: ResolvedSlo; severity: 'page' | 'ticket' }
}

const FILTER_KEYS = ['service', 'direction', 'api', 'route', 'method', 'tenantId', 'userId', 'outcome', 'model', 'statusCode'] as const

const DURATION = `a duration such as '30s', '5m', '2h', '1d', or milliseconds`
const toMs = (v: DurationInput): number | undefined => (typeof v === 'number' ? (Number.isFinite(v) && v >= 0 ? v : undefined) : parseDuration(v))
const duration = z.union([z.string(), z.number()], { error: DURATION }).refine((v) => toMs(v) !== undefined, { error: DURATION })
const POSITIVE = `a duration longer than 0 such as '30s', '5m', '1d', or milliseconds`
const positiveDuration = z.union([z.string(), z.number()], { error: POSITIVE }).refine((v) => (toMs(v) ?? 0) > 0, { error: POSITIVE })

const WINDOW = `a duration such as '5m' or '1d', or 'day' / 'month' (calendar, UTC)`

const webhookUrl = z.string({ error: 'an http:// or https:// URL' }).regex(/^https?:\/\/[^\s/]+/i, { error: 'an http:// or https:// URL' })
const webhookObject = z.strictObject({
  webhook: webhookUrl,
  secret: z.string({ error: 'a non-empty string' }).min(1, { error: 'a non-empty string' }).optional(),
  timeoutMs: intInRange(1, 600_000, 'a whole number of milliseconds from 1 to 600,000').optional(),
  retries: intInRange(0, 20, 'a whole number from 0 to 20').optional(),
  backoffMs: z.number({ error: 'a number of milliseconds from 0 to 60,000' }).min(0, { error: 'a number of milliseconds from 0 to 60,000' }).max(60_000, { error: 'a number of milliseconds from 0 to 60,000' }).optional(),
  headers: z.record(z.string(), z.string(), { error: 'an object of header names to string values' }).optional(),
})
/** The accepted shapes of a notifier, for messages. */
const NOTIFIER = `'log', 'webhook:https://…', a plugin notifier such as 'slack' or 'pagerduty:<key>', or { webhook: 'https://…', secret?, timeoutMs?, retries?, backoffMs?, headers? }`
/** `scheme` or `scheme:target` of a plugin notifier. */
const PLUGIN_NOTIFIER = /^([a-z][a-z0-9_-]{0,39})(?::([\s\S]*))?$/i
/** The scheme and target of a plugin notifier string, or undefined for 'log', webhooks and anything else. */
export function pluginNotifierParts(v: string): { scheme: string; target: string } | undefined {
  const m = PLUGIN_NOTIFIER.exec(v)
  if (!m || m[1] === 'log' || m[1]!.toLowerCase() === 'webhook') return undefined
  return { scheme: m[1]!, target: m[2] ?? '' }
}
/** The zod schema of one {@link NotifierInput} (alert rules, probes and SLOs take the same notifiers). */
export const notifierSchema = z.union(
  [z.string().refine((v) => v === 'log' || /^webhook:https?:\/\/[^\s/]+/i.test(v) || pluginNotifierParts(v) !== undefined, { error: NOTIFIER }), webhookObject],
  { error: NOTIFIER },
)
const statusCode = z.union([z.number().int().min(100).max(999), z.enum(['1xx', '2xx', '3xx', '4xx', '5xx'])], {
  error: `a status code from 100 to 999 or a class such as '5xx'`,
})
const dimension = z.enum(DIMENSIONS, { error: `one of ${DIMENSIONS.join(', ')}` })
const { from: _from, to: _to, ...ruleFilterShape } = filterShape
void _from
void _to

/** The zod schema of one {@link AlertRule}. */
export const alertRuleSchema = z
  .strictObject({
    name: z.string({ error: 'a non-empty string of at most 200 characters' }).min(1, { error: 'a non-empty string of at most 200 characters' }).max(200, { error: 'a non-empty string of at most 200 characters' }),
    kind: z.enum(ALERT_KINDS, { error: `one of ${ALERT_KINDS.join(', ')}` }),
    threshold: z.number({ error: 'a finite number' }).refine(Number.isFinite, { error: 'a finite number' }).optional(),
    window: z
      .union([z.string(), z.number()], { error: WINDOW })
      .refine((v) => v === 'day' || v === 'month' || (toMs(v) ?? 0) > 0, { error: WINDOW })
      .optional(),
    for: duration.optional(),
    keepFiringFor: duration.optional(),
    cooldown: positiveDuration.optional(),
    groupBy: z.union([dimension, z.array(dimension).min(1, { error: 'a dimension or a non-empty list of them' })], { error: `a dimension (${DIMENSIONS.join(', ')}) or a list of them` }).optional(),
    notify: z.array(notifierSchema, { error: 'a list of notifiers' }).optional(),
    noData: z.enum(NO_DATA_POLICIES, { error: `one of ${NO_DATA_POLICIES.join(', ')}` }).optional(),
    warn: z.number({ error: 'a fraction greater than 0 and less than 1 (0.8 = warn at 80% of the threshold)' }).gt(0, { error: 'a fraction greater than 0 and less than 1 (0.8 = warn at 80% of the threshold)' }).lt(1, { error: 'a fraction greater than 0 and less than 1 (0.8 = warn at 80% of the threshold)' }).optional(),
    percentile: z.enum(LATENCY_STATS, { error: `one of ${LATENCY_STATS.join(', ')}` }).optional(),
    estimates: z.enum(['include', 'exclude'], { error: `'include' or 'exclude'` }).optional(),
    when: z.enum(['above', 'below'], { error: `'above' or 'below'` }).optional(),
    codes: z.array(statusCode, { error: `a list of status codes or classes such as [500, 503] or ['5xx']` }).min(1, { error: `a non-empty list of status codes or classes such as [500, 503] or ['5xx']` }).optional(),
    limit: z
      .strictObject({
        requests: intInRange(1, Number.MAX_SAFE_INTEGER, 'a whole number >= 1'),
        per: positiveDuration,
      }, { error: `an object such as { requests: 60, per: '1m' }` })
      .optional(),
    minRequests: intInRange(1, Number.MAX_SAFE_INTEGER, 'a whole number >= 1').optional(),
    enabled: z.boolean({ error: 'true or false' }).optional(),
    ...ruleFilterShape,
  })
  .superRefine((rule, ctx) => {
    const only = (field: keyof typeof rule, kinds: readonly AlertKind[]): void => {
      if (rule[field] !== undefined && !kinds.includes(rule.kind)) {
        ctx.addIssue({ code: 'custom', path: [field], message: `set only on ${kinds.map((k) => `'${k}'`).join(' or ')} rules (this rule's kind is '${rule.kind}')`, input: rule[field] })
      }
    }
    only('percentile', ['latency'])
    only('when', ['requests'])
    only('codes', ['status'])
    only('limit', ['rate_limit'])
    only('minRequests', ['error_rate', 'latency'])
    if (rule.kind === 'status' && rule.statusCode !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['statusCode'], message: `left out on a 'status' rule (its codes field says which codes count)`, input: rule.statusCode })
    }
    if (rule.threshold === undefined && rule.kind !== 'rate_limit') {
      ctx.addIssue({ code: 'custom', path: ['threshold'], message: `a finite number (required for '${rule.kind}' rules)`, input: undefined })
    }
    if (rule.threshold !== undefined && rule.threshold < 0) {
      ctx.addIssue({ code: 'custom', path: ['threshold'], message: 'a number >= 0', input: rule.threshold })
    }
    if (rule.kind === 'error_rate' && rule.threshold !== undefined && rule.threshold > 1) {
      ctx.addIssue({ code: 'custom', path: ['threshold'], message: 'a fraction from 0 to 1 (0.05 = 5% of calls failing)', input: rule.threshold })
    }
    if (rule.kind === 'status' && rule.codes === undefined) {
      ctx.addIssue({ code: 'custom', path: ['codes'], message: `a list of status codes or classes such as [500, 503] or ['5xx'] (required for 'status' rules)`, input: undefined })
    }
    if (rule.estimates !== undefined && rule.kind !== 'cost') {
      ctx.addIssue({ code: 'custom', path: ['estimates'], message: `left out: it only applies to 'cost' rules`, input: rule.estimates })
    }
    if (rule.warn !== undefined && rule.kind === 'requests' && rule.when === 'below') {
      ctx.addIssue({ code: 'custom', path: ['warn'], message: `left out when when is 'below' (a warning comes before a value rises past the threshold)`, input: rule.warn })
    }
  })

/** The zod schema of the `alerts` option: a list of rules with unique names. */
export const alertRulesSchema = z.array(alertRuleSchema, { error: 'a list of alert rules' }).superRefine((rules, ctx) => {
  const seen = new Set<string>()
  rules.forEach((rule, i) => {
    if (seen.has(rule.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: 'a name no other rule has', input: rule.name })
    seen.add(rule.name)
  })
})

function expandCodes(codes: readonly (number | string)[]): number[] {
  const out = new Set<number>()
  for (const c of codes) {
    if (typeof c === 'number') out.add(c)
    else for (let base = Number(c[0]) * 100, i = 0; i < 100; i++) out.add(base + i)
  }
  return [...out].sort((a, b) => a - b)
}

/** A validated notifier with its defaults filled in. */
export function resolveNotifier(n: z.infer<typeof notifierSchema>): ResolvedNotifier {
  if (n === 'log') return { type: 'log' }
  if (typeof n === 'string' && !n.toLowerCase().startsWith('webhook:')) {
    const parts = pluginNotifierParts(n)!
    return { type: 'plugin', scheme: parts.scheme, target: parts.target }
  }
  const o = typeof n === 'string' ? { webhook: n.slice('webhook:'.length) } : n
  return {
    type: 'webhook',
    url: o.webhook,
    secret: o.secret,
    timeoutMs: o.timeoutMs ?? 5000,
    retries: o.retries ?? 3,
    backoffMs: o.backoffMs ?? 500,
    headers: { ...o.headers },
  }
}

/**
 * The name of a notifier in stored attempts: never its secret, nor credentials in its URL; a plugin notifier's
 * target (which may be a key) is shown as a short hash.
 */
export function notifierLabel(n: ResolvedNotifier | { type: 'callback' }): string {
  if (n.type === 'plugin') return n.target === '' ? n.scheme : `${n.scheme}:#${createHash('sha256').update(n.target).digest('hex').slice(0, 8)}`
  return n.type === 'webhook' ? `webhook:${maskUrl(n.url)}` : n.type
}

/** Turns a validated rule into its resolved form. */
export function resolveRule(rule: z.infer<typeof alertRuleSchema>): ResolvedRule {
  const window = rule.window ?? (rule.kind === 'cost' ? 'day' : '5m')
  const filter: Record<string, unknown> = {}
  for (const key of FILTER_KEYS) if (rule[key] !== undefined) filter[key] = rule[key]
  const notify = (rule.notify ?? []).map(resolveNotifier)
  const definition: Record<string, unknown> = { ...rule, notify: notify.map(notifierLabel) }
  if (rule.notify === undefined) delete definition.notify
  return {
    name: rule.name,
    kind: rule.kind,
    threshold: rule.threshold ?? 1,
    window: window === 'day' || window === 'month' ? { calendar: window } : { rollingMs: toMs(window)! },
    forMs: rule.for === undefined ? 0 : toMs(rule.for)!,
    keepFiringForMs: rule.keepFiringFor === undefined ? 0 : toMs(rule.keepFiringFor)!,
    cooldownMs: rule.cooldown === undefined ? Infinity : toMs(rule.cooldown)!,
    groupBy: rule.groupBy === undefined ? [] : Array.isArray(rule.groupBy) ? [...new Set(rule.groupBy)] : [rule.groupBy],
    notify,
    noData: rule.noData ?? 'ok',
    warn: rule.warn ?? (rule.kind === 'rate_limit' ? 0.8 : undefined),
    percentile: rule.percentile ?? 'p95',
    estimates: rule.estimates ?? 'include',
    when: rule.when ?? 'above',
    codes: rule.codes ? expandCodes(rule.codes) : [],
    limit: rule.limit ? { requests: rule.limit.requests, perMs: toMs(rule.limit.per)! } : undefined,
    minRequests: rule.minRequests ?? 1,
    enabled: rule.enabled ?? true,
    filter,
    definition,
  }
}
