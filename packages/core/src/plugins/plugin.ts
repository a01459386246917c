import type { z } from 'zod'
import type { AlertEvent } from '../alerts/notifiers.js'
import type { CallRecord } from '../call/types.js'
import { ApimeterError, describeValue, PACKAGE_NAME } from '../errors.js'
import type { ApiDefinition } from '../outbound/registry.js'
import type { ProbeDefinition } from '../probes/options.js'
import type { Stats } from '../stats/stats.js'

/**
 * Plugins: user code that runs inside a monitor, isolated from the host (see docs/plugins.md). A plugin is defined
 * once with {@link definePlugin} and configured where it is used: `createMonitor({ plugins: [myPlugin(config)] })`.
 */

/**
 * A call as a plugin hook sees it: the stored record, with `metadata` parsed into an object (null when absent).
 * Hooks may change fields in place, or return a new object; `id` and `timestamp` changes are ignored.
 */
export type PluginCall = Omit<CallRecord, 'metadata'> & { metadata: Record<string, unknown> | null }

/**
 * What an `onCall` hook returns: the call (changed or not), `null` to drop the call (it is not stored), or nothing
 * (the call as the hook left it). A promise of one of these is awaited, within the plugin's `timeoutMs`.
 */
export type CallHookResult = PluginCall | null | undefined | void

/** An `onCall` / `redact` hook. */
export type CallHook = (call: PluginCall) => CallHookResult | Promise<CallHookResult>

/**
 * The fields a redaction hook may declare: a nullable field of the call (`url`, `errorMessage`, `userAgent`…),
 * `metadata` as a whole, or one top-level key of it (`metadata.requestBody`). When the hook fails, times out or its
 * plugin is disabled, these fields are dropped (set to null, or the key removed) instead of stored unredacted.
 */
export type RedactedField = `metadata.${string}` | 'metadata' | Exclude<NullableCallField, 'metadata'>

type NullableCallField = { [K in keyof CallRecord]: null extends CallRecord[K] ? K : never }[keyof CallRecord]

/** Sends one alert event to a target of a plugin notifier scheme (`notify: ['scheme:target']`). */
export type PluginNotifier = (event: AlertEvent, target: string) => void | Promise<void>

/**
 * What a plugin's `setup(ctx)` gets. Register hooks synchronously inside `setup` (registering later throws).
 *
 * @example
 * ```ts
 * setup(ctx) {
 *   ctx.onCall((call) => (call.route === '/health' ? null : call))
 * }
 * ```
 */
export interface PluginContext<C = unknown> {
  /** The plugin's name. */
  readonly name: string
  /** The validated config, secrets included (only the plugin sees them; they are masked everywhere else). */
  readonly config: C
  /** The monitor's `service`. */
  readonly service: string
  /** Read-only usage queries over the monitor's storage. */
  readonly stats: Stats
  /**
   * Registers a hook that enriches, changes or drops each call before it is stored. Runs in the background write
   * path (never inside the host's request), in plugin order, after the call was validated.
   * @example
   * ```ts
   * ctx.onCall((call) => { call.tenantId ??= 'internal' })
   * ```
   */
  onCall(hook: CallHook): void
  /**
   * Registers a redaction hook and the fields it redacts. Should the hook throw, time out, return something
   * unusable, or its plugin be disabled, those fields are dropped from the call rather than stored as they came.
   * @example
   * ```ts
   * ctx.redact({ fields: ['url', 'metadata.responseBody'] }, (call) => { call.url = call.url?.replace(/\d{16}/g, '****') ?? null })
   * ```
   */
  redact(declaration: { fields: readonly RedactedField[] }, hook: CallHook): void
  /**
   * Adds an outbound API to the registry, with its cost model (and usage reader, through
   * `costs.perToken({ usage: reader })`). Its pricing and usage reading run isolated like every hook.
   * @example
   * ```ts
   * ctx.addApi({ name: 'acme-llm', match: 'llm.acme.dev', cost: costs.perToken({ usage: (body) => body.meter, models }) })
   * ```
   */
  addApi(api: ApiDefinition): void
  /**
   * Adds a probe (an HTTP check or a heartbeat, as in `createMonitor({ probes })`), run, stored and notified like the
   * monitor's own. Its name must be unique among the monitor's and other plugins' probes. Probes run apimeter's own
   * requests, not plugin code, so they need no isolation; notifiers are 'log' and webhooks (see docs/probes.md).
   * @example
   * ```ts
   * ctx.addProbe({ name: 'stripe-status', url: 'https://status.stripe.com/api/v2/status.json', intervalMs: 60_000, expect: { jsonPath: 'status.indicator', equals: 'none' } })
   * ```
   */
  addProbe(probe: ProbeDefinition): void
  /**
   * Adds an alert notifier scheme: a rule's `notify: ['scheme:target']` (or just `'scheme'`) is sent through
   * `send(event, target)`. A failure is stored as a failed notification attempt and counted for the plugin.
   * @example
   * ```ts
   * ctx.notifier('pagerduty', async (event, routingKey) => { await ctx.fetch(PD_URL, { method: 'POST', body: … }) })
   * ```
   */
  notifier(scheme: string, send: PluginNotifier): void
  /**
   * The global fetch, as apimeter's own traffic: never metered or stored by `instrument()` or the interceptor (use
   * it for what a plugin sends, whose URLs often carry secrets).
   * @example
   * ```ts
   * await ctx.fetch(url, { method: 'POST', body: JSON.stringify(payload) })
   * ```
   */
  fetch(input: string | URL, init?: RequestInit): Promise<Response>
  /**
   * Writes a warning through the monitor's logger, prefixed with the plugin's name; secret config values are masked.
   * @example
   * ```ts
   * ctx.log('no webhook configured, notifications are skipped')
   * ```
   */
  log(message: string): void
  /**
   * Runs `fn` when the monitor closes (within its `closeTimeoutMs`); a failure is counted, never thrown.
   * @example
   * ```ts
   * ctx.onClose(() => client.end())
   * ```
   */
  onClose(fn: () => void | Promise<void>): void
}

/**
 * A plugin's definition.
 *
 * @example
 * ```ts
 * const tagger = definePlugin({
 *   name: 'tagger', version: '1.0.0',
 *   config: z.object({ tenant: z.string() }),
 *   setup(ctx) { ctx.onCall((call) => { call.tenantId ??= ctx.config.tenant }) },
 * })
 * ```
 */
export interface PluginDefinition<S extends z.ZodType | undefined = undefined> {
  /** Unique among a monitor's plugins: letters, digits, `.`, `_`, `-` and `/` (1 … 100 characters). */
  name: string
  /** The plugin's version (shown in health and the audit log). */
  version: string
  /** A zod schema of the config; the factory's argument is validated with it when the monitor is created. */
  config?: S
  /** Top-level config keys that hold secrets: their values are never logged, stored or shown. @default [] */
  secrets?: readonly string[]
  /** Names of plugins that must be set up before this one (and be in the same monitor). @default [] */
  dependsOn?: readonly string[]
  /** How long an async hook (or an async setup) may take (ms, 1 … 60,000). @default 1000 */
  timeoutMs?: number
  /** Consecutive failures after which the plugin is disabled (1 … 1000). @default 5 */
  maxConsecutiveErrors?: number
  /** Registers the plugin's hooks. May be async; a throw or rejection marks the plugin `failed_setup`. */
  setup(ctx: PluginContext<S extends z.ZodType ? z.output<S> : undefined>): void | Promise<void>
}

/** A configured plugin, as `createMonitor({ plugins })` takes it. Built by calling a {@link PluginFactory}. */
export interface ApimeterPlugin {
  readonly name: string
  readonly version: string
  /** @internal the definition and the validated config */
  readonly definition: PluginDefinition<z.ZodType | undefined>
  /** @internal */
  readonly config: unknown
}

/** What {@link definePlugin} returns: call it with the plugin's config to get a plugin for `createMonitor`. */
export type PluginFactory<S extends z.ZodType | undefined> = ((
  ...config: S extends z.ZodType ? (undefined extends z.input<S> ? [config?: z.input<S>] : [config: z.input<S>]) : [config?: undefined]
) => ApimeterPlugin) & {
  readonly definition: PluginDefinition<S>
}

const NAME = /^[A-Za-z0-9._/-]{1,100}$/
export const PLUGIN_DEFAULTS = { timeoutMs: 1000, maxConsecutiveErrors: 5 } as const

function invalid(message: string): ApimeterError {
  return new ApimeterError('INVALID_OPTIONS', `${PACKAGE_NAME}: ${message}`)
}

/**
 * Every string a config holds under its secret keys (numbers as text), at least 3 characters long (shorter
 * strings are not secrets worth masking, and masking them would garble messages).
 */
export function secretValues(config: unknown, keys: readonly string[]): string[] {
  const out: string[] = []
  const visit = (v: unknown, depth: number): void => {
    if (depth > 8) return
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') {
      const s = String(v)
      if (s.length >= 3) out.push(s)
    } else if (v !== null && typeof v === 'object') {
      for (const x of Object.values(v as Record<string, unknown>)) visit(x, depth + 1)
    }
  }
  if (config !== null && typeof config === 'object') for (const k of keys) visit((config as Record<string, unknown>)[k], 0)
  // longest first, so a secret that contains another is masked whole
  return [...new Set(out)].sort((a, b) => b.length - a.length)
}

/** `text` with every secret value replaced by `***`. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('***')
  return out
}

/** The config with its secret keys' values replaced by `'***'` (for health and the audit log). */
export function maskedConfig(config: unknown, keys: readonly string[]): unknown {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return config ?? null
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(config as Record<string, unknown>)) {
    if (typeof v === 'function') continue
    out[k] = keys.includes(k) && v !== undefined ? '***' : v
  }
  return JSON.parse(maskSecrets(JSON.stringify(out, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v instanceof RegExp ? String(v) : v)) ?? 'null', secretValues(config, keys)))
}

/**
 * Defines a plugin. Returns a factory: call it with the plugin's config (validated against `config`, if given, when
 * called; an invalid config throws `INVALID_OPTIONS` naming the plugin and field, with secret values masked) and pass
 * the result to `createMonitor({ plugins })`.
 *
 * @example
 * ```ts
 * import { z } from 'zod'
 * import { createMonitor, definePlugin } from '@apimeter/core'
 *
 * const dropHealthChecks = definePlugin({
 *   name: 'drop-health-checks',
 *   version: '1.0.0',
 *   config: z.object({ routes: z.array(z.string()).default(['/health']) }),
 *   setup(ctx) {
 *     ctx.onCall((call) => (ctx.config.routes.includes(call.route) ? null : call))
 *   },
 * })
 *
 * const monitor = createMonitor({ plugins: [dropHealthChecks({ routes: ['/health', '/ready'] })] })
 * ```
 */
export function definePlugin<S extends z.ZodType | undefined = undefined>(definition: PluginDefinition<S>): PluginFactory<S> {
  if (typeof definition !== 'object' || definition === null) throw invalid(`definePlugin(definition) must be given an object, got ${describeValue(definition)}`)
  const d = definition as PluginDefinition<z.ZodType | undefined>
  if (typeof d.name !== 'string' || !NAME.test(d.name)) throw invalid(`definePlugin(definition).name must be 1 … 100 letters, digits, '.', '_', '-' or '/', got ${describeValue(d.name)}`)
  const at = `definePlugin(${d.name})`
  if (typeof d.version !== 'string' || d.version.length === 0 || d.version.length > 100) throw invalid(`${at}.version must be a non-empty string of at most 100 characters, got ${describeValue(d.version)}`)
  if (typeof d.setup !== 'function') throw invalid(`${at}.setup must be a function (ctx) => void, got ${describeValue(d.setup)}`)
  if (d.config !== undefined && (typeof d.config !== 'object' || d.config === null || typeof (d.config).safeParse !== 'function')) {
    throw invalid(`${at}.config must be a zod schema, got ${describeValue(d.config)}`)
  }
  for (const key of ['secrets', 'dependsOn'] as const) {
    const list = d[key]
    if (list !== undefined && (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s.length === 0))) {
      throw invalid(`${at}.${key} must be a list of non-empty strings, got ${describeValue(list)}`)
    }
  }
  if (d.dependsOn?.includes(d.name)) throw invalid(`${at}.dependsOn must not name the plugin itself`)
  const whole = (key: 'timeoutMs' | 'maxConsecutiveErrors', max: number): void => {
    const v = d[key]
    if (v !== undefined && !(Number.isInteger(v) && v >= 1 && v <= max)) throw invalid(`${at}.${key} must be a whole number from 1 to ${max.toLocaleString('en-US')}, got ${describeValue(v)}`)
  }
  whole('timeoutMs', 60_000)
  whole('maxConsecutiveErrors', 1000)
  const secrets = d.secrets ?? []
  const factory = (config?: unknown): ApimeterPlugin => {
    let parsed: unknown = config
    if (d.config !== undefined) {
      const result = d.config.safeParse(config)
      if (!result.success) {
        const masked = secretValues(config, secrets)
        const issues = result.error.issues.slice(0, 5).map((i) => {
          const path = ['config', ...i.path.map(String)].join('.')
          const secret = i.path.length > 0 && secrets.includes(String(i.path[0]))
          return `${path}: ${secret ? '(a secret value, not shown) ' : ''}${maskSecrets(i.message, masked)}`
        })
        throw invalid(`plugin '${d.name}' ${issues.join('; ')}`)
      }
      parsed = result.data
    } else if (config !== undefined) {
      throw invalid(`plugin '${d.name}' takes no config (its definition has no config schema), got ${describeValue(secrets.length > 0 ? '(not shown)' : config)}`)
    }
    return Object.freeze({ name: d.name, version: d.version, definition: d, config: parsed })
  }
  return Object.assign(factory, { definition })
}
