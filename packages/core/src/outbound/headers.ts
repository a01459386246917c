/**
 * One read-only view over the header shapes the outbound integrations meet: fetch `Headers`, Node/undici header
 * objects (`{ name: value | value[] }`) and undici's raw arrays (`[name, value, name, value]` of Buffers or
 * strings). Names are looked up lower-case.
 */
export interface HeaderSource {
  /** The value of a header (several values joined with `, `), or null. `name` is lower-case. */
  get(name: string): string | null
  /** Every header as `[lower-case name, value]`. */
  entries(): IterableIterator<[string, string]>
}

type HeaderValue = string | string[] | number | undefined | null

/** {@link ObjectHeaders.signals}: a cache header (`cache-control`, `x-cache`, `age`…) is present. */
export const CACHE_SIGNAL = 1
/** {@link ObjectHeaders.signals}: a rate-limit header (`x-ratelimit-…`, `retry-after`…) is present. */
export const RATE_LIMIT_SIGNAL = 2

/** A {@link HeaderSource} over a plain object of headers (names in any case), or over undici's raw list. */
export class ObjectHeaders implements HeaderSource {
  /** Lower-case names to text values; undefined until a raw list is first read. */
  private store: Record<string, string> | undefined
  /** Undici's raw list, decoded into `store` on first use. */
  private raw: readonly unknown[] | undefined = undefined
  private found = -1

  /** `lowerCased`: `headers` is already a null-prototype object of lower-case names and text values (kept as is). */
  constructor(headers: Record<string, HeaderValue> | null | undefined, lowerCased = false, signals = -1) {
    if (lowerCased) {
      this.store = headers as Record<string, string> | undefined
      this.found = signals
      return
    }
    const values: Record<string, string> = Object.create(null) as Record<string, string>
    if (headers) {
      for (const key of Object.keys(headers)) {
        const value = headers[key]
        if (value === undefined || value === null) continue
        const name = key.toLowerCase()
        const text = Array.isArray(value) ? value.join(', ') : String(value)
        values[name] = values[name] === undefined ? text : `${values[name]}, ${text}`
      }
    }
    this.store = values
  }

  /**
   * A view over undici's raw list (`[name, value, …]` of Buffers or strings), decoded only when a header is read:
   * most responses are recorded without reading any ({@link signals} looks at the names alone).
   */
  static fromRaw(raw: readonly unknown[]): ObjectHeaders {
    const view = new ObjectHeaders(undefined, true)
    view.raw = raw
    // A response with cache or rate-limit headers has them read when it is recorded: decoded now, while the list is
    // fresh. Names are read either way.
    if (view.signals() !== 0) view.store = decodeRaw(raw)
    return view
  }

  private get values(): Record<string, string> {
    return (this.store ??= decodeRaw(this.raw))
  }

  get(name: string): string | null {
    return this.values[name] ?? null
  }

  /**
   * Which kinds of header are present, found in one pass over the names (most responses carry none, so their cache
   * and rate-limit rules are skipped): {@link CACHE_SIGNAL} for a name containing `cache` or `age`,
   * {@link RATE_LIMIT_SIGNAL} for one containing `ratelimit` or `retry-after`.
   */
  signals(): number {
    if (this.found >= 0) return this.found
    let found = 0
    const raw = this.raw
    if (this.store === undefined && raw !== undefined) {
      for (let i = 0; i + 1 < raw.length; i += 2) found |= nameSignals(headerText(raw[i]).toLowerCase())
    } else for (const name of Object.keys(this.values)) found |= nameSignals(name)
    this.found = found
    return found
  }

  *entries(): IterableIterator<[string, string]> {
    const values = this.values
    for (const name of Object.keys(values)) yield [name, values[name]!]
  }
}

/** A {@link HeaderSource} over undici's raw header list, decoded when first read. */
export function rawHeaders(raw: readonly unknown[] | null | undefined): ObjectHeaders {
  return ObjectHeaders.fromRaw(raw ?? [])
}

/** Undici's raw list as lower-case names to values (repeated names joined the way HTTP folds them). */
function decodeRaw(raw: readonly unknown[] | undefined): Record<string, string> {
  const values: Record<string, string> = Object.create(null) as Record<string, string>
  if (raw) {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = headerText(raw[i]).toLowerCase()
      const joined = headerText(raw[i + 1])
      const previous = values[name]
      values[name] = previous === undefined ? joined : `${previous}, ${joined}`
    }
  }
  return values
}

/** The {@link ObjectHeaders.signals} bits of one lower-case header name. */
function nameSignals(name: string): number {
  let found = 0
  if (name === 'age' || name.includes('cache')) found |= CACHE_SIGNAL
  if (name === 'retry-after' || name.includes('ratelimit')) found |= RATE_LIMIT_SIGNAL
  return found
}

/** A raw header name or value as text (undici gives bytes; a list is joined the way HTTP folds it). */
export function headerText(value: unknown): string {
  if (typeof value === 'string') return value
  if (Buffer.isBuffer(value)) return value.toString('latin1')
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1')
  if (Array.isArray(value)) return value.map(headerText).join(', ')
  return typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' ? String(value) : ''
}

/** Wraps whatever a caller hands us (fetch Headers, an object, a raw array, entries) as a {@link HeaderSource}. */
export function toHeaderSource(headers: unknown): HeaderSource {
  if (headers === null || headers === undefined) return EMPTY_HEADERS
  if (typeof (headers as Headers).get === 'function' && typeof (headers as Headers).entries === 'function') {
    return headers as HeaderSource
  }
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      return new ObjectHeaders(Object.fromEntries((headers as [string, string][]).map(([k, v]) => [k, v])))
    }
    return rawHeaders(headers)
  }
  if (typeof headers === 'object') return new ObjectHeaders(headers as Record<string, HeaderValue>)
  return EMPTY_HEADERS
}

/** No headers. */
export const EMPTY_HEADERS: HeaderSource = new ObjectHeaders(undefined)

/** A header value parsed as a whole number >= 0, or null. */
export function headerInt(headers: HeaderSource, name: string): number | null {
  const value = headers.get(name)
  if (value === null) return null
  const n = Number(value.trim())
  return Number.isSafeInteger(n) && n >= 0 ? n : null
}

/**
 * A plain-object copy of headers, for a response whose headers are read many times (cost, cache and rate-limit
 * rules): one pass over a fetch `Headers` is cheaper than a couple of dozen `get()` calls through its checks.
 */
export function lookupHeaders(headers: HeaderSource): ObjectHeaders {
  if (headers instanceof ObjectHeaders) return headers
  const values: Record<string, string> = {}
  const each = (headers as unknown as Headers).forEach
  if (typeof each === 'function') {
    ;(headers as unknown as Headers).forEach((value, name) => {
      values[name] = value
    })
  } else for (const [name, value] of headers.entries()) values[name] = value
  return new ObjectHeaders(values)
}
