import { type RawBuilder, sql } from 'kysely'
import { AggregateGroups, type AggregateRow, type AggregateState, coarserResolution, mergeAggregate, type Resolution } from '../../storage/aggregate.js'
import type { AggregateQuery } from '../../storage/adapter.js'
import { type CallFilter, type Dimension, FILTER_FIELDS } from '../../storage/filter.js'
import { bucketStart, HOUR } from '../../time.js'
import { keyText, num } from '../num.js'
import { OUTCOMES } from '../../call/outcome.js'
import { LatencySketch } from '../../storage/sketch.js'
import type { CursorPosition, SqlDialect } from '../dialect.js'
import { aggregateCalls, filterExpression } from '../raw-aggregate.js'
import type { RollupContext } from './context.js'
import {
  chooseLevel,
  DIMENSION_KEY_COLUMN,
  FILTER_DIMENSION,
  FINE_GRAIN,
  type GrainRows,
  OUTCOME_COLUMNS,
  ROLLUP_GRAIN,
  ROLLUP_TABLES,
  SUM_COLUMNS,
  type RollupResolution,
  rollupFilterExpression,
  ROUTE_HOUR,
  ROUTE_HOUR_DIMS,
  routeTableOf,
} from './levels.js'
import { FINE_MS, planQuery } from './plan.js'
import { readPlanState } from './state.js'
import { TABLES } from '../schema.js'
import { readStoredPercentiles } from './stored-percentiles.js'

/** Where the calls of a query are read: whole rollup buckets, or raw calls (edges, the not-yet-rolled tail). */
export type Source =
  | {
      kind: 'rollup'
      unit: RollupResolution
      level: number
      start: number
      end: number
      /** Read from the route table of its unit (route by hour, route by 5 minutes) rather than the level table. */
      byRoute?: boolean
    }
  | {
      kind: 'raw'
      filter: CallFilter
      where?: RawBuilder<boolean>
      time?: RawBuilder<number>
      tail?: { at: CursorPosition; start: number; end: number; deletions: number; rawFrom: number }
      /** A sub-hour edge of a range that rollups answer otherwise (not a whole range no rollup level keeps). */
      edge?: boolean
    }

/** The dimensions a query groups by or filters on. */
function neededDimensions(query: AggregateQuery): Dimension[] {
  return [...query.groupBy, ...FILTER_FIELDS.filter((f) => query.filter[f] !== undefined).map((f) => FILTER_DIMENSION[f])]
}

/**
 * The sources of a query: the plan's segments, plus the raw tail inside the rollup range. Hour buckets of a query
 * needing no dimension but the route come from the route-by-hour table where it is complete, and its sub-hour edges
 * from the route-by-5-minutes table where that is (`routeHour: false` leaves them on the route level's rows and raw
 * calls, for readers that only know the level tables).
 */
export async function sourcesOf(ctx: RollupContext, query: AggregateQuery, options: { routeHour?: boolean } = {}): Promise<{ sources: Source[]; resolution: Resolution }> {
  const { db, dialect } = ctx
  const level = chooseLevel(query.filter, query.groupBy)
  const byRoute = options.routeHour !== false && level?.id === 1 && neededDimensions(query).every((d) => ROUTE_HOUR_DIMS.includes(d))
  const { at, horizons, deletions } = await readPlanState(db)
  // a level without 5-minute rows: as if they existed nowhere (sub-hour edges raw) — but a query by route alone has
  // the route-by-5-minutes rows, complete from their own horizon
  const fine = level?.fine ? horizons.fine : byRoute ? horizons.route5m : Infinity
  const plan = planQuery(query.filter.from, query.filter.to, query.interval, { ...horizons, fine }, level !== null)
  const rangeFilter = (start: number, end: number): CallFilter => ({
    ...query.filter,
    from: Number.isFinite(start) ? start : undefined,
    to: Number.isFinite(end) ? end : undefined,
  })
  const sources: Source[] = []
  let rollupStart = Infinity
  let rollupEnd = -Infinity
  for (const segment of plan.segments) {
    if (segment.unit === 'raw') {
      sources.push({ kind: 'raw', filter: rangeFilter(segment.start, segment.end), edge: level !== null })
      continue
    }
    rollupStart = Math.min(rollupStart, segment.start)
    rollupEnd = Math.max(rollupEnd, segment.end)
    if (byRoute && segment.unit === 'hour') {
      // split where the route-by-hour rows begin
      const cut = Math.min(Math.max(horizons.routeHour ?? -Infinity, segment.start), segment.end)
      if (segment.start < cut) sources.push({ kind: 'rollup', unit: 'hour', level: level.id, start: segment.start, end: cut })
      if (cut < segment.end) sources.push({ kind: 'rollup', unit: 'hour', level: level.id, start: cut, end: segment.end, byRoute: true })
      continue
    }
    // 5-minute segments of a query by route are planned only where the route-by-5-minutes rows are complete
    sources.push({ kind: 'rollup', unit: segment.unit, level: level!.id, start: segment.start, end: segment.end, ...(byRoute && segment.unit === '5m' ? { byRoute: true } : {}) })
  }
  if (rollupStart < rollupEnd) {
    sources.push({
      kind: 'raw',
      filter: rangeFilter(rollupStart, rollupEnd),
      where: dialect.cursor.tail(at),
      time: dialect.cursor.tailTime,
      tail: { at, start: rollupStart, end: rollupEnd, deletions, rawFrom: horizons.raw },
    })
  }
  return { sources, resolution: plan.resolution }
}

/**
 * The WHERE clause of a rollup source: level (the route-by-hour table has none), bucket range, and the query's filter
 * on the key columns.
 */
export function rollupWhere(source: Extract<Source, { kind: 'rollup' }>, filter: CallFilter): RawBuilder<boolean> {
  const bounds: RawBuilder<unknown>[] = source.byRoute ? [] : [sql`level = ${source.level}`]
  if (Number.isFinite(source.start)) bounds.push(sql`bucket_start >= ${source.start}`)
  if (Number.isFinite(source.end)) bounds.push(sql`bucket_start < ${source.end}`)
  bounds.push(rollupFilterExpression(filter))
  return sql<boolean>`${sql.join(bounds, sql` AND `)}`
}

/**
 * Answers an aggregate query from rollups where whole buckets allow, raw calls at the edges, and the not-yet-rolled
 * tail; falls back to raw calls when no rollup level keeps the query's dimensions.
 */
export async function aggregateWithRollups(ctx: RollupContext, query: AggregateQuery): Promise<AggregateRow[]> {
  const { db, dialect } = ctx
  const { sources, resolution } = await sourcesOf(ctx, query)
  const groups = new AggregateGroups()
  const stored = new StoredPercentiles()
  for (const source of sources) {
    if (source.kind === 'raw') {
      if (source.tail && ctx.accumulator && (await tailFromMemory(ctx, query, source.tail, groups))) continue
      const where = source.tail && ctx.txTail ? tailFromTransactions(ctx, query, source.tail, groups) : source.where
      const listBuckets = source.edge === true && (await isShortStretch(ctx, source.filter))
      const read = () => aggregateCalls(db, dialect, { ...query, filter: source.filter }, { where, time: source.time, into: groups, listBuckets })
      await (source.tail && dialect.readTail ? dialect.readTail(db, read) : read())
      continue
    }
    // grouped in SQL: one row per group and rollup bucket, its sketches joined into one value — except an hourly
    // series by route over the route-by-hour table, whose rows are its groups already: read as they are
    const asStored = source.byRoute === true && source.unit === 'hour' && query.interval === 'hour' && query.groupBy.length === 1 && query.groupBy[0] === 'route'
    // its rows' stored percentiles stand in for their sketches where the caller reads summaries only
    const percentiles = asStored && query.summariesOnly === true
    if (asStored && dialect.packRows && (await readPackedRouteHours(ctx, dialect.packRows, source, query, groups, percentiles ? stored : undefined))) continue
    const groupColumns = asStored ? [] : rollupGroupColumns(query)
    const table = (source.byRoute ? routeTableOf(source.unit)?.shape.table : undefined) ?? ROLLUP_TABLES[source.unit]
    const rows = await sql<Record<string, unknown>>`SELECT ${rollupAggregates(query, dialect, source.byRoute === true, !asStored, percentiles)} FROM ${sql.table(table)}
      WHERE ${rollupWhere(source, query.filter)}${groupColumns.length > 0 ? sql` GROUP BY ${sql.join(groupColumns)}` : sql``}`.execute(db)
    // A bucket coarser than the query's interval (retention removed the finer one) is reported at its own start.
    const coarser = query.interval !== undefined && rankOf(source.unit) > rankOf(query.interval)
    const keyColumns = query.groupBy.map((d) => DIMENSION_KEY_COLUMN[d]!)
    for (const row of rows.rows) {
      if (typeof row.sums !== 'string') continue // an ungrouped aggregate over no rows
      const start = query.interval === undefined ? null : coarser ? num(row.bucket_start) : bucketStart(num(row.bucket_start), query.interval)
      const keys: (string | null)[] = []
      for (const column of keyColumns) keys.push(keyOf(column, row[column]))
      const group = groups.get(start, keys)
      const sums = addPackedSums(group.state, row.sums)
      if (row.sketch) LatencySketch.decodeInto(row.sketch as Uint8Array, group.state.sketch)
      else if (percentiles) stored.take(group, row.percentiles, sums[0]!, num(row.bucket_start), keys[0] ?? '')
      if (coarser && source.unit !== '5m') group.resolution = coarserResolution(group.resolution ?? 'raw', source.unit)
    }
  }
  await stored.settle(ctx)
  const result = groups.rows()
  // Summaries and breakdowns carry the plan's precision; timeseries points carry their own (marked above).
  if (resolution !== 'raw' && (query.interval === undefined || resolution === 'partial')) {
    for (const row of result) row.resolution = coarserResolution(row.resolution ?? 'raw', resolution)
  }
  return result
}

/**
 * Whether the raw calls of a query's edge are few enough to be aggregated with their latency buckets listed (see
 * `aggregateCalls`' `listBuckets`): one grouping where the edge of an hourly series by route otherwise groups nearly
 * once per call, by latency bucket too, and then again (measured at 10M calls over 30 days on SQLite: the first
 * hour's 43 minutes, ~10,000 calls, 18 ms → 10 ms). Asked only of edges (an hour at most), which the count reads
 * once more: counted up to one past the bound, it stops early on a busy edge, and a quiet one is cheap to read twice.
 * A range no rollup level answers is read as before, without the count: a selective filter over days would make
 * the count read all of it.
 */
async function isShortStretch(ctx: RollupContext, filter: CallFilter): Promise<boolean> {
  if (ctx.dialect.joinLatencyBuckets === undefined) return false
  return (await countUpTo(ctx, TABLES.calls, filterExpression(filter), LIST_BUCKETS_MAX_CALLS)) <= LIST_BUCKETS_MAX_CALLS
}

/** How many rows of `table` match `where`, counted up to `max + 1` (where the reader's choice changes). */
async function countUpTo(ctx: RollupContext, table: string, where: RawBuilder<boolean>, max: number): Promise<number> {
  const first = sql`SELECT 1 FROM ${sql.table(table)} WHERE ${where} LIMIT ${sql.lit(max + 1)}`
  const r = await sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM (${first}) AS matching`.execute(ctx.db)
  return num(r.rows[0]?.n)
}

/**
 * Calls up to which a query's raw edge lists every call's latency bucket (a text of a few bytes per call per group)
 * instead of grouping by the bucket in SQL.
 */
const LIST_BUCKETS_MAX_CALLS = 50_000

/**
 * Adds the not-yet-rolled tail from the calls this process wrote since the cursor, aggregated in memory as they were
 * written (SQLite: see `RollupAccumulator`), when they are exactly the calls above the cursor: right after a burst
 * of writes, a query then reads no raw calls for the tail. The memory holds hourly rows at the full grain and
 * 5-minute rows at the 5-minute grain (level 0's dimensions with method and route), so the tail's range must be
 * aligned to the buckets used. Returns false when the database has to be read instead.
 */
async function tailFromMemory(ctx: RollupContext, query: AggregateQuery, tail: TailRange, groups: AggregateGroups): Promise<boolean> {
  const grain = memoryGrain(query, tail)
  if (grain === null) return false
  // the ids above the cursor, and how many of them there are: a raw call deleted by hand before it was rolled up
  // leaves a gap the memory does not know of
  const r = await sql<{ n: unknown; m: unknown }>`SELECT COUNT(*) AS n, MAX(id) AS m FROM ${sql.table(TABLES.calls)} WHERE ${ctx.dialect.cursor.tail(tail.at)}`.execute(ctx.db)
  const count = num(r.rows[0]?.n)
  if (count === 0) return true // nothing above the cursor
  const memory = ctx.accumulator!.rowsFor(tail.at.upto, num(r.rows[0]?.m), count)
  if (memory === null) return false
  addMemoryRows(query, tail, grain, memory, groups)
  return true
}

/**
 * PostgreSQL's tail: adds the batches this process wrote that are still in the tail, from memory (see `TxTail`), and
 * returns what the raw read of the tail must still cover — the tail without those batches' transactions.
 */
export function tailFromTransactions(ctx: RollupContext, query: AggregateQuery, tail: TailRange, groups: AggregateGroups): RawBuilder<boolean> {
  const whole = ctx.dialect.cursor.tail(tail.at)
  const grain = memoryGrain(query, tail)
  if (grain === null || !ctx.tailGenerations || !ctx.dialect.cursor.tailExcept) return whole
  const taken = ctx.txTail!.take(ctx.tailGenerations, tail.at, tail.deletions, tail.rawFrom)
  if (taken.txids.length === 0) return whole
  for (const rows of taken.rows) addMemoryRows(query, tail, grain, rows, groups)
  return ctx.dialect.cursor.tailExcept(tail.at, taken.txids)
}

/** The tail of a query: its cursor position, the rollup range it lies in, the raw-deletion count and the raw horizon. */
export type TailRange = NonNullable<Extract<Source, { kind: 'raw' }>['tail']>

/**
 * Which grain of memory rows answers a query over `tail`: 5-minute rows when the query needs only their dimensions and
 * the range is aligned to them, hourly rows when it is aligned to hours; null when neither (the memory holds hourly
 * rows at the full grain and 5-minute rows at the 5-minute grain).
 */
function memoryGrain(query: AggregateQuery, tail: TailRange): 'fine' | 'hourly' | null {
  const aligned = (t: number, ms: number): boolean => !Number.isFinite(t) || t % ms === 0
  if (neededDimensions(query).every((d) => FINE_GRAIN.includes(d)) && aligned(tail.start, FINE_MS) && aligned(tail.end, FINE_MS)) return 'fine'
  return aligned(tail.start, HOUR) && aligned(tail.end, HOUR) ? 'hourly' : null
}

/** Merges memory rows of `grain` inside the tail's range and matching the query's filter into the query's groups. */
function addMemoryRows(query: AggregateQuery, tail: TailRange, grain: 'fine' | 'hourly', memory: GrainRows, groups: AggregateGroups): void {
  // grain keys are in ROLLUP_GRAIN order (the 5-minute grain is a prefix of it)
  const filters = FILTER_FIELDS.flatMap((field) => {
    const values = query.filter[field] as readonly (string | number | null)[] | undefined
    if (values === undefined) return []
    const index = ROLLUP_GRAIN.indexOf(FILTER_DIMENSION[field])
    const wanted = new Set(values.map((v) => (v === null ? null : String(v))))
    return [(keys: readonly (string | null)[]) => wanted.has(keys[index] ?? null)]
  })
  const groupIndexes = query.groupBy.map((d) => ROLLUP_GRAIN.indexOf(d))
  for (const row of memory[grain]) {
    const start = row.start!
    if (start < tail.start || start >= tail.end || !filters.every((matches) => matches(row.keys))) continue
    const keys = groupIndexes.map((i) => row.keys[i] ?? null)
    mergeAggregate(groups.get(query.interval === undefined ? null : bucketStart(start, query.interval), keys).state, row.state)
  }
}

/** The columns a rollup read groups by: the bucket when the query has an interval, and the query's group keys. */
function rollupGroupColumns(query: AggregateQuery): RawBuilder<unknown>[] {
  const keys = query.groupBy.map((d) => DIMENSION_KEY_COLUMN[d]!)
  return [...(query.interval === undefined ? [] : ['bucket_start']), ...keys].map((c) => sql.ref(c))
}

/**
 * What a rollup read selects per group: its group columns, its numbers as one text column `sums` (see
 * {@link addPackedSums}) and the joined sketches. One text column rather than twenty numeric ones: a grouped
 * timeseries returns thousands of groups, and building a row's columns on the JavaScript side (an object property
 * per column on SQLite, a parsed field per column on PostgreSQL) cost more than the database's grouping did.
 * `outcomeColumns`: the table keeps the requests per outcome in columns (route by hour), not in its key; `grouped`
 * false: each row is a group already (its columns are read as they are).
 */
function rollupAggregates(query: AggregateQuery, dialect: SqlDialect, outcomeColumns: boolean, grouped: boolean, percentiles = false): RawBuilder<unknown> {
  const columns = [...rollupGroupColumns(query), sql`${packedNumbers(outcomeColumns, grouped)} AS sums`]
  // route-by-hour rows as stored, summaries only: a row's sketch only where it keeps no percentiles
  if (percentiles) columns.push(sql`CASE WHEN latency_percentiles IS NULL THEN latency_sketch END AS sketch`, sql`latency_percentiles AS percentiles`)
  else columns.push(sql`${grouped ? dialect.joinSketches() : sql`latency_sketch`} AS sketch`)
  return sql.join(columns)
}

/** The `sums` text of a rollup read (see {@link addPackedSums}): of each group (`grouped`), or of each row as stored. */
function packedNumbers(outcomeColumns: boolean, grouped: boolean, extra: RawBuilder<unknown>[] = []): RawBuilder<string> {
  const sum = (c: RawBuilder<unknown>): RawBuilder<unknown> => (grouped ? sql`SUM(${c})` : c)
  const numbers = [
    ...SUM_COLUMNS.map((c) => sum(sql.ref(c))),
    ...(outcomeColumns
      ? OUTCOME_COLUMNS.map((c) => sum(sql.ref(c)))
      : OUTCOMES.map((o) => sql`SUM(CASE WHEN outcome = ${sql.lit(o)} THEN requests ELSE 0 END)`)),
    grouped ? sql`MIN(duration_min_us)` : sql`duration_min_us`,
    grouped ? sql`MAX(duration_max_us)` : sql`duration_max_us`,
    ...extra,
  ].map((n) => sql`CAST(${n} AS TEXT)`)
  return sql<string>`${sql.join(numbers, sql` || ',' || `)}`
}

/** Stored rows an hourly series by route reads as one packed row at most (bounding the size of its values). */
const PACKED_ROWS = 50_000

/**
 * Reads an hourly series by route from the route-by-hour rows as one row ({@link SqlDialect.packRows}): the routes
 * as a JSON array, each row's sums with its bucket start and sketch length, and the sketches end to end. Returns false
 * (nothing read) when the range holds more than {@link PACKED_ROWS} rows: those are read row by row.
 */
async function readPackedRouteHours(
  ctx: RollupContext,
  packRows: NonNullable<SqlDialect['packRows']>,
  source: Extract<Source, { kind: 'rollup' }>,
  query: AggregateQuery,
  groups: AggregateGroups,
  stored: StoredPercentiles | undefined,
): Promise<boolean> {
  const where = rollupWhere(source, query.filter)
  const table = sql.table(ROUTE_HOUR.table)
  const count = await countUpTo(ctx, ROUTE_HOUR.table, where, PACKED_ROWS)
  if (count > PACKED_ROWS) return false
  if (count === 0) return true
  // with `stored`: a row's percentiles in place of its sketch where it keeps them (the last number says which)
  const blob = stored ? sql`coalesce(latency_percentiles, latency_sketch)` : sql`latency_sketch`
  const each = packedNumbers(true, false, [sql`bucket_start`, sql`length(${blob})`, stored ? sql`latency_percentiles IS NOT NULL` : sql`0`])
  const r = await sql<{ routes: unknown; sums: unknown; sketches: unknown }>`SELECT ${packRows.texts('route')} AS routes, ${packRows.joined(each)} AS sums,
    ${packRows.blobs(blob)} AS sketches FROM ${table} WHERE ${where}`.execute(ctx.db)
  const row = r.rows[0]
  if (row === undefined || typeof row.sums !== 'string') return true // the rows went between the two reads (retention)
  const routes = (typeof row.routes === 'string' ? JSON.parse(row.routes) : row.routes) as unknown[]
  const sketches = row.sketches as Uint8Array
  const sums = row.sums
  let from = 0
  let at = 0
  for (let i = 0; i < routes.length; i++) {
    const end = sums.indexOf(';', from)
    const packed = parsePackedSums(sums, from, end < 0 ? sums.length : end)
    from = end + 1
    const start = packed[PACKED_SUMS]!
    const route = keyOf('route', routes[i])
    const group = groups.get(bucketStart(start, 'hour'), [route])
    addParsedSums(group.state)
    const length = packed[PACKED_SUMS + 1]!
    const bytes = sketches.subarray(at, at + length)
    if (packed[PACKED_SUMS + 2] === 1) stored!.take(group, bytes, packed[0]!, start, route ?? '')
    else if (length > 0) LatencySketch.decodeInto(bytes, group.state.sketch)
    at += length
  }
  return true
}

/** The aggregate's field behind each sum column. */
const SUM_FIELD = {
  requests: 'requests',
  cached: 'cached',
  cost_nanos: 'costNanos',
  cost_unknown: 'costUnknown',
  cost_estimated_nanos: 'costEstimatedNanos',
  input_tokens: 'inputTokens',
  output_tokens: 'outputTokens',
  cached_input_tokens: 'cachedInputTokens',
  request_bytes: 'requestBytes',
  response_bytes: 'responseBytes',
  duration_sum_us: 'durationSumUs',
} as const satisfies Record<(typeof SUM_COLUMNS)[number], keyof AggregateState>

/** The fields behind the sum columns, in {@link SUM_COLUMNS} order. */
const SUM_FIELDS = SUM_COLUMNS.map((c) => SUM_FIELD[c])
/** How many numbers a rollup read's `sums` holds. */
const PACKED_SUMS = SUM_COLUMNS.length + OUTCOMES.length + 2
/**
 * The numbers of one `sums` value, parsed; a packed read of stored rows adds three (bucket start, the length of its
 * bytes, whether they are stored percentiles).
 */
const packedSums = new Float64Array(PACKED_SUMS + 3)

/**
 * Adds a rollup read's `sums` into an aggregate: the {@link SUM_COLUMNS}, the requests per outcome in
 * {@link OUTCOMES} order, the smallest and the largest duration (µs), comma-separated integers. Read character by
 * character (thousands of rows: no substrings, no array); a number that is not a short plain integer is left to
 * `Number()`, which then gives it exactly as before. Returns the numbers read ({@link packedSums}, read them before
 * the next parse).
 */
function addPackedSums(state: AggregateState, sums: string): Float64Array {
  const parsed = parsePackedSums(sums)
  addParsedSums(state)
  return parsed
}

/** Adds the sums {@link parsePackedSums} read last into an aggregate. */
function addParsedSums(state: AggregateState): void {
  for (let i = 0; i < SUM_FIELDS.length; i++) state[SUM_FIELDS[i]!] += packedSums[i]!
  const at = SUM_FIELDS.length
  for (let i = 0; i < OUTCOMES.length; i++) state.outcomes[OUTCOMES[i]!] += packedSums[at + i]!
  const min = packedSums[at + OUTCOMES.length]! / 1000
  const max = packedSums[at + OUTCOMES.length + 1]! / 1000
  if (min < state.durationMin) state.durationMin = min
  if (max > state.durationMax) state.durationMax = max
}

/**
 * Parses `sums` (from `from` to `to`) into {@link packedSums}: what `Number()` gives each comma-separated part (NaN
 * for a missing one).
 */
export function parsePackedSums(sums: string, from = 0, to = sums.length): Float64Array {
  packedSums.fill(Number.NaN)
  let field = 0
  let start = from
  let value = 0
  let negative = false
  let plain = true
  for (let i = from; i <= to; i++) {
    const c = i < to ? sums.charCodeAt(i) : COMMA
    if (c === COMMA) {
      // up to 15 digits the running value is exact; longer ones round as Number() rounds
      const n = plain && i - start <= 15 ? (negative ? -value : value) : Number(sums.slice(start, i))
      if (field < packedSums.length) packedSums[field] = n
      field++
      start = i + 1
      value = 0
      negative = false
      plain = true
    } else if (c >= DIGIT_0 && c <= DIGIT_0 + 9) value = value * 10 + (c - DIGIT_0)
    else if (c === MINUS && i === start && i + 1 < to && sums.charCodeAt(i + 1) !== COMMA) negative = true
    else plain = false
  }
  return packedSums
}
const COMMA = 44
const MINUS = 45
const DIGIT_0 = 48

/** A group key as a rollup row holds it in `column`: the empty value (status 0, '') is null. */
function keyOf(column: string, v: unknown): string | null {
  if (column === 'status_code') return num(v) === 0 ? null : String(num(v))
  return v === '' ? null : keyText(v)
}

function rankOf(unit: string): number {
  return ['minute', '5m', 'hour', 'day', 'month'].indexOf(unit === 'raw' ? 'minute' : unit)
}

/** A group standing on a stored route-by-hour row's percentiles, and what it held then. */
interface HeldPercentiles {
  group: AggregateRow
  requests: number
  bucketStart: number
  route: string
}

/**
 * The groups of a query that read a route-by-hour row's stored percentiles instead of its sketch (see
 * stored-percentiles.ts). They stand for the group only while it is that row alone: a group that held other calls
 * before the row was read, or was given more after (a raw edge, the not-yet-rolled tail), or whose stored percentiles
 * are missing or do not match the row, reads the row's sketch after all ({@link settle}, in the query's snapshot).
 */
class StoredPercentiles {
  private readonly held: HeldPercentiles[] = []
  private readonly sketches: HeldPercentiles[] = []

  /**
   * The stored row of `requests` calls, just added to `group`, had `value` where its sketch would be. The group is
   * that row alone when it holds as many calls (a row holds at least one).
   */
  take(group: AggregateRow, value: unknown, requests: number, bucketStart: number, route: string): void {
    const entry = { group, requests, bucketStart, route }
    const percentiles = group.state.requests === requests ? readStoredPercentiles(value, requests) : undefined
    if (percentiles === undefined) this.sketches.push(entry)
    else {
      group.percentiles = percentiles
      this.held.push(entry)
    }
  }

  /** Reads the sketches of the rows whose percentiles cannot stand for their group (see the class comment). */
  async settle(ctx: RollupContext): Promise<void> {
    for (const entry of this.held) {
      if (entry.group.state.requests === entry.requests) continue
      delete entry.group.percentiles
      this.sketches.push(entry)
    }
    const table = sql.table(ROUTE_HOUR.table)
    for (let i = 0; i < this.sketches.length; i += SKETCH_REREAD_CHUNK) {
      const chunk = this.sketches.slice(i, i + SKETCH_REREAD_CHUNK)
      const byKey = new Map(chunk.map((e) => [`${e.bucketStart}|${e.route}`, e]))
      const where = sql.join(chunk.map((e) => sql`(bucket_start = ${e.bucketStart} AND route = ${e.route})`), sql` OR `)
      const rows = await sql<{ bucket_start: unknown; route: unknown; latency_sketch: unknown }>`SELECT bucket_start, route, latency_sketch FROM ${table} WHERE ${where}`.execute(ctx.db)
      for (const row of rows.rows) {
        const entry = byKey.get(`${num(row.bucket_start)}|${String(row.route)}`)
        if (entry) LatencySketch.decodeInto(row.latency_sketch as Uint8Array, entry.group.state.sketch)
      }
    }
  }
}
/** Rows whose sketches one statement of {@link StoredPercentiles.settle} reads. */
const SKETCH_REREAD_CHUNK = 200
