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
 * Folds a raw path into a route template: identifiers (numbers, UUIDs, hashes, dates, e-mail addresses, long
 * tokens) become `:id`, the query string and fragment are dropped, percent-encoding is kept as sent, repeated
 * slashes collapse, and very deep paths are cut after 12 segments (`/…`).
 *
 * @example
 * ```ts
 * normalizePath('/v1/users/42/orders/9f1c2d3e-0000-4000-8000-00000000abcd?expand=1')
 * // '/v1/users/:id/orders/:id'
 * ```
 */
export function normalizePath(path: string): string {
  let end = path.length
  const query = path.indexOf('?')
  if (query !== -1) end = query
  const hash = path.indexOf('#')
  if (hash !== -1 && hash < end) end = hash
  const raw = path.slice(0, end)
  if (raw === '' || raw === '/') return '/'
  const parts = raw.split('/')
  const out: string[] = []
  for (const part of parts) {
    if (part === '') continue
    if (out.length === MAX_SEGMENTS) {
      out.push('…')
      break
    }
    out.push(isIdentifierSegment(part) ? ':id' : part)
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
 * Masks credentials and secret-looking query parameters in a URL, keeping its shape.
 *
 * @example
 * ```ts
 * maskUrl('https://user:pw@api.example.com/q?symbol=AAPL&token=abc') // 'https://api.example.com/q?symbol=AAPL&token=***'
 * ```
 */
export function maskUrl(url: string): string {
  const { host, path } = splitUrl(url)
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

/**
 * Bounds the number of distinct routes per group (service + direction + api). The first `maxRoutes` routes seen
 * in a group are kept; later new ones become {@link OVERFLOW_ROUTE}. Groups themselves are bounded by
 * `maxGroups` (new groups beyond it share one overflow group).
 */
export class RouteGuard {
  private readonly groups = new Map<string, Set<string>>()
  private overflowed = 0

  constructor(
    readonly maxRoutes: number,
    readonly maxGroups: number,
  ) {}

  // The last group looked up: consecutive calls usually share one, so most calls skip building the group key.
  private lastService: string | undefined
  private lastDirection: string | undefined
  private lastApi: string | undefined
  private lastRoutes: Set<string> | undefined

  /** Returns `route` when admitted to its group (service, direction, api), or {@link OVERFLOW_ROUTE}. */
  admit(service: string, direction: string, api: string, route: string): string {
    let routes: Set<string> | undefined
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
        routes = new Set()
        this.groups.set(group, routes)
      }
      this.lastService = service
      this.lastDirection = direction
      this.lastApi = api
      this.lastRoutes = routes
    }
    if (routes.has(route)) return route
    if (routes.size >= this.maxRoutes) {
      this.overflowed++
      return OVERFLOW_ROUTE
    }
    routes.add(route)
    return route
  }

  /** How many calls were folded into the overflow route so far. */
  get overflowCount(): number {
    return this.overflowed
  }

  /** Distinct routes currently tracked, over all groups. */
  get size(): number {
    let total = 0
    for (const routes of this.groups.values()) total += routes.size
    return total
  }
}
