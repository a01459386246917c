import type { CallInput } from './types.js'

/**
 * Calls in progress: the handle that times a call from its start to its result. The monitor implements
 * {@link CallRecorder}; inbound and outbound metering depend on that narrow interface, not on the monitor.
 */

/** The fields known when a call starts (everything of {@link CallInput} but the result and timing). */
export type CallStart = Omit<CallInput, 'durationMs' | 'statusCode' | 'outcome' | 'error' | 'timestamp' | 'ttfbMs'>

/** Fields that can be set or changed while a call runs or when it ends. */
export type CallUpdate = Partial<Omit<CallInput, 'direction' | 'durationMs' | 'timestamp' | 'ttfbMs'>>

/**
 * A call in progress, from {@link Monitor.startCall}. It times the call with the monotonic clock; `finish()` or
 * `fail()` records it once (later calls to either are ignored and return false).
 *
 * @example
 * ```ts
 * const call = monitor.startCall({ direction: 'outbound', api: 'finnhub', method: 'GET', url })
 * try {
 *   const res = await fetch(url)
 *   call.firstByte()
 *   const body = await res.text()
 *   call.finish({ statusCode: res.status, responseBytes: body.length })
 * } catch (err) {
 *   call.fail(err)
 * }
 * ```
 */
export interface CallHandle {
  /** Start time, epoch ms. */
  readonly timestamp: number
  /** True once `finish()` or `fail()` ran. */
  readonly done: boolean
  /** Milliseconds since the start. */
  elapsedMs(): number
  /** Sets or changes fields (route once known, tenant, model, tokens, cost…). */
  set(fields: CallUpdate): this
  /** Marks the arrival of the response headers (time to first byte). First call wins. */
  firstByte(): this
  /** Adds to the request body size. */
  addRequestBytes(bytes: number): this
  /** Adds to the response body size. */
  addResponseBytes(bytes: number): this
  /** Records the call with its result. Returns false when it was already recorded. */
  finish(result?: CallUpdate): boolean
  /**
   * Records the call as failed by `error` (timeout, abort, network error, classified from the error). If a status
   * code was already known (the body broke mid-stream), it is kept and the outcome still comes from the error.
   */
  fail(error: unknown, fields?: CallUpdate): boolean
}

/** What metering code needs from a monitor: recording a finished call, or timing one from its start. */
export interface CallRecorder {
  /** Records one finished call (see `Monitor.record`). */
  record(call: CallInput): void
  /** Starts timing a call (see `Monitor.startCall`). */
  startCall(start: CallStart): CallHandle
}
