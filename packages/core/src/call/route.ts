/**
 * Route handling. Raw paths are never a grouping key: a route is a template (`/users/:id`). Paths we only know as
 * URLs are folded here, and every route passes a per-group cardinality guard so a URL-scanning attack cannot grow
 * memory or the rollup tables without bound.
 */

/** The route shared by every request no route matched (404s, unknown outbound paths with no template). */
export const UNMATCHED_ROUTE = '(unmatched)'
/** The route given to new routes once a group already holds `maxRoutes` distinct routes. */
export const OVERFLOW_ROUTE = '(other)'

const MAX_SEGMENTS = 12
const MAX_SEGMENT_LENGTH = 64
/** The longest route stored; longer ones are cut. */
export const MAX_ROUTE_LENGTH = 512

const NUMERIC = /^\d+$/
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i
const HEX = /^[0-9a-f]{12,}$/i
const HAS_DIGIT = /\d/
const TOKEN = /^[A-Za-z0-9_\-.~=+]{16,}$/
const NUMERIC_WITH_EXTENSION = /^\d+\.[a-z0-9]{1,5}$/i
const EMAIL = /^[^@\s]+@[^@\s]+$/
const DATE = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+Z?)?$/

/** What a secret path segment becomes, in routes and in stored URLs. */
export const SECRET_SEGMENT = ':secret'

const TELEGRAM_BOT = /^bot\d+:[A-Za-z0-9_-]{20,}$/
const JWT = /^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$/
const TOKEN_CHARS = /^[A-Za-z0-9_\-+=.~]{20,}$/
const UPPER = /[A-Z]/
const LOWER = /[a-z]/
const SLACK_HOOKS = new Set(['services', 'workflows', 'triggers'])

/**
 * True when a path segment looks like a credential rather than an identifier: a long random-looking token mixing
 * upper case, lower case and digits (UUIDs and hex hashes are identifiers: one case only), or a JWT.
 */
export function isSecretSegment(segment: string): boolean {
  if (segment.length < 20) return false
  if (JWT.test(segment) || TELEGRAM_BOT.test(segment)) return true
  return TOKEN_CHARS.test(segment) && UPPER.test(segment) && LOWER.test(segment) && HAS_DIGIT.test(segment) && !UUID.test(segment)
}

/**
 * Which segments of a path are secrets: webhook and bot-token URL shapes whose path is the credential (Slack
 * incoming webhooks and workflows, Discord webhooks, Telegram bot tokens), and any segment {@link isSecretSegment}
 * flags. `segments` are the path's non-empty segments.
 */
function secretMask(host: string | null, segments: readonly string[]): boolean[] {
  const mask = segments.map(isSecretSegment)
  if (host !== null) {
    const h = host.toLowerCase().replace(/:\d+$/, '') // the port does not change what the path means
    // hooks.slack.com/services/T…/B…/<secret>: the whole path after the kind is the credential
    if ((h === 'hooks.slack.com' || h.endsWith('.slack.com')) && SLACK_HOOKS.has(segments[0] ?? '')) {
      for (let i = 1; i < segments.length; i++) mask[i] = true
    }
    // discord.com/api[/v10]/webhooks/<id>/<token>
    if (/(^|\.)discord(app)?\.com$/.test(h)) {
      const at = segments.indexOf('webhooks')
      if (at !== -1 && segments[at + 2] !== undefined) mask[at + 2] = true
    }
  }
  return mask
}

/**
 * Extra patterns of secrets in URL paths (the monitor's `redact.paths`): each match in a path — or each capture
 * group of it — becomes {@link SECRET_SEGMENT}.
 */
export type SecretPathPatterns = readonly RegExp[]

/** Replaces what user patterns match in a path with {@link SECRET_SEGMENT}. */
export function applySecretPatterns(path: string, patterns: SecretPathPatterns | undefined): string {
  if (patterns === undefined || patterns.length === 0) return path
  let out = path
  for (const pattern of patterns) {
    const global = pattern.global ? pattern : new RegExp(pattern.source, `${pattern.flags}g`)
    out = out.replace(global, (match: string, ...rest: unknown[]) => {
      const groups = rest.slice(0, -2).filter((g): g is string => typeof g === 'string')
      if (groups.length === 0) return SECRET_SEGMENT
      let replaced = match
      for (const g of groups) if (g !== '') replaced = replaced.replace(g, SECRET_SEGMENT)
      return replaced
    })
  }
  return out
}

/** True when a single path segment looks like an identifier rather than a fixed word. */
export function isIdentifierSegment(segment: string): boolean {
  if (segment.length === 0) return false
  if (NUMERIC.test(segment) || UUID.test(segment) || DATE.test(segment) || EMAIL.test(segment)) return true
  if (NUMERIC_WITH_EXTENSION.test(segment)) return true
  if (segment.length > MAX_SEGMENT_LENGTH) return true
  if (HEX.test(segment) && HAS_DIGIT.test(segment)) return true
  // Long tokens (base64url ids, ULIDs, Stripe-style `cus_9s6XKzkNRiz8i3`): mixed letters and digits.
  if (TOKEN.test(segment) && HAS_DIGIT.test(segment)) return true
  if (segment.length >= 10 && /^[a-z]+_[A-Za-z0-9]{8,}$/.test(segment) && HAS_DIGIT.test(segment)) return true
  return false
}

/**
 * Folds a raw path into a route template: secrets (webhook and bot-token paths, random-looking tokens, JWTs, and
 * what `patterns` match) become `:secret`, identifiers (numbers, UUIDs, hashes, dates, e-mail addresses, long
 * tokens) become `:id`, the query string and fragment are dropped, percent-encoding is kept as sent, repeated
 * slashes collapse, and very deep paths are cut after 12 segments (`/…`). `host` lets host-specific shapes (Slack,
 * Discord webhooks) be recognised.
 *
 * @example
 * ```ts
 * normalizePath('/v1/users/42/orders/9f1c2d3e-0000-4000-8000-00000000abcd?expand=1')
 * // '/v1/users/:id/orders/:id'
 * normalizePath('/services/T0123ABCD/B0456EFGH/aBcDeFgHiJkLmNoPqRsTuVwX', 'hooks.slack.com')
 * // '/services/:secret/:secret/:secret'
 * ```
 */
export function normalizePath(path: string, host: string | null = null, patterns?: SecretPathPatterns): string {
  let end = path.length
  const query = path.indexOf('?')
  if (query !== -1) end = query
  const hash = path.indexOf('#')
  if (hash !== -1 && hash < end) end = hash
  const raw = applySecretPatterns(path.slice(0, end), patterns)
  if (raw === '' || raw === '/') return '/'
  const parts = raw.split('/').filter((p) => p !== '')
  const secret = secretMask(host, parts)
  const out: string[] = []
  for (let i = 0; i < parts.length; i++) {
    if (out.length === MAX_SEGMENTS) {
      out.push('…')
      break
    }
    const part = parts[i]!
    out.push(secret[i] ? (TELEGRAM_BOT.test(part) ? `bot${SECRET_SEGMENT}` : SECRET_SEGMENT) : part === SECRET_SEGMENT ? part : isIdentifierSegment(part) ? ':id' : part)
  }
  const route = '/' + out.join('/')
  return route.length > MAX_ROUTE_LENGTH ? route.slice(0, MAX_ROUTE_LENGTH) : route
}

/**
 * Splits a URL (absolute, or a path) into host and path. Never throws: an unparsable value gives `host: null`
 * and the input as the path.
 */
export function splitUrl(url: string): { host: string | null; path: string } {
  if (url.startsWith('/')) return { host: null, path: url }
  const scheme = url.indexOf('://')
  if (scheme === -1) return { host: null, path: '/' + url }
  const hostStart = scheme + 3
  let pathStart = url.length
  for (const ch of ['/', '?', '#']) {
    const at = url.indexOf(ch, hostStart)
    if (at !== -1 && at < pathStart) pathStart = at
  }
  let host = url.slice(hostStart, pathStart)
  const at = host.lastIndexOf('@')
  if (at !== -1) host = host.slice(at + 1) // never keep credentials
  return { host: host.toLowerCase() || null, path: url.slice(pathStart) || '/' }
}

const SENSITIVE_PARAM = /(^|[_-])(api[_-]?key|apikey|key|token|access[_-]?token|refresh[_-]?token|id[_-]?token|secret|client[_-]?secret|password|passwd|pwd|auth|authorization|signature|sig|session|sessionid|code|credential|jwt)$/i

/** True when a query parameter or header name is likely to carry a secret. */
export function isSensitiveName(name: string): boolean {
  return SENSITIVE_PARAM.test(name) || /secret|password|token|apikey|api-key|api_key|cookie|authorization/i.test(name)
}

/**
 * Masks credentials, secret path segments (see {@link normalizePath}; identifiers stay) and secret-looking query
 * parameters in a URL, keeping its shape.
 *
 * @example
 * ```ts
 * maskUrl('https://user:pw@api.example.com/q?symbol=AAPL&token=abc') // 'https://api.example.com/q?symbol=AAPL&token=***'
 * maskUrl('https://api.telegram.org/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage')
 * // 'https://api.telegram.org/bot:secret/sendMessage'
 * ```
 */
export function maskUrl(url: string, patterns?: SecretPathPatterns): string {
  const split = splitUrl(url)
  const host = split.host
  const path = maskSecretPath(split.path, host, patterns)
  const scheme = url.indexOf('://')
  const base = host !== null && scheme !== -1 ? `${url.slice(0, scheme)}://${host}` : ''
  const query = path.indexOf('?')
  if (query === -1) return base + path
  const hash = path.indexOf('#', query)
  const queryString = path.slice(query + 1, hash === -1 ? undefined : hash)
  const masked = queryString
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      const name = eq === -1 ? pair : pair.slice(0, eq)
      let decoded = name
      try {
        decoded = decodeURIComponent(name)
      } catch {
        // keep as sent
      }
      return eq !== -1 && isSensitiveName(decoded) ? `${name}=***` : pair
    })
    .join('&')
  return base + path.slice(0, query) + '?' + masked
}

/** The path (with its query and fragment) with its secret segments replaced by {@link SECRET_SEGMENT}. */
function maskSecretPath(path: string, host: string | null, patterns: SecretPathPatterns | undefined): string {
  let end = path.length
  for (const ch of ['?', '#']) {
    const at = path.indexOf(ch)
    if (at !== -1 && at < end) end = at
  }
  const pathOnly = applySecretPatterns(path.slice(0, end), patterns)
  const segments = pathOnly.split('/')
  const present = segments.filter((s) => s !== '')
  const secret = secretMask(host, present)
  if (!secret.includes(true)) return pathOnly + path.slice(end)
  let k = 0
  const masked = segments.map((s) => {
    if (s === '') return s
    const isSecret = secret[k++]
    return isSecret ? (TELEGRAM_BOT.test(s) ? `bot${SECRET_SEGMENT}` : SECRET_SEGMENT) : s
  })
  return masked.join('/') + path.slice(end)
}

/** A route held by a group, with its recent use. */
interface Held {
  hits: number
}

const SKETCH_ROWS = 4
const SKETCH_WIDTH = 1 << 14
/** Sightings a route not held needs before it can take the place of the least used route of its group. */
const PROMOTE_AT = 8

/**
 * Bounds the number of distinct routes per group (service + direction + api), letting real routes win over noise.
 *
 * A group holds at most `maxRoutes` routes; calls of a route it does not hold are recorded as {@link OVERFLOW_ROUTE}.
 * Which routes a full group holds is not first come, first kept: every held route counts its calls (halved
 * regularly, so the counts follow recent traffic), and a route the group does not hold is counted in a small shared
 * sketch (a count-min sketch: fixed memory, never under-counts). Once such a route has been seen `PROMOTE_AT` times
 * and more often than the least used held route, it takes that route's place. A URL scan (every path once) never
 * earns a place and never evicts anything; a legitimate route added after a scan filled the group earns its place
 * back after a few calls. Groups themselves are bounded by `maxGroups` (new groups beyond it share the overflow).
 */
export class RouteGuard {
  private readonly groups = new Map<string, Map<string, Held>>()
  private readonly sinceDecay = new Map<Map<string, Held>, number>()
  private readonly sketch = new Uint32Array(SKETCH_ROWS * SKETCH_WIDTH)
  private sketchAdds = 0
  private overflowed = 0
  private promoted = 0

  constructor(
    readonly maxRoutes: number,
    readonly maxGroups: number,
  ) {}

  // The last group looked up: consecutive calls usually share one, so most calls skip building the group key.
  private lastService: string | undefined
  private lastDirection: string | undefined
  private lastApi: string | undefined
  private lastRoutes: Map<string, Held> | undefined

  /** Returns `route` when its group (service, direction, api) holds it, or {@link OVERFLOW_ROUTE}. */
  admit(service: string, direction: string, api: string, route: string): string {
    let routes: Map<string, Held> | undefined
    if (service === this.lastService && direction === this.lastDirection && api === this.lastApi) {
      routes = this.lastRoutes!
    } else {
      const group = `${service}\u0000${direction}\u0000${api}`
      routes = this.groups.get(group)
      if (routes === undefined) {
        if (this.groups.size >= this.maxGroups) {
          this.overflowed++
          return OVERFLOW_ROUTE
        }
        routes = new Map()
        this.groups.set(group, routes)
        this.sinceDecay.set(routes, 0)
      }
      this.lastService = service
      this.lastDirection = direction
      this.lastApi = api
      this.lastRoutes = routes
    }
    const held = routes.get(route)
    if (held !== undefined) {
      held.hits++
      this.tick(routes)
      return route
    }
    if (routes.size < this.maxRoutes) {
      routes.set(route, { hits: 1 })
      return route
    }
    this.tick(routes)
    const seen = this.sighting(service, direction, api, route)
    if (seen >= PROMOTE_AT) {
      // take the place of the least used route, if this one has been seen more often
      let least: string | undefined
      let leastHits = Infinity
      for (const [name, h] of routes) {
        if (h.hits < leastHits) {
          leastHits = h.hits
          least = name
        }
      }
      if (least !== undefined && seen > leastHits) {
        routes.delete(least)
        routes.set(route, { hits: seen })
        this.promoted++
        return route
      }
    }
    this.overflowed++
    return OVERFLOW_ROUTE
  }

  /** Halves a full group's counts every 8 × maxRoutes of its calls, so they follow recent traffic. */
  private tick(routes: Map<string, Held>): void {
    const n = (this.sinceDecay.get(routes) ?? 0) + 1
    if (n < this.maxRoutes * 8) {
      this.sinceDecay.set(routes, n)
      return
    }
    this.sinceDecay.set(routes, 0)
    for (const h of routes.values()) h.hits >>>= 1
  }

  /** Counts a sighting of a route its group does not hold; returns its estimated count (conservative update). */
  private sighting(service: string, direction: string, api: string, route: string): number {
    const key = `${service}\u0000${direction}\u0000${api}\u0000${route}`
    let h1 = 0x811c9dc5
    let h2 = 0x01000193
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 0x01000193)
      h2 = Math.imul(h2 ^ c, 0x5bd1e995)
    }
    let estimate = Infinity
    const slots: number[] = []
    for (let r = 0; r < SKETCH_ROWS; r++) {
      const slot = r * SKETCH_WIDTH + (((h1 + Math.imul(r, h2)) >>> 0) % SKETCH_WIDTH)
      slots.push(slot)
      estimate = Math.min(estimate, this.sketch[slot]!)
    }
    const next = estimate + 1
    for (const slot of slots) if (this.sketch[slot]! < next) this.sketch[slot] = next
    // halve the sketch now and then, like the held counts, so old sightings fade
    if (++this.sketchAdds >= SKETCH_WIDTH / 2) {
      this.sketchAdds = 0
      for (let i = 0; i < this.sketch.length; i++) this.sketch[i] = this.sketch[i]! >>> 1
    }
    return next
  }

  /** How many calls were folded into the overflow route so far. */
  get overflowCount(): number {
    return this.overflowed
  }

  /** How many routes earned their place back in a full group. */
  get promotedCount(): number {
    return this.promoted
  }

  /** Distinct routes currently held, over all groups. */
  get size(): number {
    let total = 0
    for (const routes of this.groups.values()) total += routes.size
    return total
  }
}
