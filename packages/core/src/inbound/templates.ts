/**
 * Route templates from what frameworks give at the end of a request: a matched path and its parameters turned back
 * into `/users/:id`, and mount paths joined the way routers match them.
 */
import { isIdentifierSegment } from '../call/route.js'


function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/**
 * Turns a matched path back into a route template, given the parameters the match produced: a segment equal to a
 * parameter's value becomes `:name`, a run of segments equal to a wildcard's value (an array, or a value with `/`)
 * becomes `*name` (`*` for an unnamed one), and a segment that merely contains a value (`/:from-:to`) becomes
 * `:name` as a whole. Parameters are placed right to left, the way templates usually put them after fixed words.
 * Keys in `used` are skipped and every key placed is added to it (for parameters inherited from a parent mount).
 * Segments that look like identifiers but match no parameter are folded to `:id`, so the result stays bounded
 * even when a framework gives only a path.
 *
 * @example
 * ```ts
 * templateFromMatch('/orgs/acme/projects/42', { orgId: 'acme', id: '42' }) // '/orgs/:orgId/projects/:id'
 * templateFromMatch('/files/a/b.txt', { path: ['a', 'b.txt'] })           // '/files/*path'
 * ```
 */
export function templateFromMatch(path: string, params?: Readonly<Record<string, unknown>>, used: Set<string> = new Set()): string {
  const segments = path.split('/')
  // out[i]: the template piece of segment i; null = consumed by a wildcard run; undefined = not placed yet.
  const out = new Array<string | null | undefined>(segments.length)
  const keys = params ? Object.keys(params) : []
  let limit = segments.length
  for (let k = keys.length - 1; k >= 0; k--) {
    const key = keys[k]!
    const raw = params![key]
    if (used.has(key)) continue
    const wildcard = Array.isArray(raw) || (typeof raw === 'string' && raw.includes('/'))
    const value = Array.isArray(raw) ? raw.join('/') : raw
    if (typeof value !== 'string' || value === '') continue
    const span = wildcard ? value.split('/').length : 1
    let at = -1
    for (let i = limit - span; i >= 1 && at === -1; i--) {
      if (out[i] !== undefined) continue
      const candidate = span === 1 ? decodeSegment(segments[i]!) : segments.slice(i, i + span).map(decodeSegment).join('/')
      if (candidate === value) at = i
    }
    for (let i = limit - 1; i >= 1 && at === -1 && !wildcard; i--) {
      if (out[i] === undefined && decodeSegment(segments[i]!).includes(value)) at = i
    }
    if (at === -1) continue
    out[at] = wildcard ? (/^\d+$/.test(key) ? '*' : `*${key}`) : `:${key}`
    for (let j = at + 1; j < at + span; j++) out[j] = null
    used.add(key)
    limit = at
  }
  const pieces: string[] = []
  for (let i = 0; i < segments.length; i++) {
    const piece = out[i]
    if (piece === null) continue
    const segment = segments[i]!
    pieces.push(piece ?? (segment !== '' && isIdentifierSegment(decodeSegment(segment)) ? ':id' : segment))
  }
  const template = pieces.join('/').replace(/\/{2,}/g, '/')
  return template.length > 1 && template.endsWith('/') ? template.slice(0, -1) : template || '/'
}

/**
 * Joins a mount template and a route path the way routers match them (`'/users'` + `'/'` is `'/users'`).
 *
 * @example
 * ```ts
 * joinRoute('/orgs/:orgId', '/projects/:id') // '/orgs/:orgId/projects/:id'
 * ```
 */
export function joinRoute(mount: string, route: string): string {
  if (mount === '' || mount === '/') return route === '' ? '/' : route
  if (route === '' || route === '/') return mount
  return mount.endsWith('/') ? mount + (route.startsWith('/') ? route.slice(1) : route) : route.startsWith('/') ? mount + route : `${mount}/${route}`
}

