import type { CallFields, CostSource, Direction } from './fields.js'
import type { Outcome } from './outcome.js'

/**
 * The two shapes of a call, derived from the field table (`fields.ts`): {@link CallInput}, what `record()` takes,
 * and {@link CallRecord}, what storage writes. Only the inputs that are not simply a field under its own name
 * ({@link DerivedInputs}: `url` folds into the route, `cost` becomes nano-USD, `error` sets the outcome…) are
 * written out here.
 */

/** The value a field holds in a {@link CallRecord}. */
type RecordValue<S> = S extends { kind: 'text' | 'id' | 'json' }
  ? string
  : S extends { kind: 'enum'; values: readonly (infer V)[] }
    ? V
    : S extends { kind: 'bool' }
      ? boolean
      : number
type Nullable<S, T> = S extends { nullable: true } ? T | null : T

/** The value `record()` accepts for a direct input. */
type InputValue<S> = S extends { kind: 'text' }
  ? string | null
  : S extends { kind: 'id' }
    ? string | number | null
    : S extends { kind: 'bool' }
      ? boolean
      : S extends { nullable: true }
        ? number | null
        : number

/** Field names whose spec has `input: I`. */
type InputKeys<I> = { [K in keyof CallFields]: CallFields[K] extends { input: I } ? K : never }[keyof CallFields]

// Mapped over a generic key list (the form of Pick), so each property keeps the JSDoc of its field-table entry.
type RecordFields<F, K extends keyof F> = { -readonly [P in K]: Nullable<F[P], RecordValue<F[P]>> }
type DirectInputs<F, K extends keyof F> = { -readonly [P in K]?: InputValue<F[P]> }

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

/** The inputs of `record()` that `normalize.ts` turns into fields (everything else is a field under its own name). */
export interface DerivedInputs {
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
  /** Cost in USD, stored exactly to 1e-9. `null` = unknown. */
  cost?: number | null
  costSource?: CostSource | null
  /** Error code or name; classified from `error` when absent. */
  errorType?: string | null
  /** Error message; taken from `error` when absent. */
  errorMessage?: string | null
  rateLimit?: RateLimitInfo | null
  /** Free JSON-serialisable data (at most 8 KiB serialised). */
  metadata?: Record<string, unknown> | null
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
export interface CallInput extends DerivedInputs, DirectInputs<CallFields, InputKeys<'direct'>> {}

/** A call as stored: every field resolved, validated and bounded. Storage adapters write exactly this. */
export interface CallRecord extends RecordFields<CallFields, keyof CallFields> {}

/** USD → integer nano-USD, exact for every value given to 9 decimal places. */
export function usdToNanos(usd: number): number {
  return Math.round(usd * 1e9)
}

/** Integer nano-USD → USD. */
export function nanosToUsd(nanos: number): number {
  return nanos / 1e9
}
