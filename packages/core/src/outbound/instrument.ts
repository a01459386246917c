import diagnostics from 'node:diagnostics_channel'
import type { ClientRequest, IncomingMessage } from 'node:http'
import { tapNodeStream } from './body.js'
import { ObjectHeaders, rawHeaders } from './headers.js'
import { findMarker, instrumentationChanged, MARKER_HEADER, outerCall, stripMarkerInPlace } from './marker.js'
import { isInternalTraffic } from './internal.js'
import { UPPER_METHODS } from '../call/normalize.js'
import type { OutboundCall, OutboundMeter } from './meter.js'

/**
 * `monitor.instrument()`: meters every request of undici (Node's global fetch and the undici package publish the
 * same `undici:request:*` channels) and of `node:http`/`node:https` clients (axios, got, node-fetch…) through
 * diagnostics channels. Nothing is patched globally; subscribing is all it takes, and unsubscribing undoes it.
 *
 * undici: `create` starts the call (and removes the marker of a request `monitor.fetch` or the interceptor already
 * meters), `headers` gives the status and headers, the request's `onData` is wrapped on that one request object to
 * count body bytes (Node 20's bundled undici has no per-chunk channel), `trailers` ends the call, `error` fails it.
 * node:http: `http.client.request.start` (published when the request has been sent) starts the call,
 * `http.client.response.finish` (the response headers arrived) taps the response stream, and
 * `http.client.request.error` fails it.
 *
 * The same undici handlers serve `monitor.fetch` (fetch.ts): a fetch call names a {@link RequestWatcher} just before
 * calling fetch, the `create` event that undici publishes synchronously inside that call hands the request to it, and
 * the request's later events go to the watcher. Those channels stay subscribed while a monitor whose `monitor.fetch`
 * was used is open.
 */

const CALLS = Symbol('apimeter.calls')
const WATCHER = Symbol('apimeter.watcher')
type UndiciRequest = {
  origin?: string
  path?: string
  method?: string
  headers?: unknown
  onData?: (chunk: Uint8Array) => unknown
  [CALLS]?: Calls
  [WATCHER]?: RequestWatcher
}

/** The calls of one request: one (a single metering monitor, the usual case: no array per request) or several. */
type Calls = OutboundCall | OutboundCall[]

/**
 * What one `monitor.fetch` call hears of the undici request its fetch created, through the same channels: the
 * response headers (`statusCode`, undici's raw header list), each body chunk undici receives, the end of the body
 * (`trailers`: every byte has arrived) or an error. Implementations never throw.
 */
export interface RequestWatcher {
  headers(statusCode: number, headers: unknown[]): void
  data(chunk: Uint8Array): void
  trailers(): void
  error(error: unknown): void
}
type HttpRequest = ClientRequest & { [CALLS]?: OutboundCall[]; res?: IncomingMessage | null }

const meters = new Set<OutboundMeter>()
/** Meters whose `monitor.fetch` listens to undici's channels (until their monitor closes). */
const fetchMeters = new Set<OutboundMeter>()
let undiciSubscribed = false
let httpSubscribed = false
/** The watcher the next undici request created (synchronously, inside the fetch call) reports to. */
let expected: RequestWatcher | undefined

const UNDICI = {
  create: 'undici:request:create',
  headers: 'undici:request:headers',
  trailers: 'undici:request:trailers',
  error: 'undici:request:error',
} as const
const HTTP = {
  start: 'http.client.request.start',
  response: 'http.client.response.finish',
  error: 'http.client.request.error',
} as const

/** The undici channels with their handlers (built on first use: the handlers are defined below). */
function undiciSubscriptions(): [string, (message: unknown) => void][] {
  return [
    [UNDICI.create, onUndiciCreate],
    [UNDICI.headers, onUndiciHeaders],
    [UNDICI.trailers, onUndiciTrailers],
    [UNDICI.error, onUndiciError],
  ]
}

/** The node:http channels with their handlers (only `instrument()` listens to them). */
function httpSubscriptions(): [string, (message: unknown) => void][] {
  return [
    [HTTP.start, onHttpStart],
    [HTTP.response, onHttpResponse],
    [HTTP.error, onHttpError],
  ]
}

/** Subscribes to (or unsubscribes from) each group of channels as the meters using them come and go. */
function resubscribe(): void {
  const undici = meters.size > 0 || fetchMeters.size > 0
  if (undici !== undiciSubscribed) {
    undiciSubscribed = undici
    for (const [channel, handler] of undiciSubscriptions()) {
      if (undici) diagnostics.subscribe(channel, handler)
      else diagnostics.unsubscribe(channel, handler)
    }
  }
  const http = meters.size > 0
  if (http !== httpSubscribed) {
    httpSubscribed = http
    for (const [channel, handler] of httpSubscriptions()) {
      if (http) diagnostics.subscribe(channel, handler)
      else diagnostics.unsubscribe(channel, handler)
    }
  }
}

/** Switches instrumentation on for a meter. Returns false when it already was. */
export function instrument(meter: OutboundMeter): boolean {
  if (meters.has(meter)) return false
  meters.add(meter)
  instrumentationChanged(1)
  resubscribe()
  return true
}

/** Switches instrumentation off for a meter (calls in flight still finish). Returns false when it was off. */
export function uninstrument(meter: OutboundMeter): boolean {
  if (!meters.delete(meter)) return false
  instrumentationChanged(-1)
  resubscribe()
  return true
}

/**
 * Lets a meter's `monitor.fetch` hear undici's channels (subscribed once, kept while the meter is open: subscribing
 * per call would cost more than the call's metering).
 */
export function listenForFetch(meter: OutboundMeter): void {
  if (fetchMeters.has(meter)) return
  fetchMeters.add(meter)
  resubscribe()
}

/** The meter's monitor is closing: its `monitor.fetch` no longer needs the channels. */
export function stopListeningForFetch(meter: OutboundMeter): void {
  if (fetchMeters.delete(meter)) resubscribe()
}

/**
 * Names the watcher of the next undici request (`undefined`: none). Undici creates a request synchronously inside
 * the `fetch()` call that asks for it, so `monitor.fetch` names its watcher just before calling fetch and takes the
 * name back just after; when no request was created in between (a fetch that is not undici, a pool that queued the
 * request), {@link requestExpected} tells, and the caller meters the response another way.
 */
export function expectRequest(watcher: RequestWatcher | undefined): void {
  expected = watcher
}

/** Whether the watcher named by {@link expectRequest} is still waiting (no undici request took it). */
export function requestExpected(): boolean {
  return expected !== undefined
}

/** Whether a meter is instrumenting. */
export function isInstrumented(meter: OutboundMeter): boolean {
  return meters.has(meter)
}

function startAll(method: string, url: string, headers: ObjectHeaders, requestBytes: number | null): Calls | undefined {
  let calls: Calls | undefined
  for (const meter of meters) {
    const call = meter.start({ method, url, headers, requestBytes, requestBody: null, options: undefined })
    if (call === undefined) continue
    if (calls === undefined) calls = call
    else if (Array.isArray(calls)) calls.push(call)
    else calls = [calls, call]
  }
  return calls
}

function guard<M>(handler: (message: M) => void): (message: unknown) => void {
  return (message) => {
    try {
      handler(message as M)
    } catch (error) {
      for (const meter of meters) meter.failed('a diagnostics-channel event could not be metered', error)
    }
  }
}

// ---- undici ------------------------------------------------------------------------------------------------------

const onUndiciCreate = guard<{ request: UndiciRequest }>(({ request }) => {
  const watcher = expected
  if (watcher !== undefined) {
    expected = undefined
    request[WATCHER] = watcher
    // An own property on this one request object, shared function: no closure per request.
    if (typeof request.onData === 'function') request.onData = meteredOnData
  }
  if (meters.size > 0) instrumentedCreate(request)
})

function instrumentedCreate(request: UndiciRequest): void {
  if (isInternalTraffic()) return // apimeter's own notifications
  const headers = request.headers
  const marker = findMarker(headers)
  if (marker !== undefined) {
    if (Array.isArray(headers)) stripMarkerInPlace(headers)
    else if (typeof headers === 'string') request.headers = headers.replace(new RegExp(`(^|\\r\\n)${MARKER_HEADER}:[^\\r\\n]*\\r\\n`, 'i'), '$1')
    if (outerCall(marker) !== undefined) return // metered by monitor.fetch or the interceptor
  }
  const view = Array.isArray(headers) ? rawHeaders(headers) : new ObjectHeaders(undefined)
  const length = view.get('content-length')
  const method = request.method ?? 'GET'
  const calls = startAll(UPPER_METHODS[method] ?? method.toUpperCase(), urlOf(request.origin ?? '', request.path ?? '/'), view, length === null ? null : Number.parseInt(length, 10) || 0)
  if (calls === undefined) return
  request[CALLS] = calls
  if (typeof request.onData === 'function' && request.onData !== meteredOnData) request.onData = meteredOnData
}

/** The URLs of requests seen lately, by origin and path: one string per URL, not a new one per request. */
const urls = new Map<string, Map<string, string>>()
let urlCount = 0
const MAX_URLS = 1000

function urlOf(origin: string, path: string): string {
  const known = urls.get(origin)?.get(path)
  if (known !== undefined) return known
  const url = origin + path
  if (path.length > 512) return url // a long one-off (a query string full of data): not kept
  if (urlCount >= MAX_URLS) {
    urls.clear()
    urlCount = 0
  }
  let paths = urls.get(origin)
  if (paths === undefined) urls.set(origin, (paths = new Map<string, string>()))
  paths.set(path, url)
  urlCount++
  return url
}

function meteredOnData(this: UndiciRequest, chunk: Uint8Array): unknown {
  this[WATCHER]?.data(chunk)
  const calls = this[CALLS]
  if (Array.isArray(calls)) for (const call of calls) call.chunk(chunk)
  else calls?.chunk(chunk)
  // The class method, found on the prototype past the own property.
  return (Object.getPrototypeOf(this) as UndiciRequest).onData!.call(this, chunk)
}

const onUndiciHeaders = guard<{ request: UndiciRequest; response: { statusCode: number; headers: unknown } }>(({ request, response }) => {
  request[WATCHER]?.headers(response.statusCode, response.headers as unknown[])
  const calls = request[CALLS]
  if (calls === undefined) return
  const headers = rawHeaders(response.headers as unknown[])
  if (Array.isArray(calls)) {
    for (const call of calls) {
      call.response(response.statusCode, headers)
      call.watchBody()
    }
  } else {
    calls.response(response.statusCode, headers)
    calls.watchBody()
  }
})

// The end of a request lets go of what it held for metering: undici keeps a finished request object alive for a
// while, and a call (with the response's raw header list) held from it would survive young-generation GCs with it and
// be promoted to the old generation — about 2 KB of promoted objects per request, measured, for nothing.
function takeWatcher(request: UndiciRequest): RequestWatcher | undefined {
  const watcher = request[WATCHER]
  if (watcher !== undefined) request[WATCHER] = undefined
  return watcher
}

function takeCalls(request: UndiciRequest): Calls | undefined {
  const calls = request[CALLS]
  if (calls !== undefined) request[CALLS] = undefined
  return calls
}

const onUndiciTrailers = guard<{ request: UndiciRequest }>(({ request }) => {
  takeWatcher(request)?.trailers()
  const calls = takeCalls(request)
  if (Array.isArray(calls)) for (const call of calls) call.endSoon()
  else calls?.endSoon()
})

const onUndiciError = guard<{ request: UndiciRequest; error: unknown }>(({ request, error }) => {
  takeWatcher(request)?.error(error)
  const calls = takeCalls(request)
  if (Array.isArray(calls)) for (const call of calls) call.fail(error)
  else calls?.fail(error)
})

// ---- node:http ---------------------------------------------------------------------------------------------------

const onHttpStart = guard<{ request: HttpRequest }>(({ request }) => {
  if (isInternalTraffic()) return // apimeter's own notifications
  // The headers are already written when this channel runs: a marked request (metered by monitor.fetch around a
  // node:http based fetch) is only skipped.
  const marker = findMarker(request.getHeader(MARKER_HEADER) === undefined ? undefined : { [MARKER_HEADER]: request.getHeader(MARKER_HEADER) })
  if (marker !== undefined && outerCall(marker) !== undefined) return
  const host = request.getHeader('host') ?? request.host
  const url = `${request.protocol ?? 'http:'}//${String(host)}${request.path}`
  const headers = new ObjectHeaders(request.getHeaders())
  const length = headers.get('content-length')
  const started = startAll(request.method.toUpperCase(), url, headers, length === null ? null : Number.parseInt(length, 10) || 0)
  if (started === undefined) return
  const calls = Array.isArray(started) ? started : [started]
  request[CALLS] = calls
  // A request that closes without a response and without an error event on the channel (older Node versions).
  request.once('close', () => {
    for (const call of calls) if (!call.done && !request.res) call.fail(Object.assign(new Error('the connection closed before a response arrived'), { code: 'ECONNRESET' }))
  })
})

const onHttpResponse = guard<{ request: HttpRequest; response: IncomingMessage }>(({ request, response }) => {
  const calls = request[CALLS]
  if (calls === undefined) return
  const headers = new ObjectHeaders(response.headers)
  for (const call of calls) call.response(response.statusCode ?? 0, headers)
  tapNodeStream(response, calls)
})

const onHttpError = guard<{ request: HttpRequest; error: unknown }>(({ request, error }) => {
  // A request that failed before it was sent (refused connection, DNS) never published its start: start it now.
  if (request[CALLS] === undefined) onHttpStart({ request })
  const calls = request[CALLS]
  if (calls !== undefined) for (const call of calls) call.fail(error)
})
