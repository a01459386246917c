import { bodySize } from './fetch.js'
import { type HeaderSource, ObjectHeaders, toHeaderSource } from './headers.js'
import { findMarker, instrumentationActive, interceptorCreated, MARKER_HEADER, markCall, outerCall, unmarkCall, withoutMarker } from './marker.js'
import { isInternalTraffic } from './internal.js'
import type { OutboundCall, OutboundMeter } from './meter.js'

/**
 * The undici 7 dispatcher interceptor (`agent.compose(monitor.interceptor())`). Types are structural so that core
 * does not depend on undici.
 */

/** The options undici passes to `dispatch()` (the fields read here). */
export interface DispatchOptions {
  origin?: string | URL
  path: string
  method: string
  headers?: unknown
  body?: unknown
}

/** An undici dispatch handler: the controller API of undici 7 and/or the older callback API. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type DispatchHandler = Record<string, any>

/** `dispatch(opts, handler)`; loosely typed so that it fits every undici version's own types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Dispatch = (opts: any, handler: any) => boolean

/** A handler's callbacks as the wrappers below call them (every one optional: undici versions differ). */
type HandlerMethods = Partial<Record<string, (...args: unknown[]) => unknown>>

/** An undici interceptor: takes the next `dispatch`, returns one that meters. */
export type Interceptor = (dispatch: Dispatch) => Dispatch


/** The undici cache interceptor answers with a plain controller object and an `age` header; the network never does. */
function fromUndiciCache(controller: unknown, headers: HeaderSource): boolean {
  return typeof controller === 'object' && controller !== null && Object.getPrototypeOf(controller) === Object.prototype && headers.get('age') !== null
}

function originOf(opts: DispatchOptions): string {
  const origin = opts.origin
  if (origin === undefined) return ''
  const text = typeof origin === 'string' ? origin : origin.origin
  return text.endsWith('/') ? text.slice(0, -1) : text
}

/** Builds the interceptor of one monitor. */
export function createInterceptor(meter: OutboundMeter): Interceptor {
  interceptorCreated()
  return (dispatch: Dispatch): Dispatch =>
    function meteredDispatch(opts: DispatchOptions, handler: DispatchHandler): boolean {
      if (isInternalTraffic()) return dispatch(opts, handler) // apimeter's own notifications
      let call: OutboundCall | undefined
      let forward = opts
      let outer: ReturnType<typeof outerCall>
      let marker: string | undefined
      try {
        const found = findMarker(opts.headers)
        if (found !== undefined) {
          // Already metered by monitor.fetch: do not count it again. The marker goes on down while instrument()
          // may see the request (its undici channel removes it); otherwise it is removed here.
          outer = outerCall(found)
          if (outer === undefined || !instrumentationActive()) forward = { ...opts, headers: withoutMarker(opts.headers) }
        }
        if (outer === undefined) {
          const headers = toHeaderSource(forward.headers)
          call = meter.start({
            method: (opts.method ?? 'GET').toUpperCase(),
            url: originOf(opts) + opts.path,
            headers,
            requestBytes: bodySize(opts.body, headers),
            requestBody: typeof opts.body === 'string' || opts.body instanceof Uint8Array ? opts.body : null,
            options: undefined,
          })
          if (call !== undefined && instrumentationActive()) {
            // instrument() sees this request below: name it so it is counted here only.
            const metered = call
            marker = markCall({ servedFromCache: () => metered.servedFromCache() })
            forward = { ...forward, headers: addMarker(forward.headers, marker) }
          }
        }
      } catch (error) {
        meter.failed('an undici request could not be metered', error)
        call = undefined
      }
      if (call === undefined && outer === undefined) return dispatch(forward, handler)
      const observer: Observer = call !== undefined ? new CallObserver(call, marker) : new CacheObserver(outer!)
      const wrapped = typeof handler.onRequestStart === 'function' ? new MeteredHandler(handler, observer) : new MeteredLegacyHandler(handler, observer)
      try {
        return dispatch(forward, wrapped)
      } catch (error) {
        observer.error(error)
        throw error
      }
    }
}

function addMarker(headers: unknown, id: string): unknown {
  if (headers === undefined || headers === null) return { [MARKER_HEADER]: id }
  if (Array.isArray(headers)) {
    const list = headers as unknown[]
    return list.length > 0 && Array.isArray(list[0]) ? [...list, [MARKER_HEADER, id]] : [...list, MARKER_HEADER, id]
  }
  if (typeof (headers as Headers).entries === 'function') return [...(headers as Headers).entries(), [MARKER_HEADER, id]]
  return { ...(headers as Record<string, unknown>), [MARKER_HEADER]: id }
}

/** What the metered handler reports to. */
interface Observer {
  start(controller: unknown, statusCode: number, headers: HeaderSource): void
  data(chunk: Uint8Array): void
  end(): void
  error(error: unknown): void
}

class CallObserver implements Observer {
  constructor(
    private readonly call: OutboundCall,
    private readonly marker: string | undefined,
  ) {}

  start(controller: unknown, statusCode: number, headers: HeaderSource): void {
    if (fromUndiciCache(controller, headers)) this.call.servedFromCache()
    this.call.response(statusCode, headers)
    this.call.watchBody()
  }

  data(chunk: Uint8Array): void {
    this.call.chunk(chunk)
  }

  end(): void {
    this.forget()
    this.call.end()
  }

  error(error: unknown): void {
    this.forget()
    this.call.fail(error)
  }

  private forget(): void {
    if (this.marker !== undefined) unmarkCall(this.marker)
  }
}

/** For a request monitor.fetch already meters: only tells it about undici cache hits. */
class CacheObserver implements Observer {
  constructor(private readonly outer: { servedFromCache(): void }) {}
  start(controller: unknown, _statusCode: number, headers: HeaderSource): void {
    if (fromUndiciCache(controller, headers)) this.outer.servedFromCache()
  }
  data(): void {}
  end(): void {}
  error(): void {}
}

/**
 * Wraps a handler of undici 7's controller API. Every callback is forwarded explicitly (spreading a handler
 * object would drop the methods of its prototype); observer errors never reach undici.
 */
class MeteredHandler {
  constructor(
    private readonly handler: HandlerMethods,
    private readonly observer: Observer,
  ) {}

  onRequestStart(controller: unknown, context: unknown): void {
    this.handler.onRequestStart?.(controller, context)
  }

  onRequestUpgrade(controller: unknown, statusCode: number, headers: unknown, socket: unknown): void {
    upgraded(this.observer, controller, statusCode, headers)
    this.handler.onRequestUpgrade?.(controller, statusCode, headers, socket)
  }

  onResponseStart(controller: unknown, statusCode: number, headers: unknown, statusMessage?: string): void {
    safely(() => this.observer.start(controller, statusCode, new ObjectHeaders(headers as Record<string, string>)))
    this.handler.onResponseStart?.(controller, statusCode, headers, statusMessage)
  }

  onResponseData(controller: unknown, chunk: Uint8Array): void {
    safely(() => this.observer.data(chunk))
    this.handler.onResponseData?.(controller, chunk)
  }

  onResponseEnd(controller: unknown, trailers: unknown): void {
    safely(() => this.observer.end())
    this.handler.onResponseEnd?.(controller, trailers)
  }

  onResponseError(controller: unknown, error: unknown): void {
    safely(() => this.observer.error(error))
    this.handler.onResponseError?.(controller, error)
  }
}

/** Wraps a handler of undici's older callback API (used when the interceptor is called outside `compose()`). */
class MeteredLegacyHandler {
  constructor(
    private readonly handler: HandlerMethods,
    private readonly observer: Observer,
  ) {}

  onConnect(abort: unknown, context: unknown): unknown {
    return this.handler.onConnect?.(abort, context)
  }

  onResponseStarted(): unknown {
    return this.handler.onResponseStarted?.()
  }

  onBodySent(chunk: unknown): unknown {
    return this.handler.onBodySent?.(chunk)
  }

  onRequestSent(): unknown {
    return this.handler.onRequestSent?.()
  }

  onUpgrade(statusCode: number, rawHeaders: unknown, socket: unknown): unknown {
    upgraded(this.observer, undefined, statusCode, rawHeaders)
    return this.handler.onUpgrade?.(statusCode, rawHeaders, socket)
  }

  onHeaders(statusCode: number, rawHeaders: unknown, resume: unknown, statusText: string): unknown {
    safely(() => this.observer.start(undefined, statusCode, toHeaderSource(rawHeaders)))
    return this.handler.onHeaders?.(statusCode, rawHeaders, resume, statusText)
  }

  onData(chunk: Uint8Array): unknown {
    safely(() => this.observer.data(chunk))
    return this.handler.onData?.(chunk)
  }

  onComplete(trailers: unknown): unknown {
    safely(() => this.observer.end())
    return this.handler.onComplete?.(trailers)
  }

  onError(error: unknown): unknown {
    safely(() => this.observer.error(error))
    return this.handler.onError?.(error)
  }
}

/** An upgraded connection (WebSocket, CONNECT) ends the HTTP call at its response headers. */
function upgraded(observer: Observer, controller: unknown, statusCode: number, headers: unknown): void {
  safely(() => {
    observer.start(controller, statusCode, toHeaderSource(headers))
    observer.end()
  })
}

function safely(fn: () => void): void {
  try {
    fn()
  } catch {
    // Metering must never break a request; OutboundCall reports its own failures.
  }
}

