import { type RawBuilder, sql } from 'kysely'
import { copyAggregate, mergeAggregate, type AggregateRow, type AggregateState } from '../../storage/aggregate.js'
import { type CallFilter, type Dimension, FILTER_FIELDS } from '../../storage/filter.js'
import { OUTCOMES } from '../../call/outcome.js'
import { bucketStart } from '../../time.js'
import { TABLES } from '../schema.js'

/**
 * What the rollups keep: three levels of detail (which dimensions a row is keyed by), four resolutions (5 minutes,
 * hour, day, month, one table each), and the key columns every rollup table shares.
 */

/** A rollup level: the dimensions it keeps. Queries use the smallest level that has every dimension they need. */
export interface RollupLevel {
  id: number
  name: string
  dims: readonly Dimension[]
  /**
   * Whether the level is kept in 5-minute buckets too. Only the smallest is: a summary's edges then read at most 5
   * minutes of raw calls each, while a 5-minute level keyed by route or tenant would hold about as many rows as there
   * are calls (a rollup run would write one row per call or so) for edges that cost a few milliseconds raw.
   */
  fine: boolean
}

const BASE: readonly Dimension[] = ['service', 'direction', 'api', 'status', 'outcome']
/** Written out so the primary key `(level, bucket_start, …)` serves deletes by time too. */
export const LEVEL_IDS = [0, 1, 2]

/** The levels, smallest first. User ids are in none of them (unbounded cardinality): those queries read raw calls. */
export const ROLLUP_LEVELS: readonly RollupLevel[] = [
  { id: 0, name: 'api', dims: BASE, fine: true },
  { id: 1, name: 'route', dims: [...BASE, 'method', 'route'], fine: false },
  { id: 2, name: 'tenant', dims: [...BASE, 'tenant', 'model'], fine: false },
]

/** The rollup resolutions and their tables, finest first. */
export const ROLLUP_TABLES = { '5m': TABLES.rollup5m, hour: TABLES.rollupHour, day: TABLES.rollupDay, month: TABLES.rollupMonth } as const
export type RollupResolution = keyof typeof ROLLUP_TABLES

export const FILTER_DIMENSION: Record<(typeof FILTER_FIELDS)[number], Dimension> = {
  service: 'service',
  direction: 'direction',
  api: 'api',
  route: 'route',
  method: 'method',
  tenantId: 'tenant',
  userId: 'user',
  outcome: 'outcome',
  model: 'model',
  statusCode: 'status',
}

/** The smallest level keeping every dimension the query filters on or groups by, or null (read raw). */
export function chooseLevel(filter: CallFilter, groupBy: readonly Dimension[]): RollupLevel | null {
  const needed = new Set<Dimension>(groupBy)
  for (const field of FILTER_FIELDS) if (filter[field] !== undefined) needed.add(FILTER_DIMENSION[field])
  return ROLLUP_LEVELS.find((level) => [...needed].every((d) => level.dims.includes(d))) ?? null
}

/**
 * Key columns of the rollup tables, in primary-key order after `level` and `bucket_start`. Empty values are stored
 * as `''` (and a missing status as 0) because NULLs are never equal in a primary key.
 */
export const KEY_COLUMNS = ['service', 'direction', 'api', 'status_code', 'outcome', 'method', 'route', 'tenant_id', 'model'] as const
export type KeyColumn = (typeof KEY_COLUMNS)[number]
export const DIMENSION_KEY_COLUMN: Partial<Record<Dimension, KeyColumn>> = {
  service: 'service',
  direction: 'direction',
  api: 'api',
  status: 'status_code',
  outcome: 'outcome',
  method: 'method',
  route: 'route',
  tenant: 'tenant_id',
  model: 'model',
}
export const SUM_COLUMNS = [
  'requests', 'cached', 'cost_nanos', 'cost_unknown', 'cost_estimated_nanos', 'input_tokens', 'output_tokens', 'cached_input_tokens',
  'request_bytes', 'response_bytes', 'duration_sum_us',
] as const
/** The route-by-hour table's columns holding the requests of each outcome, in {@link OUTCOMES} order. */
export const OUTCOME_COLUMNS = OUTCOMES.map((o) => `outcome_${o}`)

/**
 * How a rollup table is keyed and where it keeps the requests per outcome: the level tables key a row by every
 * dimension of its level, the outcome among them; the route-by-hour table (`0009_storage_limits`) keys a row by its
 * hour and route alone and keeps the requests of each outcome in columns of their own ({@link OUTCOME_COLUMNS}).
 */
export interface RollupTableShape {
  table: string
  /** The primary key's columns: `level`, `bucket_start` and {@link KEY_COLUMNS} (a row's values for them). */
  keys: readonly ('level' | 'bucket_start' | KeyColumn)[]
  /** Whether the requests of each outcome are columns; otherwise the outcome is part of the key. */
  outcomeColumns: boolean
  /** Whether its rows keep their summary percentiles beside the sketch (`latency_percentiles`, see stored-percentiles.ts). */
  percentiles?: boolean
}

/** The level tables, one per resolution. */
const levelTable = (table: string): RollupTableShape => ({ table, keys: ['level', 'bucket_start', ...KEY_COLUMNS], outcomeColumns: false })
export const ROLLUP_SHAPES: Record<RollupResolution, RollupTableShape> = {
  '5m': levelTable(ROLLUP_TABLES['5m']),
  hour: levelTable(ROLLUP_TABLES.hour),
  day: levelTable(ROLLUP_TABLES.day),
  month: levelTable(ROLLUP_TABLES.month),
}

/**
 * The route-by-hour table: what an hourly timeseries by route (or of one route) reads, one row per point. Complete from
 * the `route_hour_horizon` state row on (see `Horizons.routeHour`).
 */
export const ROUTE_HOUR: RollupTableShape = { table: TABLES.rollupRouteHour, keys: ['bucket_start', 'route'], outcomeColumns: true, percentiles: true }

/**
 * The route-by-5-minutes table (`0011_route_5m`): the route-by-hour table's rows in 5-minute buckets, what the sub-hour
 * edges of a series by route read. Complete from the `route_5m_horizon` state row on (see `Horizons.route5m`); kept
 * as long as raw calls, like the 5-minute level rows.
 */
const ROUTE_5M: RollupTableShape = { table: TABLES.rollupRoute5m, keys: ['bucket_start', 'route'], outcomeColumns: true }

/** The route tables by resolution, each with the key of its rows in {@link FoldedRows}. */
const ROUTE_TABLES = {
  '5m': { shape: ROUTE_5M, rows: 'route5m' },
  hour: { shape: ROUTE_HOUR, rows: 'routeHour' },
} as const

/** The route table of a resolution, with the key of its rows in {@link FoldedRows}; undefined for day and month. */
export function routeTableOf(resolution: RollupResolution): (typeof ROUTE_TABLES)[keyof typeof ROUTE_TABLES] | undefined {
  return resolution === '5m' || resolution === 'hour' ? ROUTE_TABLES[resolution] : undefined
}

/** The dimensions the route-by-hour table keeps. */
export const ROUTE_HOUR_DIMS: readonly Dimension[] = ['route']

/** One rollup row in memory. */
export interface RollupRow {
  level: number
  bucketStart: number
  key: Record<KeyColumn, string | number>
  state: AggregateState
}

export function rowId(level: number, start: number, key: Record<KeyColumn, string | number>): string {
  let id = `${level}|${start}`
  for (const c of KEY_COLUMNS) id += `|${key[c]}`
  return id
}

/** Every dimension any level keeps: a rollup run aggregates raw calls at this grain, then folds it per level. */
export const ROLLUP_GRAIN: readonly Dimension[] = ['service', 'direction', 'api', 'status', 'outcome', 'method', 'route', 'tenant', 'model']
/**
 * The grain of the 5-minute rows: the dimensions of level 0 and of the route tables — a prefix of {@link ROLLUP_GRAIN}
 * (level 0's five, then method and route), so code reading grain keys by their index in ROLLUP_GRAIN reads both.
 */
export const FINE_GRAIN: readonly Dimension[] = ROLLUP_GRAIN.slice(0, ROLLUP_GRAIN.indexOf('route') + 1)

/**
 * What a rollup run aggregates: hourly rows at the full grain (keys in {@link ROLLUP_GRAIN} order), and 5-minute
 * rows at {@link FINE_GRAIN}. Two groupings rather than one at the full grain by 5 minutes, which would make a run
 * merge up to twelve times as many rows for the hour, day and month tables.
 */
export interface GrainRows {
  hourly: readonly AggregateRow[]
  fine: readonly AggregateRow[]
}

/** A run's rows for each level table (by resolution) and for the route tables, one per stored row. */
export type FoldedRows = Record<RollupResolution, RollupRow[]> & { routeHour: RollupRow[]; route5m: RollupRow[] }

/** A folded row, and whether its state is still a grain row's own (shared, not copied yet). */
interface FoldTarget {
  row: RollupRow
  shared: boolean
}

/**
 * Folds a run's aggregates into every level and resolution, and into the route tables (by hour from the hourly rows,
 * by 5 minutes from the 5-minute ones).
 *
 * A run folds as many hourly rows as it has distinct (hour, key) pairs — about one per call when history is written
 * out of order — so this avoids per-target work: a row's key and its id are built once per level and looked up by
 * bucket start under that id in each table (one id string for the hour, day and month tables, its hash computed
 * once), its day and month once per row, and a target that receives a single row shares that row's state instead of
 * copying it (it gets its own copy only when a second row is added into it; the grain rows are not used after
 * folding).
 */
export function foldToLevels({ hourly, fine }: GrainRows): FoldedRows {
  const out: FoldedRows = { '5m': [], hour: [], day: [], month: [], routeHour: [], route5m: [] }
  const targets: Record<keyof FoldedRows, Map<string, Map<number, FoldTarget>>> = {
    '5m': new Map(),
    hour: new Map(),
    day: new Map(),
    month: new Map(),
    routeHour: new Map(),
    route5m: new Map(),
  }
  const fold = (table: keyof FoldedRows, id: string, level: number, start: number, key: Record<KeyColumn, string | number>, state: AggregateState): void => {
    const ids = targets[table]
    let byStart = ids.get(id)
    if (byStart === undefined) {
      byStart = new Map()
      ids.set(id, byStart)
    }
    const target = byStart.get(start)
    if (target === undefined) {
      const row = { level, bucketStart: start, key, state }
      byStart.set(start, { row, shared: true })
      out[table].push(row)
      return
    }
    if (target.shared) {
      target.shared = false
      target.row.state = copyAggregate(target.row.state)
    }
    mergeAggregate(target.row.state, state)
  }
  for (const row of fine) {
    const key = levelKey(0, row.keys)
    fold('5m', rowId(0, 0, key), 0, row.start!, key, row.state)
    // the 5-minute grain has the route (and the method, which the route tables do not keep)
    const route = levelKey(1, row.keys)
    fold('route5m', route.route as string, 1, row.start!, route, row.state)
  }
  for (const row of hourly) {
    const hour = row.start!
    const day = bucketStart(hour, 'day')
    const month = bucketStart(hour, 'month')
    for (const level of ROLLUP_LEVELS) {
      const key = levelKey(level.id, row.keys)
      const id = rowId(level.id, 0, key)
      fold('hour', id, level.id, hour, key, row.state)
      fold('day', id, level.id, day, key, row.state)
      fold('month', id, level.id, month, key, row.state)
      // the route level's key has the route: the route-by-hour row takes its hour and route from it
      if (level.id === 1) fold('routeHour', key.route as string, level.id, hour, key, row.state)
    }
  }
  return out
}

/** The key of a rollup row of `level` from grain keys in {@link ROLLUP_GRAIN} order (a prefix for level 0). */
function levelKey(level: number, keys: readonly (string | null | undefined)[]): Record<KeyColumn, string | number> {
  const [service, direction, api, status, outcome, method, route, tenant, model] = keys
  return {
    service: service!,
    direction: direction!,
    api: api ?? '',
    status_code: status === null || status === undefined ? 0 : Number(status),
    outcome: outcome!,
    method: level === 1 ? method! : '',
    route: level === 1 ? route! : '',
    tenant_id: level === 2 ? (tenant ?? '') : '',
    model: level === 2 ? (model ?? '') : '',
  }
}

export function rollupFilterExpression(filter: CallFilter): RawBuilder<boolean> {
  const parts: RawBuilder<unknown>[] = []
  for (const field of FILTER_FIELDS) {
    const values = filter[field] as readonly (string | number | null)[] | undefined
    if (values === undefined) continue
    const column = DIMENSION_KEY_COLUMN[FILTER_DIMENSION[field]]!
    const stored = values.map((v) => (v === null ? (column === 'status_code' ? 0 : '') : v))
    parts.push(stored.length === 0 ? sql`1 = 0` : sql`${sql.ref(column)} IN (${sql.join(stored)})`)
  }
  return parts.length === 0 ? sql<boolean>`1 = 1` : sql<boolean>`${sql.join(parts, sql` AND `)}`
}
