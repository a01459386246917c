import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { tokenMatcher } from '@apimeter/core'

/** The sign-in cookie's name. */
export const COOKIE = 'apimeter_dashboard'
/** How long a sign-in lasts. */
export const SESSION_MS = 12 * 3_600_000

/**
 * Sign-in sessions without server-side state, so every instance behind a load balancer honours every other's:
 * the cookie is `<expiry>.<HMAC-SHA256 of the expiry keyed by the token>`. Changing the token ends every session;
 * the token itself never leaves the server in the cookie.
 */
export class Sessions {
  private readonly keys: Buffer[]
  /** True when `token` is one of the tokens (core's matcher: constant time, every token compared). */
  readonly tokenMatches: (token: string) => boolean

  constructor(tokens: readonly string[]) {
    this.keys = tokens.map((t) => createHash('sha256').update(`apimeter-dashboard-session:${t}`, 'utf8').digest())
    this.tokenMatches = tokenMatcher(tokens)
  }

  /** A cookie value for a sign-in now, with the first token (the current one when several are rotated). */
  issue(now: number): string {
    const expires = now + SESSION_MS
    return `${expires}.${sign(this.keys[0]!, expires)}`
  }

  /** True when the request carries a cookie issued with any of the tokens and not expired. */
  valid(req: IncomingMessage, now: number): boolean {
    const value = readCookie(req.headers.cookie, COOKIE)
    if (value === undefined) return false
    const dot = value.indexOf('.')
    const expires = Number(value.slice(0, dot))
    if (dot < 1 || !Number.isSafeInteger(expires) || expires <= now) return false
    const sent = Buffer.from(value.slice(dot + 1), 'utf8')
    let ok = false
    for (const key of this.keys) {
      const expected = Buffer.from(sign(key, expires), 'utf8')
      ok = (expected.length === sent.length && timingSafeEqual(expected, sent)) || ok
    }
    return ok
  }
}

function sign(key: Buffer, expires: number): string {
  return createHmac('sha256', key).update(String(expires)).digest('base64url')
}

/** One cookie's value from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (typeof header !== 'string') return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/**
 * The Set-Cookie header of a sign-in (or, with `value` empty, of a sign-out): HttpOnly, SameSite=Strict, limited
 * to the dashboard's path, and Secure when the page was served over HTTPS.
 */
export function cookieHeader(value: string, path: string, secure: boolean): string {
  const maxAge = value === '' ? 0 : Math.floor(SESSION_MS / 1000)
  return `${COOKIE}=${value}; Path=${path}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`
}
