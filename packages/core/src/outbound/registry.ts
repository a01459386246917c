import { normalizePath, type SecretPathPatterns } from '../call/route.js'
import type { CostModel } from './cost.js'

/**
 * What a registry entry matches:
 * - a string with `://` is a URL prefix (`https://api.example.com/v2` matches that origin and paths under `/v2`);
 * - any other string is a host (`api.openai.com`, `localhost:8080` with a port, `*.example.com` for subdomains);
 * - a RegExp is tested against the host name, the host with port, then the URL without its query.
 */
export type ApiMatcher = string | RegExp

/** Limits an API documents (kept with the registry for budgets and alerts; not enforced). */
export interface ConfiguredRateLimit {
  perSecond?: number
  perMinute?: number
  perHour?: number
  perDay?: number
}

/**
 * One entry of the outbound API registry (`apis` option).
 *
 * @example
 * ```ts
 * { name: 'finnhub', match: /finnhub\.io$/, routes: ['/api/v1/quote', '/api/v1/stock/:kind'], cost: costs.perRequest(0.0001), rateLimit: { perMinute: 60 } }
 * ```
 */
export interface ApiDefinition {
  /** The API name stored on its calls (`openai`). */
  name: string
  /** Which requests belong to this API; several matchers are OR-ed. */
  match: ApiMatcher | ApiMatcher[]
  /**
   * Route templates, tried in order: `/v1/users/:id` (or `{id}`) matches one segment, a trailing `*` the rest.
   * Paths no template matches are folded by the normaliser (ids become `:id`).
   */
  routes?: string[]
  /** How its calls are priced (see `costs`). */
  cost?: CostModel
  /** The limits the API documents. */
  rateLimit?: ConfiguredRateLimit
}

/** The API name given to unregistered hosts once `outbound.maxHosts` distinct ones were seen. */
export const OTHER_HOSTS = '(other)'

/** A URL split into what matching needs. */
export interface Target {
  /** `https://api.example.com:8443` */
  origin: string
  /** `api.example.com:8443` (lower-case, port only when not the default) */
  host: string
  /** `api.example.com` */
  hostname: string
  /** `/v1/users/42` */
  pathname: string
  /** `/v1/users/42?x=1` */
  path: string
}

/** Where a call goes, as the registry resolves it. */
export interface Resolved {
  api: string
  route: string
  host: string
  definition: CompiledApi | undefined
}

type CompiledMatcher = (t: Target) => boolean

/** A registry entry ready for matching. */
export interface CompiledApi {
  readonly name: string
  readonly cost: CostModel | undefined
  readonly rateLimit: ConfiguredRateLimit | undefined
  readonly matches: CompiledMatcher
  readonly routes: readonly CompiledRoute[]
}

interface CompiledRoute {
  template: string
  /** Fixed segments, `null` for a parameter. */
  segments: (string | null)[]
  rest: boolean
}

/** Compiles a matcher (see {@link ApiMatcher}). */
export function compileMatcher(matcher: ApiMatcher | ApiMatcher[]): CompiledMatcher {
  if (Array.isArray(matcher)) {
    const all = matcher.map((m) => compileMatcher(m))
    return (t) => all.some((m) => m(t))
  }
  if (matcher instanceof RegExp) {
    return (t) => {
      matcher.lastIndex = 0
      if (matcher.test(t.hostname)) return true
      matcher.lastIndex = 0
      if (t.host !== t.hostname && matcher.test(t.host)) return true
      matcher.lastIndex = 0
      return matcher.test(t.origin + t.pathname)
    }
  }
  if (matcher.includes('://')) {
    const url = new URL(matcher)
    const origin = url.origin.toLowerCase()
    const prefix = url.pathname.replace(/\/+$/, '')
    return (t) => t.origin === origin && (prefix === '' || t.pathname === prefix || t.pathname.startsWith(prefix + '/'))
  }
  const host = matcher.toLowerCase()
  if (host.startsWith('*.')) {
    const suffix = host.slice(1)
    return (t) => t.hostname.endsWith(suffix) || t.host.endsWith(suffix)
  }
  if (host.includes(':') && !host.startsWith('[')) return (t) => t.host === host
  return (t) => t.hostname === host || t.host === host
}

/** Compiles route templates. */
export function compileRoutes(templates: readonly string[]): CompiledRoute[] {
  return templates.map((template) => {
    const parts = template.split('?')[0]!.split('/').filter(Boolean)
    const rest = parts.at(-1) === '*' || parts.at(-1) === '**'
    if (rest) parts.pop()
    return {
      template: template.startsWith('/') ? template : `/${template}`,
      segments: parts.map((p) => (p.startsWith(':') || (p.startsWith('{') && p.endsWith('}')) || p === '*' ? null : p)),
      rest,
    }
  })
}

/** The first template matching `pathname`, or undefined. */
export function matchRoute(routes: readonly CompiledRoute[], pathname: string): string | undefined {
  if (routes.length === 0) return undefined
  const parts = pathname.split('/').filter(Boolean)
  outer: for (const route of routes) {
    const n = route.segments.length
    if (route.rest ? parts.length < n : parts.length !== n) continue
    for (let i = 0; i < n; i++) {
      const fixed = route.segments[i]
      if (fixed !== null && fixed !== parts[i]) continue outer
    }
    return route.template
  }
  return undefined
}

/** Compiles one registry entry. */
export function compileApi(def: ApiDefinition): CompiledApi {
  return {
    name: def.name,
    cost: def.cost,
    rateLimit: def.rateLimit,
    matches: compileMatcher(def.match),
    routes: compileRoutes(def.routes ?? []),
  }
}

/**
 * Parses an absolute http(s) URL into a {@link Target}, or returns null (relative, other scheme, unparsable).
 * Credentials and the fragment are dropped.
 */
export function toTarget(url: string): Target | null {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return null
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null
  return { origin: parsed.origin, host: parsed.host, hostname: parsed.hostname, pathname: parsed.pathname, path: parsed.pathname + parsed.search }
}

/**
 * The outbound API registry: resolves a request to an API name and a route template, bounding what it creates.
 * Registered APIs keep their names; an unregistered host becomes its own API (named after the host) until
 * `maxHosts` distinct hosts were seen, then `(other)`. Routes come from the API's templates, else from
 * `normalizePath()`; the monitor's route guard then bounds the routes of each API.
 */
export class ApiRegistry {
  private readonly apis: readonly CompiledApi[]
  private readonly ignored: CompiledMatcher | undefined
  private readonly hosts = new Set<string>()

  constructor(
    definitions: readonly ApiDefinition[],
    private readonly maxHosts: number,
    ignore: readonly ApiMatcher[] = [],
    private readonly secretPaths?: SecretPathPatterns,
  ) {
    this.apis = definitions.map(compileApi)
    this.ignored = ignore.length > 0 ? compileMatcher([...ignore]) : undefined
  }

  /** Every registered API, compiled. */
  get definitions(): readonly CompiledApi[] {
    return this.apis
  }

  /** The registered API called `name`. */
  byName(name: string): CompiledApi | undefined {
    return this.apis.find((a) => a.name === name)
  }

  /** Whether calls to this target are excluded from metering (`outbound.ignore`). */
  isIgnored(target: Target): boolean {
    return this.ignored !== undefined && this.ignored(target)
  }

  /** Resolves a target; `api` forces a registry entry (or a plain name) chosen by the caller. */
  resolve(target: Target, api?: string): Resolved {
    let definition: CompiledApi | undefined
    if (api !== undefined) definition = this.byName(api)
    else for (const candidate of this.apis) if (candidate.matches(target)) {
      definition = candidate
      break
    }
    if (definition) {
      return { api: definition.name, route: matchRoute(definition.routes, target.pathname) ?? normalizePath(target.pathname, target.host, this.secretPaths), host: target.host, definition }
    }
    return { api: api ?? this.hostApi(target.host), route: normalizePath(target.pathname, target.host, this.secretPaths), host: target.host, definition: undefined }
  }

  /** Distinct unregistered hosts seen (at most `maxHosts`). */
  get hostCount(): number {
    return this.hosts.size
  }

  private hostApi(host: string): string {
    if (this.hosts.has(host)) return host
    if (this.hosts.size >= this.maxHosts) return OTHER_HOSTS
    this.hosts.add(host)
    return host
  }
}
