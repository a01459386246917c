import { ApimeterError, describeValue, suggest } from './errors.js'
import { classifyError, classifyStatus, isOutcome, NO_RESPONSE_OUTCOMES, type Outcome } from './outcome.js'
import { MAX_ROUTE_LENGTH, maskUrl, normalizePath, type RouteGuard, splitUrl, UNMATCHED_ROUTE } from './route.js'

/** `inbound`: a request your app received. `outbound`: a request your app made. */
export type Direction = 'inbound' | 'outbound'
/** The two directions. */
export const DIRECTIONS = ['inbound', 'outbound'] as const satisfies readonly Direction[]

/**
 * Where a call's cost came from: `provider` (reported in the response), `computed` (from a price list and usage),
 * `estimated` (usage was partial), `unknown` (the call is priced but its usage never arrived; cost is null).
 */
export type CostSource = 'provider' | 'computed' | 'estimated' | 'unknown'
/** Every {@link CostSource}. */
export const COST_SOURCES = ['provider', 'computed', 'estimated', 'unknown'] as const satisfies readonly CostSource[]

/** Rate-limit headroom seen on a response (the tightest limit when there are several). */
export interface RateLimitInfo {
  /** The limit of the window, e.g. 60 requests. */
  limit?: number | null
  /** What is left in the current window. */
  remaining?: number | null
  /** Milliseconds until the window resets. */
  resetMs?: number | null
  /** What the limit counts: `requests`, `tokens`, … */
  scope?: string | null
}

/**
 * One call, as you pass it to `monitor.record()`. Only `direction`, `method`, `route` (or `url`) and
 * `durationMs` are required; `statusCode` is absent only when no response arrived, and then `outcome` (or
 * `error`) says why.
 *
 * @example
 * ```ts
 * monitor.record({
 *   direction: 'outbound', api: 'openai', method: 'POST', route: '/v1/chat/completions',
 *   statusCode: 200, durationMs: 812.4, cost: 0.0021, model: 'gpt-4o-mini', inputTokens: 1200, outputTokens: 80,
 *   tenantId: 'acme',
 * })
 * ```
 */
export interface CallInput {
  direction: Direction
  /** HTTP method; stored upper-case. */
  method: string
  /** Route template (`/users/:id`). Give this or `url`. */
  route?: string
  /** The URL or path as requested; folded into a route when `route` is absent, stored with secrets masked. */
  url?: string
  /** Total duration in milliseconds (float; stored to the microsecond). */
  durationMs: number
  /** HTTP status; `null`/absent only when no response arrived. */
  statusCode?: number | null
  /** Overrides the outcome derived from `statusCode` / `error`. */
  outcome?: Outcome
  /** What was thrown, when the call failed without a response; classified into an outcome and error type. */
  error?: unknown
  /** Start of the call, epoch ms or a Date. Defaults to now. */
  timestamp?: number | Date
  /** Overrides the monitor's `service`. */
  service?: string
  /** Name of the outbound API (`openai`), or null. */
  api?: string | null
  /** Host called (outbound) or serving (inbound). Taken from an absolute `url` when absent. */
  host?: string | null
  /** Time to the response headers, in ms. */
  ttfbMs?: number | null
  requestBytes?: number | null
  responseBytes?: number | null
  /** Whether a cache answered the call. */
  cached?: boolean
  /** Which signal said it was cached (`cf-cache-status`, `age`, …). */
  cacheSignal?: string | null
  /** Cost in USD, stored exactly to 1e-9. `null` = unknown. */
  cost?: number | null
  costSource?: CostSource | null
  model?: string | null
  /** Input tokens billed at the full input price (excluding cached input tokens). */
  inputTokens?: number | null
  outputTokens?: number | null
  /** Input tokens served from the provider's prompt cache. */
  cachedInputTokens?: number | null
  tenantId?: string | number | null
  userId?: string | number | null
  /** An identifier of the API key used: a hash, never the key. */
  apiKeyId?: string | null
  clientIp?: string | null
  userAgent?: string | null
  errorType?: string | null
  errorMessage?: string | null
  rateLimit?: RateLimitInfo | null
  /** 1 for the first attempt, 2 for the first retry, … */
  attempt?: number
  /** Shared by every attempt of one logical operation. */
  operationId?: string | null
  /** Free JSON-serialisable data (at most 8 KiB serialised). */
  metadata?: Record<string, unknown> | null
}

/** A call as stored: every field resolved, validated and bounded. Storage adapters write exactly this. */
export interface CallRecord {
  /** Unique per call (monitor instance prefix + sequence); lets storage ignore a batch written twice. */
  id: string
  /** Start, epoch ms (integer). */
  timestamp: number
  direction: Direction
  service: string
  api: string | null
  method: string
  route: string
  host: string | null
  /** The URL with credentials and secret query parameters masked, or null. */
  url: string | null
  statusCode: number | null
  outcome: Outcome
  /** Milliseconds, rounded to the microsecond. */
  durationMs: number
  ttfbMs: number | null
  requestBytes: number | null
  responseBytes: number | null
  cached: boolean
  cacheSignal: string | null
  /** Cost as an integer number of nano-USD (1e-9 USD), or null when unknown / not priced. */
  costNanos: number | null
  costSource: CostSource | null
  model: string | null
  inputTokens: number | null
  outputTokens: number | null
  cachedInputTokens: number | null
  tenantId: string | null
  userId: string | null
  apiKeyId: string | null
  clientIp: string | null
  userAgent: string | null
  errorType: string | null
  errorMessage: string | null
  rateLimitLimit: number | null
  rateLimitRemaining: number | null
  rateLimitResetMs: number | null
  rateLimitScope: string | null
  attempt: number
  operationId: string | null
  /** JSON text, or null. */
  metadata: string | null
}

/** Every field of {@link CallRecord}, in storage order. */
export const CALL_RECORD_FIELDS = [
  'id', 'timestamp', 'direction', 'service', 'api', 'method', 'route', 'host', 'url', 'statusCode', 'outcome',
  'durationMs', 'ttfbMs', 'requestBytes', 'responseBytes', 'cached', 'cacheSignal', 'costNanos', 'costSource',
  'model', 'inputTokens', 'outputTokens', 'cachedInputTokens', 'tenantId', 'userId', 'apiKeyId', 'clientIp',
  'userAgent', 'errorType', 'errorMessage', 'rateLimitLimit', 'rateLimitRemaining', 'rateLimitResetMs',
  'rateLimitScope', 'attempt', 'operationId', 'metadata',
] as const satisfies readonly (keyof CallRecord)[]

/** Size caps applied on the write path (longer strings are cut, never rejected). */
export const LIMITS = {
  shortString: 256,
  url: 2048,
  userAgent: 512,
  errorMessage: 1024,
  metadataBytes: 8192,
  method: 32,
} as const

const CALL_INPUT_KEYS = [
  'direction', 'method', 'route', 'url', 'durationMs', 'statusCode', 'outcome', 'error', 'timestamp', 'service', 'api',
  'host', 'ttfbMs', 'requestBytes', 'responseBytes', 'cached', 'cacheSignal', 'cost', 'costSource', 'model',
  'inputTokens', 'outputTokens', 'cachedInputTokens', 'tenantId', 'userId', 'apiKeyId', 'clientIp', 'userAgent',
  'errorType', 'errorMessage', 'rateLimit', 'attempt', 'operationId', 'metadata',
] as const satisfies readonly (keyof CallInput)[]
const CALL_INPUT_KEY_SET: ReadonlySet<string> = new Set(CALL_INPUT_KEYS)
const COST_SOURCE_SET: ReadonlySet<string> = new Set(COST_SOURCES)

/** What normalisation needs from the monitor. */
export interface NormalizeContext {
  service: string
  now(): number
  nextId(): string
  routeGuard: RouteGuard
  /** Called when metadata had to be dropped (the call itself is kept). */
  onMetadataDropped?(reason: string): void
}

function invalid(field: string, expected: string, got: unknown): never {
  throw new ApimeterError('INVALID_CALL', `call.${field} must be ${expected}, got ${describeValue(got)}`, {
    details: { field },
  })
}

function cap(value: string, max: number): string {
  return value.length > max ? value.slice(0, max - 1) + '…' : value
}

function optionalString(input: CallInput, field: keyof CallInput, max: number): string | null {
  const value = input[field]
  if (value === undefined || value === null) return null
  if (typeof value === 'string') return value === '' ? null : cap(value, max)
  return invalid(field, 'a string or null', value)
}

function optionalId(input: CallInput, field: 'tenantId' | 'userId'): string | null {
  const value = input[field]
  if (value === undefined || value === null) return null
  if (typeof value === 'string') return value === '' ? null : cap(value, LIMITS.shortString)
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  return invalid(field, 'a string, a number or null', value)
}

function optionalCount(value: unknown, field: string): number | null {
  if (value === undefined || value === null) return null
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value
  return invalid(field, 'a whole number >= 0 or null', value)
}

function optionalMs(value: unknown, field: string): number | null {
  if (value === undefined || value === null) return null
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.round(value * 1000) / 1000
  return invalid(field, 'a finite number of milliseconds >= 0 or null', value)
}

/** USD → integer nano-USD, exact for every value given to 9 decimal places. */
export function usdToNanos(usd: number): number {
  return Math.round(usd * 1e9)
}

/** Integer nano-USD → USD. */
export function nanosToUsd(nanos: number): number {
  return nanos / 1e9
}

/**
 * Validates and normalises one call. Throws an {@link ApimeterError} (`INVALID_CALL`) naming the field on bad
 * input; `record()` catches it and counts the call as invalid.
 */
export function normalizeCall(input: CallInput, ctx: NormalizeContext): CallRecord {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ApimeterError('INVALID_CALL', `call must be an object, got ${describeValue(input)}`, {
      details: { field: 'call' },
    })
  }
  for (const key in input) {
    if (!CALL_INPUT_KEY_SET.has(key)) {
      const hint = suggest(key, CALL_INPUT_KEYS)
      throw new ApimeterError(
        'INVALID_CALL',
        `call.${key} is not a known field${hint ? ` (did you mean ${hint}?)` : ''}`,
        { details: { field: key } },
      )
    }
  }

  const direction = input.direction
  if (direction !== 'inbound' && direction !== 'outbound') invalid('direction', `'inbound' or 'outbound'`, direction)

  const rawMethod = input.method
  if (typeof rawMethod !== 'string' || rawMethod === '' || rawMethod.length > LIMITS.method) {
    invalid('method', `an HTTP method string (1-${LIMITS.method} characters)`, rawMethod)
  }
  const method = rawMethod.toUpperCase()

  const durationMs = input.durationMs
  if (typeof durationMs !== 'number' || !Number.isFinite(durationMs) || durationMs < 0) {
    invalid('durationMs', 'a finite number of milliseconds >= 0', durationMs)
  }

  // Host and URL.
  let host = optionalString(input, 'host', LIMITS.shortString)
  let url: string | null = null
  let pathForRoute: string | null = null
  if (input.url !== undefined && input.url !== null) {
    if (typeof input.url !== 'string' || input.url === '') invalid('url', 'a non-empty URL or path string', input.url)
    const split = splitUrl(input.url)
    if (host === null && split.host !== null) host = cap(split.host, LIMITS.shortString)
    pathForRoute = split.path
    url = cap(maskUrl(input.url), LIMITS.url)
  }

  // Route: a template as given, else folded from the URL.
  let route: string
  if (input.route !== undefined && input.route !== null) {
    if (typeof input.route !== 'string' || input.route === '') invalid('route', 'a non-empty route template string', input.route)
    route = input.route.length > MAX_ROUTE_LENGTH ? input.route.slice(0, MAX_ROUTE_LENGTH) : input.route
  } else if (pathForRoute !== null) {
    route = normalizePath(pathForRoute)
  } else {
    throw new ApimeterError('INVALID_CALL', `call.route must be a route template string (or give call.url), got undefined`, {
      details: { field: 'route' },
    })
  }

  const service =
    input.service === undefined ? ctx.service : typeof input.service === 'string' && input.service !== '' ? cap(input.service, LIMITS.shortString) : invalid('service', 'a non-empty string', input.service)
  const api = optionalString(input, 'api', LIMITS.shortString)
  if (route !== UNMATCHED_ROUTE) {
    route = ctx.routeGuard.admit(`${service}\u0000${direction}\u0000${api ?? host ?? ''}`, route)
  }

  // Status and outcome.
  let statusCode: number | null = null
  const rawStatus = input.statusCode
  if (rawStatus !== undefined && rawStatus !== null) {
    if (typeof rawStatus !== 'number' || !Number.isInteger(rawStatus) || rawStatus < 100 || rawStatus > 999) {
      invalid('statusCode', 'an HTTP status code (100-999) or null', rawStatus)
    }
    statusCode = rawStatus
  }
  let outcome: Outcome
  let errorType = optionalString(input, 'errorType', LIMITS.shortString)
  let errorMessage = optionalString(input, 'errorMessage', LIMITS.errorMessage)
  if (input.outcome !== undefined) {
    if (!isOutcome(input.outcome)) invalid('outcome', `one of ${['success', 'client_error', 'server_error', 'rate_limited', ...NO_RESPONSE_OUTCOMES].join(', ')}`, input.outcome)
    if (statusCode === null && !(NO_RESPONSE_OUTCOMES as readonly string[]).includes(input.outcome)) {
      invalid('outcome', `'timeout', 'network_error' or 'aborted' when no statusCode is given (a '${input.outcome}' call has a status code)`, input.outcome)
    }
    outcome = input.outcome
  } else if (statusCode !== null) {
    outcome = classifyStatus(statusCode)
  } else if (input.error !== undefined && input.error !== null) {
    const classified = classifyError(input.error)
    outcome = classified.outcome
    errorType ??= cap(classified.errorType, LIMITS.shortString)
    errorMessage ??= classified.errorMessage ? cap(classified.errorMessage, LIMITS.errorMessage) : null
  } else {
    throw new ApimeterError(
      'INVALID_CALL',
      `call.statusCode must be an HTTP status code, or call.outcome ('timeout', 'network_error' or 'aborted') / call.error must say why no response arrived, got neither`,
      { details: { field: 'statusCode' } },
    )
  }
  if (input.error !== undefined && input.error !== null && (errorType === null || errorMessage === null)) {
    const classified = classifyError(input.error)
    errorType ??= cap(classified.errorType, LIMITS.shortString)
    errorMessage ??= classified.errorMessage ? cap(classified.errorMessage, LIMITS.errorMessage) : null
  }

  // Time.
  let timestamp: number
  const rawTimestamp = input.timestamp
  if (rawTimestamp === undefined) timestamp = ctx.now()
  else if (typeof rawTimestamp === 'number' && Number.isFinite(rawTimestamp) && rawTimestamp >= 0) timestamp = rawTimestamp
  else if (rawTimestamp instanceof Date && !Number.isNaN(rawTimestamp.getTime())) timestamp = rawTimestamp.getTime()
  else return invalid('timestamp', 'epoch milliseconds or a valid Date', rawTimestamp)

  // Cost.
  let costNanos: number | null = null
  const rawCost = input.cost
  if (rawCost !== undefined && rawCost !== null) {
    if (typeof rawCost !== 'number' || !Number.isFinite(rawCost) || rawCost < 0 || rawCost > 9e6) {
      invalid('cost', 'a USD amount between 0 and 9,000,000 or null', rawCost)
    }
    costNanos = usdToNanos(rawCost)
  }
  let costSource: CostSource | null = null
  if (input.costSource !== undefined && input.costSource !== null) {
    if (!COST_SOURCE_SET.has(input.costSource)) invalid('costSource', `one of ${COST_SOURCES.join(', ')} or null`, input.costSource)
    costSource = input.costSource
  }
  if (costSource === 'unknown' && costNanos !== null) invalid('costSource', `not 'unknown' when call.cost is given`, costSource)
  if (costNanos !== null && costSource === null) costSource = 'computed'

  const cached = input.cached
  if (cached !== undefined && typeof cached !== 'boolean') invalid('cached', 'true or false', cached)

  let attempt = 1
  if (input.attempt !== undefined) {
    if (typeof input.attempt !== 'number' || !Number.isInteger(input.attempt) || input.attempt < 1 || input.attempt > 1000) {
      invalid('attempt', 'a whole number from 1 to 1000', input.attempt)
    }
    attempt = input.attempt
  }

  let rateLimitLimit: number | null = null
  let rateLimitRemaining: number | null = null
  let rateLimitResetMs: number | null = null
  let rateLimitScope: string | null = null
  const rateLimit = input.rateLimit
  if (rateLimit !== undefined && rateLimit !== null) {
    if (typeof rateLimit !== 'object') invalid('rateLimit', 'an object { limit, remaining, resetMs, scope } or null', rateLimit)
    rateLimitLimit = optionalFinite(rateLimit.limit, 'rateLimit.limit')
    rateLimitRemaining = optionalFinite(rateLimit.remaining, 'rateLimit.remaining')
    rateLimitResetMs = optionalFinite(rateLimit.resetMs, 'rateLimit.resetMs')
    if (rateLimit.scope !== undefined && rateLimit.scope !== null) {
      if (typeof rateLimit.scope !== 'string') invalid('rateLimit.scope', 'a string or null', rateLimit.scope)
      rateLimitScope = cap(rateLimit.scope, 64)
    }
  }

  let metadata: string | null = null
  if (input.metadata !== undefined && input.metadata !== null) {
    if (typeof input.metadata !== 'object' || Array.isArray(input.metadata)) invalid('metadata', 'a plain object or null', input.metadata)
    metadata = serializeMetadata(input.metadata, ctx)
  }

  return {
    id: ctx.nextId(),
    timestamp: Math.floor(timestamp),
    direction,
    service,
    api,
    method,
    route,
    host,
    url,
    statusCode,
    outcome,
    durationMs: Math.round(durationMs * 1000) / 1000,
    ttfbMs: optionalMs(input.ttfbMs, 'ttfbMs'),
    requestBytes: optionalCount(input.requestBytes, 'requestBytes'),
    responseBytes: optionalCount(input.responseBytes, 'responseBytes'),
    cached: cached === true,
    cacheSignal: optionalString(input, 'cacheSignal', 64),
    costNanos,
    costSource,
    model: optionalString(input, 'model', LIMITS.shortString),
    inputTokens: optionalCount(input.inputTokens, 'inputTokens'),
    outputTokens: optionalCount(input.outputTokens, 'outputTokens'),
    cachedInputTokens: optionalCount(input.cachedInputTokens, 'cachedInputTokens'),
    tenantId: optionalId(input, 'tenantId'),
    userId: optionalId(input, 'userId'),
    apiKeyId: optionalString(input, 'apiKeyId', LIMITS.shortString),
    clientIp: optionalString(input, 'clientIp', 64),
    userAgent: optionalString(input, 'userAgent', LIMITS.userAgent),
    errorType,
    errorMessage,
    rateLimitLimit,
    rateLimitRemaining,
    rateLimitResetMs,
    rateLimitScope,
    attempt,
    operationId: optionalString(input, 'operationId', LIMITS.shortString),
    metadata,
  }
}

function optionalFinite(value: unknown, field: string): number | null {
  if (value === undefined || value === null) return null
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value
  return invalid(field, 'a finite number >= 0 or null', value)
}

function serializeMetadata(metadata: Record<string, unknown>, ctx: NormalizeContext): string | null {
  let json: string
  try {
    json = JSON.stringify(metadata)
  } catch (error) {
    ctx.onMetadataDropped?.(`call.metadata is not JSON-serialisable (${error instanceof Error ? error.message : String(error)}); the call was kept without it`)
    return null
  }
  if (Buffer.byteLength(json) > LIMITS.metadataBytes) {
    ctx.onMetadataDropped?.(`call.metadata serialises to ${Buffer.byteLength(json)} bytes, over the ${LIMITS.metadataBytes}-byte cap; the call was kept without it`)
    return null
  }
  return json === '{}' ? null : json
}

const NULLABLE_STRING_FIELDS = [
  'api', 'host', 'url', 'cacheSignal', 'model', 'tenantId', 'userId', 'apiKeyId', 'clientIp', 'userAgent', 'errorType',
  'errorMessage', 'rateLimitScope', 'operationId', 'metadata',
] as const satisfies readonly (keyof CallRecord)[]
const NULLABLE_COUNT_FIELDS = [
  'requestBytes', 'responseBytes', 'costNanos', 'inputTokens', 'outputTokens', 'cachedInputTokens',
] as const satisfies readonly (keyof CallRecord)[]
const NULLABLE_NUMBER_FIELDS = ['ttfbMs', 'rateLimitLimit', 'rateLimitRemaining', 'rateLimitResetMs'] as const satisfies readonly (keyof CallRecord)[]

/**
 * Checks that a row is a well-formed {@link CallRecord}; returns a description of the first problem, or null.
 * Storage adapters run it over a whole batch before writing, so a bad row never lands half a batch.
 *
 * @example
 * ```ts
 * const problem = checkCallRecord(row)
 * if (problem) throw new ApimeterError('INVALID_RECORD', problem)
 * ```
 */
export function checkCallRecord(record: unknown): string | null {
  if (typeof record !== 'object' || record === null) return `record must be an object, got ${describeValue(record)}`
  const r = record as Record<string, unknown>
  const bad = (field: string, expected: string): string => `record.${field} must be ${expected}, got ${describeValue(r[field])}`
  if (typeof r.id !== 'string' || r.id === '') return bad('id', 'a non-empty string')
  if (typeof r.timestamp !== 'number' || !Number.isInteger(r.timestamp) || r.timestamp < 0) return bad('timestamp', 'integer epoch milliseconds')
  if (r.direction !== 'inbound' && r.direction !== 'outbound') return bad('direction', `'inbound' or 'outbound'`)
  for (const field of ['service', 'method', 'route'] as const) {
    if (typeof r[field] !== 'string' || r[field] === '') return bad(field, 'a non-empty string')
  }
  if (!isOutcome(r.outcome)) return bad('outcome', 'an outcome')
  if (r.statusCode !== null && (typeof r.statusCode !== 'number' || !Number.isInteger(r.statusCode))) return bad('statusCode', 'an integer or null')
  if (r.statusCode === null && !(NO_RESPONSE_OUTCOMES as readonly string[]).includes(r.outcome as string)) return bad('outcome', 'timeout, network_error or aborted when statusCode is null')
  if (typeof r.durationMs !== 'number' || !Number.isFinite(r.durationMs) || r.durationMs < 0) return bad('durationMs', 'a finite number >= 0')
  if (typeof r.cached !== 'boolean') return bad('cached', 'a boolean')
  if (typeof r.attempt !== 'number' || !Number.isInteger(r.attempt) || r.attempt < 1) return bad('attempt', 'a whole number >= 1')
  if (r.costSource !== null && !COST_SOURCE_SET.has(r.costSource as string)) return bad('costSource', 'a cost source or null')
  for (const field of NULLABLE_STRING_FIELDS) {
    if (r[field] !== null && typeof r[field] !== 'string') return bad(field, 'a string or null')
  }
  for (const field of NULLABLE_COUNT_FIELDS) {
    const v = r[field]
    if (v !== null && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) return bad(field, 'a whole number >= 0 or null')
  }
  for (const field of NULLABLE_NUMBER_FIELDS) {
    const v = r[field]
    if (v !== null && (typeof v !== 'number' || !Number.isFinite(v))) return bad(field, 'a finite number or null')
  }
  return null
}

/**
 * Throws `INVALID_RECORD` naming the row and field when any row of a batch is malformed.
 *
 * @example
 * ```ts
 * async writeCalls(rows) { assertCallRecords(rows); await insert(rows) }
 * ```
 */
export function assertCallRecords(records: readonly CallRecord[]): void {
  if (!Array.isArray(records)) {
    throw new ApimeterError('INVALID_RECORD', `writeCalls() expects an array of call records, got ${describeValue(records)}`)
  }
  for (let i = 0; i < records.length; i++) {
    const problem = checkCallRecord(records[i])
    if (problem !== null) {
      throw new ApimeterError('INVALID_RECORD', `batch row ${i}: ${problem}; nothing of this batch was written`, {
        details: { index: i },
      })
    }
  }
}
