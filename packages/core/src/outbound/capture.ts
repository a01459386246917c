import { isSensitiveName } from '../call/route.js'
import type { HeaderSource } from './headers.js'

/**
 * What to store besides the call's fields. Off by default: no header or body is stored unless switched on here.
 * Whatever is stored is masked (authorization, cookies, API keys, tokens, secrets, passwords) and capped, and
 * lands in the call's `metadata` (8 KiB at most).
 *
 * @example
 * ```ts
 * createMonitor({ outbound: { capture: { responseHeaders: true, responseBody: true, maxBodyBytes: 512 } } })
 * ```
 */
export interface CaptureOptions {
  /** Store request headers (masked). @default false */
  requestHeaders?: boolean
  /** Store response headers (masked). @default false */
  responseHeaders?: boolean
  /** Store the start of request bodies given as text, bytes or form data (masked). @default false */
  requestBody?: boolean
  /** Store the start of response bodies (masked). @default false */
  responseBody?: boolean
  /** Most bytes of a body stored (64 … 1536). @default 1024 */
  maxBodyBytes?: number
  /** More header, JSON field or form field names to mask, besides the built-in ones. @default [] */
  mask?: string[]
}

/** Capture options with defaults applied. */
export interface ResolvedCapture {
  requestHeaders: boolean
  responseHeaders: boolean
  requestBody: boolean
  responseBody: boolean
  maxBodyBytes: number
  mask: ReadonlySet<string>
}

export const MASK = '***'
const MAX_HEADERS_CHARS = 2048
const MAX_HEADER_VALUE = 256

/** Applies defaults. */
export function resolveCapture(options: CaptureOptions | undefined): ResolvedCapture | null {
  if (!options) return null
  const resolved = {
    requestHeaders: options.requestHeaders ?? false,
    responseHeaders: options.responseHeaders ?? false,
    requestBody: options.requestBody ?? false,
    responseBody: options.responseBody ?? false,
    maxBodyBytes: options.maxBodyBytes ?? 1024,
    mask: new Set((options.mask ?? []).map((m) => m.toLowerCase())),
  }
  return resolved.requestHeaders || resolved.responseHeaders || resolved.requestBody || resolved.responseBody ? resolved : null
}

function sensitive(name: string, extra: ReadonlySet<string>): boolean {
  return isSensitiveName(name) || extra.has(name.toLowerCase())
}

/**
 * Headers as a plain object with secrets masked and the total size capped.
 *
 * @example
 * ```ts
 * maskHeaders(new Headers({ authorization: 'Bearer sk-…', accept: 'application/json' }), new Set())
 * // { authorization: '***', accept: 'application/json' }
 * ```
 */
export function maskHeaders(headers: HeaderSource, extra: ReadonlySet<string>): Record<string, string> {
  const out: Record<string, string> = {}
  let size = 2
  for (const [name, value] of headers.entries()) {
    const shown = sensitive(name, extra) ? MASK : maskSecrets(value.length > MAX_HEADER_VALUE ? `${value.slice(0, MAX_HEADER_VALUE - 1)}…` : value)
    size += name.length + shown.length + 6
    if (size > MAX_HEADERS_CHARS) {
      out['…'] = 'truncated'
      break
    }
    out[name] = shown
  }
  return out
}

/** Secrets that look like secrets wherever they appear: bearer tokens and provider API keys. */
export function maskSecrets(text: string): string {
  return text
    .replace(/\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${MASK}`)
    .replace(/\b(sk|pk|rk)[-_](?:live[-_]|test[-_]|proj[-_]|ant[-_])?[A-Za-z0-9_-]{12,}/g, MASK)
}

/**
 * The start of a body, masked: JSON fields and form fields with sensitive names become `***`, then bearer tokens
 * and API keys anywhere. `truncated` says the body went on past what is kept.
 */
export function maskBody(text: string, truncated: boolean, extra: ReadonlySet<string>): string {
  let out = text
  const trimmed = text.trimStart()
  if (!truncated && (trimmed.startsWith('{') || trimmed.startsWith('['))) {
    try {
      out = JSON.stringify(maskJson(JSON.parse(text), extra))
    } catch {
      out = maskJsonText(text, extra)
    }
  } else if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    out = maskJsonText(text, extra)
  } else if (/^[^=&\s]+=[^&]*(&[^=&\s]+=[^&]*)*$/.test(trimmed)) {
    out = trimmed
      .split('&')
      .map((pair) => {
        const eq = pair.indexOf('=')
        return eq !== -1 && sensitive(safeDecode(pair.slice(0, eq)), extra) ? `${pair.slice(0, eq)}=${MASK}` : pair
      })
      .join('&')
  }
  out = maskSecrets(out)
  return truncated ? `${out}…` : out
}

function maskJson(value: unknown, extra: ReadonlySet<string>): unknown {
  if (Array.isArray(value)) return value.map((v) => maskJson(v, extra))
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = sensitive(k, extra) && v !== null && typeof v !== 'object' ? MASK : maskJson(v, extra)
    return out
  }
  // JSON carried inside a string (an echoed request, a serialised payload) is masked too.
  if (typeof value === 'string' && /^\s*[[{]/.test(value)) {
    try {
      return JSON.stringify(maskJson(JSON.parse(value), extra))
    } catch {
      return maskJsonText(value, extra)
    }
  }
  return value
}

/** For JSON cut mid-way: masks `"name": "value"` / `"name": 123` pairs with sensitive names. */
function maskJsonText(text: string, extra: ReadonlySet<string>): string {
  return text.replace(/"([^"\\]{1,100})"(\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]+)/g, (all, name: string, colon: string) =>
    sensitive(name, extra) ? `"${name}"${colon}"${MASK}"` : all,
  )
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '))
  } catch {
    return value
  }
}

/** Collects the first `max` bytes of a body from its chunks. */
export class BodyPrefix {
  private readonly chunks: Uint8Array[] = []
  private bytes = 0
  truncated = false

  constructor(private readonly max: number) {}

  push(chunk: Uint8Array): void {
    if (this.bytes >= this.max) {
      if (chunk.byteLength > 0) this.truncated = true
      return
    }
    const room = this.max - this.bytes
    if (chunk.byteLength > room) this.truncated = true
    const part = chunk.slice(0, Math.min(room, chunk.byteLength))
    this.chunks.push(part)
    this.bytes += part.byteLength
  }

  /** The collected bytes as text (a cut multi-byte character is dropped). */
  text(): string {
    return new TextDecoder().decode(Buffer.concat(this.chunks))
  }
}
