import { randomBytes } from 'node:crypto'
import { headerText, isHeaderName } from './headers.js'

/**
 * Counting a call once when several outbound layers are active (`monitor.fetch` over an undici dispatcher that has
 * `monitor.interceptor()`, with `monitor.instrument()` watching underneath).
 *
 * The outer layer meters the call and adds one request header, `x-apimeter-call: <id>`, naming it. An inner layer
 * that sees the header removes it before the request is sent (the undici interceptor and the undici diagnostics
 * channel can; `node:http` publishes its channel after the headers are written, so there the header goes out) and
 * does not meter the request again; it may pass what only it can see (an undici cache hit) to the outer call.
 *
 * Why a header and not AsyncLocalStorage: an async context costs every fetch about a sixth of its throughput on
 * Node 20, and a header also follows redirects (fetch copies it to each hop). The header is only added while an
 * inner layer exists (an interceptor was created or `instrument()` is on), so plain `monitor.fetch` sends the
 * request exactly as given.
 */
export const MARKER_HEADER = 'x-apimeter-call'

/** What an inner layer can tell the outer call. */
export interface OuterCall {
  /** Undici's cache interceptor answered: no request went out. */
  servedFromCache(): void
}

// Ids start with a random per-process prefix: a header forwarded from another process never matches a call here.
const PREFIX = randomBytes(4).toString('hex')
let sequence = 0
const open = new Map<string, OuterCall>()

let interceptors = 0
let instrumented = 0

/** Whether an inner layer may see requests (so outer layers must mark theirs). */
export function innerLayersActive(): boolean {
  return interceptors > 0 || instrumented > 0
}

/** Whether `instrument()` is on for some monitor. */
export function instrumentationActive(): boolean {
  return instrumented > 0
}

/** Counts an interceptor created (they cannot be un-created; the count only grows). */
export function interceptorCreated(): void {
  interceptors++
}

/** Counts `instrument()` switched on (+1) or off (-1). */
export function instrumentationChanged(delta: 1 | -1): void {
  instrumented = Math.max(0, instrumented + delta)
}

/** Registers an outer call and returns the header value that names it. */
export function markCall(call: OuterCall): string {
  const id = `${PREFIX}.${(++sequence).toString(36)}`
  open.set(id, call)
  return id
}

/** Forgets an outer call (when it is recorded). */
export function unmarkCall(id: string): void {
  open.delete(id)
}

/**
 * Looks up the outer call named by a marker header value. `undefined` means the value is not one of ours (then
 * the request is metered as usual).
 */
export function outerCall(id: string): OuterCall | undefined {
  return open.get(id)
}

/** Number of marked calls still open (for tests: every marked call is eventually forgotten). */
export function openMarkedCalls(): number {
  return open.size
}

/**
 * Finds the marker in headers of any shape (a flat `[name, value, …]` list, entries, a plain object) and returns
 * its value, or undefined.
 */
export function findMarker(headers: unknown): string | undefined {
  if (headers === null || headers === undefined) return undefined
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const pair of headers as unknown[][]) if (isMarkerName(pair[0])) return headerText(pair[1])
      return undefined
    }
    for (let i = 0; i + 1 < headers.length; i += 2) if (isMarkerName(headers[i])) return headerText(headers[i + 1])
    return undefined
  }
  if (typeof headers === 'string') {
    const at = headers.toLowerCase().indexOf(`${MARKER_HEADER}:`)
    if (at === -1) return undefined
    const end = headers.indexOf('\r\n', at)
    return headers.slice(at + MARKER_HEADER.length + 1, end === -1 ? undefined : end).trim()
  }
  if (typeof headers === 'object') {
    if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(MARKER_HEADER) ?? undefined
    for (const key of Object.keys(headers)) if (isMarkerName(key)) return headerText((headers as Record<string, unknown>)[key])
  }
  return undefined
}

/** The same headers without the marker, in the same shape (a new object or list; the input is not changed). */
export function withoutMarker<T>(headers: T): T {
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) return (headers as unknown[][]).filter((pair) => !isMarkerName(pair[0])) as T
    const out: unknown[] = []
    for (let i = 0; i + 1 < headers.length; i += 2) if (!isMarkerName(headers[i])) out.push(headers[i], headers[i + 1])
    return out as T
  }
  if (typeof headers === 'string') {
    return headers.replace(new RegExp(`(^|\\r\\n)${MARKER_HEADER}:[^\\r\\n]*\\r\\n`, 'i'), '$1') as T
  }
  if (headers && typeof headers === 'object') {
    if (typeof (headers as unknown as Headers).get === 'function') {
      const copy = new Headers(headers as unknown as Headers)
      copy.delete(MARKER_HEADER)
      return copy as T
    }
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(headers)) if (!isMarkerName(key)) out[key] = (headers as Record<string, unknown>)[key]
    return out as T
  }
  return headers
}

/** Removes the marker from a flat `[name, value, …]` list in place (undici's request object). */
export function stripMarkerInPlace(headers: unknown[]): void {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (isMarkerName(headers[i])) {
      headers.splice(i, 2)
      return
    }
  }
}

function isMarkerName(name: unknown): boolean {
  return isHeaderName(name, MARKER_HEADER)
}
