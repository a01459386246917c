import { AlertManager, type AlertHealth, type MonitorAlerts } from '../alerts/alert-manager.js'
import type { AlertEvent } from '../alerts/notifiers.js'
import { resolveRule, type ResolvedRule } from '../alerts/rules.js'
import { sloBurnRules } from '../slos/alerts.js'
import { type MonitorSlos, SloManager } from '../slos/manager.js'
import { resolveSlo, type SloDefinition } from '../slos/slo.js'
import { resolveProbe } from '../probes/options.js'
import { type IncidentEvent, type MonitorProbes, type ProbeHealth, ProbeManager } from '../probes/probe-manager.js'
import type { CallHandle, CallRecorder, CallStart, CallUpdate } from '../call/handle.js'
import type { CallInput } from '../call/types.js'
import { MONITOR_CLOCK, type ResolvedClock, resolveClock } from '../clock.js'
import { MONITOR_REPORT } from './report.js'
import { SafeEmitter } from './emitter.js'
import { ApimeterError, type ApimeterErrorCode, describeValue, errorMessage, isApimeterError, PACKAGE_NAME } from '../errors.js'
import type { ApimeterPlugin } from '../plugins/plugin.js'
import { memoryStorage } from '../storage/memory-storage.js'
import { DEFAULTS, type Logger, type MonitorOptions, monitorOptionsSchema } from './options.js'
import { classifyError } from '../call/outcome.js'
import { createMeteredFetch, type FetchLike, type MeteredFetch } from '../outbound/fetch.js'
import { createInterceptor, type Interceptor } from '../outbound/interceptor.js'
import { instrument, uninstrument } from '../outbound/instrument.js'
import { OutboundMeter } from '../outbound/meter.js'
import type { OutboundCallOptions } from '../outbound/options.js'
import { outboundCallOptionsSchema } from '../outbound/options.js'
import { type MonitorHealth, WritePipeline } from './pipeline.js'
import { Metrics, type MonitorMetrics } from '../metrics/monitor-metrics.js'
import { resolveMetricsOptions } from '../metrics/options.js'
import { RouteGuard } from '../call/route.js'
import { createStats, type Stats } from '../stats/stats.js'
import type { StorageAdapter } from '../storage/adapter.js'
import { parseOrThrow } from '../validation.js'
import { memoryAuditStore, processInstance } from '../storage/audit-store.js'
import { memorySystemStore } from '../storage/system-store.js'
import { orderPlugins, PluginHost, type PluginHealth } from '../plugins/host.js'
import { AuditLog, type MonitorAudit } from './audit.js'
import { SYSTEM_INTERVAL_MS, SystemSampler } from './system-sampler.js'
import { canonicalJson, type RuleAudit } from '../alerts/definition-audit.js'

/**
 * Events a monitor emits. Listeners run asynchronously; one that throws, or an async one that rejects, is caught,
 * counted in `health().listenerFailures` and reported once as a warning — never rethrown, never an unhandled rejection.
 */
export interface MonitorEvents {
  /** Something went wrong that the SDK handled: an invalid call, a failed write, an overflow… */
  error: (error: ApimeterError) => unknown
  /** An alert fired (or escalated, or repeated after its cooldown) or resolved; sent once per transition. */
  alert: (event: AlertEvent) => unknown
  /** A probe's incident opened or resolved; sent once per transition across the monitors sharing the storage. */
  incident: (event: IncidentEvent) => unknown
}

/**
 * A monitor: records calls, writes them to storage in the background, answers stats queries.
 * Create one per process with {@link createMonitor}.
 */
export interface Monitor extends CallRecorder {
  /** The `service` stored on calls that do not name their own. */
  readonly service: string
  /** The storage calls are written to. */
  readonly storage: StorageAdapter
  /** Usage queries over everything in the storage (the monitor's own service is not an implicit filter). */
  readonly stats: Stats
  /**
   * State and history of the `alerts` rules; `evaluate()` runs them now.
   * @example
   * ```ts
   * const firing = await monitor.alerts.active()
   * ```
   */
  readonly alerts: MonitorAlerts
  /**
   * This instance's live metrics for Prometheus and OpenTelemetry (turned on with `createMonitor({ metrics: true })`;
   * see docs/export.md).
   * @example
   * ```ts
   * const { contentType, body } = await monitor.metrics.prometheus({ accept: req.headers.accept })
   * ```
   */
  readonly metrics: MonitorMetrics
  /**
   * Status of the `slos` (SLI, error budget, burn rates, alert level, coverage).
   * @example
   * ```ts
   * const exhausted = (await monitor.slos.status()).filter((s) => s.budget.exhausted)
   * ```
   */
  readonly slos: MonitorSlos
  /**
   * Checks, incidents and uptime of the `probes`, and heartbeats.
   * @example
   * ```ts
   * const { timeRatio } = await monitor.probes.uptime({ name: 'payments', from: '-30d' })
   * await monitor.probes.heartbeat('nightly-export')
   * ```
   */
  readonly probes: MonitorProbes
  /**
   * The audit log: alert rule changes, migrations, rollup rebuilds, retention runs, plugin changes and disables.
   * @example
   * ```ts
   * const changes = await monitor.audit.list({ from: '-7d', kind: 'alert_rule' })
   * ```
   */
  readonly audit: MonitorAudit
  /** This monitor's name in the audit log and process metrics: `<service>@<host>:<pid>`. */
  readonly instance: string
  /**
   * Records one finished call. Synchronous, O(1), never throws: an invalid call is counted in `health().invalid`
   * and reported as an `error` event.
   * @example
   * ```ts
   * monitor.record({ direction: 'inbound', method: 'GET', route: '/users/:id', statusCode: 200, durationMs: 3.2 })
   * ```
   */
  record(call: CallInput): void
  /**
   * Starts timing a call; the returned handle records it on `finish()` / `fail()`. Framework middleware and fetch
   * wrappers are built on this.
   * @example
   * ```ts
   * const call = monitor.startCall({ direction: 'inbound', method: req.method, route: '/orders/:id' })
   * res.on('finish', () => call.finish({ statusCode: res.statusCode }))
   * ```
   */
  startCall(start: CallStart): CallHandle
  /**
   * Counters of the write path, of alert evaluation and notification (`alerts`), of the probe runner (`probes`),
   * and each plugin's state, calls, errors, time and health score (`plugins`).
   * @example
   * ```ts
   * const { queued, dropped, lastError, alerts, probes, plugins } = monitor.health()
   * ```
   */
  health(): MonitorHealth & { alerts: AlertHealth; probes: ProbeHealth; plugins: PluginHealth[] }
  /**
   * Resolves when every call recorded before it is written. With `timeoutMs`, rejects with `FLUSH_TIMEOUT` when
   * the storage does not accept them in time (they stay buffered).
   * @example
   * ```ts
   * await monitor.flush({ timeoutMs: 5000 })
   * ```
   */
  flush(options?: { timeoutMs?: number }): Promise<void>
  /**
   * Flushes (within `closeTimeoutMs`), stops timers and closes the storage. Idempotent; never rejects. Calls
   * recorded afterwards are dropped and counted.
   * @example
   * ```ts
   * process.on('SIGTERM', async () => { await monitor.close(); process.exit(0) })
   * ```
   */
  close(): Promise<void>
  /**
   * Listens for an event.
   * @example
   * ```ts
   * monitor.on('error', (err) => console.warn(err.code, err.message))
   * ```
   */
  on<E extends keyof MonitorEvents>(event: E, listener: MonitorEvents[E]): this
  /**
   * A drop-in for the global `fetch` (same arguments and result) that meters every call: timing to the headers and
   * to the end of the body, bytes, status or failure, API and route from the `apis` registry, cost, cache hits and
   * rate-limit headroom. The response is the one fetch returned, its body counted as you read it. Optional
   * per-call settings go in `init.apimeter`.
   * @example
   * ```ts
   * const openai = new OpenAI({ fetch: monitor.fetch })
   * const res = await monitor.fetch('https://api.example.com/v1/items', { apimeter: { tenantId: 'acme' } })
   * ```
   */
  readonly fetch: MeteredFetch
  /**
   * Wraps another fetch implementation (undici's, node-fetch, a proxy-aware one) the way {@link Monitor.fetch}
   * wraps the global one; `options` apply to every call through it.
   * @example
   * ```ts
   * import { fetch as undiciFetch } from 'undici'
   * const billingFetch = monitor.wrapFetch(undiciFetch, { api: 'billing', tenantId: 'internal' })
   * ```
   */
  wrapFetch<F extends FetchLike>(fetchImpl: F, options?: OutboundCallOptions): F
  /**
   * An undici 7 dispatcher interceptor that meters every request through the dispatcher it is composed into.
   * @example
   * ```ts
   * import { Agent, setGlobalDispatcher } from 'undici'
   * setGlobalDispatcher(new Agent().compose(monitor.interceptor()))
   * ```
   */
  interceptor(): Interceptor
  /**
   * Meters every outbound call of the process through diagnostics channels: undici and the global fetch, and
   * every `node:http`/`node:https` client (axios, got, node-fetch…). A call that `monitor.fetch` or the interceptor
   * already meters is counted once. Idempotent; `close()` switches it off.
   * @example
   * ```ts
   * monitor.instrument()
   * await axios.get('https://api.example.com/v1/items')   // recorded
   * ```
   */
  instrument(): this
  /**
   * Switches {@link Monitor.instrument} off; calls in flight still finish.
   * @example
   * ```ts
   * monitor.uninstrument()
   * ```
   */
  uninstrument(): this
  /** Removes a listener. */
  off<E extends keyof MonitorEvents>(event: E, listener: MonitorEvents[E]): this
  /** Listens for one occurrence of an event. */
  once<E extends keyof MonitorEvents>(event: E, listener: MonitorEvents[E]): this
}

const defaultLogger: Logger = {
  warn: (message) => process.emitWarning(message, { type: 'ApimeterWarning' }),
}

// One `beforeExit` listener for all monitors, installed on first use.
const exitFlushMonitors = new Set<MonitorImpl>()
let exitHookInstalled = false
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('beforeExit', () => {
    for (const monitor of exitFlushMonitors) monitor.flushBeforeExit()
  })
}

class MonitorImpl implements Monitor {
  readonly service: string
  readonly storage: StorageAdapter
  readonly stats: Stats
  readonly alerts: AlertManager
  readonly slos: SloManager
  readonly probes: ProbeManager
  readonly metrics: Metrics
  readonly audit: AuditLog
  readonly instance: string
  private readonly plugins: PluginHost | undefined
  private readonly system: SystemSampler | undefined
  private readonly clock: ResolvedClock
  private readonly pipeline: WritePipeline
  private readonly emitter: SafeEmitter<MonitorEvents>
  private readonly logger: Logger | false
  private readonly warned = new Set<ApimeterErrorCode>()
  private readonly closeTimeoutMs: number
  private exitFlushAttempted = false
  private listenerFailures = 0
  private readonly outbound: OutboundMeter
  readonly fetch: MeteredFetch

  constructor(options: MonitorOptions) {
    const parsed = parseOrThrow(monitorOptionsSchema, options ?? {}, 'options')
    // dependency problems (a cycle, a missing plugin) throw before anything starts
    if (parsed.plugins !== undefined) orderPlugins(parsed.plugins)
    this.service = parsed.service ?? DEFAULTS.service
    this.instance = `${this.service}@${processInstance()}`
    this.storage = parsed.storage ?? memoryStorage()
    this.clock = resolveClock(parsed.clock)
    this.logger = parsed.logger === undefined ? defaultLogger : parsed.logger
    this.closeTimeoutMs = parsed.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs
    this.emitter = new SafeEmitter<MonitorEvents>((error, event, how) => {
      this.listenerFailures++
      this.warn('LISTENER_FAILED', `an '${String(event)}' listener ${how}: ${errorMessage(error)}`)
    })
    const storageConcurrency = this.storage.capabilities?.maxWriteConcurrency ?? Infinity
    this.pipeline = new WritePipeline(
      this.storage,
      {
        batchSize: parsed.batchSize ?? DEFAULTS.batchSize,
        maxBufferSize: parsed.maxBufferSize ?? DEFAULTS.maxBufferSize,
        flushIntervalMs: parsed.flushIntervalMs ?? DEFAULTS.flushIntervalMs,
        concurrency: Math.max(1, Math.min(parsed.concurrency ?? DEFAULTS.concurrency, storageConcurrency)),
        retry: { ...DEFAULTS.retry, ...parsed.retry },
        closeTimeoutMs: this.closeTimeoutMs,
        storageTimeoutMs: parsed.storageTimeoutMs ?? DEFAULTS.storageTimeoutMs,
      },
      {
        service: this.service,
        now: this.clock.now,
        routeGuard: new RouteGuard(parsed.maxRoutes ?? DEFAULTS.maxRoutes, 10_000),
        secretPaths: parsed.redact?.paths,
        onMetadataDropped: (reason) => this.report(new ApimeterError('METADATA_DROPPED', reason)),
      },
      (error) => this.report(error),
    )
    this.storage.attach?.({ report: (error) => this.report(error) })
    const slos = ((parsed.slos ?? []) as SloDefinition[]).map(resolveSlo)
    this.stats = createStats(this.storage, { clock: this.clock, slos: parsed.slos as SloDefinition[] | undefined })
    const logger = parsed.logger
    this.audit = new AuditLog(this.storage.audit ?? memoryAuditStore(), this.instance, this.clock.now, (error) => this.report(error))
    const rules = (parsed.alerts ?? []).map(resolveRule)
    this.plugins = this.startPlugins(parsed.plugins ?? [], rules, (parsed.apis ?? []).map((a) => a.name), (parsed.probes ?? []).map((p) => p.name))
    const ruleAudit: RuleAudit = { append: (entry) => this.audit.record(entry), latest: (subject, kinds) => this.audit.latest(subject, kinds) }
    this.slos = new SloManager({ slos, storage: this.storage, now: this.clock.now, report: (error) => this.report(error), audit: ruleAudit })
    this.slos.start()
    // what the alert and probe runners report through, and where their `log` notifier writes
    const background = {
      report: (error: ApimeterError) => this.report(error),
      log: (line: string) => (typeof logger === 'object' ? logger.warn(line) : console.warn(`[apimeter] ${line}`)),
    }
    this.alerts = new AlertManager({
      rules: [...rules, ...sloBurnRules(slos)],
      storage: this.storage,
      intervalMs: parsed.alertIntervalMs ?? DEFAULTS.alertIntervalMs,
      now: this.clock.now,
      service: this.service,
      onAlert: parsed.onAlert,
      emit: (event) => this.emitter.emit('alert', event),
      ...background,
      pluginNotify: this.plugins ? (scheme, target, event) => this.plugins!.notify(scheme, target, event) : undefined,
      audit: ruleAudit,
    })
    this.alerts.start()
    this.probes = new ProbeManager({
      probes: [...(parsed.probes ?? []), ...(this.plugins?.probes ?? [])].map(resolveProbe),
      storage: this.storage,
      clock: this.clock,
      service: this.service,
      onIncident: parsed.onIncident,
      emit: (event) => this.emitter.emit('incident', event),
      record: (call) => this.record(call),
      audit: ruleAudit,
      ...background,
    })
    if (parsed.runProbes !== false) this.probes.start()
    this.metrics = new Metrics(resolveMetricsOptions(parsed.metrics), {
      now: this.clock.now,
      health: () => this.health(),
      alertRules: this.alerts.rules,
      activeAlerts: () => this.alerts.active(),
      probeStates: () => this.probes.status(),
      catchUp: () => this.pipeline.observeStaged(),
      report: (error) => this.report(error),
    })
    const observer = this.metrics.observer
    if (observer !== undefined) this.pipeline.setObserver(observer)
    this.outbound = new OutboundMeter(this, (error) => this.report(error), [...(parsed.apis ?? []), ...(this.plugins?.apis ?? [])], parsed.outbound ?? {}, parsed.redact?.paths)
    this.pipeline.holdBy(this.outbound) // calls that ended in undici's callbacks or before their fetch resolved, recorded at the end of the turn
    if (parsed.system !== undefined) {
      this.system = new SystemSampler({
        intervalMs: parsed.system.intervalMs ?? SYSTEM_INTERVAL_MS,
        service: this.service,
        instance: processInstance(),
        store: this.storage.system ?? memorySystemStore(),
        now: this.clock.now,
        report: (error) => this.report(error),
      })
    }
    this.fetch = createMeteredFetch(this.outbound, (input: Parameters<typeof fetch>[0], init?: RequestInit) => globalThis.fetch(input, init), undefined)
    if (parsed.flushOnExit !== false) {
      installExitHook()
      exitFlushMonitors.add(this)
    }
  }

  /**
   * Sets up the plugins (throws INVALID_OPTIONS for a notifier scheme no plugin registers), puts their call hooks on
   * the write path (only when there are any) and audits plugins added or changed since the last start.
   */
  private startPlugins(plugins: readonly ApimeterPlugin[], rules: readonly ResolvedRule[], apiNames: string[], probeNames: string[]): PluginHost | undefined {
    if (plugins.length === 0) {
      this.checkNotifiers(rules, undefined)
      return undefined
    }
    const host = new PluginHost(
      plugins,
      {
        service: this.service,
        stats: this.stats,
        now: this.clock.now,
        // deferred: a setup failure happens inside createMonitor(), before anyone could listen for it
        report: (error) => queueMicrotask(() => this.report(error)),
        warn: (line) => {
          if (this.logger !== false) this.logger.warn(line)
        },
        audit: (entry) => this.audit.record(entry),
      },
      apiNames,
      probeNames,
    )
    this.checkNotifiers(rules, host)
    if (host.hasCallHooks) this.pipeline.setStage((rows) => host.processBatch(rows))
    void this.auditPlugins(host)
    return host
  }

  private checkNotifiers(rules: readonly ResolvedRule[], host: PluginHost | undefined): void {
    // a plugin that failed to set up may have been the one to register a scheme: its notifications then fail (counted)
    if (host?.health().some((p) => p.state === 'failed_setup')) return
    rules.forEach((rule, i) =>
      rule.notify.forEach((n, j) => {
        if (n.type === 'plugin' && !host?.hasNotifier(n.scheme)) {
          throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE_NAME}: options.alerts[${i}].notify[${j}] names the notifier scheme '${n.scheme}', which no plugin registers (add the plugin that provides it to options.plugins)`)
        }
      }),
    )
  }

  /** Appends `plugin.added` / `plugin.changed` rows for plugins whose version or (masked) config differ from the last row. */
  private async auditPlugins(host: PluginHost): Promise<void> {
    try {
      for (const { subject, state } of host.describe()) {
        const last = await this.audit.latest(subject, ['plugin.added', 'plugin.changed'])
        if (last === undefined) this.audit.record({ kind: 'plugin.added', subject, before: null, after: state, detail: `${subject.slice(7)} ${state.version} added` })
        else if (canonicalJson(last.after) !== canonicalJson(state)) this.audit.record({ kind: 'plugin.changed', subject, before: last.after, after: state, detail: `${subject.slice(7)} changed` })
      }
    } catch (error) {
      this.report(new ApimeterError('WRITE_FAILED', `plugin changes could not be audited: ${errorMessage(error)}`, { cause: error }))
    }
  }

  record(call: CallInput): void {
    try {
      this.pipeline.push(call)
    } catch (error) {
      const err = isApimeterError(error)
        ? error
        : new ApimeterError('INVALID_CALL', `a call could not be recorded: ${errorMessage(error)}`, { cause: error })
      this.pipeline.countInvalid(err)
      this.report(err)
    }
  }

  startCall(start: CallStart): CallHandle {
    return new RunningCall(this, this.clock, start)
  }

  /** The clock the framework adapters' inbound meters time requests with (see `MONITOR_CLOCK`). */
  get [MONITOR_CLOCK](): ResolvedClock {
    return this.clock
  }

  health(): MonitorHealth & { alerts: AlertHealth; probes: ProbeHealth; plugins: PluginHealth[] } {
    const p = this.pipeline
    return {
      queued: p.queued,
      written: p.written,
      dropped: p.dropped,
      invalid: p.invalid,
      rejected: p.rejected,
      failedWrites: p.failedWrites,
      listenerFailures: this.listenerFailures,
      lastError: p.lastError,
      alerts: this.alerts.health(),
      probes: this.probes.health(),
      plugins: this.plugins?.health() ?? [],
    }
  }

  flush(options: { timeoutMs?: number } = {}): Promise<void> {
    return this.pipeline.flush(options.timeoutMs)
  }

  wrapFetch<F extends FetchLike>(fetchImpl: F, options?: OutboundCallOptions): F {
    if (typeof fetchImpl !== 'function') {
      throw new ApimeterError('INVALID_OPTIONS', `monitor.wrapFetch(fetchImpl) must be given a fetch function, got ${describeValue(fetchImpl)}`)
    }
    return createMeteredFetch(this.outbound, fetchImpl, parseOrThrow(outboundCallOptionsSchema, options, 'wrapFetch(fetchImpl, options)'))
  }

  interceptor(): Interceptor {
    return createInterceptor(this.outbound)
  }

  instrument(): this {
    if (this.pipeline.isOpen) instrument(this.outbound)
    return this
  }

  uninstrument(): this {
    uninstrument(this.outbound)
    return this
  }

  async close(): Promise<void> {
    exitFlushMonitors.delete(this)
    uninstrument(this.outbound)
    this.outbound.finishWatched() // responses whose body nobody read yet are recorded, not lost
    await Promise.all([this.alerts.close(this.closeTimeoutMs), this.probes.close(this.closeTimeoutMs), this.slos.close(this.closeTimeoutMs)])
    await this.system?.stop()
    await this.audit.drain()
    await this.pipeline.close()
    await this.plugins?.close(this.closeTimeoutMs)
  }

  on<E extends keyof MonitorEvents>(event: E, listener: MonitorEvents[E]): this {
    this.emitter.on(event, listener)
    return this
  }

  off<E extends keyof MonitorEvents>(event: E, listener: MonitorEvents[E]): this {
    this.emitter.off(event, listener)
    return this
  }

  once<E extends keyof MonitorEvents>(event: E, listener: MonitorEvents[E]): this {
    this.emitter.once(event, listener)
    return this
  }

  /** Called from the shared `beforeExit` hook: one bounded attempt to write what is still buffered. */
  flushBeforeExit(): void {
    if (this.exitFlushAttempted || this.pipeline.queued === 0 || !this.pipeline.isOpen) return
    this.exitFlushAttempted = true
    const queued = this.pipeline.queued
    this.pipeline.flush(this.closeTimeoutMs).catch(() => {
      this.warn('DROPPED', `the process is exiting with ${this.pipeline.queued} of ${queued} calls unwritten (storage did not accept them within closeTimeoutMs); call monitor.close() before exit to be sure`)
    })
  }

  /** How apimeter's own packages report on this monitor's `error` event (see `reportToMonitor`). */
  [MONITOR_REPORT](error: ApimeterError): void {
    this.report(error)
  }

  /** Emits an `error` event, or, when nobody listens, warns once per error code. */
  report(error: ApimeterError): void {
    if (!this.emitter.emit('error', error)) this.warn(error.code, error.message)
  }

  private warn(code: ApimeterErrorCode, message: string): void {
    if (this.logger === false || this.warned.has(code)) return
    this.warned.add(code)
    try {
      this.logger.warn(`${message} (further '${code}' warnings are counted in monitor.health() but not logged)`)
    } catch {
      // a logger that throws must not break the host
    }
  }
}

class RunningCall implements CallHandle {
  readonly timestamp: number
  private readonly started: number
  private ttfb: number | undefined
  private requestBytes = 0
  private responseBytes = 0
  private fields: Record<string, unknown>
  /** False while `fields` is the caller's frozen start object (not copied until something is set). */
  private ownFields: boolean
  private finished = false

  constructor(
    private readonly monitor: MonitorImpl,
    private readonly clock: ResolvedClock,
    start: CallStart,
  ) {
    this.timestamp = clock.now()
    this.started = clock.monotonic()
    // A frozen start (the inbound meters' constant one) cannot change under us: it is copied only if set() is called.
    const given = typeof start === 'object' && start !== null ? (start as Record<string, unknown>) : undefined
    this.ownFields = given === undefined || !Object.isFrozen(given)
    this.fields = given === undefined ? {} : this.ownFields ? { ...given } : given
  }

  private writable(): Record<string, unknown> {
    if (!this.ownFields) {
      this.fields = { ...this.fields }
      this.ownFields = true
    }
    return this.fields
  }

  get done(): boolean {
    return this.finished
  }

  elapsedMs(): number {
    return this.clock.monotonic() - this.started
  }

  set(fields: CallUpdate): this {
    if (typeof fields === 'object' && fields !== null) Object.assign(this.writable(), fields)
    return this
  }

  firstByte(): this {
    this.ttfb ??= this.clock.monotonic() - this.started
    return this
  }

  addRequestBytes(bytes: number): this {
    if (typeof bytes === 'number' && bytes > 0) this.requestBytes += bytes
    return this
  }

  addResponseBytes(bytes: number): this {
    if (typeof bytes === 'number' && bytes > 0) this.responseBytes += bytes
    return this
  }

  finish(result?: CallUpdate): boolean {
    if (this.finished) return false
    this.finished = true
    if (result) this.set(result)
    this.monitor.record(this.build())
    return true
  }

  fail(error: unknown, fields?: CallUpdate): boolean {
    if (this.finished) return false
    this.finished = true
    if (fields) this.set(fields)
    const classified = classifyError(error)
    const own = this.writable()
    own.outcome ??= classified.outcome
    own.errorType ??= classified.errorType
    own.errorMessage ??= classified.errorMessage || null
    this.monitor.record(this.build())
    return true
  }

  private build(): CallInput {
    const durationMs = Math.max(0, this.clock.monotonic() - this.started)
    const call = { ...this.fields, timestamp: this.timestamp, durationMs } as CallInput & Record<string, unknown>
    if (this.ttfb !== undefined && call.ttfbMs === undefined) call.ttfbMs = Math.max(0, this.ttfb)
    if (call.requestBytes === undefined && this.requestBytes > 0) call.requestBytes = this.requestBytes
    if (call.responseBytes === undefined && this.responseBytes > 0) call.responseBytes = this.responseBytes
    return call
  }
}

/**
 * Creates a monitor. Throws an `INVALID_OPTIONS` {@link ApimeterError} on a bad option; never throws afterwards.
 *
 * @example
 * ```ts
 * import { createMonitor } from '@apimeter/core'
 *
 * const monitor = createMonitor({ service: 'checkout' })   // in-memory storage
 * monitor.record({ direction: 'outbound', api: 'stripe', method: 'POST', route: '/v1/charges', statusCode: 200, durationMs: 240 })
 * console.log(await monitor.stats.summary({ from: '-1h' }))
 * await monitor.close()
 * ```
 */
export function createMonitor(options: MonitorOptions = {}): Monitor {
  return new MonitorImpl(options)
}
