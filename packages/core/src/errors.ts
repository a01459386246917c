/** The prefix every message thrown or emitted by this package starts with. */
export const PACKAGE_NAME = '@apimeter/core'

/**
 * Machine-readable reason attached to every {@link ApimeterError}.
 *
 * - `INVALID_OPTIONS`: `createMonitor()` or a storage factory got a bad option (thrown).
 * - `INVALID_QUERY`: a stats query got a bad filter (the returned promise rejects).
 * - `INVALID_CALL`: `record()` / `startCall()` got a bad call; it is counted, never thrown.
 * - `INVALID_RECORD`: a storage adapter refused a malformed row (nothing of that batch was written).
 * - `WRITE_FAILED`: a batch could not be written; it is retried with backoff (or, when the storage cannot work at all
 *   — a driver that cannot load, a damaged file — writing stops and calls are counted as dropped).
 * - `REJECTED`: the storage refused a valid call for good (a value it cannot hold); that call was isolated from its
 *   batch and counted in `health().rejected`, every other call was written.
 * - `STORAGE_TIMEOUT`: a storage operation took longer than `storageTimeoutMs`; a write is retried.
 * - `BUFFER_OVERFLOW`: the buffer was full; calls were dropped and counted.
 * - `DROPPED`: calls were given up on (recorded after `close()`, retries exhausted, `closeTimeoutMs` passed, or
 *   refused by storage); they are counted in `health().dropped`.
 * - `METADATA_DROPPED`: a call's metadata was not JSON-serialisable or too large; the call was kept without it.
 * - `FLUSH_TIMEOUT`: `flush({ timeoutMs })` ran out of time (the calls stay buffered).
 * - `STORAGE_CLOSED`: a storage adapter was used after `close()`.
 * - `STORAGE_UNAVAILABLE`: the database could not be opened or reached (missing directory, read-only file…).
 * - `MIGRATION_FAILED`: a migration run failed and was rolled back.
 * - `MIGRATION_REQUIRED`: the database schema is older than this version of apimeter and `migrate` is off.
 * - `LISTENER_FAILED`: one of your event listeners threw; the SDK caught it.
 * - `ALERT_EVALUATION_FAILED`: an alert rule could not be evaluated (storage unreachable…); retried on the next run,
 *   counted in `health().alerts`.
 * - `ALERT_NOTIFICATION_FAILED`: an alert notifier failed (a webhook after its retries, a throwing `onAlert`); the
 *   other notifiers were not affected, and every attempt is stored.
 * - `PROBE_FAILED`: a probe round could not be run or stored (storage unreachable…); it is tried again next round,
 *   counted in `health().probes`. A probe whose target is down is not this: that is a failed check and an incident.
 * - `PROBE_NOTIFICATION_FAILED`: an incident notifier failed (a webhook after its retries, a throwing `onIncident`);
 *   the other notifiers were not affected.
 * - `CALLBACK_FAILED`: one of your option callbacks (a middleware's `tenant(req)`, `user(req)`, `apiKey(req)`,
 *   `ignore(req)`) threw or returned something unusable; the call was recorded without that field.
 * - `INSTRUMENTATION_FAILED`: outbound metering hit an unexpected error (a custom cost function or cache detector
 *   threw, an unknown client shape…); the request itself went on untouched and the call may be missing fields.
 * - `SLO_SYNC_FAILED`: the SLO definitions could not be stored (`apimeter_slos`); retried on the next
 *   `monitor.slos.status()`. Status and burn alerts work without it; only the CLI needs the stored copy.
 * - `METRICS_FAILED`: live metrics could not count calls or be served (a `/metrics` request answered 500); the
 *   calls themselves were recorded as usual.
 */
export type ApimeterErrorCode =
  | 'INVALID_OPTIONS'
  | 'INVALID_QUERY'
  | 'INVALID_CALL'
  | 'INVALID_RECORD'
  | 'WRITE_FAILED'
  | 'REJECTED'
  | 'STORAGE_TIMEOUT'
  | 'BUFFER_OVERFLOW'
  | 'DROPPED'
  | 'METADATA_DROPPED'
  | 'FLUSH_TIMEOUT'
  | 'STORAGE_CLOSED'
  | 'STORAGE_UNAVAILABLE'
  | 'MIGRATION_FAILED'
  | 'MIGRATION_REQUIRED'
  | 'LISTENER_FAILED'
  | 'CALLBACK_FAILED'
  | 'ALERT_EVALUATION_FAILED'
  | 'ALERT_NOTIFICATION_FAILED'
  | 'PROBE_FAILED'
  | 'PROBE_NOTIFICATION_FAILED'
  | 'INSTRUMENTATION_FAILED'
  | 'SLO_SYNC_FAILED'
  | 'PLUGIN_FAILED'
  | 'PLUGIN_DISABLED'
  | 'PLUGIN_SETUP_FAILED'
  | 'SYSTEM_SAMPLE_FAILED'
  | 'METRICS_FAILED'

/**
 * The one error class of apimeter. `code` says what went wrong; `message` always starts with the package name.
 *
 * @example
 * ```ts
 * monitor.on('error', (err) => {
 *   if (err.code === 'BUFFER_OVERFLOW') alertOps(err.message)
 * })
 * ```
 */
export class ApimeterError extends Error {
  /** Why it happened; stable across versions. */
  readonly code: ApimeterErrorCode
  /** Structured context (the offending field, counts, the batch size…), when there is any. */
  readonly details: Readonly<Record<string, unknown>> | undefined

  constructor(
    code: ApimeterErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown>; prefix?: string } = {},
  ) {
    const prefix = options.prefix ?? PACKAGE_NAME
    super(message.startsWith(prefix) ? message : `${prefix}: ${message}`, { cause: options.cause })
    this.name = 'ApimeterError'
    this.code = code
    this.details = options.details
  }
}

/** True when `value` is an {@link ApimeterError}, optionally of one code. */
export function isApimeterError(value: unknown, code?: ApimeterErrorCode): value is ApimeterError {
  return value instanceof ApimeterError && (code === undefined || value.code === code)
}

/** A short, human-readable rendering of a value for "got …" in error messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined'
  if (value === null) return 'null'
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value
    return JSON.stringify(shown)
  }
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'boolean') return String(value)
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'symbol') return value.toString()
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : `Date(${value.toISOString()})`
  if (Array.isArray(value)) return `an array of ${value.length} item${value.length === 1 ? '' : 's'}`
  if (value instanceof RegExp) return value.toString()
  const keys = Object.keys(value)
  const listed = keys.slice(0, 5).join(', ') + (keys.length > 5 ? ', …' : '')
  return keys.length === 0 ? 'an empty object' : `an object with keys { ${listed} }`
}

/** Message of an unknown thrown value, safely. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message
  if (typeof error === 'string') return error
  try {
    return JSON.stringify(error) ?? String(error)
  } catch {
    return String(error)
  }
}

/** Closest candidate by edit distance, for "did you mean …?" hints (only when reasonably close). */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  const lower = input.toLowerCase()
  // A clear prefix ("file" for "filename") beats edit distance.
  const prefixed = candidates.filter((c) => lower.length >= 3 && c.toLowerCase().startsWith(lower))
  if (prefixed.length === 1) return prefixed[0]
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase())
    if (distance < bestDistance) {
      bestDistance = distance
      best = candidate
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(input.length / 3)) ? best : undefined
}

function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0]!
    previous[0] = i
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j]!
      previous[j] = Math.min(above + 1, previous[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1))
      diagonal = above
    }
  }
  return previous[b.length]!
}

/** The last problem a part of the SDK met (the write path, alert evaluation…), as `health()` reports it. */
export interface HealthError {
  code: ApimeterErrorCode
  message: string
  at: Date
}
