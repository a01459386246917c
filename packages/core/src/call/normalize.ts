import { ApimeterError, describeValue, suggest } from '../errors.js'
import { cap, type ColumnSet, ENUM_CODES, initColumns, NULL_CODE, readRecord, stageDirectInputs } from './compile.js'
import { CALL_RECORD_FIELDS, COST_SOURCES, type CostSource, LIMITS } from './fields.js'
import { CALL_INPUT_KEYS } from './input-schema.js'
import { classifyError, classifyStatus, isOutcome, NO_RESPONSE_OUTCOMES, type Outcome, OUTCOMES } from './outcome.js'
import { storable, storableJson } from './storable.js'
import { MAX_ROUTE_LENGTH, maskUrl, normalizePath, type RouteGuard, type SecretPathPatterns, splitUrl, UNMATCHED_ROUTE } from './route.js'
import { type CallInput, type CallRecord, usdToNanos } from './types.js'

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
  /** Extra patterns of secrets in URL paths (`redact.paths`). */
  secretPaths?: SecretPathPatterns
  /** Called when metadata had to be dropped (the call itself is kept). */
  onMetadataDropped?(reason: string): void
  /** URLs seen lately, resolved (filled in by `normalizeInto`; see {@link resolveUrl}). */
  urls?: Map<string, ResolvedUrl>
}

/** What `normalizeInto` derives from a call's URL alone: the same for every call to that URL. */
interface ResolvedUrl {
  /** The host, capped and storable, or null for a bare path. */
  host: string | null
  /** The path (with query) the route is folded from. */
  path: string
  /** The URL with its secrets masked, capped and storable. */
  masked: string
  /** The route folded from `path` with `host`, once one call needed it. */
  route: string | undefined
}

/** How many resolved URLs a monitor keeps (emptied when full: URLs that never repeat only cost the lookup). */
const URL_CACHE_SIZE = 1024

/**
 * Splits, masks and caps a URL, or finds it done already: an application calls the same few URLs over and over,
 * and masking (secret segments, query parameters, webhook shapes) is the costliest step of recording an outbound
 * call. A pure function of the URL and the monitor's secret patterns, so the answer can be kept.
 */
function resolveUrl(rawUrl: string, ctx: NormalizeContext): ResolvedUrl {
  const urls = (ctx.urls ??= new Map<string, ResolvedUrl>())
  let resolved = urls.get(rawUrl)
  if (resolved === undefined) {
    const split = splitUrl(rawUrl)
    resolved = {
      host: split.host === null ? null : storable(cap(split.host, LIMITS.shortString)),
      path: split.path,
      masked: storable(cap(maskUrl(rawUrl, ctx.secretPaths), LIMITS.url)),
      route: undefined,
    }
    if (urls.size >= URL_CACHE_SIZE) urls.clear()
    urls.set(rawUrl, resolved)
  }
  return resolved
}

/**
 * Calls stored column by column, one column per field of the field table: numbers in `Float64Array`s with NaN for
 * null, enums and booleans as `Uint8Array` codes, strings as plain arrays of references (no copying). Grows by
 * doubling.
 */
class ColumnBuffer {
  capacity = 0

  constructor(capacity: number) {
    initColumns(this)
    this.resize(capacity)
  }

  /** Makes room for at least `min` rows, keeping the rows held. */
  ensure(min: number): void {
    if (min > this.capacity) this.resize(Math.max(min, this.capacity * 2))
  }

  /** Gives back the room beyond `capacity` rows, keeping the rows below it. */
  shrink(capacity: number): void {
    if (capacity < this.capacity) this.resize(capacity)
  }

  /** Moves rows `from … from + n` to rows `0 … n` (what stays staged after a drain of the rows before them). */
  moveToFront(from: number, n: number): void {
    const self = this as unknown as Record<string, Float64Array | Uint8Array | (string | null)[]>
    for (const field of CALL_RECORD_FIELDS) self[field]!.copyWithin(0, from, from + n)
  }

  private resize(capacity: number): void {
    const self = this as unknown as Record<string, Float64Array | Uint8Array | (string | null)[]>
    const kept = Math.min(this.capacity, capacity)
    for (const field of CALL_RECORD_FIELDS) {
      const column = self[field]!
      if (Array.isArray(column)) {
        if (capacity < this.capacity) {
          // a new array: V8 keeps a shortened array's backing store
          self[field] = column.slice(0, capacity)
          continue
        }
        column.length = capacity
        if (capacity > this.capacity) column.fill(null, this.capacity)
      } else {
        const next = column instanceof Float64Array ? new Float64Array(capacity) : new Uint8Array(capacity)
        next.set(column.subarray(0, kept))
        self[field] = next
      }
    }
    this.capacity = capacity
  }

  /** Builds the record object of row `i`. */
  read(i: number, id: string): CallRecord {
    return readRecord(this as unknown as ColumnSet, i, id)
  }
}
/** The staging buffer with its columns typed by field (they are created at run time, from the field table). */
export type CallColumns = ColumnBuffer & ColumnSet
/** Creates a staging buffer of `capacity` rows. */
export const CallColumns = ColumnBuffer as new (capacity: number) => CallColumns

const CALL_INPUT_KEY_LOOKUP: Readonly<Record<string, true>> = Object.assign(
  Object.create(null) as Record<string, true>,
  Object.fromEntries(CALL_INPUT_KEYS.map((k) => [k, true])),
)
/** The usual HTTP methods, in either case, to their upper-case form (looked up instead of upper-casing a copy). */
export const UPPER_METHODS: Readonly<Record<string, string>> = Object.assign(
  Object.create(null) as Record<string, string>,
  Object.fromEntries(
    ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE'].flatMap((m) => [
      [m, m],
      [m.toLowerCase(), m],
    ]),
  ),
)
const OUTCOME_LIST = OUTCOMES.join(', ')

/**
 * Marks a call object whose keys are all known fields by construction (a framework adapter's record, built from a
 * fixed literal and reused): {@link normalizeInto} does not look for unknown keys on it, which is half of its work on
 * such a call. Every value is still checked. Internal: not exported from the package, so no caller can skip the
 * check on an object of its own.
 */
export const KNOWN_KEYS: unique symbol = Symbol('apimeter.knownKeys')

function invalid(field: string, expected: string, got: unknown): never {
  throw new ApimeterError('INVALID_CALL', `call.${field} must be ${expected}, got ${describeValue(got)}`, {
    details: { field },
  })
}

// The helpers of the derived inputs take the value (a named property read at the call site, which V8 keeps
// monomorphic) and the field name only for the error message.
function optionalString(value: unknown, field: string, max: number): string | null {
  if (value === undefined || value === null) return null
  if (typeof value === 'string') return value === '' ? null : storable(value.length > max ? cap(value, max) : value)
  return invalid(field, 'a string or null', value)
}

function optionalFinite(value: unknown, field: string): number {
  if (value === undefined || value === null) return Number.NaN
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value
  return invalid(field, 'a finite number >= 0 or null', value)
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
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
  return json === '{}' ? null : storableJson(json)
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
  if ((input as { [KNOWN_KEYS]?: true })[KNOWN_KEYS] !== true) for (const key in input) {
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
  const method = UPPER_METHODS[rawMethod] ?? storable(rawMethod.toUpperCase())

  const durationMs = input.durationMs
  if (typeof durationMs !== 'number' || !Number.isFinite(durationMs) || durationMs < 0) {
    invalid('durationMs', 'a finite number of milliseconds >= 0', durationMs)
  }

  // Host and URL.
  let host = optionalString(input.host, 'host', LIMITS.shortString)
  let url: string | null = null
  let resolved: ResolvedUrl | null = null
  const rawUrl = input.url
  if (rawUrl !== undefined && rawUrl !== null) {
    if (typeof rawUrl !== 'string' || rawUrl === '') invalid('url', 'a non-empty URL or path string', rawUrl)
    resolved = resolveUrl(rawUrl, ctx)
    if (host === null) host = resolved.host
    url = resolved.masked
  }

  // Route: a template as given, else folded from the URL; then the cardinality guard.
  let route: string
  const rawRoute = input.route
  if (rawRoute !== undefined && rawRoute !== null) {
    if (typeof rawRoute !== 'string' || rawRoute === '') invalid('route', 'a non-empty route template string', rawRoute)
    route = storable(rawRoute.length > MAX_ROUTE_LENGTH ? rawRoute.slice(0, MAX_ROUTE_LENGTH) : rawRoute)
  } else if (resolved !== null) {
    // folded with the URL's own host (the usual case) once per URL; with another host given, every time
    if (host === resolved.host) route = resolved.route ??= storable(normalizePath(resolved.path, host, ctx.secretPaths))
    else route = storable(normalizePath(resolved.path, host, ctx.secretPaths))
  } else {
    throw new ApimeterError('INVALID_CALL', `call.route must be a route template string (or give call.url), got undefined`, {
      details: { field: 'route' },
    })
  }
  const rawService = input.service
  let service = ctx.service
  if (rawService !== undefined) {
    if (typeof rawService !== 'string' || rawService === '') invalid('service', 'a non-empty string', rawService)
    service = storable(cap(rawService, LIMITS.shortString))
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
    errorType ??= storable(cap(classified.errorType, LIMITS.shortString))
    errorMessage ??= classified.errorMessage ? storable(cap(classified.errorMessage, LIMITS.errorMessage)) : null
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
    if (typeof ENUM_CODES.costSource![rawCostSource] !== 'number') invalid('costSource', `one of ${COST_SOURCES.join(', ')} or null`, rawCostSource)
    costSource = rawCostSource
  }
  if (costSource === 'unknown' && costNanos === costNanos) invalid('costSource', `not 'unknown' when call.cost is given`, costSource)
  if (costNanos === costNanos && costSource === null) costSource = 'computed'

  let rateLimitLimit = Number.NaN
  let rateLimitRemaining = Number.NaN
  let rateLimitResetMs = Number.NaN
  let rateLimitScope: string | null = null
  const rateLimit = input.rateLimit
  if (rateLimit !== undefined && rateLimit !== null) {
    if (typeof rateLimit !== 'object' || Array.isArray(rateLimit)) invalid('rateLimit', 'an object { limit, remaining, resetMs, scope } or null', rateLimit)
    rateLimitLimit = optionalFinite(rateLimit.limit, 'rateLimit.limit')
    rateLimitRemaining = optionalFinite(rateLimit.remaining, 'rateLimit.remaining')
    rateLimitResetMs = optionalFinite(rateLimit.resetMs, 'rateLimit.resetMs')
    rateLimitScope = optionalString(rateLimit.scope, 'rateLimit.scope', 64)
  }

  let metadata: string | null = null
  const rawMetadata = input.metadata
  if (rawMetadata !== undefined && rawMetadata !== null) {
    if (!isPlainObject(rawMetadata)) invalid('metadata', 'a plain object or null', rawMetadata)
    metadata = serializeMetadata(rawMetadata, ctx)
  }


  // The direct inputs (validated by kind, generated from the field table) go straight into the row; the derived
  // ones, all validated above, follow. A throw from here leaves row i half-written, which the caller never counts.
  stageDirectInputs(input, out, i)
  out.timestamp[i] = Math.floor(timestamp)
  out.durationMs[i] = Math.round(durationMs * 1000) / 1000
  out.statusCode[i] = statusCode
  out.costNanos[i] = costNanos
  out.rateLimitLimit[i] = rateLimitLimit
  out.rateLimitRemaining[i] = rateLimitRemaining
  out.rateLimitResetMs[i] = rateLimitResetMs
  out.direction[i] = ENUM_CODES.direction![direction]!
  out.outcome[i] = ENUM_CODES.outcome![outcome]!
  out.costSource[i] = costSource === null ? NULL_CODE : ENUM_CODES.costSource![costSource]!
  out.service[i] = service
  out.api[i] = api
  out.method[i] = method
  out.route[i] = route
  out.host[i] = host
  out.url[i] = url
  out.errorType[i] = errorType
  out.errorMessage[i] = errorMessage
  out.rateLimitScope[i] = rateLimitScope
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
