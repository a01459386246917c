import type { Interval, StatsFilter } from '@apimeter/core'
import { resolveTime } from '@apimeter/core/sql'

/** The preset ranges of the page, and the bucket each is charted with. */
export const RANGES = { '1h': { ms: 3_600_000, interval: 'minute' }, '24h': { ms: 86_400_000, interval: 'hour' }, '7d': { ms: 7 * 86_400_000, interval: 'hour' }, '30d': { ms: 30 * 86_400_000, interval: 'day' } } as const satisfies Record<string, { ms: number; interval: Interval }>
/** One of the page's preset ranges. */
export type RangeName = keyof typeof RANGES

/**
 * What the page asks for: a range resolved to absolute UTC epoch ms (from inclusive, to exclusive), the bucket
 * size of its charts, and the filters. Every number the page shows is a `monitor.stats` answer to exactly this.
 */
export interface ViewQuery {
  range: RangeName | 'custom'
  from: number
  to: number
  interval: Interval
  service?: string
  tenant?: string
  route?: string
  api?: string
}

/** A query the page sent that cannot be answered; served as 400 with this message. */
export class BadQuery extends Error {}

const MAX_SPAN = 400 * 86_400_000

/**
 * Reads `?range=24h` (or `?from=…&to=…`, ISO-8601 or epoch ms) and the filters `service`, `tenant`, `route`, `api`.
 * A preset ends now (`to` is now + 1 ms, so a call recorded this millisecond is counted).
 */
export function parseViewQuery(params: URLSearchParams, now: number): ViewQuery {
  const text = (name: string): string | undefined => {
    const v = params.get(name)
    if (v === null || v === '') return undefined
    if (v.length > 500) throw new BadQuery(`${name} must be at most 500 characters`)
    return v
  }
  const range = text('range') ?? (params.has('from') ? 'custom' : '24h')
  let from: number
  let to: number
  let interval: Interval
  if (range === 'custom') {
    from = time(text('from'), 'from', now)
    to = time(text('to'), 'to', now)
    if (!(to > from)) throw new BadQuery('to must be after from')
    if (to - from > MAX_SPAN) throw new BadQuery('a custom range must be at most 400 days long')
    const span = to - from
    interval = span <= 6 * 3_600_000 ? 'minute' : span <= 14 * 86_400_000 ? 'hour' : 'day'
  } else if (Object.hasOwn(RANGES, range)) {
    const preset = RANGES[range as RangeName]
    to = now + 1
    from = to - preset.ms
    interval = preset.interval
  } else {
    throw new BadQuery(`range must be one of ${Object.keys(RANGES).join(', ')} or custom, got "${range}"`)
  }
  const query: ViewQuery = { range: range as ViewQuery['range'], from, to, interval }
  for (const name of ['service', 'tenant', 'route', 'api'] as const) {
    const v = text(name)
    if (v !== undefined) query[name] = v
  }
  return query
}

/** A custom range's end, read the way `monitor.stats` reads times (ISO-8601 in UTC unless offset, relative, epoch ms). */
function time(value: string | undefined, name: string, now: number): number {
  if (value === undefined) throw new BadQuery(`a custom range needs ${name} (ISO-8601 or epoch ms)`)
  const t = resolveTime(/^\d+$/.test(value) ? Number(value) : value, now)
  if (t === undefined) throw new BadQuery(`${name} must be an ISO-8601 time, a relative time like -7d, or epoch ms, got "${value}"`)
  return t
}

/** The stats filter of a view query: the range and the filters, nothing else. */
export function statsFilter(q: ViewQuery): StatsFilter {
  const filter: StatsFilter = { from: q.from, to: q.to }
  if (q.service !== undefined) filter.service = q.service
  if (q.tenant !== undefined) filter.tenantId = q.tenant
  if (q.route !== undefined) filter.route = q.route
  if (q.api !== undefined) filter.api = q.api
  return filter
}
