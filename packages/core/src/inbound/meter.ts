import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { z } from 'zod'
import { ApimeterError, describeValue, errorMessage } from '../errors.js'
import type { CallInput } from '../call/types.js'
import type { CallHandle, CallStart } from '../call/handle.js'
import type { Monitor } from '../monitor/monitor.js'
import { classifyError, type Outcome } from '../call/outcome.js'
import { isIdentifierSegment, UNMATCHED_ROUTE } from '../call/route.js'
import { parseOrThrow } from '../validation.js'

/**
 * Inbound metering shared by the framework adapters (`@apimeter/express`, `@apimeter/fastify`): option validation,
 * ignore rules, tenant/user/API-key extraction, byte counting on Node's `http` objects, and turning a matched path
 * back into a route template. The adapters only translate their framework's lifecycle onto {@link InboundMeter}.
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

function optionsSchema(switches: readonly string[]) {
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

/** True when `value` looks like a monitor from `createMonitor()`. */
function isMonitor(value: unknown): value is Monitor {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Monitor).startCall === 'function' &&
    typeof (value as Monitor).record === 'function'
  )
}

/** The first 16 hex digits of the SHA-256 of `key`, or null for an empty key. */
export function hashApiKey(key: string): string | null {
  if (typeof key !== 'string' || key === '') return null
  return createHash('sha256').update(key).digest('hex').slice(0, 16)
}

/**
 * A request being metered. Created by {@link InboundMeter.start}; the adapter sets `route` once routing is done
 * and calls exactly one of `finish()` / `abort()` (later calls are ignored).
 */
export interface InboundCall {
  /** The route template; {@link UNMATCHED_ROUTE} until the adapter knows better. */
  route: string
  /** Remembers the error type and message of a failure the framework handled (the status still sets the outcome). */
  error(error: unknown): void
  /** Records the call with the response's status code. */
  finish(statusCode: number): void
  /** Records the call as `aborted`: the client went away before the response was complete. */
  abort(): void
}

/**
 * Meters the requests of one adapter instance. Built by {@link createInboundMeter}.
 *
 * @example
 * ```ts
 * const call = meter.start(req, req.raw, res)   // undefined when the request is ignored
 * call?.finish(res.statusCode)
 * ```
 */
export interface InboundMeter<Req> {
  /** The monitor calls are recorded on. */
  readonly monitor: Monitor
  /** The validated adapter switches (see {@link InboundAdapterConfig.switches}). */
  readonly switches: Readonly<Record<string, boolean | undefined>>
  /** Starts metering a request, or returns undefined when it is ignored. Never throws. */
  start(req: Req, raw: IncomingMessage, res: ServerResponse): InboundCall | undefined
}

/**
 * Validates an adapter's arguments (throwing an `INVALID_OPTIONS` error prefixed with the adapter's package name)
 * and returns its meter.
 *
 * @example
 * ```ts
 * const meter = createInboundMeter(monitor, options, {
 *   prefix: '@apimeter/express', monitorPath: 'monitor', clientIp: (req) => req.ip,
 * })
 * ```
 */
export function createInboundMeter<Req>(
  monitor: unknown,
  options: unknown,
  config: InboundAdapterConfig<Req>,
): InboundMeter<Req> {
  if (!isMonitor(monitor)) {
    throw new ApimeterError(
      'INVALID_OPTIONS',
      `${config.prefix}: ${config.monitorPath} must be a monitor from createMonitor(), got ${describeValue(monitor)}`,
      { prefix: config.prefix },
    )
  }
  const switches = config.switches ?? []
  const parsed = parseOrThrow(optionsSchema(switches), options ?? {}, 'options', 'INVALID_OPTIONS', config.prefix) as
    InboundOptions<Req> & Record<string, boolean | undefined>
  const on: Record<string, boolean | undefined> = {}
  for (const name of switches) on[name] = parsed[name]
  return new Meter(monitor, parsed, config, on)
}

const NO_BODY_STATUS = new Set([204, 205, 304])
const ABORT_MESSAGE = 'the client closed the connection before the response was complete'
/**
 * Inbound calls take their start time and duration from a `startCall()` handle (the monitor's clock), but are
 * recorded with one `record()` of an object built at the end with every field in place: one shape for every call,
 * no merging of partial updates on the hot path.
 */
const CLOCK_ONLY: CallStart = Object.freeze({ direction: 'inbound', method: 'GET', route: UNMATCHED_ROUTE })

/** An inbound call as recorded: every field present, so all of them share one object shape. */
type InboundRecord = CallInput & {
  tenantId: string | number | null
  userId: string | number | null
  apiKeyId: string | null
  clientIp: string | null
}

class Meter<Req> implements InboundMeter<Req> {
  private readonly tenant: ((req: Req) => IdentityValue) | undefined
  private readonly user: ((req: Req) => IdentityValue) | undefined
  private readonly apiKey: ((req: Req) => unknown) | undefined
  private readonly ignorePredicate: ((req: Req) => boolean) | undefined
  private readonly ignoreExact: ReadonlySet<string> | undefined
  private readonly ignorePrefixes: readonly string[]
  private readonly ignorePatterns: readonly RegExp[]
  private readonly clientIp: ((req: Req) => string | undefined) | undefined
  readonly prefix: string

  constructor(
    readonly monitor: Monitor,
    options: InboundOptions<Req>,
    config: InboundAdapterConfig<Req>,
    readonly switches: Readonly<Record<string, boolean | undefined>>,
  ) {
    this.prefix = config.prefix
    this.tenant = options.tenant
    this.user = options.user
    this.apiKey = options.apiKey
    this.clientIp = options.clientIp === false ? undefined : config.clientIp
    const ignore = options.ignore
    const exact = new Set<string>()
    const prefixes: string[] = []
    const patterns: RegExp[] = []
    if (typeof ignore === 'function') this.ignorePredicate = ignore
    else {
      for (const rule of ignore ?? []) {
        if (rule instanceof RegExp) patterns.push(rule)
        else if (rule.endsWith('/*')) prefixes.push(rule.slice(0, -1))
        else exact.add(rule)
      }
    }
    this.ignoreExact = exact.size > 0 ? exact : undefined
    this.ignorePrefixes = prefixes
    this.ignorePatterns = patterns
  }

  start(req: Req, raw: IncomingMessage, res: ServerResponse): InboundCall | undefined {
    if (this.ignored(req, raw)) return undefined
    try {
      return new Call(this, req, raw, res, this.monitor.startCall(CLOCK_ONLY))
    } catch (error) {
      // Not expected to happen (a request object some framework changed beyond recognition); the request goes on.
      reportTo(this.monitor, new ApimeterError('INVALID_CALL', `${this.prefix}: a request could not be metered: ${errorMessage(error)}`, { prefix: this.prefix, cause: error }))
      return undefined
    }
  }

  private ignored(req: Req, raw: IncomingMessage): boolean {
    if (this.ignorePredicate !== undefined) {
      try {
        return this.ignorePredicate(req) === true
      } catch (error) {
        this.callbackFailed('ignore', `threw: ${errorMessage(error)}`, error)
        return false
      }
    }
    if (this.ignoreExact === undefined && this.ignorePrefixes.length === 0 && this.ignorePatterns.length === 0) return false
    const url = raw.url ?? '/'
    const query = url.indexOf('?')
    const path = query === -1 ? url : url.slice(0, query)
    if (this.ignoreExact?.has(path)) return true
    for (const prefix of this.ignorePrefixes) if (path.startsWith(prefix) || path === prefix.slice(0, -1)) return true
    for (const pattern of this.ignorePatterns) {
      pattern.lastIndex = 0
      if (pattern.test(path)) return true
    }
    return false
  }

  /** Fields read from the request when the call ends: identity callbacks, client address. */
  describe(req: Req, raw: IncomingMessage, call: InboundRecord): void {
    if (this.tenant !== undefined) call.tenantId = this.identity(this.tenant, req, 'tenant')
    if (this.user !== undefined) call.userId = this.identity(this.user, req, 'user')
    if (this.apiKey !== undefined) call.apiKeyId = this.apiKeyId(req)
    if (this.clientIp !== undefined) {
      try {
        call.clientIp = this.clientIp(req) ?? null
      } catch {
        call.clientIp = raw.socket?.remoteAddress ?? null
      }
    }
  }

  private identity(callback: (req: Req) => IdentityValue, req: Req, name: string): string | number | null {
    let value: unknown
    try {
      value = callback(req)
    } catch (error) {
      this.callbackFailed(name, `threw: ${errorMessage(error)}`, error)
      return null
    }
    if (value === undefined || value === null || value === '') return null
    if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) return value
    this.callbackFailed(name, `returned ${describeValue(value)}, expected a string, a number or undefined`)
    return null
  }

  private apiKeyId(req: Req): string | null {
    let value: unknown
    try {
      value = this.apiKey!(req)
    } catch (error) {
      this.callbackFailed('apiKey', `threw: ${errorMessage(error)}`, error)
      return null
    }
    if (Array.isArray(value)) value = value[0]
    if (value === undefined || value === null || value === '') return null
    if (typeof value === 'string') return hashApiKey(value)
    this.callbackFailed('apiKey', `returned ${describeValue(value)}, expected a string or undefined`)
    return null
  }

  private callbackFailed(name: string, what: string, cause?: unknown): void {
    reportTo(
      this.monitor,
      new ApimeterError('CALLBACK_FAILED', `${this.prefix}: options.${name}(req) ${what}; the call was recorded without it`, {
        prefix: this.prefix,
        cause,
        details: { option: name },
      }),
    )
  }
}

/** Sends an error down the monitor's error path (its `error` event, or one warning per code). */
function reportTo(monitor: Monitor, error: ApimeterError): void {
  const report = (monitor as { report?: (error: ApimeterError) => void }).report
  if (typeof report === 'function') report.call(monitor, error)
  else process.emitWarning(error.message, { type: 'ApimeterWarning', code: error.code })
}

// Byte counting state lives on the request and response under this symbol (read by the shared wrappers below).
const COUNTER = Symbol('apimeter.inboundBytes')
type Metered<T> = T & { [COUNTER]?: ByteCounter }
type Write = ServerResponse['write']
type End = ServerResponse['end']
type Push = IncomingMessage['push']
type Forward<R> = (this: unknown, ...args: unknown[]) => R

/**
 * Counts the bytes of one request and its response. Response bytes: what goes through `write()`/`end()` (exact
 * for fixed-length and chunked bodies alike). Request bytes: the declared length, or for chunked uploads what the
 * HTTP parser pushes into the request stream — never a 'data' listener, which would switch the stream to flowing
 * mode before the app reads it. One counter per response, shared when several meters watch the same request.
 */
class ByteCounter {
  requestBytes: number
  responseBytes = 0
  /** True inside end(): an end() that writes its chunk through this.write() must not count it twice. */
  ending = false
  started = false
  readonly write: Write
  readonly end: End
  readonly push: Push | undefined
  private more: Call<unknown>[] | undefined = undefined

  static attach(raw: Metered<IncomingMessage>, res: Metered<ServerResponse>, call: Call<unknown>): ByteCounter {
    const existing = res[COUNTER]
    if (existing === undefined) return new ByteCounter(raw, res, call)
    ;(existing.more ??= []).push(call)
    return existing
  }

  private constructor(
    raw: Metered<IncomingMessage>,
    res: Metered<ServerResponse>,
    private readonly call: Call<unknown>,
  ) {
    this.write = res.write
    this.end = res.end
    res[COUNTER] = this
    res.write = meteredWrite
    res.end = meteredEnd as End
    const length = raw.headers['content-length']
    this.requestBytes = length === undefined ? 0 : Number.parseInt(length, 10) || 0
    if (length === undefined && raw.headers['transfer-encoding'] !== undefined) {
      this.push = raw.push
      raw[COUNTER] = this
      raw.push = meteredPush
    } else this.push = undefined
  }

  /** The first write: the response headers are on their way. */
  firstByte(): void {
    this.started = true
    this.call.firstByte()
    if (this.more !== undefined) for (const call of this.more) call.firstByte()
  }
}

class Call<Req> implements InboundCall {
  route: string = UNMATCHED_ROUTE
  private errorType: string | null = null
  private errorMessage: string | null = null
  private ttfbMs: number | null = null
  private done = false
  private readonly bytes: ByteCounter

  constructor(
    private readonly meter: Meter<Req>,
    private readonly req: Req,
    private readonly raw: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly clock: CallHandle,
  ) {
    this.bytes = ByteCounter.attach(raw, res, this as Call<unknown>)
  }

  firstByte(): void {
    this.ttfbMs ??= this.clock.elapsedMs()
  }

  error(error: unknown): void {
    const classified = classifyError(error)
    this.errorType = classified.errorType
    this.errorMessage = classified.errorMessage || null
  }

  finish(statusCode: number): void {
    if (!this.done) this.record(statusCode, undefined)
  }

  abort(): void {
    if (this.done) return
    this.errorType ??= 'AbortError'
    this.errorMessage ??= ABORT_MESSAGE
    this.record(this.res.headersSent ? this.res.statusCode : null, 'aborted')
  }

  private record(statusCode: number | null, outcome: Outcome | undefined): void {
    this.done = true
    const raw = this.raw
    const noBody = raw.method === 'HEAD' || (statusCode !== null && NO_BODY_STATUS.has(statusCode))
    const call: InboundRecord = {
      direction: 'inbound',
      method: raw.method ?? 'GET',
      route: this.route,
      timestamp: this.clock.timestamp,
      durationMs: this.clock.elapsedMs(),
      ttfbMs: this.ttfbMs,
      statusCode,
      outcome,
      requestBytes: this.bytes.requestBytes,
      responseBytes: noBody ? 0 : this.bytes.responseBytes,
      errorType: this.errorType,
      errorMessage: this.errorMessage,
      tenantId: null,
      userId: null,
      apiKeyId: null,
      clientIp: null,
      userAgent: raw.headers['user-agent'] ?? null,
    }
    this.meter.describe(this.req, raw, call)
    this.meter.monitor.record(call)
  }
}

function chunkBytes(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string') {
    try {
      return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
    } catch {
      return Buffer.byteLength(chunk)
    }
  }
  if (chunk instanceof Uint8Array) return chunk.byteLength
  return 0
}

// Shared (not per-request) wrappers: they find their call through the symbol, so wrapping costs no closure.
function meteredWrite(this: Metered<ServerResponse>, chunk: unknown, encoding?: unknown): boolean {
  const bytes = this[COUNTER]!
  if (!bytes.ending) {
    if (!bytes.started) bytes.firstByte()
    bytes.responseBytes += chunkBytes(chunk, encoding)
  }
  // f.apply(this, arguments) is the forwarding form V8 optimises without materialising `arguments`
  // eslint-disable-next-line prefer-rest-params
  return (bytes.write as Forward<boolean>).apply(this, arguments as never)
}

function meteredEnd(this: Metered<ServerResponse>, chunk?: unknown, encoding?: unknown): ServerResponse {
  const bytes = this[COUNTER]!
  if (!bytes.started) bytes.firstByte()
  if (typeof chunk !== 'function') bytes.responseBytes += chunkBytes(chunk, encoding)
  bytes.ending = true
  try {
    // eslint-disable-next-line prefer-rest-params
    return (bytes.end as Forward<ServerResponse>).apply(this, arguments as never)
  } finally {
    bytes.ending = false
  }
}

function meteredPush(this: Metered<IncomingMessage>, chunk: unknown, encoding?: unknown): boolean {
  const bytes = this[COUNTER]!
  bytes.requestBytes += chunkBytes(chunk, encoding)
  // eslint-disable-next-line prefer-rest-params
  return (bytes.push as Forward<boolean>).apply(this, arguments as never)
}

// ---- route templates -------------------------------------------------------------------------------------------

function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/**
 * Turns a matched path back into a route template, given the parameters the match produced: a segment equal to a
 * parameter's value becomes `:name`, a run of segments equal to a wildcard's value (an array, or a value with `/`)
 * becomes `*name` (`*` for an unnamed one), and a segment that merely contains a value (`/:from-:to`) becomes
 * `:name` as a whole. Parameters are placed right to left, the way templates usually put them after fixed words.
 * Keys in `used` are skipped and every key placed is added to it (for parameters inherited from a parent mount).
 * Segments that look like identifiers but match no parameter are folded to `:id`, so the result stays bounded
 * even when a framework gives only a path.
 *
 * @example
 * ```ts
 * templateFromMatch('/orgs/acme/projects/42', { orgId: 'acme', id: '42' }) // '/orgs/:orgId/projects/:id'
 * templateFromMatch('/files/a/b.txt', { path: ['a', 'b.txt'] })           // '/files/*path'
 * ```
 */
export function templateFromMatch(path: string, params?: Readonly<Record<string, unknown>>, used: Set<string> = new Set()): string {
  const segments = path.split('/')
  // out[i]: the template piece of segment i; null = consumed by a wildcard run; undefined = not placed yet.
  const out: (string | null | undefined)[] = new Array(segments.length)
  const keys = params ? Object.keys(params) : []
  let limit = segments.length
  for (let k = keys.length - 1; k >= 0; k--) {
    const key = keys[k]!
    const raw = params![key]
    if (used.has(key)) continue
    const wildcard = Array.isArray(raw) || (typeof raw === 'string' && raw.includes('/'))
    const value = Array.isArray(raw) ? raw.join('/') : raw
    if (typeof value !== 'string' || value === '') continue
    const span = wildcard ? value.split('/').length : 1
    let at = -1
    for (let i = limit - span; i >= 1 && at === -1; i--) {
      if (out[i] !== undefined) continue
      const candidate = span === 1 ? decodeSegment(segments[i]!) : segments.slice(i, i + span).map(decodeSegment).join('/')
      if (candidate === value) at = i
    }
    for (let i = limit - 1; i >= 1 && at === -1 && !wildcard; i--) {
      if (out[i] === undefined && decodeSegment(segments[i]!).includes(value)) at = i
    }
    if (at === -1) continue
    out[at] = wildcard ? (/^\d+$/.test(key) ? '*' : `*${key}`) : `:${key}`
    for (let j = at + 1; j < at + span; j++) out[j] = null
    used.add(key)
    limit = at
  }
  const pieces: string[] = []
  for (let i = 0; i < segments.length; i++) {
    const piece = out[i]
    if (piece === null) continue
    const segment = segments[i]!
    pieces.push(piece ?? (segment !== '' && isIdentifierSegment(decodeSegment(segment)) ? ':id' : segment))
  }
  const template = pieces.join('/').replace(/\/{2,}/g, '/')
  return template.length > 1 && template.endsWith('/') ? template.slice(0, -1) : template || '/'
}

/**
 * Joins a mount template and a route path the way routers match them (`'/users'` + `'/'` is `'/users'`).
 *
 * @example
 * ```ts
 * joinRoute('/orgs/:orgId', '/projects/:id') // '/orgs/:orgId/projects/:id'
 * ```
 */
export function joinRoute(mount: string, route: string): string {
  if (mount === '' || mount === '/') return route === '' ? '/' : route
  if (route === '' || route === '/') return mount
  return mount.endsWith('/') ? mount + (route.startsWith('/') ? route.slice(1) : route) : route.startsWith('/') ? mount + route : `${mount}/${route}`
}
