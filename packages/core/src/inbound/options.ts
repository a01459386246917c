import { z } from 'zod'
import type { CallRecorder } from '../call/handle.js'

/**
 * The options every inbound adapter accepts, and their validation (errors prefixed with the adapter's package).
 */

/** A value an identity callback may return: stored as text; `null`/`undefined` means "none". */
export type IdentityValue = string | number | null | undefined

/**
 * Which requests not to record: paths (exact, or a prefix when ending in `/*`), regular expressions tested on the
 * path (without the query string), or a predicate.
 */
export type IgnoreOption<Req> = ReadonlyArray<string | RegExp> | ((req: Req) => boolean)

/**
 * Options every inbound adapter accepts. Callbacks run once per request, when the response is complete (so
 * authentication middleware has run); one that throws or returns something else is reported through the
 * monitor's `error` event (`CALLBACK_FAILED`) and the call is recorded without that field.
 *
 * @example
 * ```ts
 * app.use(apimeter(monitor, {
 *   tenant: (req) => req.user?.orgId,
 *   user: (req) => req.user?.id,
 *   apiKey: (req) => req.get('x-api-key'),     // stored as a hash, never the key
 *   ignore: ['/health', '/static/*'],
 * }))
 * ```
 */
export interface InboundOptions<Req> {
  /**
   * The tenant (customer, organisation) a request belongs to.
   * @default none
   * @example
   * ```ts
   * { tenant: (req) => req.headers['x-tenant-id'] as string | undefined }
   * ```
   */
  tenant?: (req: Req) => IdentityValue
  /**
   * The user who made the request.
   * @default none
   * @example
   * ```ts
   * { user: (req) => req.user?.id }
   * ```
   */
  user?: (req: Req) => IdentityValue
  /**
   * The API key the request used. Only a hash is stored (the first 16 hex digits of its SHA-256), never the key:
   * enough to group and count calls per key.
   * @default none
   * @example
   * ```ts
   * { apiKey: (req) => req.headers['x-api-key'] }
   * ```
   */
  apiKey?: (req: Req) => string | readonly string[] | null | undefined
  /**
   * Requests not to record: a list of paths (`'/health'`; `'/static/*'` for everything below `/static`) and
   * regular expressions, tested against the path without its query string; or a predicate.
   * @default none (every request is recorded)
   * @example
   * ```ts
   * { ignore: ['/health', '/metrics', /^\/internal\//] }
   * { ignore: (req) => req.method === 'OPTIONS' }
   * ```
   */
  ignore?: IgnoreOption<Req>
  /**
   * Store the client address as the framework reports it (Express `req.ip`, Fastify `request.ip`, which follow
   * their `trust proxy` setting). Turn off when you must not keep IP addresses.
   * @default true
   * @example
   * ```ts
   * { clientIp: false }
   * ```
   */
  clientIp?: boolean
}

/** How an adapter plugs into {@link createInboundMeter}. */
export interface InboundAdapterConfig<Req> {
  /** Package name starting every message, e.g. `'@apimeter/express'`. */
  prefix: string
  /** How the monitor argument is named in messages: `'monitor'` or `'options.monitor'`. */
  monitorPath: string
  /** The client address as the framework sees it. */
  clientIp(req: Req): string | undefined
  /** Extra boolean options the adapter accepts (validated here with the rest), e.g. `['closeMonitor']`. */
  switches?: readonly string[]
}

const fn = (expected: string) => z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', { error: expected })

const IGNORE_EXPECTED = "a list of paths starting with '/' and regular expressions, or a function (req) => boolean"
const isIgnoreRule = (rule: unknown): boolean => (typeof rule === 'string' && rule.startsWith('/')) || rule instanceof RegExp
const ignoreSchema = z.custom<IgnoreOption<never>>().superRefine((value, ctx) => {
  if (value === undefined || typeof value === 'function') return
  if (!Array.isArray(value)) {
    ctx.addIssue({ code: 'custom', message: IGNORE_EXPECTED, input: value })
    return
  }
  value.forEach((rule, i) => {
    if (!isIgnoreRule(rule)) ctx.addIssue({ code: 'custom', path: [i], message: "a path starting with '/' or a RegExp", input: rule })
  })
})

export function optionsSchema(switches: readonly string[]) {
  const shape: Record<string, z.ZodType> = {
    tenant: fn('a function (req) => string | undefined').optional(),
    user: fn('a function (req) => string | undefined').optional(),
    apiKey: fn('a function (req) => string | undefined').optional(),
    ignore: ignoreSchema.optional(),
    clientIp: z.boolean({ error: 'true or false' }).optional(),
  }
  for (const name of switches) shape[name] = z.boolean({ error: 'true or false' }).optional()
  return z.strictObject(shape)
}

/**
 * What an inbound meter needs of the monitor it records on (a `Monitor` from `createMonitor()` is one). Its
 * `record(call)` must copy what it keeps before returning, as a monitor's does: the meter builds every call in one
 * object it reuses.
 */
export interface InboundMonitor extends CallRecorder {
  /** Closes the monitor (Fastify's `closeMonitor` option closes it with the app). */
  close(): Promise<void>
}

/** True when `value` looks like a monitor from `createMonitor()`. */
export function isMonitor(value: unknown): value is InboundMonitor {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as InboundMonitor).startCall === 'function' &&
    typeof (value as InboundMonitor).record === 'function'
  )
}
