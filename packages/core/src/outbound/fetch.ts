import { UPPER_METHODS } from '../call/normalize.js'
import { meterResponse } from './body.js'
import { type HeaderSource, rawHeaders, toHeaderSource } from './headers.js'
import { expectRequest, listenForFetch, type RequestWatcher, requestExpected } from './instrument.js'
import { innerLayersActive, MARKER_HEADER, markCall, unmarkCall } from './marker.js'
import type { OutboundCall, OutboundMeter } from './meter.js'
import type { OutboundCallOptions } from './options.js'

/** Anything shaped like fetch: global fetch, undici's fetch, node-fetch, a test double. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type FetchLike = (input: any, init?: any) => Promise<any>

/** `init` of a metered fetch: the usual fetch options plus optional per-call settings (ignored by fetch itself). */
export type MeteredRequestInit = RequestInit & { apimeter?: OutboundCallOptions }

/** What `monitor.fetch` is: global fetch's signature, plus `init.apimeter`. */
export type MeteredFetch = (input: string | URL | Request, init?: MeteredRequestInit) => Promise<Response>

interface RequestLike {
  url: string
  method?: string
  headers?: unknown
}

/** Size of a request body given to fetch, when it can be known without reading it. */
export function bodySize(body: unknown, headers: HeaderSource): number | null {
  if (body === undefined || body === null) {
    const declared = headers.get('content-length')
    return declared === null ? 0 : Number.parseInt(declared, 10) || 0
  }
  if (typeof body === 'string') return Buffer.byteLength(body)
  if (body instanceof ArrayBuffer) return body.byteLength
  if (ArrayBuffer.isView(body)) return body.byteLength
  if (body instanceof URLSearchParams) return Buffer.byteLength(body.toString())
  if (typeof Blob !== 'undefined' && body instanceof Blob) return body.size
  const declared = headers.get('content-length')
  return declared === null ? null : Number.parseInt(declared, 10) || null
}

/** The headers of `init`, else of a Request given as input, as one read-only view. */
function requestHeaders(input: unknown, init: MeteredRequestInit | undefined): HeaderSource {
  if (init?.headers !== undefined) return toHeaderSource(init.headers)
  if (typeof input === 'object' && input !== null && !(input instanceof URL)) return toHeaderSource((input as RequestLike).headers)
  return toHeaderSource(undefined)
}

/** `init` with the marker header added (a copy; the caller's objects are not changed). */
function withMarker(input: unknown, init: MeteredRequestInit | undefined, id: string): MeteredRequestInit {
  const given = init?.headers ?? (typeof input === 'object' && input !== null && !(input instanceof URL) ? (input as RequestLike).headers : undefined)
  let headers: unknown
  if (given === undefined || given === null) headers = { [MARKER_HEADER]: id }
  else if (Array.isArray(given)) headers = [...(given as unknown[]), [MARKER_HEADER, id]]
  else if (typeof (given as Headers).entries === 'function') {
    const entries: [string, string][] = [...(given as Headers).entries()]
    entries.push([MARKER_HEADER, id])
    headers = entries
  } else headers = { ...(given as Record<string, string>), [MARKER_HEADER]: id }
  return { ...init, headers: headers as RequestInit["headers"] }
}

/** Statuses fetch follows (with `redirect: 'follow'`, the default) by sending a request of its own. */
const REDIRECTS = new Set([301, 302, 303, 307, 308])

/**
 * A `monitor.fetch` call watched through undici's diagnostics channels instead of its body: the headers event gives
 * the status, headers and time to first byte, the request's `onData` counts the bytes as undici receives them, and
 * the trailers event (fired once every byte of the body has arrived) ends the call. The application gets the very
 * Response undici made.
 *
 * Until fetch resolves, what the channels say is only noted: the response fetch hands over must be the one heard
 * (a redirect fetch follows, or a dispatcher that retries, answers with another request's response, and then the
 * body is tapped instead). A small body has usually arrived whole before then; its end time is kept and used, and
 * the call is recorded at the end of the turn (`OutboundCall.endAt`).
 */
class ChannelWatch implements RequestWatcher {
  private statusCode = 0
  private headerList: unknown[] | null = null
  private headersAtMs = 0
  private bytes = 0
  private endedAtMs = -1
  private failure: unknown = undefined
  private settled = false
  private detached = false

  constructor(
    private readonly call: OutboundCall,
    private readonly followsRedirects: boolean,
    private readonly signal: AbortSignal | null | undefined,
  ) {}

  headers(statusCode: number, headers: unknown[]): void {
    if (this.detached || this.settled) return
    if (this.followsRedirects && REDIRECTS.has(statusCode)) {
      this.detached = true // fetch may go on to another request: the response it resolves with is metered by its body
      return
    }
    this.statusCode = statusCode
    this.headerList = headers
    this.headersAtMs = this.call.elapsedMs()
  }

  data(chunk: Uint8Array): void {
    if (this.detached) return
    if (this.settled) this.call.received(chunk.byteLength)
    else this.bytes += chunk.byteLength
  }

  trailers(): void {
    if (this.detached) return
    if (this.settled) this.call.endSoon()
    else this.endedAtMs = this.call.elapsedMs()
  }

  error(error: unknown): void {
    if (this.detached) return
    if (this.settled) this.bodyFailed(error)
    else this.failure ??= error // before fetch resolves, its own rejection (or response) decides
  }

  /**
   * Fetch resolved with `response`. True when this watch meters it (the response is given back untouched); false
   * when the response is not the one heard, and the caller must meter it by its body.
   */
  settle(response: { status: number }): boolean {
    this.settled = true
    if (this.detached || this.headerList === null || this.statusCode !== response.status) {
      this.detached = true
      return false
    }
    const call = this.call
    call.response(this.statusCode, rawHeaders(this.headerList), this.headersAtMs)
    this.headerList = null
    if (this.bytes > 0) call.received(this.bytes)
    if (this.endedAtMs >= 0) call.endAt(this.endedAtMs)
    else if (this.failure !== undefined) this.bodyFailed(this.failure)
    else call.watchBody()
    return true
  }

  /** Fetch rejected: its error is recorded by the caller. */
  rejected(): void {
    this.settled = true
    this.detached = true
  }

  private bodyFailed(error: unknown): void {
    this.detached = true
    // Undici reports an application's `body.cancel()` as an AbortError on a request whose own signal never fired.
    if (this.signal?.aborted !== true && (error as { name?: unknown } | null)?.name === 'AbortError') this.call.cancel()
    else this.call.fail(error)
  }
}

/**
 * Wraps a fetch implementation so every call through it is metered. The response the application gets is the
 * same (status, headers, body bytes, `url`, `redirected`). Errors are the fetch's own, rethrown unchanged.
 *
 * A call whose metering needs nothing from the body is watched through undici's diagnostics channels (see
 * {@link ChannelWatch}) and its Response is returned as fetch made it. A call that needs the body (a usage reader
 * of a cost model, response body capture), or whose fetch is not undici, gets a Response around a metered body,
 * counted as it is read.
 */
export function createMeteredFetch<F extends FetchLike>(meter: OutboundMeter, fetchImpl: F, defaults: OutboundCallOptions | undefined): F {
  const metered = function meteredFetch(input: unknown, init?: MeteredRequestInit): Promise<unknown> {
    let call: OutboundCall | undefined
    let watch: ChannelWatch | undefined
    let marker: string | undefined
    let forwardInit = init
    try {
      const request = typeof input === 'object' && input !== null && !(input instanceof URL) ? (input as RequestLike) : undefined
      const url = request !== undefined ? request.url : String(input)
      const given = init?.method ?? request?.method ?? 'GET'
      const method = UPPER_METHODS[given] ?? given.toUpperCase()
      const headers = requestHeaders(input, init)
      const body = init?.body
      const options = init?.apimeter === undefined ? defaults : defaults === undefined ? init.apimeter : { ...defaults, ...init.apimeter }
      call = meter.start({
        method,
        url,
        headers,
        requestBytes: bodySize(body, headers),
        requestBody: typeof body === 'string' || body instanceof Uint8Array ? body : null,
        options,
      })
      if (call !== undefined && !call.needsBody()) {
        if (!meter.listensForFetch) {
          meter.listensForFetch = true
          listenForFetch(meter)
        }
        const redirect = init?.redirect ?? (request as { redirect?: string } | undefined)?.redirect
        watch = new ChannelWatch(call, redirect === undefined || redirect === 'follow', init?.signal ?? (request as { signal?: AbortSignal } | undefined)?.signal)
      }
      if (call !== undefined && innerLayersActive()) {
        const outer = call
        marker = markCall({ servedFromCache: () => outer.servedFromCache() })
        forwardInit = withMarker(input, init, marker)
      }
      if (forwardInit !== undefined && forwardInit.apimeter !== undefined) {
        const { apimeter: _settings, ...rest } = forwardInit
        forwardInit = rest
      }
    } catch (error) {
      meter.failed('a fetch call could not be metered', error)
      call = undefined
      watch = undefined
      forwardInit = init
    }
    if (call === undefined) return fetchImpl(input, forwardInit)
    const started = call
    let pending: Promise<unknown>
    try {
      if (watch !== undefined) expectRequest(watch)
      pending = fetchImpl(input, forwardInit)
    } catch (error) {
      // A fetch that throws synchronously (a bad argument): the caller sees the same throw.
      expectRequest(undefined)
      started.fail(error)
      if (marker !== undefined) unmarkCall(marker)
      throw error
    }
    if (watch !== undefined && requestExpected()) {
      // No undici request came of this fetch call (not undici, or queued): its body is metered instead.
      expectRequest(undefined)
      watch = undefined
    }
    const watched = watch
    return pending.then(
      (response: unknown) => {
        if (marker !== undefined) unmarkCall(marker)
        try {
          const res = response as { status: number; headers: unknown }
          if (watched !== undefined && watched.settle(res)) return response
          started.response(res.status, toHeaderSource(res.headers))
          return meterResponse(response, started)
        } catch (error) {
          meter.failed('a fetch response could not be metered', error)
          started.end()
          return response
        }
      },
      (error: unknown) => {
        if (marker !== undefined) unmarkCall(marker)
        watched?.rejected()
        started.fail(error)
        throw error
      },
    )
  }
  return metered as unknown as F
}
