import { z } from 'zod'
import { type DurationInput, type NotifierInput, notifierLabel, notifierSchema, pluginNotifierParts, type ResolvedNotifier, resolveNotifier } from '../alerts/rules.js'
import { maskUrl } from '../call/route.js'
import { parseDuration, resolveTime, type TimeInput } from '../time.js'
import { intInRange } from '../validation.js'
import { type MaintenanceWindow, resolveMaintenance, type ResolvedMaintenance } from './maintenance.js'

/**
 * What a check must see to pass. Every field is optional; a check fails on the first expectation it misses, and the
 * stored cause says which (`status`, `body`, `json`, `slow`, `cert_expiring`).
 *
 * @example
 * ```ts
 * expect: { status: [200, 204], bodyIncludes: 'ok', jsonPath: 'checks[0].status', equals: 'pass', maxDurationMs: 2000, certDaysLeft: 14 }
 * ```
 */
export interface ProbeExpectations {
  /**
   * Accepted status codes.
   * @default any 2xx
   * @example
   * ```ts
   * expect: { status: [200, 204] }
   * ```
   */
  status?: readonly number[]
  /**
   * A substring the body must contain (the first 1 MiB of it is read).
   * @example
   * ```ts
   * expect: { bodyIncludes: '"status":"ok"' }
   * ```
   */
  bodyIncludes?: string
  /**
   * A path into the JSON body: property names separated by dots and array indexes in brackets, an optional leading
   * `$.` (`$.checks[0].status`, `data.items[2]`). No wildcards or filters. Set it with `equals`.
   * @example
   * ```ts
   * expect: { jsonPath: 'database.status', equals: 'up' }
   * ```
   */
  jsonPath?: string
  /**
   * The JSON value found at `jsonPath` must equal this (deep equality of JSON values).
   * @example
   * ```ts
   * expect: { jsonPath: 'replicas.ready', equals: 3 }
   * ```
   */
  equals?: unknown
  /**
   * The longest the whole response (to the last byte of the body) may take, ms; slower fails with cause `slow`.
   * @example
   * ```ts
   * expect: { maxDurationMs: 2000 }
   * ```
   */
  maxDurationMs?: number
  /**
   * https only: fewer days than this left before the server's certificate expires fails with `cert_expiring`.
   * @example
   * ```ts
   * expect: { certDaysLeft: 14 }
   * ```
   */
  certDaysLeft?: number
}

/** Options shared by HTTP and heartbeat probes. */
interface ProbeCommon {
  /**
   * Unique name; the key of its checks, state and incidents.
   * @example
   * ```ts
   * { name: 'payments', url: 'https://pay.example/health' }
   * ```
   */
  name: string
  /**
   * Consecutive failed checks that open an incident.
   * @default 3 (1 for a heartbeat)
   * @example
   * ```ts
   * { name: 'payments', url: 'https://pay.example/health', failuresToOpen: 5 }
   * ```
   */
  failuresToOpen?: number
  /**
   * Consecutive passed checks that resolve it.
   * @default 2 (1 for a heartbeat)
   * @example
   * ```ts
   * { name: 'payments', url: 'https://pay.example/health', successesToClose: 3 }
   * ```
   */
  successesToClose?: number
  /**
   * Where incident notifications go besides `monitor.on('incident')` and `onIncident`: the notifiers of alert rules
   * (`'log'`, `'webhook:<url>'`, `{ webhook, secret, … }` signed with HMAC-SHA256).
   * @default []
   * @example
   * ```ts
   * { name: 'payments', url: 'https://pay.example/health', notify: ['log', { webhook: 'https://hooks.example/x', secret: process.env.HOOK_SECRET }] }
   * ```
   */
  notify?: readonly NotifierInput[]
  /**
   * Maintenance windows: checks still run and are stored, but they neither open nor resolve incidents, and the
   * windows count neither as uptime nor as downtime (see {@link MaintenanceWindow}).
   * @default []
   * @example
   * ```ts
   * { name: 'payments', url: 'https://pay.example/health', maintenance: [{ daily: '02:00', duration: '30m' }, { from: '2026-03-01T10:00Z', to: '2026-03-01T12:00Z' }] }
   * ```
   */
  maintenance?: readonly MaintenanceWindow[]
}

/**
 * An active probe: an HTTP(S) request every `intervalMs`, judged by `expect`.
 *
 * @example
 * ```ts
 * { name: 'payments', url: 'https://pay.example/health', intervalMs: 30_000, timeoutMs: 5_000,
 *   expect: { status: [200], bodyIncludes: 'ok', maxDurationMs: 2_000 }, notify: ['webhook:https://hooks.example/x'] }
 * ```
 */
export interface HttpProbe extends ProbeCommon {
  /**
   * The http:// or https:// URL requested.
   * @example
   * ```ts
   * { name: 'stripe', url: 'https://status.stripe.com/api/v2/status.json' }
   * ```
   */
  url: string
  /**
   * @default 'GET'
   * @example
   * ```ts
   * { name: 'search', url: 'https://search.internal/query', method: 'POST', body: '{"q":"ping"}' }
   * ```
   */
  method?: string
  /**
   * Request headers (stored masked: only their names).
   * @example
   * ```ts
   * { name: 'admin', url: 'https://admin.internal/health', headers: { authorization: `Bearer ${token}` } }
   * ```
   */
  headers?: Record<string, string>
  /**
   * Request body (never stored).
   * @example
   * ```ts
   * { name: 'search', url: 'https://search.internal/query', method: 'POST', body: '{"q":"ping"}' }
   * ```
   */
  body?: string
  /**
   * Time between rounds, ms (100 … 86,400,000). Across a fleet, each round runs on one instance only.
   * @default 60_000
   * @example
   * ```ts
   * { name: 'payments', url: 'https://pay.example/health', intervalMs: 30_000 }
   * ```
   */
  intervalMs?: number
  /**
   * Time limit of one check, ms (1 … 600,000); past it the check fails with cause `timeout`.
   * @default 10_000
   * @example
   * ```ts
   * { name: 'payments', url: 'https://pay.example/health', timeoutMs: 5_000 }
   * ```
   */
  timeoutMs?: number
  /**
   * What a passing check looks like.
   * @default { status: any 2xx }
   * @example
   * ```ts
   * { name: 'payments', url: 'https://pay.example/health', expect: { status: [200], maxDurationMs: 2000 } }
   * ```
   */
  expect?: ProbeExpectations
  /**
   * TLS settings for https: a CA to trust (PEM) besides the system's, or `rejectUnauthorized: false` to accept any
   * certificate (the certificate's expiry is still checked by `expect.certDaysLeft`).
   * @default { rejectUnauthorized: true }
   * @example
   * ```ts
   * { name: 'internal', url: 'https://10.0.0.5/health', tls: { ca: readFileSync('internal-ca.pem', 'utf8') } }
   * ```
   */
  tls?: { ca?: string; rejectUnauthorized?: boolean }
  /**
   * Also record each check as an outbound call (api `probe:<name>`), so it shows in `monitor.stats` beside real
   * traffic. Checks are kept out of call stats otherwise.
   * @default false
   * @example
   * ```ts
   * { name: 'payments', url: 'https://pay.example/health', recordCall: true }   // stats.summary({ api: 'probe:payments' })
   * ```
   */
  recordCall?: boolean
}

/**
 * A passive probe: something (a cron job, a worker loop) calls `monitor.probes.heartbeat(name)` at least every
 * `everyMs`; when a beat is more than `graceMs` late, the probe fails with cause `heartbeat_late` (and, by default,
 * opens an incident at once), resolved by the next beat.
 *
 * @example
 * ```ts
 * { name: 'nightly-export', heartbeat: { everyMs: 86_400_000, graceMs: 3_600_000 }, notify: ['log'] }
 * ```
 */
export interface HeartbeatProbe extends ProbeCommon {
  /**
   * `everyMs`: the expected time between beats; `graceMs`: how late a beat may be.
   * @example
   * ```ts
   * { name: 'queue-worker', heartbeat: { everyMs: 60_000, graceMs: 30_000 } }
   * ```
   */
  heartbeat: { everyMs: number; graceMs?: number }
  /**
   * How often lateness is looked for, ms; across a fleet, one instance does it each round.
   * @default the smaller of everyMs and 60_000
   * @example
   * ```ts
   * { name: 'queue-worker', heartbeat: { everyMs: 60_000 }, intervalMs: 10_000 }
   * ```
   */
  intervalMs?: number
}

/** One probe of the `probes` option. */
export type ProbeDefinition = HttpProbe | HeartbeatProbe

const NAME = 'a non-empty string of at most 200 characters'
const positiveInt = (max: number, what: string) => intInRange(1, max, what)
const DURATION = `a duration such as '30m', '2h', or milliseconds`
const toMs = (v: DurationInput): number | undefined => (typeof v === 'number' ? (Number.isFinite(v) && v > 0 ? v : undefined) : parseDuration(v))
const TIME = 'a Date, epoch milliseconds or an ISO-8601 string'
const time = z.custom<TimeInput>((v) => (v instanceof Date || typeof v === 'string' || typeof v === 'number') && resolveTime(v, 0) !== undefined && !(typeof v === 'string' && v.startsWith('-')), { error: TIME })
const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/
const WEEKLY = /^(sun|mon|tue|wed|thu|fri|sat) ([01]\d|2[0-3]):[0-5]\d$/i
const duration = z.union([z.string(), z.number()], { error: DURATION }).refine((v) => toMs(v) !== undefined, { error: DURATION })
const maintenanceSchema = z.union(
  [
    z.strictObject({ from: time, to: time }).refine((w) => resolveTime(w.from, 0)! < resolveTime(w.to, 0)!, { error: 'a window whose from is before its to' }),
    z.strictObject({ daily: z.string({ error: `a time of day 'HH:MM' (UTC) such as '02:00'` }).regex(HHMM, { error: `a time of day 'HH:MM' (UTC) such as '02:00'` }), duration }),
    z.strictObject({ weekly: z.string({ error: `a day and time 'ddd HH:MM' (UTC) such as 'sun 03:00'` }).regex(WEEKLY, { error: `a day and time 'ddd HH:MM' (UTC) such as 'sun 03:00'` }), duration }),
  ],
  { error: `{ from, to } (times), { daily: 'HH:MM', duration } or { weekly: 'sun HH:MM', duration } (UTC)` },
)

const common = {
  name: z.string({ error: NAME }).min(1, { error: NAME }).max(200, { error: NAME }),
  failuresToOpen: positiveInt(1000, 'a whole number from 1 to 1,000').optional(),
  successesToClose: positiveInt(1000, 'a whole number from 1 to 1,000').optional(),
  // plugin notifiers (`'slack'`) take alert events: probes notify through 'log', webhooks and onIncident
  notify: z
    .array(
      notifierSchema.refine((n) => typeof n !== 'string' || pluginNotifierParts(n) === undefined, {
        error: `'log', 'webhook:https://…' or { webhook: 'https://…', … } (plugin notifiers serve alert rules, not probes; use onIncident)`,
      }),
      { error: 'a list of notifiers' },
    )
    .optional(),
  maintenance: z.array(maintenanceSchema, { error: 'a list of maintenance windows' }).optional(),
  intervalMs: intInRange(100, 86_400_000, 'a whole number of milliseconds from 100 to 86,400,000').optional(),
}

const JSON_PATH = /^(\$\.?)?([A-Za-z_$][\w$-]*|\[\d+\])(\.[A-Za-z_$][\w$-]*|\[\d+\])*$/

const httpProbeSchema = z
  .strictObject({
    ...common,
    url: z.string({ error: 'an http:// or https:// URL' }).refine((v) => /^https?:\/\/[^\s/]+/i.test(v) && URL.canParse(v), { error: 'an http:// or https:// URL' }),
    method: z.string({ error: 'an HTTP method such as GET' }).regex(/^[A-Za-z]+$/, { error: 'an HTTP method such as GET' }).optional(),
    headers: z.record(z.string(), z.string(), { error: 'an object of header names to string values' }).optional(),
    body: z.string({ error: 'a string' }).optional(),
    timeoutMs: positiveInt(600_000, 'a whole number of milliseconds from 1 to 600,000').optional(),
    expect: z
      .strictObject({
        status: z.array(intInRange(100, 999, 'a status code from 100 to 999'), { error: 'a list of status codes' }).min(1, { error: 'a non-empty list of status codes' }).optional(),
        bodyIncludes: z.string({ error: 'a string' }).min(1, { error: 'a non-empty string' }).optional(),
        jsonPath: z.string({ error: `a path such as 'data.items[0].status'` }).regex(JSON_PATH, { error: `a path such as 'data.items[0].status' (names and [index] steps)` }).optional(),
        equals: z.unknown().optional(),
        maxDurationMs: z.number({ error: 'a number of milliseconds > 0' }).gt(0, { error: 'a number of milliseconds > 0' }).optional(),
        certDaysLeft: z.number({ error: 'a number of days >= 0' }).min(0, { error: 'a number of days >= 0' }).optional(),
      })
      .superRefine((e, ctx) => {
        if ((e.jsonPath === undefined) !== !('equals' in e)) {
          ctx.addIssue({ code: 'custom', path: [e.jsonPath === undefined ? 'jsonPath' : 'equals'], message: 'given together with ' + (e.jsonPath === undefined ? 'equals' : 'jsonPath'), input: undefined })
        }
      })
      .optional(),
    tls: z.strictObject({ ca: z.string({ error: 'PEM text' }).optional(), rejectUnauthorized: z.boolean({ error: 'true or false' }).optional() }).optional(),
    recordCall: z.boolean({ error: 'true or false' }).optional(),
  })

const heartbeatProbeSchema = z.strictObject({
  ...common,
  heartbeat: z.strictObject({
    everyMs: intInRange(1, 366 * 86_400_000, 'a whole number of milliseconds >= 1'),
    graceMs: intInRange(0, 366 * 86_400_000, 'a whole number of milliseconds >= 0').optional(),
  }),
})

/**
 * The zod schema of one {@link ProbeDefinition}: a heartbeat when it has `heartbeat`, an HTTP probe otherwise, so a
 * mistake is reported against the fields of the kind meant.
 */
export const probeSchema = z.unknown().transform((value, ctx) => {
  const schema = typeof value === 'object' && value !== null && 'heartbeat' in value ? heartbeatProbeSchema : httpProbeSchema
  const result = schema.safeParse(value, { reportInput: true })
  if (result.success) return result.data
  for (const issue of result.error.issues) ctx.addIssue(issue as never)
  return z.NEVER
})

/** The zod schema of the `probes` option: a list with unique names. */
export const probesSchema = z.array(probeSchema, { error: 'a list of probes' }).superRefine((probes, ctx) => {
  const seen = new Set<string>()
  probes.forEach((p, i) => {
    if (seen.has(p.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: 'a name no other probe has', input: p.name })
    seen.add(p.name)
  })
})

/** A validated probe with defaults filled in. */
export interface ResolvedProbe {
  name: string
  kind: 'http' | 'heartbeat'
  intervalMs: number
  timeoutMs: number
  failuresToOpen: number
  successesToClose: number
  notify: ResolvedNotifier[]
  maintenance: ResolvedMaintenance
  http?: {
    url: string
    method: string
    headers: Record<string, string>
    body: string | undefined
    status: readonly number[] | undefined
    bodyIncludes: string | undefined
    jsonPath: string | undefined
    equals: unknown
    maxDurationMs: number | undefined
    certDaysLeft: number | undefined
    ca: string | undefined
    rejectUnauthorized: boolean
    recordCall: boolean
  }
  heartbeat?: { everyMs: number; graceMs: number }
  /** The probe as stored in `apimeter_probes`: header values and the body masked, the URL without secrets. */
  definition: Record<string, unknown>
}

/** Turns a validated probe into its resolved form. */
export function resolveProbe(p: z.infer<typeof probeSchema>): ResolvedProbe {
  const notify = (p.notify ?? []).map(resolveNotifier)
  const maintenance = resolveMaintenance(p.maintenance ?? [])
  const masked: Record<string, unknown> = { ...p }
  if (p.notify !== undefined) masked.notify = notify.map(notifierLabel)
  if (p.maintenance !== undefined) masked.maintenance = p.maintenance.map((w) => ('from' in w ? { from: new Date(resolveTime(w.from, 0)!).toISOString(), to: new Date(resolveTime(w.to, 0)!).toISOString() } : w))
  if ('heartbeat' in p) {
    const { everyMs, graceMs = 0 } = p.heartbeat
    return {
      name: p.name,
      kind: 'heartbeat',
      intervalMs: p.intervalMs ?? Math.max(100, Math.min(everyMs, 60_000)),
      timeoutMs: 0,
      failuresToOpen: p.failuresToOpen ?? 1,
      successesToClose: p.successesToClose ?? 1,
      notify,
      maintenance,
      heartbeat: { everyMs, graceMs },
      definition: masked,
    }
  }
  masked.url = maskUrl(p.url)
  if (p.headers) masked.headers = Object.fromEntries(Object.keys(p.headers).map((k) => [k, '***']))
  if (p.body !== undefined) masked.body = '***'
  if (p.tls?.ca !== undefined) masked.tls = { ...p.tls, ca: '(PEM)' }
  return {
    name: p.name,
    kind: 'http',
    intervalMs: p.intervalMs ?? 60_000,
    timeoutMs: p.timeoutMs ?? 10_000,
    failuresToOpen: p.failuresToOpen ?? 3,
    successesToClose: p.successesToClose ?? 2,
    notify,
    maintenance,
    http: {
      url: p.url,
      method: (p.method ?? 'GET').toUpperCase(),
      headers: { ...p.headers },
      body: p.body,
      status: p.expect?.status,
      bodyIncludes: p.expect?.bodyIncludes,
      jsonPath: p.expect?.jsonPath,
      equals: p.expect?.equals,
      maxDurationMs: p.expect?.maxDurationMs,
      certDaysLeft: p.expect?.certDaysLeft,
      ca: p.tls?.ca,
      rejectUnauthorized: p.tls?.rejectUnauthorized ?? true,
      recordCall: p.recordCall ?? false,
    },
    definition: masked,
  }
}
