/**
 * Outcome classification: the one place that decides what a status code or an error means.
 * The write path, `startCall()`, the framework adapters and the fetch wrappers all call these.
 */

/** Every outcome a call can have, in display order. */
export const OUTCOMES = [
  'success',
  'client_error',
  'server_error',
  'rate_limited',
  'timeout',
  'network_error',
  'aborted',
] as const

/** What happened to a call. `success` is any 1xx–3xx response; everything else counts as an error. */
export type Outcome = (typeof OUTCOMES)[number]

/** Outcomes that describe a call without a response (no status code). */
export const NO_RESPONSE_OUTCOMES = ['timeout', 'network_error', 'aborted'] as const satisfies readonly Outcome[]

const OUTCOME_SET: ReadonlySet<string> = new Set(OUTCOMES)

/** True when `value` is one of {@link OUTCOMES}. */
export function isOutcome(value: unknown): value is Outcome {
  return typeof value === 'string' && OUTCOME_SET.has(value)
}

/**
 * Outcome of a response by its status code: 429 is `rate_limited`, other 4xx `client_error`, 5xx and above
 * `server_error`, everything below 400 `success`.
 *
 * @example
 * ```ts
 * classifyStatus(429) // 'rate_limited'
 * ```
 */
export function classifyStatus(statusCode: number): Outcome {
  if (statusCode < 400) return 'success'
  if (statusCode === 429) return 'rate_limited'
  if (statusCode < 500) return 'client_error'
  return 'server_error'
}

const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ECONNABORTED', // axios uses it for its own timeout
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_HTTP_REQUEST_TIMEOUT',
  'ABORT_ERR_TIMEOUT',
])
const ABORT_CODES = new Set(['ABORT_ERR', 'UND_ERR_ABORTED', 'ERR_CANCELED', 'ERR_STREAM_PREMATURE_CLOSE'])

/** The outcome and a short error type for a thrown value (fetch/undici/node:http/axios errors and their causes). */
export interface ErrorClassification {
  outcome: 'timeout' | 'network_error' | 'aborted'
  /** An error code (`ECONNREFUSED`) or name (`AbortError`), never the message. */
  errorType: string
  /** The innermost meaningful message. */
  errorMessage: string
}

/**
 * Classifies a thrown value into `timeout`, `aborted` or `network_error`, looking through `cause` chains
 * (`fetch failed` → `ECONNREFUSED`).
 *
 * @example
 * ```ts
 * try { await fetch(url, { signal: AbortSignal.timeout(100) }) }
 * catch (err) { classifyError(err).outcome } // 'timeout'
 * ```
 */
export function classifyError(error: unknown): ErrorClassification {
  let current: unknown = error
  let fallbackType: string | undefined
  let message = ''
  for (let depth = 0; depth < 6 && current != null; depth++) {
    const err = current as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown }
    const name = typeof err.name === 'string' ? err.name : undefined
    const code = typeof err.code === 'string' ? err.code : undefined
    if (typeof err.message === 'string' && err.message) message = err.message
    else if (typeof current === 'string') message = current
    if (name === 'TimeoutError' || (code !== undefined && TIMEOUT_CODES.has(code))) {
      return { outcome: 'timeout', errorType: code ?? name ?? 'TimeoutError', errorMessage: message }
    }
    if (name === 'AbortError' || (code !== undefined && ABORT_CODES.has(code))) {
      // An AbortSignal.timeout() abort carries a TimeoutError as its reason/cause: keep looking.
      const reason = (err as { cause?: unknown }).cause
      if (reason && (reason as { name?: unknown }).name === 'TimeoutError') {
        return { outcome: 'timeout', errorType: 'TimeoutError', errorMessage: message }
      }
      return { outcome: 'aborted', errorType: code ?? name ?? 'AbortError', errorMessage: message }
    }
    if (code !== undefined && fallbackType === undefined) fallbackType = code
    if (!err.cause || err.cause === current) {
      fallbackType ??= name && name !== 'Error' && name !== 'TypeError' ? name : (name ?? 'Error')
      break
    }
    fallbackType ??= code
    current = err.cause
  }
  return { outcome: 'network_error', errorType: fallbackType ?? 'Error', errorMessage: message }
}
