import { meterResponse } from './body.js'
import { type HeaderSource, toHeaderSource } from './headers.js'
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

/**
 * Wraps a fetch implementation so every call through it is metered. The response the application gets is the
 * same (status, headers, body bytes, `url`, `redirected`); its body is counted as it is read. Errors are the
 * fetch's own, rethrown unchanged.
 */
export function createMeteredFetch<F extends FetchLike>(meter: OutboundMeter, fetchImpl: F, defaults: OutboundCallOptions | undefined): F {
  const metered = function meteredFetch(input: unknown, init?: MeteredRequestInit): Promise<unknown> {
    let call: OutboundCall | undefined
    let marker: string | undefined
    let forwardInit = init
    try {
      const request = typeof input === 'object' && input !== null && !(input instanceof URL) ? (input as RequestLike) : undefined
      const url = request !== undefined ? request.url : String(input)
      const method = (init?.method ?? request?.method ?? 'GET').toUpperCase()
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
      forwardInit = init
    }
    if (call === undefined) return fetchImpl(input, forwardInit)
    const started = call
    let pending: Promise<unknown>
    try {
      pending = fetchImpl(input, forwardInit)
    } catch (error) {
      // A fetch that throws synchronously (a bad argument): the caller sees the same throw.
      started.fail(error)
      if (marker !== undefined) unmarkCall(marker)
      throw error
    }
    return pending.then(
      (response: unknown) => {
        if (marker !== undefined) unmarkCall(marker)
        try {
          const res = response as { status: number; headers: unknown }
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
        started.fail(error)
        throw error
      },
    )
  }
  return metered as unknown as F
}
