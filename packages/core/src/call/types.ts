import { ApimeterError, describeValue, suggest } from '../errors.js'
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

export const CALL_INPUT_KEYS = [
  'direction', 'method', 'route', 'url', 'durationMs', 'statusCode', 'outcome', 'error', 'timestamp', 'service', 'api',
  'host', 'ttfbMs', 'requestBytes', 'responseBytes', 'cached', 'cacheSignal', 'cost', 'costSource', 'model',
  'inputTokens', 'outputTokens', 'cachedInputTokens', 'tenantId', 'userId', 'apiKeyId', 'clientIp', 'userAgent',
  'errorType', 'errorMessage', 'rateLimit', 'attempt', 'operationId', 'metadata',
] as const satisfies readonly (keyof CallInput)[]
export const COST_SOURCE_SET: ReadonlySet<string> = new Set(COST_SOURCES)

/** USD → integer nano-USD, exact for every value given to 9 decimal places. */
export function usdToNanos(usd: number): number {
  return Math.round(usd * 1e9)
}

/** Integer nano-USD → USD. */
export function nanosToUsd(nanos: number): number {
  return nanos / 1e9
}

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
  const r = record as CallRecord
  if (typeof r.id !== 'string' || r.id === '') return badRecord(r, 'id', 'a non-empty string')
  if (typeof r.timestamp !== 'number' || !Number.isInteger(r.timestamp) || r.timestamp < 0) return badRecord(r, 'timestamp', 'integer epoch milliseconds')
  if (r.direction !== 'inbound' && r.direction !== 'outbound') return badRecord(r, 'direction', `'inbound' or 'outbound'`)
  if (typeof r.service !== 'string' || r.service === '') return badRecord(r, 'service', 'a non-empty string')
  if (typeof r.method !== 'string' || r.method === '') return badRecord(r, 'method', 'a non-empty string')
  if (typeof r.route !== 'string' || r.route === '') return badRecord(r, 'route', 'a non-empty string')
  if (!isOutcome(r.outcome)) return badRecord(r, 'outcome', 'an outcome')
  if (r.statusCode === null) {
    if (r.outcome !== 'timeout' && r.outcome !== 'network_error' && r.outcome !== 'aborted') return badRecord(r, 'outcome', 'timeout, network_error or aborted when statusCode is null')
  } else if (typeof r.statusCode !== 'number' || !Number.isInteger(r.statusCode)) return badRecord(r, 'statusCode', 'an integer or null')
  if (typeof r.durationMs !== 'number' || !Number.isFinite(r.durationMs) || r.durationMs < 0) return badRecord(r, 'durationMs', 'a finite number >= 0')
  if (typeof r.cached !== 'boolean') return badRecord(r, 'cached', 'a boolean')
  if (typeof r.attempt !== 'number' || !Number.isInteger(r.attempt) || r.attempt < 1) return badRecord(r, 'attempt', 'a whole number >= 1')
  if (r.costSource !== null && !COST_SOURCE_SET.has(r.costSource)) return badRecord(r, 'costSource', 'a cost source or null')
  // Unrolled on purpose: named property reads stay fast on the write path of every adapter.
  if (!isNullableString(r.api)) return badRecord(r, 'api', 'a string or null')
  if (!isNullableString(r.host)) return badRecord(r, 'host', 'a string or null')
  if (!isNullableString(r.url)) return badRecord(r, 'url', 'a string or null')
  if (!isNullableString(r.cacheSignal)) return badRecord(r, 'cacheSignal', 'a string or null')
  if (!isNullableString(r.model)) return badRecord(r, 'model', 'a string or null')
  if (!isNullableString(r.tenantId)) return badRecord(r, 'tenantId', 'a string or null')
  if (!isNullableString(r.userId)) return badRecord(r, 'userId', 'a string or null')
  if (!isNullableString(r.apiKeyId)) return badRecord(r, 'apiKeyId', 'a string or null')
  if (!isNullableString(r.clientIp)) return badRecord(r, 'clientIp', 'a string or null')
  if (!isNullableString(r.userAgent)) return badRecord(r, 'userAgent', 'a string or null')
  if (!isNullableString(r.errorType)) return badRecord(r, 'errorType', 'a string or null')
  if (!isNullableString(r.errorMessage)) return badRecord(r, 'errorMessage', 'a string or null')
  if (!isNullableString(r.rateLimitScope)) return badRecord(r, 'rateLimitScope', 'a string or null')
  if (!isNullableString(r.operationId)) return badRecord(r, 'operationId', 'a string or null')
  if (!isNullableString(r.metadata)) return badRecord(r, 'metadata', 'a string or null')
  if (!isNullableCount(r.requestBytes)) return badRecord(r, 'requestBytes', 'a whole number >= 0 or null')
  if (!isNullableCount(r.responseBytes)) return badRecord(r, 'responseBytes', 'a whole number >= 0 or null')
  if (!isNullableCount(r.costNanos)) return badRecord(r, 'costNanos', 'a whole number >= 0 or null')
  if (!isNullableCount(r.inputTokens)) return badRecord(r, 'inputTokens', 'a whole number >= 0 or null')
  if (!isNullableCount(r.outputTokens)) return badRecord(r, 'outputTokens', 'a whole number >= 0 or null')
  if (!isNullableCount(r.cachedInputTokens)) return badRecord(r, 'cachedInputTokens', 'a whole number >= 0 or null')
  if (!isNullableFinite(r.ttfbMs)) return badRecord(r, 'ttfbMs', 'a finite number or null')
  if (!isNullableFinite(r.rateLimitLimit)) return badRecord(r, 'rateLimitLimit', 'a finite number or null')
  if (!isNullableFinite(r.rateLimitRemaining)) return badRecord(r, 'rateLimitRemaining', 'a finite number or null')
  if (!isNullableFinite(r.rateLimitResetMs)) return badRecord(r, 'rateLimitResetMs', 'a finite number or null')
  return null
}

function isNullableString(v: unknown): boolean {
  return v === null || typeof v === 'string'
}
function isNullableCount(v: unknown): boolean {
  return v === null || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)
}
function isNullableFinite(v: unknown): boolean {
  return v === null || (typeof v === 'number' && Number.isFinite(v))
}

function badRecord(record: CallRecord, field: keyof CallRecord, expected: string): string {
  return `record.${field} must be ${expected}, got ${describeValue(record[field])}`
}

// Batches built by the write pipeline from calls it has just validated; storages need not check them again.
const validatedBatches = new WeakSet<readonly CallRecord[]>()

/** Marks a batch as built from validated calls (the write pipeline does this), so storages skip re-validation. */
export function markValidated(batch: readonly CallRecord[]): void {
  validatedBatches.add(batch)
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
  if (validatedBatches.has(records)) return
  for (let i = 0; i < records.length; i++) {
    const problem = checkCallRecord(records[i])
    if (problem !== null) {
      throw new ApimeterError('INVALID_RECORD', `batch row ${i}: ${problem}; nothing of this batch was written`, {
        details: { index: i },
      })
    }
  }
}
