import { z } from 'zod'
import { intInRange } from '../validation.js'
import type { CacheDetector } from './cache.js'
import type { CaptureOptions } from './capture.js'
import { isCostModel } from './cost.js'
import type { ApiDefinition, ApiMatcher } from './registry.js'

/**
 * Per-call settings an application can give `monitor.fetch` (as `init.apimeter`) or `wrapFetch` (for every call):
 * they override what the registry and the request say.
 *
 * @example
 * ```ts
 * await monitor.fetch(url, { method: 'POST', body, apimeter: { tenantId: 'acme', operationId: jobId, attempt: 2 } })
 * ```
 */
export interface OutboundCallOptions {
  /** The API name (a registered one brings its routes and cost model). */
  api?: string
  /** The route template, when you know it better than the registry. */
  route?: string
  tenantId?: string | number | null
  userId?: string | number | null
  /** 1 for a first attempt, 2 for the first retry, … */
  attempt?: number
  /** Shared by every attempt of one logical operation. */
  operationId?: string
  /** Free JSON data stored with the call. */
  metadata?: Record<string, unknown>
}

/**
 * Options of outbound metering (`createMonitor({ outbound })`); the API registry itself is the `apis` option.
 *
 * @example
 * ```ts
 * createMonitor({
 *   apis: [{ name: 'openai', match: 'https://api.openai.com', cost: costs.openai() }],
 *   outbound: { ignore: ['telemetry.example.com'], bodyTimeoutMs: 120_000 },
 * })
 * ```
 */
export interface OutboundOptions {
  /**
   * Requests never metered: hosts, URL prefixes or regular expressions (as in an API's `match`).
   * @default []
   * @example
   * ```ts
   * { ignore: ['localhost:4318', /\.internal$/] }
   * ```
   */
  ignore?: ApiMatcher[]
  /**
   * Distinct unregistered hosts kept as their own API name (1 … 10,000); later new hosts share the API `(other)`,
   * so calls to random hosts cannot grow the tables without bound.
   * @default 200
   * @example
   * ```ts
   * { maxHosts: 50 }
   * ```
   */
  maxHosts?: number
  /**
   * A response body that does not end (nobody reads it, or it stalls) is finished after this many milliseconds
   * without progress (100 … 3,600,000; checked every eighth of it, at least every 25 ms and at most every second,
   * by one timer for all calls): the call is recorded with what was seen and marked
   * `metadata.body: 'unread'` (or `'stalled'` when part of it came). The body itself is not touched. A body watched on
   * undici's channels ends when its last byte arrives, read or not; a tapped body, when the application read it.
   * @default 60_000
   * @example
   * ```ts
   * { bodyTimeoutMs: 300_000 }   // long LLM streams that pause between tokens
   * ```
   */
  bodyTimeoutMs?: number
  /**
   * Your own cache-hit rule, asked before the built-in ones: `true` or a signal name for a hit, `false` for a
   * miss, `undefined` to let the built-in rules decide.
   * @default none
   * @example
   * ```ts
   * { cacheDetector: (res) => (res.headers.get('x-served-by')?.includes('cache') ? 'x-served-by' : undefined) }
   * ```
   */
  cacheDetector?: CacheDetector
  /**
   * What to store besides the call's fields. Nothing is stored by default; what you switch on is masked and capped.
   * @default none
   * @example
   * ```ts
   * { capture: { responseHeaders: true, responseBody: true, maxBodyBytes: 512 } }
   * ```
   */
  capture?: CaptureOptions
}

const matcherSchema = z.union([z.string().min(1), z.instanceof(RegExp)], { error: 'a host, a URL prefix or a RegExp' })
const matchSchema = z.union([matcherSchema, z.array(matcherSchema).min(1)], { error: 'a host, a URL prefix, a RegExp or a non-empty list of them' })
const fn = (expected: string) => z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', { error: expected })

const apiSchema = z
  .strictObject({
    name: z.string({ error: 'a non-empty API name' }).min(1, { error: 'a non-empty API name' }).max(200, { error: 'an API name of at most 200 characters' }),
    match: matchSchema,
    routes: z.array(z.string().min(1), { error: 'a list of route templates' }).optional(),
    cost: z.custom((v) => isCostModel(v), { error: 'a cost model from costs.perRequest(), costs.perToken(), costs.openai(), costs.anthropic() or costs.custom()' }).optional(),
    rateLimit: z
      .strictObject({
        perSecond: z.number().positive().optional(),
        perMinute: z.number().positive().optional(),
        perHour: z.number().positive().optional(),
        perDay: z.number().positive().optional(),
      })
      .optional(),
  })
  .superRefine((api, ctx) => {
    for (const matcher of Array.isArray(api.match) ? api.match : [api.match]) {
      if (typeof matcher === 'string' && matcher.includes('://') && !URL.canParse(matcher)) {
        ctx.addIssue({ code: 'custom', path: ['match'], message: 'a valid URL prefix', input: matcher })
      }
    }
  })

/** The zod schema behind the `apis` option. */
export const apisSchema = z.array(apiSchema, { error: 'a list of APIs { name, match, routes?, cost?, rateLimit? }' }).superRefine((apis, ctx) => {
  const seen = new Set<string>()
  apis.forEach((api, i) => {
    if (seen.has(api.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: 'a name not used by another API', input: api.name })
    seen.add(api.name)
  })
}) as unknown as z.ZodType<ApiDefinition[]>

const captureSchema = z.strictObject({
  requestHeaders: z.boolean({ error: 'true or false' }).optional(),
  responseHeaders: z.boolean({ error: 'true or false' }).optional(),
  requestBody: z.boolean({ error: 'true or false' }).optional(),
  responseBody: z.boolean({ error: 'true or false' }).optional(),
  maxBodyBytes: intInRange(64, 1536, 'a whole number of bytes from 64 to 1,536').optional(),
  mask: z.array(z.string().min(1), { error: 'a list of header or field names' }).optional(),
})

/** The zod schema behind {@link OutboundOptions}. */
export const outboundOptionsSchema = z.strictObject({
  ignore: z.array(matcherSchema, { error: 'a list of hosts, URL prefixes and RegExps' }).optional(),
  maxHosts: intInRange(1, 10_000, 'a whole number from 1 to 10,000').optional(),
  bodyTimeoutMs: intInRange(100, 3_600_000, 'a whole number of milliseconds from 100 to 3,600,000').optional(),
  cacheDetector: fn('a function (response) => boolean | string | undefined').optional(),
  capture: captureSchema.optional(),
}) as unknown as z.ZodType<OutboundOptions>

/** Defaults of {@link OutboundOptions}. */
export const OUTBOUND_DEFAULTS = { maxHosts: 200, bodyTimeoutMs: 60_000 } as const

const identity = z.union([z.string(), z.number(), z.null()], { error: 'a string, a number or null' })
/** The zod schema behind `OutboundCallOptions` (`wrapFetch(fetchImpl, options)`). */
export const outboundCallOptionsSchema = z
  .strictObject({
    api: z.string({ error: 'a non-empty API name' }).min(1, { error: 'a non-empty API name' }).optional(),
    route: z.string({ error: 'a route template starting with /' }).startsWith('/', { error: 'a route template starting with /' }).optional(),
    tenantId: identity.optional(),
    userId: identity.optional(),
    attempt: intInRange(1, 1000, 'a whole number from 1 to 1000').optional(),
    operationId: z.string({ error: 'a non-empty string' }).min(1, { error: 'a non-empty string' }).optional(),
    metadata: z.record(z.string(), z.unknown(), { error: 'a plain object' }).optional(),
  })
  .optional() as unknown as z.ZodType<OutboundCallOptions | undefined>
