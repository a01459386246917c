import { OUTCOMES } from './outcome.js'

/**
 * The one definition of a recorded call: every field, once. The TypeScript types of `record()`'s input and of the
 * stored record (`types.ts`), the zod schema of `record()` (`input-schema.ts`), the in-memory staging columns and
 * the hot normalise / read / write functions (`compile.ts`), the SQL columns with their SQLite and PostgreSQL types
 * and the `apimeter_calls` DDL (`sql/schema.ts`), and the check that `docs/schema.md` documents them, are all derived
 * from {@link CALL_FIELDS}.
 *
 * Adding a field: one entry at the end of the table (its kind says how it is given, validated, held and stored;
 * `since` names a new migration, and a column added by a migration lands after the existing ones), plus that
 * migration (`addCallColumns` / `dropCallColumns` in `sql/migrations.ts`) and its row in docs/schema.md. A field of a
 * direct kind needs nothing else: `record()` accepts, validates and stores it.
 */

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

/** Size caps applied on the write path (longer strings are cut, never rejected). */
export const LIMITS = {
  shortString: 256,
  url: 2048,
  userAgent: 512,
  errorMessage: 1024,
  metadataBytes: 8192,
  method: 32,
} as const

/**
 * How a field is given, validated, held in memory and stored:
 *
 * | kind | record value | in memory | stored as |
 * |---|---|---|---|
 * | `text` | string (capped at `max`; `''` is null) | string | TEXT |
 * | `id` | string (a number given is turned into text) | string | TEXT |
 * | `count` | whole number ≥ 0 | float64, NaN = null | BIGINT |
 * | `ms` | milliseconds ≥ 0, rounded to the microsecond | float64 | BIGINT microseconds |
 * | `real` | finite number ≥ 0 | float64 | DOUBLE PRECISION |
 * | `int` | whole number in `[min, max]` | float64 | INTEGER |
 * | `epochMs` | integer epoch milliseconds (UTC) | float64 | BIGINT |
 * | `nanos` | integer nano-USD | float64 | BIGINT |
 * | `bool` | boolean | uint8 | SMALLINT 0/1 |
 * | `enum` | one of `values` | uint8 code | TEXT with a CHECK |
 * | `json` | JSON text | string | JSON / JSONB |
 */
export type FieldKind = 'text' | 'id' | 'count' | 'ms' | 'real' | 'int' | 'epochMs' | 'nanos' | 'bool' | 'enum' | 'json'

/**
 * How `record()` takes a field: `direct` — under the same name, validated by its kind alone (nothing else to
 * write for a new field); `derived` — computed in `normalize.ts` from inputs declared in `types.ts` (`url` folds
 * into `route`, `cost` becomes `costNanos`, `error` sets the outcome…); `none` — not an input at all (`id`).
 */
export type FieldInput = 'direct' | 'derived' | 'none'

/** One field of a call. */
export interface FieldSpec {
  readonly kind: FieldKind
  /** Column of `apimeter_calls`. */
  readonly column: string
  readonly nullable: boolean
  readonly input: FieldInput
  /** The migration that added the column. */
  readonly since: string
  /** `text`/`id`: the cap in characters. */
  readonly max?: number
  /** `int`: the accepted range. */
  readonly min?: number
  readonly maxValue?: number
  /** `enum`: the values. */
  readonly values?: readonly string[]
  /** `direct` inputs: the value when the input is absent (`null` otherwise, or an error when not nullable). */
  readonly default?: number | boolean
  /** A CHECK clause of the column (PostgreSQL; SQLite's calls table has none, see sql/schema.ts). */
  readonly check?: string
  /** `direct` inputs: what a valid value is, as error messages say it (`call.x must be …`). */
  readonly expected?: string
}

// Shorthands for the common shapes (literal types are kept: the record and input types are derived from them).
const text = <const C extends string, const I extends FieldInput>(column: C, input: I, max: number = LIMITS.shortString) =>
  ({ kind: 'text', column, nullable: true, input, since: '0001_initial', max }) as const
const count = <const C extends string>(column: C) => ({ kind: 'count', column, nullable: true, input: 'direct', since: '0001_initial' }) as const
const rate = <const C extends string>(column: C) => ({ kind: 'real', column, nullable: true, input: 'derived', since: '0001_initial' }) as const

/**
 * Every field of a call, in storage order. The JSDoc of each entry is the documentation of that field on
 * `CallInput` (direct inputs) and `CallRecord`.
 */
export const CALL_FIELDS = {
  /** Unique per call (monitor instance prefix + sequence); lets storage ignore a batch written twice. */
  id: { kind: 'text', column: 'call_id', nullable: false, input: 'none', since: '0001_initial' },
  /** Start of the call, epoch ms (integer, UTC). */
  timestamp: { kind: 'epochMs', column: 'ts', nullable: false, input: 'derived', since: '0001_initial' },
  /** `inbound`: a request your app received; `outbound`: one it made. */
  direction: { kind: 'enum', column: 'direction', nullable: false, input: 'derived', since: '0001_initial', values: DIRECTIONS },
  /** The application that recorded the call. */
  service: { kind: 'text', column: 'service', nullable: false, input: 'derived', since: '0001_initial', max: LIMITS.shortString },
  /** Name of the outbound API (`openai`), or null. */
  api: text('api', 'derived'),
  /** HTTP method, upper-case. */
  method: { kind: 'text', column: 'method', nullable: false, input: 'derived', since: '0001_initial', max: LIMITS.method },
  /** Route template (`/users/:id`), `(unmatched)` or `(other)`; never a raw path. */
  route: { kind: 'text', column: 'route', nullable: false, input: 'derived', since: '0001_initial' },
  /** Host called (outbound) or serving (inbound). */
  host: text('host', 'derived'),
  /** The URL with credentials and secret query parameters masked, or null. */
  url: text('url', 'derived', LIMITS.url),
  /** HTTP status; null when no response arrived. */
  statusCode: { kind: 'int', column: 'status_code', nullable: true, input: 'derived', since: '0001_initial', min: 100, maxValue: 999, check: 'status_code BETWEEN 100 AND 999' },
  /** What happened: `success`, `client_error`, `server_error`, `rate_limited`, `timeout`, `network_error`, `aborted`. */
  outcome: { kind: 'enum', column: 'outcome', nullable: false, input: 'derived', since: '0001_initial', values: OUTCOMES },
  /** Duration in milliseconds (float, monotonic clock), stored to the microsecond. */
  durationMs: { kind: 'ms', column: 'duration_us', nullable: false, input: 'derived', since: '0001_initial', check: 'duration_us >= 0' },
  /** Time to the response headers, in ms. */
  ttfbMs: { kind: 'ms', column: 'ttfb_us', nullable: true, input: 'direct', since: '0001_initial', expected: 'a finite number of milliseconds >= 0 or null' },
  /** Request body bytes. */
  requestBytes: count('request_bytes'),
  /** Response body bytes. */
  responseBytes: count('response_bytes'),
  /** Whether a cache answered the call. */
  cached: { kind: 'bool', column: 'cached', nullable: false, input: 'direct', since: '0001_initial', default: false, check: 'cached IN (0, 1)', expected: 'true or false' },
  /** Which signal said it was cached (`cf-cache-status`, `age`, …). */
  cacheSignal: text('cache_signal', 'direct', 64),
  /** Cost as an integer number of nano-USD (1e-9 USD), or null when unknown / not priced. */
  costNanos: { kind: 'nanos', column: 'cost_nanos', nullable: true, input: 'derived', since: '0001_initial', check: 'cost_nanos >= 0' },
  /** Where the cost came from: `provider`, `computed`, `estimated` or `unknown`. */
  costSource: { kind: 'enum', column: 'cost_source', nullable: true, input: 'derived', since: '0001_initial', values: COST_SOURCES },
  /** Model name of an LLM call. */
  model: text('model', 'direct'),
  /** Input tokens billed at the full input price (excluding cached input tokens). */
  inputTokens: count('input_tokens'),
  /** Output tokens. */
  outputTokens: count('output_tokens'),
  /** Input tokens served from the provider's prompt cache. */
  cachedInputTokens: count('cached_input_tokens'),
  /** The application's tenant / organisation id (a number is stored as text). */
  tenantId: { kind: 'id', column: 'tenant_id', nullable: true, input: 'direct', since: '0001_initial', max: LIMITS.shortString },
  /** The application's user id (a number is stored as text). */
  userId: { kind: 'id', column: 'user_id', nullable: true, input: 'direct', since: '0001_initial', max: LIMITS.shortString },
  /** An identifier of the API key used: a hash, never the key. */
  apiKeyId: text('api_key_id', 'direct'),
  /** Client address (inbound). */
  clientIp: text('client_ip', 'direct', 64),
  /** User agent. */
  userAgent: text('user_agent', 'direct', LIMITS.userAgent),
  /** Error code or name (`ECONNREFUSED`, `TimeoutError`). */
  errorType: text('error_type', 'derived'),
  /** Error message. */
  errorMessage: text('error_message', 'derived', LIMITS.errorMessage),
  /** The tightest rate limit seen in the response headers. */
  rateLimitLimit: rate('rate_limit_limit'),
  /** What was left of it. */
  rateLimitRemaining: rate('rate_limit_remaining'),
  /** Milliseconds until it resets. */
  rateLimitResetMs: rate('rate_limit_reset_ms'),
  /** What the limit counts (`requests`, `tokens`). */
  rateLimitScope: text('rate_limit_scope', 'derived', 64),
  /** 1 for the first attempt, 2 for the first retry, … */
  attempt: { kind: 'int', column: 'attempt', nullable: false, input: 'direct', since: '0001_initial', min: 1, maxValue: 1000, default: 1, check: 'attempt >= 1', expected: 'a whole number from 1 to 1000' },
  /** Shared by every attempt of one logical operation. */
  operationId: text('operation_id', 'direct'),
  /** Free JSON object (at most 8 KiB serialised), stored as JSON text. */
  metadata: { kind: 'json', column: 'metadata', nullable: true, input: 'derived', since: '0001_initial' },
} as const satisfies Record<string, FieldSpec>

/** The field table's type. */
export type CallFields = typeof CALL_FIELDS
/** A field name. */
export type CallField = keyof CallFields

/** Every field, in storage order. */
export const CALL_RECORD_FIELDS = Object.keys(CALL_FIELDS) as CallField[]

/** The fields `record()` takes under their own name and validates by kind alone. */
export const DIRECT_INPUT_FIELDS = CALL_RECORD_FIELDS.filter((f) => CALL_FIELDS[f].input === 'direct')
