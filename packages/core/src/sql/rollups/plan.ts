import { type Interval, nextBucket, bucketStart } from '../../time.js'
import { coarserResolution, type Resolution } from '../../storage/aggregate.js'

/**
 * Query planning over rollups: which part of a time range comes from raw calls and which from 5-minute, hour, day or
 * month rollups. Pure functions, so the plan can be tested on its own.
 *
 * The rule: the coarsest whole buckets that fit inside the range come from rollups, the leftover edges from the
 * next finer level, and only the sub-5-minute edges from raw calls (so the raw part of a query is bounded by the
 * calls of 10 minutes, however busy the hours are). Retention makes some levels unavailable before a horizon (raw
 * calls and 5-minute rollups before `raw`, hour rollups before `hour`, day rollups before `day`); an edge that
 * falls where its level is gone is widened to the enclosing bucket of the finest level still there, and the result
 * says so. 5-minute rollups exist only from `fine` on (the instant the level was added to a database); before it
 * sub-hour edges are read raw.
 */

/** A level of detail, finest first. */
export type Unit = 'raw' | '5m' | 'hour' | 'day' | 'month'
const UNITS: readonly Unit[] = ['raw', '5m', 'hour', 'day', 'month']
/** The length of a 5-minute bucket. */
export const FINE_MS = 300_000
/** The start of the 5-minute bucket holding `t`. */
export const fineBucket = (t: number): number => Math.floor(t / FINE_MS) * FINE_MS
const rank = (u: Unit): number => UNITS.indexOf(u)

/**
 * Where retention has removed each level: everything before `raw` may have lost raw calls, before `hour` hour
 * rollups, before `day` day rollups. `-Infinity` when nothing was removed. `raw` is hour-aligned, `hour`
 * day-aligned, `day` month-aligned, and `raw >= hour >= day`.
 */
export interface Horizons {
  raw: number
  hour: number
  day: number
  /** 5-minute rollups are complete from this instant on (hour-aligned); absent or `-Infinity`: everywhere. */
  fine?: number
  /**
   * Route-by-hour rollups (`0009_storage_limits`) are complete from this instant on (hour-aligned); absent or
   * `-Infinity`: everywhere. Before it, hour buckets by route are read from the route level's rows.
   */
  routeHour?: number
  /**
   * Route-by-5-minutes rollups (`0011_route_5m`) are complete from this instant on (hour-aligned); absent or
   * `-Infinity`: everywhere. Before it, the sub-hour edges of a query by route are read raw.
   */
  route5m?: number
}

/** No retention has run. */
export const NO_HORIZONS: Horizons = { raw: -Infinity, hour: -Infinity, day: -Infinity, fine: -Infinity, routeHour: -Infinity, route5m: -Infinity }

/** One piece of a plan: a time range read at one level. */
export interface Segment {
  unit: Unit
  start: number
  end: number
}

/** The plan of one query. */
export interface QueryPlan {
  segments: Segment[]
  /** How precisely the range is honoured (see `Resolution`). */
  resolution: Resolution
}

function floorTo(t: number, unit: Exclude<Unit, 'raw'>): number {
  if (!Number.isFinite(t)) return t
  return unit === '5m' ? fineBucket(t) : bucketStart(t, unit)
}

function ceilTo(t: number, unit: Exclude<Unit, 'raw'>): number {
  if (!Number.isFinite(t)) return t
  const start = floorTo(t, unit)
  if (start === t) return t
  return unit === '5m' ? start + FINE_MS : nextBucket(start, unit)
}

/** The finest level whose data is complete at time `t` (5-minute rollups go with raw calls). */
function finestAt(t: number, h: Horizons): Exclude<Unit, '5m'> {
  if (t >= h.raw) return 'raw'
  if (t >= h.hour) return 'hour'
  if (t >= h.day) return 'day'
  return 'month'
}

/**
 * Splits [a, b) into whole `unit` buckets in the middle and finer pieces at the edges, down to `floor`; 5-minute
 * buckets only where `fine` says they are kept.
 */
function decompose(a: number, b: number, unit: Unit, floor: Unit, fine: boolean, out: Segment[]): void {
  if (a >= b) return
  if (unit === floor || unit === 'raw') {
    out.push({ unit, start: a, end: b })
    return
  }
  let finer = UNITS[rank(unit) - 1]!
  if (finer === '5m' && !fine) finer = 'raw'
  const A = ceilTo(a, unit)
  const B = floorTo(b, unit)
  if (A < B) {
    decompose(a, A, finer, floor, fine, out)
    out.push({ unit, start: A, end: B })
    decompose(B, b, finer, floor, fine, out)
  } else {
    decompose(a, b, finer, floor, fine, out)
  }
}

/**
 * Plans [from, to) (either end may be absent: unbounded) for a query whose groups are bucketed by `interval`
 * (none for summaries and breakdowns). `useRollups` is false when no rollup level keeps the dimensions the query
 * needs: everything is then read raw.
 */
export function planQuery(
  from: number | undefined,
  to: number | undefined,
  interval: Interval | undefined,
  horizons: Horizons,
  useRollups: boolean,
): QueryPlan {
  let a = from ?? -Infinity
  let b = to ?? Infinity
  if (a >= b) return { segments: [], resolution: 'raw' }
  if (!useRollups) {
    return { segments: [{ unit: 'raw', start: a, end: b }], resolution: a < horizons.raw ? 'partial' : 'raw' }
  }
  // The coarsest level a segment may use: the query's bucket size (minute buckets need raw calls).
  const top: Unit = interval === undefined ? 'month' : interval === 'minute' ? 'raw' : interval
  let resolution: Resolution = 'raw'

  // Widen edges that fall where their level is gone.
  const startUnit = finestAt(a, horizons)
  if (Number.isFinite(a) && startUnit !== 'raw') {
    const widened = floorTo(a, startUnit)
    if (widened !== a) resolution = coarserResolution(resolution, startUnit)
    a = widened
  }
  const endUnit = Number.isFinite(b) ? finestAt(b - 1, horizons) : 'raw'
  if (Number.isFinite(b) && endUnit !== 'raw') {
    const widened = ceilTo(b, endUnit)
    if (widened !== b) resolution = coarserResolution(resolution, endUnit)
    b = widened
  }

  // Regions between horizons, each with the finest level available in it.
  const fineFrom = horizons.fine ?? -Infinity
  const cuts = [...new Set([horizons.day, horizons.hour, horizons.raw, fineFrom])].filter((t) => t > a && t < b).sort((x, y) => x - y)
  const bounds = [a, ...cuts, b]
  const segments: Segment[] = []
  for (let i = 0; i + 1 < bounds.length; i++) {
    const start = bounds[i]!
    const end = bounds[i + 1]!
    const finest = finestAt(start, horizons)
    if (rank(finest) >= rank(top)) {
      // Only a level at least as coarse as the query's buckets is left: whole buckets of it (the region is aligned).
      segments.push({ unit: finest, start, end })
      if (finest !== top && interval !== undefined) resolution = coarserResolution(resolution, finest)
    } else {
      decompose(start, end, top, finest, finest === 'raw' && start >= fineFrom, segments)
    }
  }
  return { segments: mergeAdjacent(segments), resolution }
}

function mergeAdjacent(segments: Segment[]): Segment[] {
  const out: Segment[] = []
  for (const s of segments) {
    const last = out[out.length - 1]
    if (last && last.unit === s.unit && last.end === s.start) last.end = s.end
    else out.push({ ...s })
  }
  return out
}
