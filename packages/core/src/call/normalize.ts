import {
  CALL_INPUT_KEYS,
  type CallInput,
  type CallRecord,
  COST_SOURCE_SET,
  COST_SOURCES,
  type CostSource,
  type Direction,
  LIMITS,
  usdToNanos,
} from './types.js'
import { ApimeterError, describeValue, suggest } from '../errors.js'
import { classifyError, classifyStatus, isOutcome, NO_RESPONSE_OUTCOMES, type Outcome, OUTCOMES } from './outcome.js'
import { MAX_ROUTE_LENGTH, maskUrl, normalizePath, type RouteGuard, splitUrl, UNMATCHED_ROUTE } from './route.js'

/**
 * Validation and normalisation of recorded calls, into a columnar staging buffer.
 *
 * `record()` must be O(1) and cheap enough for a million calls a second. Building a 37-field object per call costs
 * more than that on a modest core (allocation plus the GC work of keeping it in the buffer), so a call is first
 * written field by field into preallocated typed arrays and string arrays (no allocation at all on the common
 * path), and turned into a {@link CallRecord} object only when its batch is formed, off the caller's synchronous
 * path. The copy keeps value semantics: mutating an input object after `record()` changes nothing.
 */

/** What normalisation needs from the monitor. */
export interface NormalizeContext {
  service: string
  now(): number
  routeGuard: RouteGuard
  /** Called when metadata had to be dropped (the call itself is kept). */
  onMetadataDropped?(reason: string): void
}

const NUMBER_COLUMNS = [
  'timestamp', 'durationMs', 'statusCode', 'ttfbMs', 'requestBytes', 'responseBytes', 'costNanos', 'inputTokens',
  'outputTokens', 'cachedInputTokens', 'rateLimitLimit', 'rateLimitRemaining', 'rateLimitResetMs', 'attempt',
] as const
const CODE_COLUMNS = ['direction', 'outcome', 'cached', 'costSource'] as const
const STRING_COLUMNS = [
  'service', 'api', 'method', 'route', 'host', 'url', 'cacheSignal', 'model', 'tenantId', 'userId', 'apiKeyId',
  'clientIp', 'userAgent', 'errorType', 'errorMessage', 'rateLimitScope', 'operationId', 'metadata',
] as const

const DIRECTION_BY_CODE: readonly Direction[] = ['inbound', 'outbound']
const NO_COST_SOURCE = 255
const COST_SOURCE_CODE: Readonly<Record<string, number>> = Object.fromEntries(COST_SOURCES.map((s, i) => [s, i]))
const OUTCOME_CODE: Readonly<Record<string, number>> = Object.fromEntries(OUTCOMES.map((o, i) => [o, i]))

/**
 * Calls stored column by column. Numbers are `Float64Array`s with NaN for null; enums are `Uint8Array` codes;
 * strings are plain arrays of references (no copying). Grows by doubling.
 */
export class CallColumns {
  capacity = 0
  timestamp = new Float64Array(0)
  durationMs = new Float64Array(0)
  statusCode = new Float64Array(0)
  ttfbMs = new Float64Array(0)
  requestBytes = new Float64Array(0)
  responseBytes = new Float64Array(0)
  costNanos = new Float64Array(0)
  inputTokens = new Float64Array(0)
  outputTokens = new Float64Array(0)
  cachedInputTokens = new Float64Array(0)
  rateLimitLimit = new Float64Array(0)
  rateLimitRemaining = new Float64Array(0)
  rateLimitResetMs = new Float64Array(0)
  attempt = new Float64Array(0)
  direction = new Uint8Array(0)
  outcome = new Uint8Array(0)
  cached = new Uint8Array(0)
  costSource = new Uint8Array(0)
  service: (string | null)[] = []
  api: (string | null)[] = []
  method: (string | null)[] = []
  route: (string | null)[] = []
  host: (string | null)[] = []
  url: (string | null)[] = []
  cacheSignal: (string | null)[] = []
  model: (string | null)[] = []
  tenantId: (string | null)[] = []
  userId: (string | null)[] = []
  apiKeyId: (string | null)[] = []
  clientIp: (string | null)[] = []
  userAgent: (string | null)[] = []
  errorType: (string | null)[] = []
  errorMessage: (string | null)[] = []
  rateLimitScope: (string | null)[] = []
  operationId: (string | null)[] = []
  metadata: (string | null)[] = []

  constructor(capacity: number) {
    this.resize(capacity)
  }

  /** Makes room for at least `min` rows, keeping the rows held. */
  ensure(min: number): void {
    if (min > this.capacity) this.resize(Math.max(min, this.capacity * 2))
  }

  private resize(capacity: number): void {
    const self = this as unknown as Record<string, Float64Array | Uint8Array | (string | null)[]>
    for (const name of NUMBER_COLUMNS) {
      const next = new Float64Array(capacity)
      next.set((self[name] as Float64Array).subarray(0, Math.min(this.capacity, capacity)))
      self[name] = next
    }
    for (const name of CODE_COLUMNS) {
      const next = new Uint8Array(capacity)
      next.set((self[name] as Uint8Array).subarray(0, Math.min(this.capacity, capacity)))
      self[name] = next
    }
    for (const name of STRING_COLUMNS) {
      const column = self[name] as (string | null)[]
      column.length = capacity
      if (capacity > this.capacity) column.fill(null, this.capacity)
    }
    this.capacity = capacity
  }

  /** Builds the record object of row `i`. */
  read(i: number, id: string): CallRecord {
    const costSource = this.costSource[i]!
    return {
      id,
      timestamp: this.timestamp[i]!,
      direction: DIRECTION_BY_CODE[this.direction[i]!]!,
      service: this.service[i]!,
      api: this.api[i]!,
      method: this.method[i]!,
      route: this.route[i]!,
      host: this.host[i]!,
      url: this.url[i]!,
      statusCode: nullable(this.statusCode[i]!),
      outcome: OUTCOMES[this.outcome[i]!]!,
      durationMs: this.durationMs[i]!,
      ttfbMs: nullable(this.ttfbMs[i]!),
      requestBytes: nullable(this.requestBytes[i]!),
      responseBytes: nullable(this.responseBytes[i]!),
      cached: this.cached[i] === 1,
      cacheSignal: this.cacheSignal[i]!,
      costNanos: nullable(this.costNanos[i]!),
      costSource: costSource === NO_COST_SOURCE ? null : COST_SOURCES[costSource]!,
      model: this.model[i]!,
      inputTokens: nullable(this.inputTokens[i]!),
      outputTokens: nullable(this.outputTokens[i]!),
      cachedInputTokens: nullable(this.cachedInputTokens[i]!),
      tenantId: this.tenantId[i]!,
      userId: this.userId[i]!,
      apiKeyId: this.apiKeyId[i]!,
      clientIp: this.clientIp[i]!,
      userAgent: this.userAgent[i]!,
      errorType: this.errorType[i]!,
      errorMessage: this.errorMessage[i]!,
      rateLimitLimit: nullable(this.rateLimitLimit[i]!),
      rateLimitRemaining: nullable(this.rateLimitRemaining[i]!),
      rateLimitResetMs: nullable(this.rateLimitResetMs[i]!),
      rateLimitScope: this.rateLimitScope[i]!,
      attempt: this.attempt[i]!,
      operationId: this.operationId[i]!,
      metadata: this.metadata[i]!,
    }
  }
}

function nullable(n: number): number | null {
  return n !== n ? null : n // NaN check without a call
}

const CALL_INPUT_KEY_LOOKUP: Readonly<Record<string, true>> = Object.assign(
  Object.create(null) as Record<string, true>,
  Object.fromEntries(CALL_INPUT_KEYS.map((k) => [k, true])),
)
const UPPER_METHODS: Readonly<Record<string, string>> = Object.assign(
  Object.create(null) as Record<string, string>,
  Object.fromEntries(
    ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE'].flatMap((m) => [
      [m, m],
      [m.toLowerCase(), m],
    ]),
  ),
)
const OUTCOME_LIST = OUTCOMES.join(', ')

function invalid(field: string, expected: string, got: unknown): never {
  throw new ApimeterError('INVALID_CALL', `call.${field} must be ${expected}, got ${describeValue(got)}`, {
    details: { field },
  })
}

function cap(value: string, max: number): string {
  return value.length > max ? value.slice(0, max - 1) + '…' : value
}

// The helpers take the value (a named property read at the call site, which V8 keeps monomorphic) and the field
// name only for the error message.
function optionalString(value: unknown, field: string, max: number): string | null {
  if (value === undefined || value === null) return null
  if (typeof value === 'string') return value === '' ? null : value.length > max ? cap(value, max) : value
  return invalid(field, 'a string or null', value)
}

function optionalId(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null
  if (typeof value === 'string') return value === '' ? null : cap(value, LIMITS.shortString)
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  return invalid(field, 'a string, a number or null', value)
}

/** NaN stands for null in the number columns. */
function optionalCount(value: unknown, field: string): number {
  if (value === undefined || value === null) return Number.NaN
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value
  return invalid(field, 'a whole number >= 0 or null', value)
}

function optionalMs(value: unknown, field: string): number {
  if (value === undefined || value === null) return Number.NaN
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.round(value * 1000) / 1000
  return invalid(field, 'a finite number of milliseconds >= 0 or null', value)
}

function optionalFinite(value: unknown, field: string): number {
  if (value === undefined || value === null) return Number.NaN
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
  const bytes = Buffer.byteLength(json)
  if (bytes > LIMITS.metadataBytes) {
    ctx.onMetadataDropped?.(`call.metadata serialises to ${bytes} bytes, over the ${LIMITS.metadataBytes}-byte cap; the call was kept without it`)
    return null
  }
  return json === '{}' ? null : json
}

/**
 * Validates one call and writes it, normalised, into row `i` of `out`. Throws an {@link ApimeterError}
 * (`INVALID_CALL`) naming the field on bad input; row `i` is then garbage and must not be counted.
 */
export function normalizeInto(input: CallInput, ctx: NormalizeContext, out: CallColumns, i: number): void {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ApimeterError('INVALID_CALL', `call must be an object, got ${describeValue(input)}`, {
      details: { field: 'call' },
    })
  }
  for (const key in input) {
    if (CALL_INPUT_KEY_LOOKUP[key] !== true) {
      const hint = suggest(key, CALL_INPUT_KEYS)
      throw new ApimeterError('INVALID_CALL', `call.${key} is not a known field${hint ? ` (did you mean ${hint}?)` : ''}`, {
        details: { field: key },
      })
    }
  }

  const direction = input.direction
  if (direction !== 'inbound' && direction !== 'outbound') invalid('direction', `'inbound' or 'outbound'`, direction)

  const rawMethod = input.method
  if (typeof rawMethod !== 'string' || rawMethod === '' || rawMethod.length > LIMITS.method) {
    invalid('method', `an HTTP method string (1-${LIMITS.method} characters)`, rawMethod)
  }
  const method = UPPER_METHODS[rawMethod] ?? rawMethod.toUpperCase()

  const durationMs = input.durationMs
  if (typeof durationMs !== 'number' || !Number.isFinite(durationMs) || durationMs < 0) {
    invalid('durationMs', 'a finite number of milliseconds >= 0', durationMs)
  }

  // Host and URL.
  let host = optionalString(input.host, 'host', LIMITS.shortString)
  let url: string | null = null
  let pathForRoute: string | null = null
  const rawUrl = input.url
  if (rawUrl !== undefined && rawUrl !== null) {
    if (typeof rawUrl !== 'string' || rawUrl === '') invalid('url', 'a non-empty URL or path string', rawUrl)
    const split = splitUrl(rawUrl)
    if (host === null && split.host !== null) host = cap(split.host, LIMITS.shortString)
    pathForRoute = split.path
    url = cap(maskUrl(rawUrl), LIMITS.url)
  }

  // Route: a template as given, else folded from the URL; then the cardinality guard.
  let route: string
  const rawRoute = input.route
  if (rawRoute !== undefined && rawRoute !== null) {
    if (typeof rawRoute !== 'string' || rawRoute === '') invalid('route', 'a non-empty route template string', rawRoute)
    route = rawRoute.length > MAX_ROUTE_LENGTH ? rawRoute.slice(0, MAX_ROUTE_LENGTH) : rawRoute
  } else if (pathForRoute !== null) {
    route = normalizePath(pathForRoute)
  } else {
    throw new ApimeterError('INVALID_CALL', `call.route must be a route template string (or give call.url), got undefined`, {
      details: { field: 'route' },
    })
  }
  const rawService = input.service
  let service = ctx.service
  if (rawService !== undefined) {
    if (typeof rawService !== 'string' || rawService === '') invalid('service', 'a non-empty string', rawService)
    service = cap(rawService, LIMITS.shortString)
  }
  const api = optionalString(input.api, 'api', LIMITS.shortString)
  if (route !== UNMATCHED_ROUTE) route = ctx.routeGuard.admit(service, direction, api ?? host ?? '', route)

  // Status and outcome (classification lives in outcome.ts).
  let statusCode = Number.NaN
  const rawStatus = input.statusCode
  if (rawStatus !== undefined && rawStatus !== null) {
    if (typeof rawStatus !== 'number' || !Number.isInteger(rawStatus) || rawStatus < 100 || rawStatus > 999) {
      invalid('statusCode', 'an HTTP status code (100-999) or null', rawStatus)
    }
    statusCode = rawStatus
  }
  let outcome: Outcome
  let errorType = optionalString(input.errorType, 'errorType', LIMITS.shortString)
  let errorMessage = optionalString(input.errorMessage, 'errorMessage', LIMITS.errorMessage)
  const rawOutcome = input.outcome
  const error = input.error
  if (rawOutcome !== undefined) {
    if (!isOutcome(rawOutcome)) invalid('outcome', `one of ${OUTCOME_LIST}`, rawOutcome)
    if (statusCode !== statusCode && !(NO_RESPONSE_OUTCOMES as readonly string[]).includes(rawOutcome)) {
      invalid('outcome', `'timeout', 'network_error' or 'aborted' when no statusCode is given (a '${rawOutcome}' call has a status code)`, rawOutcome)
    }
    outcome = rawOutcome
  } else if (statusCode === statusCode) {
    outcome = classifyStatus(statusCode)
  } else if (error !== undefined && error !== null) {
    outcome = classifyError(error).outcome
  } else {
    throw new ApimeterError(
      'INVALID_CALL',
      `call.statusCode must be an HTTP status code, or call.outcome ('timeout', 'network_error' or 'aborted') / call.error must say why no response arrived, got neither`,
      { details: { field: 'statusCode' } },
    )
  }
  if (error !== undefined && error !== null && (errorType === null || errorMessage === null)) {
    const classified = classifyError(error)
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
  let costNanos = Number.NaN
  const rawCost = input.cost
  if (rawCost !== undefined && rawCost !== null) {
    if (typeof rawCost !== 'number' || !Number.isFinite(rawCost) || rawCost < 0 || rawCost > 9e6) {
      invalid('cost', 'a USD amount between 0 and 9,000,000 or null', rawCost)
    }
    costNanos = usdToNanos(rawCost)
  }
  let costSource: CostSource | null = null
  const rawCostSource = input.costSource
  if (rawCostSource !== undefined && rawCostSource !== null) {
    if (!COST_SOURCE_SET.has(rawCostSource)) invalid('costSource', `one of ${COST_SOURCES.join(', ')} or null`, rawCostSource)
    costSource = rawCostSource
  }
  if (costSource === 'unknown' && costNanos === costNanos) invalid('costSource', `not 'unknown' when call.cost is given`, costSource)
  if (costNanos === costNanos && costSource === null) costSource = 'computed'

  const cached = input.cached
  if (cached !== undefined && typeof cached !== 'boolean') invalid('cached', 'true or false', cached)

  let attempt = 1
  const rawAttempt = input.attempt
  if (rawAttempt !== undefined) {
    if (typeof rawAttempt !== 'number' || !Number.isInteger(rawAttempt) || rawAttempt < 1 || rawAttempt > 1000) {
      invalid('attempt', 'a whole number from 1 to 1000', rawAttempt)
    }
    attempt = rawAttempt
  }

  let rateLimitLimit = Number.NaN
  let rateLimitRemaining = Number.NaN
  let rateLimitResetMs = Number.NaN
  let rateLimitScope: string | null = null
  const rateLimit = input.rateLimit
  if (rateLimit !== undefined && rateLimit !== null) {
    if (typeof rateLimit !== 'object') invalid('rateLimit', 'an object { limit, remaining, resetMs, scope } or null', rateLimit)
    rateLimitLimit = optionalFinite(rateLimit.limit, 'rateLimit.limit')
    rateLimitRemaining = optionalFinite(rateLimit.remaining, 'rateLimit.remaining')
    rateLimitResetMs = optionalFinite(rateLimit.resetMs, 'rateLimit.resetMs')
    rateLimitScope = optionalString(rateLimit.scope, 'rateLimit.scope', 64)
  }

  // Everything is validated before the first write, so an invalid call never leaves a half-written row.
  const ttfbMs = optionalMs(input.ttfbMs, 'ttfbMs')
  const requestBytes = optionalCount(input.requestBytes, 'requestBytes')
  const responseBytes = optionalCount(input.responseBytes, 'responseBytes')
  const inputTokens = optionalCount(input.inputTokens, 'inputTokens')
  const outputTokens = optionalCount(input.outputTokens, 'outputTokens')
  const cachedInputTokens = optionalCount(input.cachedInputTokens, 'cachedInputTokens')
  const cacheSignal = optionalString(input.cacheSignal, 'cacheSignal', 64)
  const model = optionalString(input.model, 'model', LIMITS.shortString)
  const tenantId = optionalId(input.tenantId, 'tenantId')
  const userId = optionalId(input.userId, 'userId')
  const apiKeyId = optionalString(input.apiKeyId, 'apiKeyId', LIMITS.shortString)
  const clientIp = optionalString(input.clientIp, 'clientIp', 64)
  const userAgent = optionalString(input.userAgent, 'userAgent', LIMITS.userAgent)
  const operationId = optionalString(input.operationId, 'operationId', LIMITS.shortString)
  let metadata: string | null = null
  const rawMetadata = input.metadata
  if (rawMetadata !== undefined && rawMetadata !== null) {
    if (typeof rawMetadata !== 'object' || Array.isArray(rawMetadata)) invalid('metadata', 'a plain object or null', rawMetadata)
    metadata = serializeMetadata(rawMetadata, ctx)
  }


  out.timestamp[i] = Math.floor(timestamp)
  out.durationMs[i] = Math.round(durationMs * 1000) / 1000
  out.statusCode[i] = statusCode
  out.ttfbMs[i] = ttfbMs
  out.requestBytes[i] = requestBytes
  out.responseBytes[i] = responseBytes
  out.costNanos[i] = costNanos
  out.inputTokens[i] = inputTokens
  out.outputTokens[i] = outputTokens
  out.cachedInputTokens[i] = cachedInputTokens
  out.rateLimitLimit[i] = rateLimitLimit
  out.rateLimitRemaining[i] = rateLimitRemaining
  out.rateLimitResetMs[i] = rateLimitResetMs
  out.attempt[i] = attempt
  out.direction[i] = direction === 'inbound' ? 0 : 1
  out.outcome[i] = OUTCOME_CODE[outcome]!
  out.cached[i] = cached === true ? 1 : 0
  out.costSource[i] = costSource === null ? NO_COST_SOURCE : COST_SOURCE_CODE[costSource]!
  out.service[i] = service
  out.api[i] = api
  out.method[i] = method
  out.route[i] = route
  out.host[i] = host
  out.url[i] = url
  out.cacheSignal[i] = cacheSignal
  out.model[i] = model
  out.tenantId[i] = tenantId
  out.userId[i] = userId
  out.apiKeyId[i] = apiKeyId
  out.clientIp[i] = clientIp
  out.userAgent[i] = userAgent
  out.errorType[i] = errorType
  out.errorMessage[i] = errorMessage
  out.rateLimitScope[i] = rateLimitScope
  out.operationId[i] = operationId
  out.metadata[i] = metadata
}

/**
 * Validates and normalises one call into a {@link CallRecord} object (the non-hot path: tests, tools).
 * Throws `INVALID_CALL` naming the field on bad input.
 */
export function normalizeCall(input: CallInput, ctx: NormalizeContext & { nextId(): string }): CallRecord {
  // One reusable row: normalisation is synchronous, so no two calls share it at once.
  singleRow ??= new CallColumns(1)
  normalizeInto(input, ctx, singleRow, 0)
  return singleRow.read(0, ctx.nextId())
}
let singleRow: CallColumns | undefined
