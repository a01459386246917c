import { z } from 'zod'
import { emptyAggregate, mergeAggregate, type StatsSummary, toSummary } from '../storage/aggregate.js'
import type { Direction } from '../call/fields.js'
import { type Clock, resolveClock } from '../clock.js'
import { ApimeterError, describeValue } from '../errors.js'
import type { Outcome } from '../call/outcome.js'
import { type CallFilter, type Dimension, DIMENSIONS, FILTER_FIELDS } from '../storage/filter.js'
import { coarserResolution, type Resolution } from '../storage/aggregate.js'
import { type StorageAdapter, SUM_ORDERS, type TopGroups } from '../storage/adapter.js'
import { bucketSystemSamples, type SystemBucket } from '../storage/system-store.js'
import { bucketStart, type Interval, INTERVALS, nextBucket, queryTime, resolveTime, type TimeInput } from '../time.js'
import { intInRange, parseOrThrow } from '../validation.js'
import { filterShape, nonEmpty, timeInput } from './filter-shape.js'
import { computeHealth, type HealthQuery, healthQuerySchema, type HealthRow } from './health.js'
import { parseSlos, type SloDefinition } from '../slos/slo.js'

export { filterShape }

/** The key shown for calls whose grouped field is empty (no tenant, no model, no status code…). */
export const NO_VALUE_KEY = '(none)'

type OneOrMany<T> = T | readonly T[]

/**
 * Which calls a stats query reads. Every field is optional; fields are AND-ed, a list inside a field is OR-ed, and
 * `null` matches calls where the field is empty. `from` is inclusive and `to` exclusive; each is a Date, epoch ms,
 * an ISO-8601 string, or a relative time such as `'-24h'`, `'-7d'`, `'-30m'`, `'now'`.
 *
 * @example
 * ```ts
 * await monitor.stats.summary({ api: 'openai', from: '-24h', outcome: ['server_error', 'timeout'] })
 * ```
 */
export interface StatsFilter {
  from?: TimeInput
  to?: TimeInput
  service?: OneOrMany<string>
  direction?: OneOrMany<Direction>
  api?: OneOrMany<string | null>
  route?: OneOrMany<string>
  method?: OneOrMany<string>
  tenantId?: OneOrMany<string | null>
  userId?: OneOrMany<string | null>
  outcome?: OneOrMany<Outcome>
  model?: OneOrMany<string | null>
  statusCode?: OneOrMany<number | null>
}

/**
 * A timeseries query: the filter plus a UTC bucket size and an optional grouping.
 *
 * @example
 * ```ts
 * await monitor.stats.timeseries({ interval: 'hour', from: '-7d', groupBy: 'route' })
 * ```
 */
export interface TimeseriesQuery extends StatsFilter {
  interval: Interval
  /** One row per (bucket, group) instead of one per bucket. */
  groupBy?: Dimension
  /**
   * Without `groupBy` and with a `from`, every bucket from `from` up to `to` (default now) is returned, empty ones
   * as zero rows, so charts need no gap handling. Set `false` to get only buckets that have calls.
   * @default true
   */
  fill?: boolean
}

/** What a breakdown can be ordered by. */
export const BREAKDOWN_ORDERS = [
  'requests',
  'errors',
  'errorRate',
  'cost',
  'cached',
  'cacheHitRate',
  'tokens',
  'requestBytes',
  'responseBytes',
  'avgLatency',
  'p50',
  'p95',
  'p99',
  'maxLatency',
  'key',
] as const
/** One of {@link BREAKDOWN_ORDERS}. */
export type BreakdownOrder = (typeof BREAKDOWN_ORDERS)[number]

/**
 * A breakdown query: the filter, the dimension to group by, the order and how many rows.
 *
 * @example
 * ```ts
 * await monitor.stats.breakdown({ by: 'tenant', orderBy: 'cost', limit: 10 })
 * ```
 */
export interface BreakdownQuery extends StatsFilter {
  by: Dimension
  /** @default 'requests' */
  orderBy?: BreakdownOrder
  /** @default 'desc' ('asc' when ordering by key) */
  order?: 'asc' | 'desc'
  /** Most rows returned (after ordering). */
  limit?: number
}

/** One bucket of a timeseries; `group` is present when the query had `groupBy`. */
export type TimeseriesPoint = StatsSummary & { start: Date; group?: string }
/** One row of a breakdown. */
export type BreakdownRow = StatsSummary & { key: string }

/**
 * The query API over a storage: the same on `monitor.stats` and on `createStats(storage)`.
 */
export interface Stats {
  /**
   * Totals over the filtered calls.
   * @example
   * ```ts
   * const { requests, errorRate, cost, latency } = await stats.summary({ from: '-24h' })
   * ```
   */
  summary(filter?: StatsFilter): Promise<StatsSummary>
  /**
   * One summary per UTC time bucket (and group), oldest first.
   * @example
   * ```ts
   * const hourly = await stats.timeseries({ interval: 'hour', from: '-24h' })
   * ```
   */
  timeseries(query: TimeseriesQuery): Promise<TimeseriesPoint[]>
  /**
   * One summary per value of a dimension, ordered and limited.
   * @example
   * ```ts
   * const topTenants = await stats.breakdown({ by: 'tenant', orderBy: 'cost', limit: 10 })
   * ```
   */
  breakdown(query: BreakdownQuery): Promise<BreakdownRow[]>
  /**
   * `healthy`, `degraded` or `critical` per tenant, API or route, with the reasons: server-side error rate and p95
   * over the range (default the last hour), and the remaining error budget of each SLO for the key. See
   * docs/slos.md for the thresholds and their defaults.
   * @example
   * ```ts
   * for (const t of await stats.health({ by: 'tenant', from: '-1h' })) if (t.status !== 'healthy') console.log(t.key, t.reasons)
   * ```
   */
  health(query: HealthQuery): Promise<HealthRow[]>
  /**
   * Process metrics (stored by monitors with the `system` option), aggregated per UTC bucket, oldest first; only
   * buckets with samples are returned.
   * @example
   * ```ts
   * const perMinute = await stats.system({ from: '-1h', interval: 'minute' })
   * ```
   */
  system(query: SystemQuery): Promise<SystemBucket[]>
}

/**
 * A process metrics query: a time range, a UTC bucket size, and optionally one service or instance.
 *
 * @example
 * ```ts
 * await monitor.stats.system({ from: '-24h', interval: 'hour', service: 'checkout' })
 * ```
 */
export interface SystemQuery {
  from?: TimeInput
  to?: TimeInput
  interval: Interval
  service?: string
  /** `<host>:<pid>` of one process. */
  instance?: string
}

/** Options of {@link createStats}. */
export interface CreateStatsOptions {
  /**
   * Clock used to resolve relative times such as `'-24h'`.
   * @default the system clock
   * @example
   * ```ts
   * createStats(storage, { clock: { now: () => Date.parse('2026-01-02T00:00:00Z') } })
   * ```
   */
  clock?: Clock
  /**
   * SLOs whose remaining budget `health()` judges per key, unless a query gives its own.
   * @default []
   * @example
   * ```ts
   * createStats(storage, { slos: [{ name: 'checkout', objective: 0.999, window: '30d', indicator: { kind: 'availability', filter: { route: '/checkout' } } }] })
   * ```
   */
  slos?: readonly SloDefinition[]
}

const MAX_FILL_BUCKETS = 100_000

const filterSchema = z.strictObject(filterShape)
const dimension = z.enum(DIMENSIONS, { error: `one of ${DIMENSIONS.join(', ')}` })
const timeseriesSchema = z.strictObject({
  ...filterShape,
  interval: z.enum(INTERVALS, { error: `one of ${INTERVALS.join(', ')}` }),
  groupBy: dimension.optional(),
  fill: z.boolean().optional(),
})
const breakdownSchema = z.strictObject({
  ...filterShape,
  by: dimension,
  orderBy: z.enum(BREAKDOWN_ORDERS, { error: `one of ${BREAKDOWN_ORDERS.join(', ')}` }).optional(),
  order: z.enum(['asc', 'desc']).optional(),
  limit: intInRange(1, Number.MAX_SAFE_INTEGER, 'a whole number >= 1').optional(),
})

const systemSchema = z.strictObject({
  from: timeInput.optional(),
  to: timeInput.optional(),
  interval: z.enum(INTERVALS, { error: `one of ${INTERVALS.join(', ')}` }),
  service: nonEmpty.optional(),
  instance: nonEmpty.optional(),
})

type ParsedFilter = z.infer<typeof filterSchema>

/** Memoised `storage.init()`, shared by the monitor and every stats object on the same storage. */
const initialised = new WeakMap<StorageAdapter, Promise<void>>()
/** Runs `storage.init()` once (again after a failure). */
export function ensureStorageReady(storage: StorageAdapter): Promise<void> {
  let ready = initialised.get(storage)
  if (ready === undefined) {
    ready = Promise.resolve()
      .then(() => storage.init?.())
      .catch((error: unknown) => {
        initialised.delete(storage)
        throw error
      })
    initialised.set(storage, ready)
  }
  return ready
}

function toList<T>(value: T | readonly T[] | undefined): readonly T[] | undefined {
  if (value === undefined) return undefined
  return Array.isArray(value) ? (value as readonly T[]) : [value as T]
}

/** Turns a public filter into the resolved form storage adapters take. Exported for storage tests. */
export function resolveFilter(parsed: ParsedFilter, now: number, root = 'query'): CallFilter {
  const filter: CallFilter = {}
  for (const edge of ['from', 'to'] as const) {
    const value = parsed[edge]
    if (value === undefined) continue
    const t = resolveTime(value, now)
    if (t === undefined) {
      throw new ApimeterError(
        'INVALID_QUERY',
        `${root}.${edge} must be a Date, epoch milliseconds, an ISO-8601 string or a relative time such as '-24h', '-7d', '-30m' or 'now', got ${describeValue(value)}`,
        { details: { field: edge } },
      )
    }
    filter[edge] = t
  }
  if (filter.from !== undefined && filter.to !== undefined && filter.from > filter.to) {
    throw new ApimeterError(
      'INVALID_QUERY',
      `${root}.from must not be after ${root}.to, got from ${new Date(filter.from).toISOString()} and to ${new Date(filter.to).toISOString()}`,
      { details: { field: 'from' } },
    )
  }
  for (const field of FILTER_FIELDS) {
    const list = toList(parsed[field] as unknown)
    if (list === undefined) continue
    ;(filter as Record<string, unknown>)[field] = field === 'method' ? list.map((m) => String(m).toUpperCase()) : list
  }
  return filter
}

/** Code-point order: the same on every machine and locale. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function keyOf(value: string | null): string {
  return value === null ? NO_VALUE_KEY : value
}

function orderValue(row: BreakdownRow, orderBy: BreakdownOrder): number | string | null {
  switch (orderBy) {
    case 'key':
      return row.key
    case 'tokens':
      return row.tokens.input + row.tokens.output + row.tokens.cachedInput
    case 'avgLatency':
      return row.latency?.avg ?? null
    case 'maxLatency':
      return row.latency?.max ?? null
    case 'p50':
    case 'p95':
    case 'p99':
      return row.latency?.[orderBy] ?? null
    default:
      return row[orderBy]
  }
}

/**
 * The stats query API over any storage, without a monitor: for scripts, the CLI and dashboards.
 *
 * @example
 * ```ts
 * import { createStats } from '@apimeter/core'
 * import { sqliteStorage } from '@apimeter/storage-sqlite'
 *
 * const stats = createStats(sqliteStorage({ filename: 'apimeter.db' }))
 * console.log(await stats.summary({ from: '-24h' }))
 * ```
 */
export function createStats(storage: StorageAdapter, options: CreateStatsOptions = {}): Stats {
  if (typeof storage !== 'object' || storage === null || typeof storage.aggregate !== 'function') {
    throw new ApimeterError('INVALID_OPTIONS', `createStats(storage) needs a storage adapter (memoryStorage(), sqliteStorage(), …), got ${describeValue(storage)}`)
  }
  const clock = resolveClock(options.clock)
  const slos = options.slos === undefined ? [] : parseSlos(options.slos, 'createStats.options.slos')

  const parse = <T>(schema: z.ZodType<T>, input: unknown): T => parseOrThrow(schema, input ?? {}, 'query', 'INVALID_QUERY')

  return {
    async summary(filter = {}) {
      const parsed = parse(filterSchema, filter)
      const resolved = resolveFilter(parsed, clock.now())
      await ensureStorageReady(storage)
      const rows = await storage.aggregate({ filter: resolved, groupBy: [] })
      const total = emptyAggregate()
      let resolution: Resolution = 'raw'
      for (const row of rows) {
        mergeAggregate(total, row.state)
        resolution = coarserResolution(resolution, row.resolution ?? 'raw')
      }
      return toSummary(total, resolution)
    },

    async timeseries(query) {
      const parsed = parse(timeseriesSchema, query)
      const now = clock.now()
      const resolved = resolveFilter(parsed, now)
      const interval = parsed.interval
      const groupBy = parsed.groupBy
      const fill = parsed.fill !== false && groupBy === undefined && resolved.from !== undefined
      let fillStarts: number[] = []
      if (fill) {
        const end = resolved.to ?? now
        for (let t = bucketStart(resolved.from!, interval); t < end; t = nextBucket(t, interval)) {
          fillStarts.push(t)
          if (fillStarts.length > MAX_FILL_BUCKETS) {
            throw new ApimeterError(
              'INVALID_QUERY',
              `query.interval '${interval}' over this range gives more than ${MAX_FILL_BUCKETS} buckets; use a coarser interval, a shorter range, or fill: false`,
              { details: { field: 'interval' } },
            )
          }
        }
      }
      await ensureStorageReady(storage)
      const rows = await storage.aggregate({ filter: resolved, groupBy: groupBy ? [groupBy] : [], interval, summariesOnly: true })
      const points: TimeseriesPoint[] = rows.map((row) => {
        const point: TimeseriesPoint = { start: new Date(row.start!), ...toSummary(row.state, row.resolution, row.percentiles) }
        if (groupBy) point.group = keyOf(row.keys[0] ?? null)
        return point
      })
      if (fill) {
        const have = new Set(points.map((p) => p.start.getTime()))
        // A point that retention left only at a coarser resolution covers its whole bucket: no zero rows inside it.
        const covered = points
          .filter((p) => p.resolution === 'hour' || p.resolution === 'day' || p.resolution === 'month')
          .map((p) => [p.start.getTime(), nextBucket(p.start.getTime(), p.resolution as Interval)] as const)
        fillStarts = fillStarts.filter((t) => !have.has(t) && !covered.some(([s, e]) => t >= s && t < e))
        for (const t of fillStarts) points.push({ start: new Date(t), ...toSummary(emptyAggregate()) })
      }
      points.sort(
        (a, b) => a.start.getTime() - b.start.getTime() || compareStrings(a.group ?? '', b.group ?? ''),
      )
      return points
    },

    async breakdown(query) {
      const parsed = parse(breakdownSchema, query)
      const resolved = resolveFilter(parsed, clock.now())
      await ensureStorageReady(storage)
      const orderBy = parsed.orderBy ?? 'requests'
      const direction = (parsed.order ?? (orderBy === 'key' ? 'asc' : 'desc')) === 'asc' ? 1 : -1
      // Orders computable from sums let the storage rank in SQL and build only the first groups.
      const top = parsed.limit !== undefined && (SUM_ORDERS as readonly string[]).includes(orderBy)
        ? { order: orderBy as TopGroups['order'], descending: direction === -1, limit: parsed.limit }
        : undefined
      const rows = await storage.aggregate({ filter: resolved, groupBy: [parsed.by], summariesOnly: true, ...(top ? { top } : {}) })
      const out: BreakdownRow[] = rows.map((row) => ({ key: keyOf(row.keys[0] ?? null), ...toSummary(row.state, row.resolution, row.percentiles) }))
      out.sort((a, b) => {
        const va = orderValue(a, orderBy)
        const vb = orderValue(b, orderBy)
        if (va !== vb) {
          if (va === null) return 1 // rows without a value always last
          if (vb === null) return -1
          const cmp = typeof va === 'string' ? compareStrings(va, vb as string) : (va) - (vb as number)
          if (cmp !== 0) return cmp * direction
        }
        return compareStrings(a.key, b.key)
      })
      return parsed.limit === undefined ? out : out.slice(0, parsed.limit)
    },

    async health(query) {
      const parsed = parse(healthQuerySchema, query)
      return computeHealth(storage, parsed, clock.now(), slos)
    },
    async system(query) {
      const parsed = parse(systemSchema, query)
      const now = clock.now()
      const range = { from: queryTime(parsed.from, now, 'query.from'), to: queryTime(parsed.to, now, 'query.to') }
      if (storage.system === undefined) return []
      const samples = await storage.system.list({ ...range, service: parsed.service, instance: parsed.instance })
      return bucketSystemSamples(samples, parsed.interval)
    },
  }
}
