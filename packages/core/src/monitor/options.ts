import { z } from 'zod'
import type { AlertEvent } from '../alerts/notifiers.js'
import { type AlertRule, alertRulesSchema } from '../alerts/rules.js'
import { type SloDefinition, slosSchema } from '../slos/slo.js'
import { sloAlertName } from '../slos/alerts.js'
import type { Clock } from '../clock.js'
import type { ProbeDefinition } from '../probes/options.js'
import { probesSchema } from '../probes/options.js'
import type { IncidentEvent } from '../probes/probe-manager.js'
import { apisSchema, type OutboundOptions, outboundOptionsSchema } from '../outbound/options.js'
import type { ApiDefinition } from '../outbound/registry.js'
import type { RetryPolicy } from './pipeline.js'
import type { StorageAdapter } from '../storage/adapter.js'
import type { ApimeterPlugin } from '../plugins/plugin.js'
import type { SystemOptions } from './system-sampler.js'
import { type MetricsOptions, metricsOptionsSchema } from '../metrics/options.js'
import { intInRange, numberInRange, wholeOrInfinity } from '../validation.js'

/** Where apimeter writes warnings when nobody listens for `error` events. */
export interface Logger {
  warn(message: string): void
}

/**
 * Options of `createMonitor()`. Every option is optional; a bad value throws an error naming the option, what was
 * expected and what came.
 *
 * @example
 * ```ts
 * const monitor = createMonitor({
 *   service: 'checkout',
 *   storage: sqliteStorage({ filename: 'apimeter.db' }),
 *   flushIntervalMs: 2000,
 *   maxBufferSize: 200_000,
 * })
 * ```
 */
export interface MonitorOptions {
  /**
   * Name of this application; stored on every call so several services can share one database.
   * @default 'default'
   * @example
   * ```ts
   * createMonitor({ service: 'checkout' })
   * ```
   */
  service?: string
  /**
   * Where calls are written.
   * @default memoryStorage()
   * @example
   * ```ts
   * createMonitor({ storage: memoryStorage({ maxCalls: 1_000_000 }) })
   * ```
   */
  storage?: StorageAdapter
  /**
   * How often buffered calls are written even when a batch is not full (ms, 10 … 3,600,000).
   * @default 1000
   * @example
   * ```ts
   * createMonitor({ flushIntervalMs: 5000 })
   * ```
   */
  flushIntervalMs?: number
  /**
   * Calls per write batch (1 … 50,000); a full batch is written right away, and calls beyond whole batches wait for
   * the next batch or the flush interval (`flush()` writes everything).
   * @default 500
   * @example
   * ```ts
   * createMonitor({ batchSize: 2000 })
   * ```
   */
  batchSize?: number
  /**
   * Most calls held in memory, buffered or being written/retried (>= batchSize, <= 10,000,000). When full, new
   * calls are dropped and counted in `health().dropped`, with one warning.
   * @default 50_000
   * @example
   * ```ts
   * createMonitor({ maxBufferSize: 500_000 })  // ride out a longer database outage
   * ```
   */
  maxBufferSize?: number
  /**
   * Write batches in flight at once (1 … 32); a storage may lower it through its capabilities.
   * @default 2
   * @example
   * ```ts
   * createMonitor({ concurrency: 4 })
   * ```
   */
  concurrency?: number
  /**
   * Backoff for failed writes. Defaults: `{ initialDelayMs: 100, maxDelayMs: 30_000, multiplier: 2, jitter: 0.5,
   * maxAttempts: Infinity }`; with the default, a batch retries as long as the monitor is open.
   * @example
   * ```ts
   * createMonitor({ retry: { initialDelayMs: 50, maxDelayMs: 5000 } })
   * ```
   */
  retry?: Partial<RetryPolicy>
  /**
   * The longest `close()` takes, end to end (ms): flushing the buffer, the alert evaluator's last run and closing the
   * storage (whose final rollup run is cut short and left for the next start). What is still unwritten then is
   * counted as dropped. Also bounds the flush before a natural exit.
   * @default 10_000
   * @example
   * ```ts
   * createMonitor({ closeTimeoutMs: 3000 })
   * ```
   */
  closeTimeoutMs?: number
  /**
   * What else to keep out of storage. `paths`: patterns of secrets in URL paths, beyond the shapes apimeter knows
   * (Slack and Discord webhooks, Telegram bot tokens, random-looking tokens and JWTs): each match — or each capture
   * group of it — is stored as `:secret`, in the route and in the URL.
   * @default {}
   * @example
   * ```ts
   * createMonitor({ redact: { paths: [/\/hooks\/([^/]+)/, /\/v1\/signed\/[^/]+/] } })
   * ```
   */
  redact?: { paths?: readonly RegExp[] }
  /**
   * How long one storage operation (writing a batch, connecting and migrating, a stats query) may take before it
   * fails (ms). A write that times out is retried like any transient failure, so a hung connection never stalls the
   * write path.
   * @default 30_000
   * @example
   * ```ts
   * createMonitor({ storage, storageTimeoutMs: 5000 })
   * ```
   */
  storageTimeoutMs?: number
  /**
   * Distinct routes kept per service, direction and API (10 … 100,000); later new routes are stored as `(other)`,
   * so a URL-scanning attack cannot grow memory or tables without bound.
   * @default 1000
   * @example
   * ```ts
   * createMonitor({ maxRoutes: 5000 })
   * ```
   */
  maxRoutes?: number
  /**
   * Clock for timestamps and durations (inject one in tests).
   * @default the system clock
   * @example
   * ```ts
   * createMonitor({ clock: { now: () => fakeNow } })
   * ```
   */
  clock?: Clock
  /**
   * Receives warnings (first buffer overflow, first write failure, …) when no `error` listener is attached;
   * `false` silences them. Everything is also counted in `health()`.
   * @default process.emitWarning
   * @example
   * ```ts
   * createMonitor({ logger: { warn: (m) => pino.warn(m) } })
   * ```
   */
  logger?: Logger | false
  /**
   * When the process is about to exit on its own (`beforeExit`) with calls still buffered, write them first
   * (bounded by `closeTimeoutMs`). Timers never keep the process alive either way.
   * @default true
   * @example
   * ```ts
   * createMonitor({ flushOnExit: false })
   * ```
   */
  flushOnExit?: boolean
  /**
   * Threshold alert rules (see `AlertRule` and docs/alerts.md), evaluated every `alertIntervalMs`. State and
   * history live in the storage, so a restart does not re-fire and monitors sharing a database notify once.
   * @default []
   * @example
   * ```ts
   * createMonitor({ alerts: [{ name: 'api-errors', kind: 'error_rate', window: '5m', threshold: 0.05, for: '2m' }] })
   * ```
   */
  alerts?: readonly AlertRule[]
  /**
   * How often alert rules are evaluated (ms, 10 … 86,400,000). The timer is unref'd; a run is skipped while the
   * previous one is still in flight.
   * @default 30_000
   * @example
   * ```ts
   * createMonitor({ alerts, alertIntervalMs: 10_000 })
   * ```
   */
  alertIntervalMs?: number
  /**
   * Called with every alert notification (firing, resolved), like `monitor.on('alert')`, but awaited: a rejection
   * or throw is stored as a failed attempt and reported, never rethrown.
   * @example
   * ```ts
   * createMonitor({ alerts, onAlert: async (e) => { await pagerDuty.send(e.text) } })
   * ```
   */
  onAlert?: (event: AlertEvent) => unknown
  /**
   * Service level objectives (see `SloDefinition` and docs/slos.md): `monitor.slos.status()` computes each one's
   * SLI, error budget and burn rates from exact counts; page and ticket burn-rate alerts run with the alert rules
   * (named `slo:<name>:page` / `slo:<name>:ticket`, every `alertIntervalMs`). The definitions are stored
   * (`apimeter_slos`) so `apimeter slos status` can read them.
   * @default []
   * @example
   * ```ts
   * createMonitor({ slos: [{ name: 'checkout-availability', objective: 0.999, window: '30d', indicator: { kind: 'availability', filter: { route: '/checkout' } } }] })
   * ```
   */
  slos?: readonly SloDefinition[]
  /**
   * Probes (see `HttpProbe`, `HeartbeatProbe` and docs/probes.md): HTTP(S) checks every `intervalMs`, and heartbeats
   * your cron jobs and workers send. Checks, incidents and uptime live in the storage; on a shared database each
   * round runs on one instance and each incident is notified once.
   * @default []
   * @example
   * ```ts
   * createMonitor({ probes: [
   *   { name: 'payments', url: 'https://pay.example/health', intervalMs: 30_000, expect: { status: [200], maxDurationMs: 2000 } },
   *   { name: 'nightly-export', heartbeat: { everyMs: 86_400_000, graceMs: 3_600_000 } },
   * ] })
   * ```
   */
  probes?: readonly ProbeDefinition[]
  /**
   * Called with every incident notification (opened, resolved), like `monitor.on('incident')`, but awaited: a
   * rejection or throw is reported, never rethrown.
   * @example
   * ```ts
   * createMonitor({ probes, onIncident: async (e) => { await pagerDuty.send(e.text) } })
   * ```
   */
  onIncident?: (event: IncidentEvent) => unknown
  /**
   * Whether this monitor runs its probes' rounds on its own timer. `false`: it only answers `monitor.probes`
   * queries, takes heartbeats and runs rounds when `monitor.probes.runOnce()` is called (an instance that should
   * not probe, or a test driving rounds with an injected clock).
   * @default true
   * @example
   * ```ts
   * createMonitor({ probes, clock, runProbes: false })   // rounds run only through monitor.probes.runOnce()
   * ```
   */
  runProbes?: boolean
  /**
   * The outbound API registry: which requests belong to which API (URL prefix, host or RegExp), their route
   * templates, cost model and documented limits. Unregistered hosts are grouped by host.
   * @default []
   * @example
   * ```ts
   * createMonitor({ apis: [
   *   { name: 'openai', match: 'https://api.openai.com', cost: costs.openai() },
   *   { name: 'finnhub', match: /finnhub\.io$/, routes: ['/api/v1/quote'], cost: costs.perRequest(0.0001) },
   * ] })
   * ```
   */
  apis?: ApiDefinition[]
  /**
   * Outbound metering settings (ignored hosts, the unread-body bound, cache detector, header/body capture).
   * @default {}
   * @example
   * ```ts
   * createMonitor({ outbound: { capture: { responseHeaders: true } } })
   * ```
   */
  outbound?: OutboundOptions
  /**
   * Plugins (see docs/plugins.md), each made by a `definePlugin()` factory. They are set up in dependency order
   * when the monitor is created; each hook runs isolated, counted and timed (`health().plugins`).
   * @default []
   * @example
   * ```ts
   * createMonitor({ plugins: [piiRedactor(), slackNotifier({ webhookUrl: process.env.SLACK_WEBHOOK! })] })
   * ```
   */
  plugins?: readonly ApimeterPlugin[]
  /**
   * Opt-in process metrics: every `intervalMs`, event-loop delay (p50/p99/max), event-loop utilisation, CPU
   * user/system, RSS and heap, and open handles are sampled into the storage (kept as long as raw calls), and read
   * with `monitor.stats.system()`. See docs/system-metrics.md.
   * @default off
   * @example
   * ```ts
   * createMonitor({ storage, system: { intervalMs: 10_000 } })
   * ```
   */
  system?: SystemOptions
  /**
   * Live metrics of this instance for Prometheus (`monitor.metrics.prometheus()`, `metricsHandler`) and
   * OpenTelemetry (`@apimeter/otel`), kept in memory as calls are recorded. `true` turns them on with the defaults;
   * an object sets the tenant label and the series caps (see {@link MetricsOptions}). See docs/export.md.
   * @default off
   * @example
   * ```ts
   * createMonitor({ metrics: true })
   * createMonitor({ metrics: { tenantLabel: true, maxTenants: 50 } })
   * ```
   */
  metrics?: boolean | MetricsOptions
}

const retrySchema = z
  .strictObject({
    initialDelayMs: numberInRange(0, 3_600_000, 'a number of milliseconds from 0 to 3,600,000').optional(),
    maxDelayMs: numberInRange(0, 3_600_000, 'a number of milliseconds from 0 to 3,600,000').optional(),
    multiplier: numberInRange(1, 100, 'a number from 1 to 100').optional(),
    jitter: numberInRange(0, 1, 'a number from 0 to 1').optional(),
    maxAttempts: wholeOrInfinity(1, 'a whole number >= 1 or Infinity').optional(),
  })
  .optional()

const isStorage = (value: unknown): value is StorageAdapter =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as StorageAdapter).writeCalls === 'function' &&
  typeof (value as StorageAdapter).aggregate === 'function' &&
  typeof (value as StorageAdapter).close === 'function'

/** The zod schema behind {@link MonitorOptions}. */
export const monitorOptionsSchema = z
  .strictObject({
    service: z.string({ error: 'a non-empty string of at most 200 characters' }).min(1, { error: 'a non-empty string of at most 200 characters' }).max(200, { error: 'a non-empty string of at most 200 characters' }).optional(),
    storage: z.custom<StorageAdapter>(isStorage, { error: 'a storage adapter (memoryStorage(), sqliteStorage(), postgresStorage() …)' }).optional(),
    flushIntervalMs: intInRange(10, 3_600_000, 'a whole number of milliseconds from 10 to 3,600,000').optional(),
    batchSize: intInRange(1, 50_000, 'a whole number from 1 to 50,000').optional(),
    maxBufferSize: intInRange(1, 10_000_000, 'a whole number from 1 to 10,000,000').optional(),
    concurrency: intInRange(1, 32, 'a whole number from 1 to 32').optional(),
    retry: retrySchema,
    closeTimeoutMs: intInRange(0, 600_000, 'a whole number of milliseconds from 0 to 600,000').optional(),
    storageTimeoutMs: intInRange(10, 3_600_000, 'a whole number of milliseconds from 10 to 3,600,000').optional(),
    redact: z.strictObject({ paths: z.array(z.instanceof(RegExp, { error: 'a RegExp' }), { error: 'a list of RegExps' }).optional() }, { error: 'an object { paths }' }).optional(),
    maxRoutes: intInRange(10, 100_000, 'a whole number from 10 to 100,000').optional(),
    clock: z
      .custom<Clock>(
        (v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function' && ((v as Clock).monotonic === undefined || typeof (v as Clock).monotonic === 'function'),
        { error: 'an object with a now() function (and optionally monotonic())' },
      )
      .optional(),
    logger: z
      .union([z.literal(false), z.custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as Logger).warn === 'function')], {
        error: 'an object with a warn(message) function, or false',
      })
      .optional(),
    flushOnExit: z.boolean({ error: 'true or false' }).optional(),
    alerts: alertRulesSchema.optional(),
    alertIntervalMs: intInRange(10, 86_400_000, 'a whole number of milliseconds from 10 to 86,400,000').optional(),
    onAlert: z.custom<(event: AlertEvent) => unknown>((v) => typeof v === 'function', { error: 'a function' }).optional(),
    slos: slosSchema.optional(),
    probes: probesSchema.optional(),
    onIncident: z.custom<(event: IncidentEvent) => unknown>((v) => typeof v === 'function', { error: 'a function' }).optional(),
    runProbes: z.boolean({ error: 'true or false' }).optional(),
    apis: apisSchema.optional(),
    outbound: outboundOptionsSchema.optional(),
    plugins: z
      .array(
        z.custom<ApimeterPlugin>((v) => typeof v === 'object' && v !== null && typeof (v as ApimeterPlugin).name === 'string' && typeof (v as ApimeterPlugin).definition?.setup === 'function', {
          error: 'a plugin made by a definePlugin() factory (myPlugin(config))',
        }),
        { error: 'a list of plugins' },
      )
      .optional(),
    system: z
      .strictObject({ intervalMs: intInRange(100, 3_600_000, 'a whole number of milliseconds from 100 to 3,600,000').optional() }, { error: 'an object { intervalMs? }' })
      .optional(),
    metrics: metricsOptionsSchema.optional(),
  })
  .superRefine((options, ctx) => {
    const sloAlerts = new Set((options.slos ?? []).flatMap((s) => [sloAlertName(s.name, 'page'), sloAlertName(s.name, 'ticket')]))
    options.alerts?.forEach((rule, i) => {
      if (sloAlerts.has(rule.name)) ctx.addIssue({ code: 'custom', path: ['alerts', i, 'name'], message: `a name other than those of the SLO burn alerts ('slo:<slo name>:page' / ':ticket')`, input: rule.name })
    })
    const batchSize = options.batchSize ?? DEFAULTS.batchSize
    const maxBufferSize = options.maxBufferSize ?? DEFAULTS.maxBufferSize
    if (maxBufferSize < batchSize) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxBufferSize'],
        message: `at least batchSize (${batchSize})`,
        input: maxBufferSize,
      })
    }
  })

/** Defaults of the numeric options. */
export const DEFAULTS = {
  service: 'default',
  flushIntervalMs: 1000,
  batchSize: 500,
  maxBufferSize: 50_000,
  concurrency: 2,
  closeTimeoutMs: 10_000,
  storageTimeoutMs: 30_000,
  maxRoutes: 1000,
  alertIntervalMs: 30_000,
  retry: { initialDelayMs: 100, maxDelayMs: 30_000, multiplier: 2, jitter: 0.5, maxAttempts: Infinity },
} as const
