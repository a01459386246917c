import type { RateLimitInfo } from '../call/types.js'
import type { HeaderSource } from './headers.js'

interface Window {
  limit: number | null
  remaining: number | null
  resetMs: number | null
  scope: string
}

/**
 * Reads the rate-limit headroom a response reports and returns the tightest window (the lowest share left), or
 * null when it reports none. Understands OpenAI `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, Anthropic
 * `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`, the IETF
 * `RateLimit` / `RateLimit-Policy` fields (structured drafts and the older `limit=, remaining=, reset=` form),
 * `RateLimit-Limit/-Remaining/-Reset`, `X-RateLimit-Limit/-Remaining/-Reset` (reset as seconds, epoch seconds or
 * epoch ms) and `Retry-After`.
 *
 * @example
 * ```ts
 * parseRateLimit(new Headers({ 'x-ratelimit-limit-requests': '500', 'x-ratelimit-remaining-requests': '499',
 *   'x-ratelimit-reset-requests': '120ms' }), Date.now())
 * // { limit: 500, remaining: 499, resetMs: 120, scope: 'requests' }
 * ```
 */
export function parseRateLimit(headers: HeaderSource, now: number, statusCode?: number): RateLimitInfo | null {
  const windows: Window[] = []
  for (const scope of ['requests', 'tokens']) {
    add(windows, {
      limit: num(headers.get(`x-ratelimit-limit-${scope}`)),
      remaining: num(headers.get(`x-ratelimit-remaining-${scope}`)),
      resetMs: goDuration(headers.get(`x-ratelimit-reset-${scope}`)),
      scope,
    })
  }
  for (const scope of ['requests', 'tokens', 'input-tokens', 'output-tokens']) {
    add(windows, {
      limit: num(headers.get(`anthropic-ratelimit-${scope}-limit`)),
      remaining: num(headers.get(`anthropic-ratelimit-${scope}-remaining`)),
      resetMs: dateDelta(headers.get(`anthropic-ratelimit-${scope}-reset`), now),
      scope,
    })
  }
  const ietf = headers.get('ratelimit')
  if (ietf !== null) parseIetf(windows, ietf, headers.get('ratelimit-policy'))
  add(windows, {
    limit: num(headers.get('ratelimit-limit')),
    remaining: num(headers.get('ratelimit-remaining')),
    resetMs: secondsOrEpoch(headers.get('ratelimit-reset'), now),
    scope: 'requests',
  })
  add(windows, {
    limit: num(headers.get('x-ratelimit-limit')),
    remaining: num(headers.get('x-ratelimit-remaining')),
    resetMs: secondsOrEpoch(headers.get('x-ratelimit-reset'), now),
    scope: 'requests',
  })
  const retryAfter = headers.get('retry-after')
  if (retryAfter !== null) {
    const resetMs = retryAfterMs(retryAfter, now)
    if (resetMs !== null) {
      const limited = statusCode === 429 || statusCode === 503
      const tight = windows.find((w) => w.remaining === 0)
      if (tight) tight.resetMs = Math.max(tight.resetMs ?? 0, resetMs)
      else if (limited || windows.length === 0) windows.push({ limit: null, remaining: limited ? 0 : null, resetMs, scope: 'retry-after' })
    }
  }
  if (windows.length === 0) return null
  let best = windows[0]!
  for (let i = 1; i < windows.length; i++) if (share(windows[i]!) < share(best)) best = windows[i]!
  return { limit: best.limit, remaining: best.remaining, resetMs: best.resetMs, scope: best.scope }
}

function add(windows: Window[], window: Window): void {
  if (window.limit !== null || window.remaining !== null) windows.push(window)
}

/** Share of the window left; unknown shares sort last, an exhausted window first. */
function share(w: Window): number {
  if (w.remaining === 0) return 0
  if (w.limit !== null && w.limit > 0 && w.remaining !== null) return w.remaining / w.limit
  return 2
}

function num(value: string | null): number | null {
  if (value === null) return null
  const n = Number(value.trim())
  return Number.isFinite(n) && n >= 0 ? n : null
}

/** OpenAI's Go-style durations: `1s`, `6m0s`, `20ms`, `1h2m3.5s`. */
function goDuration(value: string | null): number | null {
  if (value === null) return null
  const trimmed = value.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000
  let total = 0
  let matched = false
  for (const m of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s|d)/g)) {
    matched = true
    const n = Number(m[1])
    const unit = m[2]
    total += unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : unit === 'h' ? n * 3_600_000 : unit === 'd' ? n * 86_400_000 : unit === 'ns' ? n / 1e6 : n / 1000
  }
  return matched ? Math.round(total * 1000) / 1000 : null
}

/** An RFC 3339 / HTTP date, as milliseconds from now (never negative). */
function dateDelta(value: string | null, now: number): number | null {
  if (value === null) return null
  const at = Date.parse(value.trim())
  return Number.isFinite(at) ? Math.max(0, at - now) : null
}

/** Delta seconds, or epoch seconds / ms (the X-RateLimit-Reset variants in the wild). */
function secondsOrEpoch(value: string | null, now: number): number | null {
  const n = num(value)
  if (n === null) return null
  if (n > 1e12) return Math.max(0, n - now) // epoch ms
  if (n > 1e9) return Math.max(0, n * 1000 - now) // epoch seconds (GitHub)
  return n * 1000
}

function retryAfterMs(value: string, now: number): number | null {
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  return dateDelta(trimmed, now)
}

/**
 * IETF RateLimit fields. Draft 08+: `RateLimit: "default";r=50;t=30` with `RateLimit-Policy: "default";q=100;w=60`
 * (several policies by name). Draft 07: `RateLimit: limit=100, remaining=50, reset=30`.
 */
function parseIetf(windows: Window[], value: string, policy: string | null): void {
  if (/(^|[\s,;])remaining=/i.test(value)) {
    const params = keyValues(value.split(/[;,]/))
    add(windows, { limit: num(params.get('limit') ?? null), remaining: num(params.get('remaining') ?? null), resetMs: secsToMs(params.get('reset')), scope: 'requests' })
    return
  }
  const quotas = new Map<string, number | null>()
  if (policy !== null) {
    for (const item of splitList(policy)) {
      const [name, ...rest] = item.split(';')
      quotas.set(unquote(name!), num(keyValues(rest).get('q') ?? null))
    }
  }
  for (const item of splitList(value)) {
    const [name, ...rest] = item.split(';')
    const params = keyValues(rest)
    const policyName = unquote(name!)
    add(windows, {
      limit: quotas.get(policyName) ?? null,
      remaining: num(params.get('r') ?? null),
      resetMs: secsToMs(params.get('t')),
      scope: policyName || 'requests',
    })
  }
}

function secsToMs(value: string | undefined): number | null {
  const n = num(value ?? null)
  return n === null ? null : n * 1000
}

function keyValues(parts: string[]): Map<string, string> {
  const map = new Map<string, string>()
  for (const part of parts) {
    const eq = part.indexOf('=')
    if (eq !== -1) map.set(part.slice(0, eq).trim().toLowerCase(), unquote(part.slice(eq + 1)))
  }
  return map
}

function splitList(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean)
}

function unquote(value: string): string {
  const t = value.trim()
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t
}
