import { performance } from 'node:perf_hooks'
import type { z } from 'zod'
import type { AlertEvent } from '../alerts/notifiers.js'
import { checkCallRecord } from '../call/check.js'
import { CALL_FIELDS, CALL_RECORD_FIELDS, type CallField, LIMITS } from '../call/fields.js'
import type { CallRecord } from '../call/types.js'
import { ApimeterError, type ApimeterErrorCode, describeValue, errorMessage, type HealthError, PACKAGE_NAME } from '../errors.js'
import type { CostModel } from '../outbound/cost.js'
import { apisSchema } from '../outbound/options.js'
import { parseOrThrow } from '../validation.js'
import { internalTraffic } from '../outbound/internal.js'
import type { ApiDefinition } from '../outbound/registry.js'
import { probeSchema } from '../probes/options.js'
import type { Stats } from '../stats/stats.js'
import type { AuditEntry } from '../storage/audit-store.js'
import { LatencySketch } from '../storage/sketch.js'
import {
  type ApimeterPlugin,
  type CallHook,
  type CallHookResult,
  maskedConfig,
  maskSecrets,
  PLUGIN_DEFAULTS,
  type PluginCall,
  type PluginContext,
  type PluginDefinition,
  type PluginNotifier,
  type RedactedField,
  secretValues,
} from './plugin.js'

/** A plugin's state: `active`, `disabled` (after repeated failures) or `failed_setup` (its setup threw). */
export type PluginState = 'active' | 'disabled' | 'failed_setup'

/**
 * One plugin in `monitor.health().plugins`.
 *
 * The health score (0 … 100) is `round(100 × (1 − errors / calls) × speed)`, where `speed` is
 * `min(1, max(0.5, 1000 / p99µs))`: a plugin whose hooks never fail and take at most 1 ms at the 99th percentile
 * scores 100, a slow one loses up to half. 100 before its first call; 0 when `disabled` or `failed_setup`.
 */
export interface PluginHealth {
  name: string
  version: string
  state: PluginState
  /** Plugins it depends on. */
  dependsOn: string[]
  /** Hook invocations (call hooks, pricing, usage reading, notifications). */
  calls: number
  /** Invocations that threw, rejected, timed out or returned something unusable. */
  errors: number
  /** Of `errors`, async hooks that did not settle within `timeoutMs`. */
  timeouts: number
  /** Failures since the last success (the plugin is disabled when this reaches `maxConsecutiveErrors`). */
  consecutiveErrors: number
  /** Calls its `onCall` hooks dropped (returned null). */
  droppedCalls: number
  /** Time spent in its hooks, µs. */
  timeUs: { total: number; p50: number | null; p99: number | null }
  /** 0 … 100, see the formula above. */
  score: number
  /** Its config with secret values masked (`'***'`). */
  config: unknown
  lastError: HealthError | null
}

/** What the host needs from its monitor. */
export interface PluginHostConfig {
  service: string
  stats: Stats
  now(): number
  report(error: ApimeterError): void
  warn(line: string): void
  audit(entry: AuditEntry): void
}

interface Hook {
  runtime: PluginRuntime
  fn: CallHook
  /** Redaction hooks: the fields dropped when the hook cannot run. */
  redacts: readonly RedactedField[] | undefined
}

const thenable = (v: unknown): v is PromiseLike<unknown> => v !== null && typeof v === 'object' && typeof (v as PromiseLike<unknown>).then === 'function'

/** The fields a redaction may declare: nullable text fields of a call (dropping them leaves a valid call). */
const REDACTABLE = new Set<string>(CALL_RECORD_FIELDS.filter((f) => CALL_FIELDS[f].nullable && ['text', 'id', 'json'].includes(CALL_FIELDS[f].kind)))

/** One plugin at run time: its state, counters and secrets. */
class PluginRuntime {
  readonly name: string
  readonly version: string
  readonly definition: PluginDefinition<z.ZodType | undefined>
  readonly config: unknown
  readonly secrets: string[]
  readonly timeoutMs: number
  readonly maxConsecutiveErrors: number
  state: PluginState = 'active'
  calls = 0
  errors = 0
  timeouts = 0
  consecutiveErrors = 0
  droppedCalls = 0
  totalUs = 0
  readonly sketch = new LatencySketch()
  lastError: HealthError | null = null
  private errorReported = false
  readonly closers: (() => void | Promise<void>)[] = []

  constructor(
    plugin: ApimeterPlugin,
    private readonly host: PluginHost,
  ) {
    this.name = plugin.name
    this.version = plugin.version
    this.definition = plugin.definition
    this.config = plugin.config
    this.secrets = secretValues(plugin.config, plugin.definition.secrets ?? [])
    this.timeoutMs = plugin.definition.timeoutMs ?? PLUGIN_DEFAULTS.timeoutMs
    this.maxConsecutiveErrors = plugin.definition.maxConsecutiveErrors ?? PLUGIN_DEFAULTS.maxConsecutiveErrors
  }

  get active(): boolean {
    return this.state === 'active'
  }

  mask(text: string): string {
    return maskSecrets(text, this.secrets)
  }

  maskedConfig(): unknown {
    try {
      return maskedConfig(this.config, this.definition.secrets ?? [])
    } catch {
      return '(not serialisable)'
    }
  }

  succeeded(startedAt: number): void {
    this.time(startedAt)
    this.consecutiveErrors = 0
  }

  private time(startedAt: number): void {
    const us = Math.max(0, (performance.now() - startedAt) * 1000)
    this.calls++
    this.totalUs += us
    this.sketch.add(us)
  }

  /** Counts a failure (timed from `startedAt`, or not timed again when null); disables the plugin after too many. */
  failed(what: string, error: unknown, startedAt: number | null, timedOut = false): void {
    if (startedAt !== null) this.time(startedAt)
    this.errors++
    if (timedOut) this.timeouts++
    this.consecutiveErrors++
    const message = this.mask(`${PACKAGE_NAME}: plugin '${this.name}' ${what}: ${errorMessage(error)}`)
    this.lastError = { code: 'PLUGIN_FAILED', message, at: new Date(this.host.config.now()) }
    if (!this.errorReported) {
      this.errorReported = true
      this.host.config.report(this.error('PLUGIN_FAILED', `${message} (further failures are counted in monitor.health().plugins)`))
    }
    if (this.state === 'active' && this.consecutiveErrors >= this.maxConsecutiveErrors) this.disable(message)
  }

  private disable(lastMessage: string): void {
    this.state = 'disabled'
    const message = `plugin '${this.name}' was disabled after ${this.consecutiveErrors} consecutive failures (last: ${lastMessage.replace(`${PACKAGE_NAME}: `, '')}); its hooks no longer run${this.host.redacts(this) ? ', and the fields it redacts are dropped from calls' : ''}`
    this.lastError = { code: 'PLUGIN_DISABLED', message: `${PACKAGE_NAME}: ${message}`, at: new Date(this.host.config.now()) }
    this.host.config.report(this.error('PLUGIN_DISABLED', message))
    this.host.config.audit({
      kind: 'plugin.disabled',
      subject: `plugin:${this.name}`,
      before: { state: 'active', version: this.version },
      after: { state: 'disabled', version: this.version },
      detail: this.mask(message),
    })
  }

  failSetup(error: unknown): void {
    this.state = 'failed_setup'
    const message = this.mask(`plugin '${this.name}' failed to set up: ${errorMessage(error)}; it is not used${this.host.redacts(this) ? ', and the fields it redacts are dropped from calls' : ''}`)
    this.lastError = { code: 'PLUGIN_SETUP_FAILED', message: `${PACKAGE_NAME}: ${message}`, at: new Date(this.host.config.now()) }
    this.host.config.report(this.error('PLUGIN_SETUP_FAILED', message))
  }

  private error(code: ApimeterErrorCode, message: string): ApimeterError {
    // no `cause`: the original error may carry a secret in a field we cannot mask
    return new ApimeterError(code, this.mask(message), { details: { plugin: this.name } })
  }

  /** Runs a synchronous plugin function, timed and isolated; `fallback` when it throws or the plugin is not active. */
  guard<A extends unknown[], R>(what: string, fn: (...args: A) => R, fallback: (...args: A) => R): (...args: A) => R {
    return (...args: A): R => {
      if (!this.active) return fallback(...args)
      const t0 = performance.now()
      try {
        const r = fn(...args)
        this.succeeded(t0)
        return r
      } catch (error) {
        this.failed(what, error, t0)
        return fallback(...args)
      }
    }
  }

  health(): PluginHealth {
    const [p50, p99] = this.sketch.count === 0 ? [null, null] : this.sketch.quantiles([0.5, 0.99]).map((v) => Math.round(v * 10) / 10)
    return {
      name: this.name,
      version: this.version,
      state: this.state,
      dependsOn: [...(this.definition.dependsOn ?? [])],
      calls: this.calls,
      errors: this.errors,
      timeouts: this.timeouts,
      consecutiveErrors: this.consecutiveErrors,
      droppedCalls: this.droppedCalls,
      timeUs: { total: Math.round(this.totalUs), p50: p50 ?? null, p99: p99 ?? null },
      score: healthScore(this.state, this.calls, this.errors, p99 ?? null),
      config: this.maskedConfig(),
      lastError: this.lastError,
    }
  }
}

/**
 * The health score of a plugin (see {@link PluginHealth} for the formula).
 *
 * @example
 * ```ts
 * healthScore('active', 100, 5, 800)    // 95: 5% errors, p99 under 1 ms
 * healthScore('active', 100, 0, 4000)   // 50: slow hooks halve the score at most
 * ```
 */
export function healthScore(state: PluginState, calls: number, errors: number, p99Us: number | null): number {
  if (state !== 'active') return 0
  if (calls === 0) return 100
  const speed = p99Us === null || p99Us <= 0 ? 1 : Math.min(1, Math.max(0.5, 1000 / p99Us))
  return Math.round(100 * (1 - Math.min(1, errors / calls)) * speed)
}

/**
 * Orders plugins so each comes after the plugins it depends on (stable: otherwise in the order given). Throws
 * `INVALID_OPTIONS` for a duplicate name, a missing dependency or a cycle, naming the plugins.
 */
export function orderPlugins(plugins: readonly ApimeterPlugin[]): ApimeterPlugin[] {
  const byName = new Map<string, ApimeterPlugin>()
  plugins.forEach((p, i) => {
    if (typeof p !== 'object' || p === null || typeof p.name !== 'string' || typeof p.definition?.setup !== 'function') {
      throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE_NAME}: options.plugins[${i}] must be a plugin made by a definePlugin() factory (myPlugin(config)), got ${describeValue(p)}`)
    }
    if (byName.has(p.name)) throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE_NAME}: options.plugins[${i}] is a second plugin named '${p.name}'; plugin names must be unique`)
    byName.set(p.name, p)
  })
  for (const p of plugins) {
    for (const dep of p.definition.dependsOn ?? []) {
      if (!byName.has(dep)) {
        throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE_NAME}: plugin '${p.name}' depends on '${dep}', which is not in options.plugins (add ${dep}(…) to plugins, before or after '${p.name}')`)
      }
    }
  }
  const out: ApimeterPlugin[] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (p: ApimeterPlugin, path: string[]): void => {
    const s = state.get(p.name)
    if (s === 'done') return
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(p.name)), p.name]
      throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE_NAME}: plugins depend on each other in a cycle: ${cycle.map((n) => `'${n}'`).join(' → ')}; remove one of these dependsOn entries`)
    }
    state.set(p.name, 'visiting')
    for (const dep of p.definition.dependsOn ?? []) visit(byName.get(dep)!, [...path, p.name])
    state.set(p.name, 'done')
    out.push(p)
  }
  for (const p of plugins) visit(p, [])
  return out
}

/**
 * Runs a monitor's plugins: sets them up in dependency order, runs their call hooks on each written batch, their
 * notifiers for alert rules, and wraps their cost models; counts, times and isolates everything they do.
 */
export class PluginHost {
  private readonly runtimes: PluginRuntime[] = []
  private readonly hooks: Hook[] = []
  private readonly notifiers = new Map<string, { runtime: PluginRuntime; send: PluginNotifier }>()
  /** APIs plugins added (their cost models wrapped). */
  readonly apis: ApiDefinition[] = []
  /** Probes the plugins added (validated), run with the monitor's own. */
  readonly probes: z.infer<typeof probeSchema>[] = []
  private readonly pendingSetups = new Set<Promise<void>>()

  constructor(
    plugins: readonly ApimeterPlugin[],
    readonly config: PluginHostConfig,
    reservedApiNames: readonly string[],
    reservedProbeNames: readonly string[] = [],
  ) {
    const apiNames = new Set(reservedApiNames)
    const probeNames = new Set(reservedProbeNames)
    for (const plugin of orderPlugins(plugins)) {
      const runtime = new PluginRuntime(plugin, this)
      this.runtimes.push(runtime)
      const failedDep = (plugin.definition.dependsOn ?? []).find((d) => this.runtimes.find((r) => r.name === d)?.state === 'failed_setup')
      if (failedDep !== undefined) {
        runtime.failSetup(new Error(`its dependency '${failedDep}' failed to set up`))
        continue
      }
      this.setUp(runtime, apiNames, probeNames)
    }
  }

  private setUp(runtime: PluginRuntime, apiNames: Set<string>, probeNames: Set<string>): void {
    let open = true
    const registering = (what: string): void => {
      if (!open) throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE_NAME}: plugin '${runtime.name}' called ctx.${what}() after setup returned; register hooks synchronously inside setup(ctx)`)
    }
    const ctx: PluginContext<unknown> = {
      name: runtime.name,
      config: runtime.config,
      service: this.config.service,
      stats: this.config.stats,
      onCall: (fn) => {
        registering('onCall')
        if (typeof fn !== 'function') throw new TypeError(`ctx.onCall(hook) must be given a function, got ${describeValue(fn)}`)
        this.hooks.push({ runtime, fn, redacts: undefined })
      },
      redact: (declaration, fn) => {
        registering('redact')
        const fields = declaration?.fields
        if (!Array.isArray(fields) || fields.length === 0) throw new TypeError(`ctx.redact({ fields }, hook) needs a non-empty list of fields, got ${describeValue(fields)}`)
        for (const f of fields) {
          const ok = typeof f === 'string' && (f === 'metadata' || (f.startsWith('metadata.') && f.length > 9) || REDACTABLE.has(f))
          if (!ok) throw new TypeError(`ctx.redact() field ${describeValue(f)} is not redactable: use one of ${[...REDACTABLE].join(', ')}, 'metadata' or 'metadata.<key>'`)
        }
        if (typeof fn !== 'function') throw new TypeError(`ctx.redact(declaration, hook) must be given a function, got ${describeValue(fn)}`)
        this.hooks.push({ runtime, fn, redacts: Array.from(fields as readonly RedactedField[]) })
      },
      addApi: (api) => {
        registering('addApi')
        if (typeof api !== 'object' || api === null || typeof api.name !== 'string') throw new TypeError(`ctx.addApi(api) must be given an API definition { name, match, … }, got ${describeValue(api)}`)
        if (apiNames.has(api.name)) throw new TypeError(`ctx.addApi(): an API named '${api.name}' is already registered`)
        const checked: ApiDefinition = parseOrThrow(apisSchema, [api], `plugin '${runtime.name}' ctx.addApi(api)`)[0]!
        apiNames.add(api.name)
        this.apis.push(checked.cost === undefined ? checked : { ...checked, cost: isolateCostModel(checked.cost, runtime) })
      },
      addProbe: (probe) => {
        registering('addProbe')
        const checked = parseOrThrow(probeSchema, probe, `plugin '${runtime.name}' ctx.addProbe(probe)`)
        if (probeNames.has(checked.name)) throw new TypeError(`ctx.addProbe(): a probe named '${checked.name}' is already configured`)
        probeNames.add(checked.name)
        this.probes.push(checked)
      },
      notifier: (scheme, send) => {
        registering('notifier')
        if (typeof scheme !== 'string' || !/^[a-z][a-z0-9_-]{0,39}$/i.test(scheme) || scheme === 'log' || scheme === 'webhook') {
          throw new TypeError(`ctx.notifier(scheme) must be letters, digits, '_' or '-' starting with a letter (not 'log' or 'webhook'), got ${describeValue(scheme)}`)
        }
        if (this.notifiers.has(scheme)) throw new TypeError(`ctx.notifier(): the scheme '${scheme}' is already registered by plugin '${this.notifiers.get(scheme)!.runtime.name}'`)
        if (typeof send !== 'function') throw new TypeError(`ctx.notifier(scheme, send) must be given a function, got ${describeValue(send)}`)
        this.notifiers.set(scheme, { runtime, send })
      },
      fetch: (input, init) => internalTraffic(() => fetch(input, init)),
      log: (message) => {
        try {
          this.config.warn(runtime.mask(`[plugin ${runtime.name}] ${String(message)}`))
        } catch {
          // a logger that throws must not break the plugin
        }
      },
      onClose: (fn) => {
        registering('onClose')
        if (typeof fn === 'function') runtime.closers.push(fn)
      },
    }
    let result: unknown
    try {
      result = runtime.definition.setup(ctx)
    } catch (error) {
      open = false
      runtime.failSetup(error)
      return
    }
    open = false
    if (!thenable(result)) return
    const done = withTimeout(Promise.resolve(result), runtime.timeoutMs)
      .then((settled) => {
        if (settled === TIMED_OUT) runtime.failSetup(new Error(`its async setup did not finish within ${runtime.timeoutMs} ms`))
      })
      .catch((error: unknown) => runtime.failSetup(error))
      .finally(() => this.pendingSetups.delete(done))
    this.pendingSetups.add(done)
  }

  /** Whether a plugin registered redaction hooks. */
  redacts(runtime: PluginRuntime): boolean {
    return this.hooks.some((h) => h.runtime === runtime && h.redacts !== undefined)
  }

  /** Whether any call hook is registered (otherwise the write path does not call the host at all). */
  get hasCallHooks(): boolean {
    return this.hooks.length > 0
  }

  /** Registered notifier schemes. */
  hasNotifier(scheme: string): boolean {
    return this.notifiers.has(scheme)
  }

  get size(): number {
    return this.runtimes.length
  }

  /**
   * Runs every call hook over a batch: returns the calls to store (synchronously when no hook was async). Never
   * throws or rejects.
   */
  processBatch(rows: CallRecord[]): CallRecord[] | Promise<CallRecord[]> {
    const out: (CallRecord | null)[] = new Array<CallRecord | null>(rows.length)
    let waiting: Promise<void>[] | null = null
    for (let i = 0; i < rows.length; i++) {
      const r = this.processCall(rows[i]!, 0)
      if (thenable(r)) (waiting ??= []).push(r.then((v) => void (out[i] = v)))
      else out[i] = r
    }
    const kept = (): CallRecord[] => out.filter((r): r is CallRecord => r !== null)
    return waiting === null ? kept() : Promise.all(waiting).then(kept)
  }

  private processCall(row: CallRecord, from: number): CallRecord | null | Promise<CallRecord | null> {
    let rec = row
    for (let h = from; h < this.hooks.length; h++) {
      const hook = this.hooks[h]!
      if (!hook.runtime.active) {
        if (hook.redacts) rec = dropFields(rec, hook.redacts)
        continue
      }
      const view = toView(rec)
      const t0 = performance.now()
      let result: CallHookResult | Promise<CallHookResult>
      try {
        result = hook.fn(view)
      } catch (error) {
        rec = this.hookFailed(hook, rec, 'threw in its call hook', error, t0)
        continue
      }
      if (thenable(result)) {
        const before = rec
        return withTimeout(Promise.resolve(result), hook.runtime.timeoutMs)
          .then(
            (settled) => {
              if (settled === TIMED_OUT) return this.hookFailed(hook, before, 'timed out in its async call hook', new Error(`no result within ${hook.runtime.timeoutMs} ms`), t0, true)
              return this.applyResult(hook, before, view, settled, t0)
            },
            (error: unknown) => this.hookFailed(hook, before, 'rejected in its call hook', error, t0),
          )
          .then((next) => (next === null ? null : this.processCall(next, h + 1)))
      }
      const next = this.applyResult(hook, rec, view, result, t0)
      if (next === null) return null
      rec = next
    }
    return rec
  }

  /** The call after a hook's result; null when the hook dropped it. */
  private applyResult(hook: Hook, before: CallRecord, view: PluginCall, result: CallHookResult, t0: number): CallRecord | null {
    if (result === null) {
      hook.runtime.succeeded(t0)
      hook.runtime.droppedCalls++
      return null
    }
    const source = result === undefined ? view : result
    if (typeof source !== 'object') return this.hookFailed(hook, before, 'returned something other than a call, null or nothing', new Error(describeValue(result)), t0)
    const built = fromView(source, before)
    if (typeof built === 'string') return this.hookFailed(hook, before, 'left the call invalid', new Error(built), t0)
    hook.runtime.succeeded(t0)
    return built
  }

  /** Counts a failed hook; the call goes on as it was before the hook, without the fields a redaction declared. */
  private hookFailed(hook: Hook, before: CallRecord, what: string, error: unknown, t0: number, timedOut = false): CallRecord {
    hook.runtime.failed(what, error, t0, timedOut)
    return hook.redacts ? dropFields(before, hook.redacts) : before
  }

  /** Sends an alert event through a plugin notifier; rejects (with a masked message) when it fails. */
  async notify(scheme: string, target: string, event: AlertEvent): Promise<void> {
    const entry = this.notifiers.get(scheme)
    if (entry === undefined) throw new Error(`no plugin registers the notifier scheme '${scheme}'`)
    const { runtime, send } = entry
    if (!runtime.active) throw new Error(`plugin '${runtime.name}' is ${runtime.state}`)
    const t0 = performance.now()
    const timeoutMs = Math.max(runtime.timeoutMs, 10_000)
    try {
      const settled = await withTimeout(Promise.resolve().then(() => send(event, target)), timeoutMs)
      if (settled === TIMED_OUT) {
        runtime.failed(`notifier '${scheme}' failed`, new Error(`timed out after ${timeoutMs} ms`), t0, true)
        throw new Error(`plugin '${runtime.name}' notifier '${scheme}' timed out after ${timeoutMs} ms`)
      }
      runtime.succeeded(t0)
    } catch (error) {
      if (error instanceof Error && error.message.startsWith(`plugin '${runtime.name}' notifier`)) throw error
      runtime.failed(`notifier '${scheme}' failed`, error, t0)
      throw new Error(runtime.mask(`plugin '${runtime.name}' notifier '${scheme}' failed: ${errorMessage(error)}`), { cause: error })
    }
  }

  health(): PluginHealth[] {
    return this.runtimes.map((r) => r.health())
  }

  /** Audit entries describing the plugins as configured (version and masked config), for change detection. */
  describe(): { subject: string; state: { version: string; config: unknown; dependsOn: string[] } }[] {
    return this.runtimes.map((r) => ({ subject: `plugin:${r.name}`, state: { version: r.version, config: r.maskedConfig(), dependsOn: [...(r.definition.dependsOn ?? [])] } }))
  }

  /** Runs the plugins' `onClose` functions (in reverse order) within `timeoutMs`. Never rejects. */
  async close(timeoutMs: number): Promise<void> {
    const all = (async () => {
      await Promise.allSettled([...this.pendingSetups])
      for (const r of [...this.runtimes].reverse()) {
        for (const fn of r.closers) {
          const t0 = performance.now()
          try {
            await fn()
            r.succeeded(t0)
          } catch (error) {
            r.failed('failed to close', error, t0)
          }
        }
      }
    })()
    await withTimeout(all, timeoutMs)
  }
}

const TIMED_OUT = Symbol('timed out')

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(TIMED_OUT), ms)
    timer.unref()
    promise.then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      (e: unknown) => {
        clearTimeout(timer)
        reject(e instanceof Error ? e : new Error(errorMessage(e)))
      },
    )
  })
}

function parseMetadata(text: string | null): Record<string, unknown> | null {
  if (text === null) return null
  try {
    const v: unknown = JSON.parse(text)
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null
  } catch {
    return null
  }
}

function toView(rec: CallRecord): PluginCall {
  return { ...rec, metadata: parseMetadata(rec.metadata) }
}

const TEXT_FIELDS: CallField[] = CALL_RECORD_FIELDS.filter((f) => CALL_FIELDS[f].kind === 'text' || CALL_FIELDS[f].kind === 'id')

/** The record a hook left (its `id` and `timestamp` kept), or a description of what is wrong with it. */
function fromView(view: object, before: CallRecord): CallRecord | string {
  const v = view as Record<string, unknown>
  const out = { ...before } as Record<string, unknown>
  for (const f of CALL_RECORD_FIELDS) if (f !== 'id' && f !== 'timestamp' && f !== 'metadata' && f in v) out[f] = v[f] === undefined ? null : v[f]
  const meta = v.metadata
  if (meta === null || meta === undefined) out.metadata = null
  else if (typeof meta === 'object' && !Array.isArray(meta)) {
    let text: string | undefined
    try {
      text = JSON.stringify(meta)
    } catch {
      return 'call.metadata must be JSON-serialisable'
    }
    if (Buffer.byteLength(text) > LIMITS.metadataBytes) return `call.metadata must stay within ${LIMITS.metadataBytes} bytes serialised`
    out.metadata = text === '{}' ? null : text
  } else return `call.metadata must be an object or null, got ${describeValue(meta)}`
  for (const f of TEXT_FIELDS) {
    const s = out[f]
    const max = (CALL_FIELDS[f] as { max?: number }).max
    if (typeof s === 'number' && CALL_FIELDS[f].kind === 'id') out[f] = String(s)
    if (typeof s === 'string' && max !== undefined && s.length > max) out[f] = s.slice(0, max)
    if (s === '' && CALL_FIELDS[f].nullable) out[f] = null
  }
  return checkCallRecord(out) ?? (out as unknown as CallRecord)
}

/** The record without the given fields (null, or the metadata key removed). */
export function dropFields(rec: CallRecord, fields: readonly RedactedField[]): CallRecord {
  const out = { ...rec } as Record<string, unknown>
  let meta: Record<string, unknown> | null | undefined
  for (const f of fields) {
    if (f === 'metadata') {
      out.metadata = null
      meta = null
    } else if (f.startsWith('metadata.')) {
      meta ??= parseMetadata(out.metadata as string | null)
      if (meta) delete meta[f.slice('metadata.'.length)]
    } else out[f] = null
  }
  if (meta) out.metadata = Object.keys(meta).length === 0 ? null : JSON.stringify(meta)
  return out as unknown as CallRecord
}

/** A cost model whose pricing and usage reading are timed, counted and isolated as the plugin's. */
function isolateCostModel(model: CostModel, runtime: PluginRuntime): CostModel {
  const wrapped = Object.create(model) as CostModel & Record<string, unknown>
  const notPriced = (..._args: Parameters<CostModel['price']>): ReturnType<CostModel['price']> => ({ cost: null, costSource: null })
  Object.defineProperty(wrapped, 'price', { value: runtime.guard('threw while pricing a call', model.price.bind(model), notPriced) })
  if (typeof model.usage === 'function') {
    Object.defineProperty(wrapped, 'usage', { value: runtime.guard('threw while reading usage', model.usage, () => undefined) })
  }
  return wrapped
}
