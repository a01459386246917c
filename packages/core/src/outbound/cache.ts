import type { HeaderSource } from './headers.js'

/** What a cache detector concluded: whether a cache answered, and the signal that said so. */
export interface CacheVerdict {
  cached: boolean
  /** The header or mechanism that decided (`cache-status`, `cf-cache-status`, `age`, `304`, `undici-cache`, …). */
  signal: string | null
}

/** What a custom cache detector sees of a response. */
export interface CacheDetectorInput {
  url: string
  method: string
  statusCode: number
  headers: HeaderSource
}

/**
 * A custom cache detector (`outbound.cacheDetector`): return `true` or a signal name for a hit, `false` for a
 * miss, `undefined` to let the built-in rules decide.
 */
export type CacheDetector = (response: CacheDetectorInput) => boolean | string | undefined

const NOT_CACHED: CacheVerdict = { cached: false, signal: null }

// Cloudflare: HIT, STALE (served stale), UPDATING (stale while revalidating) and REVALIDATED (served from cache
// after a 304 from the origin) came from the cache; MISS, EXPIRED, BYPASS, DYNAMIC, NONE did not.
const CF_HITS = new Set(['hit', 'stale', 'updating', 'revalidated'])
// Vercel: HIT, STALE and PRERENDER are served from its cache; MISS, BYPASS, REVALIDATED are not.
const VERCEL_HITS = new Set(['hit', 'stale', 'prerender'])

/**
 * Decides whether a response was served by a cache, from (in this order) `Cache-Status` (RFC 9211),
 * `CF-Cache-Status`, `X-Vercel-Cache`, `X-Cache`, a hit of undici's cache interceptor, `Age` > 0 (RFC 9111) and a
 * `304 Not Modified` revalidation. The first header present decides, so an explicit `X-Cache: MISS` wins over an
 * `Age: 0` a proxy added.
 *
 * @example
 * ```ts
 * detectCache(304, new Headers())                                  // { cached: true, signal: '304' }
 * detectCache(200, new Headers({ 'cf-cache-status': 'DYNAMIC' }))  // { cached: false, signal: null }
 * ```
 */
export function detectCache(statusCode: number, headers: HeaderSource, servedByUndiciCache = false): CacheVerdict {
  const cacheStatus = headers.get('cache-status')
  if (cacheStatus !== null) return parseCacheStatus(cacheStatus) ? { cached: true, signal: 'cache-status' } : NOT_CACHED
  const cf = headers.get('cf-cache-status')
  if (cf !== null) return CF_HITS.has(cf.trim().toLowerCase()) ? { cached: true, signal: 'cf-cache-status' } : NOT_CACHED
  const vercel = headers.get('x-vercel-cache')
  if (vercel !== null) return VERCEL_HITS.has(vercel.trim().toLowerCase()) ? { cached: true, signal: 'x-vercel-cache' } : NOT_CACHED
  const xCache = headers.get('x-cache')
  if (xCache !== null) return xCacheHit(xCache) ? { cached: true, signal: 'x-cache' } : NOT_CACHED
  if (servedByUndiciCache) return { cached: true, signal: 'undici-cache' }
  const age = headers.get('age')
  if (age !== null) {
    const seconds = Number(age.trim())
    if (Number.isFinite(seconds) && seconds > 0) return { cached: true, signal: 'age' }
  }
  if (statusCode === 304) return { cached: true, signal: '304' }
  return NOT_CACHED
}

/**
 * RFC 9211: a list of caches, each `name; param; param=value`. A cache that answered reports `hit`; one that passed
 * the request on reports `fwd=…`. Any `hit` means the response came from a cache.
 */
function parseCacheStatus(value: string): boolean {
  for (const member of value.split(',')) {
    const params = member.split(';')
    for (let i = 1; i < params.length; i++) {
      const param = params[i]!.trim().toLowerCase()
      if (param === 'hit' || param === 'hit=?1') return true
    }
  }
  return false
}

/** `HIT`, `Hit from cloudfront`, `RefreshHit from cloudfront`, `TCP_HIT`, `MISS, HIT` (Fastly shield hit). */
function xCacheHit(value: string): boolean {
  for (const part of value.split(',')) {
    const word = part.trim().toLowerCase().split(/\s+/)[0] ?? ''
    if (word === 'hit' || word.endsWith('hit') || word.startsWith('tcp_hit') || word.startsWith('tcp_mem_hit')) return true
  }
  return false
}

/** Runs a custom detector, falling back to the built-in rules when it returns undefined. */
export function resolveCache(
  detector: CacheDetector | undefined,
  input: CacheDetectorInput,
  servedByUndiciCache: boolean,
): CacheVerdict {
  if (detector) {
    const verdict = detector(input)
    if (verdict === true) return { cached: true, signal: 'custom' }
    if (typeof verdict === 'string' && verdict !== '') return { cached: true, signal: verdict.slice(0, 64) }
    if (verdict === false) return NOT_CACHED
  }
  return detectCache(input.statusCode, input.headers, servedByUndiciCache)
}
