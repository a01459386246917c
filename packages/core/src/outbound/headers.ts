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
  /** Single headers read from the raw list so far, by a scan of its names (decoded whole after a few). */
  private scans = 0

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
   * A view over undici's raw list (`[name, value, …]` of Buffers or strings), never decoded whole unless many headers
   * are read: most calls read two or three request headers and no response header ({@link signals} looks at the
   * names alone). The list is kept as undici gave it; its Buffers are not reused.
   */
  static fromRaw(raw: readonly unknown[]): ObjectHeaders {
    const view = new ObjectHeaders(undefined, true)
    view.raw = raw
    return view
  }

  private get values(): Record<string, string> {
    return (this.store ??= decodeRaw(this.raw))
  }

  get(name: string): string | null {
    if (this.store === undefined && this.raw !== undefined && this.scans++ < RAW_SCANS) return findRaw(this.raw, name)
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
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const name = raw[i]
        found |= name instanceof Uint8Array ? byteNameSignals(name) : nameSignals(headerText(name).toLowerCase())
      }
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

/**
 * Whether a header name as undici or a caller gives it (text or bytes, any letter case) is `lower`, a lower-case
 * name; compared in place, without making a lower-cased copy (ASCII letters differ from their capitals only in bit
 * 0x20; header names are ASCII tokens).
 */
export function isHeaderName(name: unknown, lower: string): boolean {
  if (typeof name === 'string') {
    if (name.length !== lower.length) return false
    if (name === lower) return true
    for (let j = 0; j < lower.length; j++) if ((name.charCodeAt(j) | 0x20) !== lower.charCodeAt(j)) return false
    return true
  }
  if (name instanceof Uint8Array) return name.length === lower.length && holdsAt(name, 0, lower)
  return headerText(name).toLowerCase() === lower
}

/** How many single headers a raw view reads by scanning the names before it decodes the whole list. */
const RAW_SCANS = 4

/** The value of one header (`name` lower-case) in undici's raw list, repeated names joined; no other is decoded. */
function findRaw(raw: readonly unknown[], name: string): string | null {
  let found: string | null = null
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const entry = raw[i]
    if (!isHeaderName(entry, name)) continue
    const value = headerText(raw[i + 1])
    found = found === null ? value : `${found}, ${value}`
  }
  return found
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

const AGE = 'age'
const RETRY_AFTER = 'retry-after'
const CACHE = 'cache'
const RATELIMIT = 'ratelimit'
const C = CACHE.charCodeAt(0)
const R = RATELIMIT.charCodeAt(0)

/**
 * Whether the bytes of `name` hold the lower-case `text` at `at`, ASCII letters compared without case (0x20 is their
 * case bit; header names are ASCII tokens).
 */
function holdsAt(name: Uint8Array, at: number, text: string): boolean {
  if (at + text.length > name.length) return false
  for (let j = 0; j < text.length; j++) if ((name[at + j]! | 0x20) !== text.charCodeAt(j)) return false
  return true
}

/**
 * {@link nameSignals} of a name undici gives as bytes, read without making a string of it: most responses are
 * recorded without any header being read, and a string per name would be work for nothing.
 */
function byteNameSignals(name: Uint8Array): number {
  if (name.length === AGE.length && holdsAt(name, 0, AGE)) return CACHE_SIGNAL
  if (name.length === RETRY_AFTER.length && holdsAt(name, 0, RETRY_AFTER)) return RATE_LIMIT_SIGNAL
  let found = 0
  for (let at = 0; at + CACHE.length <= name.length; at++) {
    const letter = name[at]! | 0x20
    if (letter === C && holdsAt(name, at, CACHE)) found |= CACHE_SIGNAL
    else if (letter === R && holdsAt(name, at, RATELIMIT)) found |= RATE_LIMIT_SIGNAL
  }
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
