import { CompiledQuery, type Kysely, type RawBuilder, sql } from 'kysely'
import { addCall, type AggregateState, emptyAggregate, mergeAggregate } from '../../stats/aggregate.js'
import type { CallRecord } from '../../call/types.js'
import { ApimeterError } from '../../errors.js'
import { OUTCOMES } from '../../call/outcome.js'
import { LatencySketch } from '../../stats/sketch.js'
import { type AggregateQuery } from '../../storage/adapter.js'
import { AggregateGroups, type AggregateRow, coarserResolution } from '../../stats/aggregate.js'
import { type CallFilter, type Dimension, FILTER_FIELDS } from '../../storage/filter.js'
import { bucketStart, nextBucket } from '../../time.js'
import { type Horizons, planQuery } from './plan.js'
import { type SqlDialectName, TABLES } from '../schema.js'
import { addSums, aggregateCalls, num } from '../raw-aggregate.js'

/**
 * Rollups: hour, day and month aggregates of the raw calls, kept at three levels of detail so every common question
 * reads a few hundred rows instead of millions.
 *
 * They are maintained incrementally from the raw table, not on the insert path: a rollup run aggregates the raw
 * calls written since the last run (in SQL, grouped by the level's dimensions, the hour and the latency sketch
 * bucket), merges them into the rollup rows and advances a cursor, all in one transaction. A row is therefore in
 * the rollups exactly once, and queries add the few calls above the cursor from the raw table ("the tail"), so a
 * rollup-backed answer always equals a raw scan, even between runs. Late calls (timestamps in buckets already rolled
 * up) simply land in their old buckets on the next run.
 */

/** A rollup level: the dimensions it keeps. Queries use the smallest level that has every dimension they need. */
export interface RollupLevel {
  id: number
  name: string
  dims: readonly Dimension[]
}

const BASE: readonly Dimension[] = ['service', 'direction', 'api', 'status', 'outcome']
/** Written out so the primary key `(level, bucket_start, …)` serves deletes by time too. */
const LEVEL_IDS = [0, 1, 2]

/** The levels, smallest first. User ids are in none of them (unbounded cardinality): those queries read raw calls. */
export const ROLLUP_LEVELS: readonly RollupLevel[] = [
  { id: 0, name: 'api', dims: BASE },
  { id: 1, name: 'route', dims: [...BASE, 'method', 'route'] },
  { id: 2, name: 'tenant', dims: [...BASE, 'tenant', 'model'] },
]

/** The rollup resolutions and their tables. */
export const ROLLUP_TABLES = { hour: TABLES.rollupHour, day: TABLES.rollupDay, month: TABLES.rollupMonth } as const
export type RollupResolution = keyof typeof ROLLUP_TABLES

const FILTER_DIMENSION: Record<(typeof FILTER_FIELDS)[number], Dimension> = {
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
const KEY_COLUMNS = ['service', 'direction', 'api', 'status_code', 'outcome', 'method', 'route', 'tenant_id', 'model'] as const
type KeyColumn = (typeof KEY_COLUMNS)[number]
const DIMENSION_KEY_COLUMN: Partial<Record<Dimension, KeyColumn>> = {
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
const SUM_COLUMNS = [
  'requests', 'cached', 'cost_nanos', 'cost_unknown', 'input_tokens', 'output_tokens', 'cached_input_tokens',
  'request_bytes', 'response_bytes', 'duration_sum_us',
] as const
const ALL_COLUMNS = ['level', 'bucket_start', ...KEY_COLUMNS, ...SUM_COLUMNS, 'duration_min_us', 'duration_max_us', 'latency_sketch'] as const

/** One rollup row in memory. */
interface RollupRow {
  level: number
  bucketStart: number
  key: Record<KeyColumn, string | number>
  state: AggregateState
}

function rowId(level: number, start: number, key: Record<KeyColumn, string | number>): string {
  let id = `${level}|${start}`
  for (const c of KEY_COLUMNS) id += `|${key[c]}`
  return id
}

/** Cursor handling, the one thing that differs by dialect. */
interface CursorStrategy {
  /** The cursor value a run may advance to, or null when nothing new is there. */
  upto(db: Kysely<unknown>, cursor: number, maxRows: number): Promise<number | null>
  /** Raw calls in (cursor, upto]. */
  batch(cursor: number, upto: number): RawBuilder<boolean>
  /** Raw calls not yet rolled up. */
  tail(cursor: number): RawBuilder<boolean>
  /** Raw calls already rolled up. */
  rolled(cursor: number): RawBuilder<boolean>
}

// SQLite: `id` is an AUTOINCREMENT rowid and writers are serialised by the database lock, so ids grow in commit order
// and "every id <= cursor is rolled up" is exact.
const SQLITE_CURSOR: CursorStrategy = {
  async upto(db, cursor, maxRows) {
    const r = await sql<{ m: number | null }>`SELECT MAX(id) AS m FROM (SELECT id FROM ${sql.table(TABLES.calls)} WHERE id > ${cursor} ORDER BY id LIMIT ${maxRows})`.execute(db)
    const m = r.rows[0]?.m
    return m === null || m === undefined ? null : num(m)
  },
  batch: (cursor, upto) => sql<boolean>`id > ${cursor} AND id <= ${upto}`,
  tail: (cursor) => sql<boolean>`id > ${cursor}`,
  rolled: (cursor) => sql<boolean>`id <= ${cursor}`,
}

// PostgreSQL: concurrent writers commit out of id order, so the cursor is a transaction id: every transaction older
// than the oldest one still running (the snapshot's xmin) has finished, and its rows are final.
const POSTGRES_CURSOR: CursorStrategy = {
  async upto(db, cursor) {
    const r = await sql<{ x: string }>`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x`.execute(db)
    const x = num(r.rows[0]?.x)
    return x > cursor ? x : null
  },
  batch: (cursor, upto) => sql<boolean>`tx >= ${sql.lit(cursor)}::text::xid8 AND tx < ${sql.lit(upto)}::text::xid8`,
  tail: (cursor) => sql<boolean>`tx >= ${sql.lit(cursor)}::text::xid8`,
  rolled: (cursor) => sql<boolean>`tx < ${sql.lit(cursor)}::text::xid8`,
}

const cursorFor = (dialect: SqlDialectName): CursorStrategy => (dialect === 'sqlite' ? SQLITE_CURSOR : POSTGRES_CURSOR)

/** Reads a value of `apimeter_rollup_state`. */
export async function readState(db: Kysely<unknown>, name: string, forUpdate = false): Promise<number | null> {
  const r = await sql<{ value: unknown }>`SELECT value FROM ${sql.table(TABLES.rollupState)} WHERE name = ${name}${forUpdate ? sql` FOR UPDATE` : sql``}`.execute(db)
  return r.rows.length === 0 ? null : num(r.rows[0]!.value)
}

/** Writes a value of `apimeter_rollup_state`. */
export async function writeState(db: Kysely<unknown>, name: string, value: number): Promise<void> {
  await sql`INSERT INTO ${sql.table(TABLES.rollupState)} (name, value) VALUES (${name}, ${value}) ON CONFLICT (name) DO UPDATE SET value = excluded.value`.execute(db)
}

/** The retention horizons recorded in the state table. */
export async function readHorizons(db: Kysely<unknown>): Promise<Horizons> {
  const r = await sql<{ name: string; value: unknown }>`SELECT name, value FROM ${sql.table(TABLES.rollupState)} WHERE name IN ('raw_horizon', 'hour_horizon', 'day_horizon')`.execute(db)
  const h = { raw: -Infinity, hour: -Infinity, day: -Infinity }
  for (const row of r.rows) h[row.name.replace('_horizon', '') as keyof Horizons] = num(row.value)
  return h
}

/** Every dimension any level keeps: a rollup run aggregates raw calls at this grain, then folds it per level. */
const ROLLUP_GRAIN: readonly Dimension[] = ['service', 'direction', 'api', 'status', 'outcome', 'method', 'route', 'tenant', 'model']

/** Aggregates the raw calls matching `where` into rollup rows of every level and resolution. */
async function aggregateForRollup(ctx: RollupContext, where: RawBuilder<boolean>): Promise<Record<RollupResolution, Map<string, RollupRow>>> {
  return foldToLevels(await aggregateCalls(ctx.db, ctx.dialect, { filter: {}, groupBy: ROLLUP_GRAIN, interval: 'hour' }, { where }))
}

/** Folds hourly aggregates at the full grain (keys in {@link ROLLUP_GRAIN} order) into every level and resolution. */
function foldToLevels(fine: readonly AggregateRow[]): Record<RollupResolution, Map<string, RollupRow>> {
  const out: Record<RollupResolution, Map<string, RollupRow>> = { hour: new Map(), day: new Map(), month: new Map() }
  for (const row of fine) {
    const [service, direction, api, status, outcome, method, route, tenant, model] = row.keys
    for (const level of ROLLUP_LEVELS) {
      const key: Record<KeyColumn, string | number> = {
        service: service!,
        direction: direction!,
        api: api ?? '',
        status_code: status === null || status === undefined ? 0 : Number(status),
        outcome: outcome!,
        method: level.id === 1 ? method! : '',
        route: level.id === 1 ? route! : '',
        tenant_id: level.id === 2 ? (tenant ?? '') : '',
        model: level.id === 2 ? (model ?? '') : '',
      }
      for (const resolution of ['hour', 'day', 'month'] as const) {
        const start = resolution === 'hour' ? row.start! : bucketStart(row.start!, resolution)
        const id = rowId(level.id, start, key)
        let target = out[resolution].get(id)
        if (!target) {
          target = { level: level.id, bucketStart: start, key, state: emptyAggregate() }
          out[resolution].set(id, target)
        }
        mergeAggregate(target.state, row.state)
      }
    }
  }
  return out
}

/** Runs raw SQL with positional parameters; adapters may pass one that caches prepared statements. */
export type RawExecutor = (text: string, params: readonly unknown[]) => Promise<Record<string, unknown>[]>

/** What the rollup functions work with. */
export interface RollupContext {
  db: Kysely<unknown>
  dialect: SqlDialectName
  /** Faster execution of the repeated merge statements (prepared-statement cache). */
  exec?: RawExecutor
  /** Calls this process wrote since the cursor, already aggregated in memory (SQLite's fast path). */
  accumulator?: RollupAccumulator
  /**
   * Removes expired raw calls (already rolled up: `rolled`) the adapter's way — PostgreSQL drops whole monthly
   * partitions. Returns how many rows went and the horizon below which raw calls may now be missing. Runs inside
   * the retention transaction. Without it, rows are deleted in batches of `maxRows`.
   */
  rawRetention?: (trx: Kysely<unknown>, cut: number, rolled: RawBuilder<boolean>, maxRows: number) => Promise<{ deleted: number; horizon: number }>
}

const execute = async (ctx: RollupContext, text: string, params: readonly unknown[]): Promise<Record<string, unknown>[]> =>
  ctx.exec ? ctx.exec(text, params) : (await ctx.db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(text, [...params]))).rows

/**
 * The calls this process wrote, aggregated in memory at the rollup grain as they are written, with the id ranges
 * they occupy. When they are exactly the calls above the cursor (one writing process, the common case), a rollup
 * run merges these aggregates instead of reading the calls back from the database. Anything else — calls of
 * another process in between, a restart, an overflow — and the run reads the database instead; this is only ever
 * a shortcut, never a second source of truth.
 */
export class RollupAccumulator {
  private grain = new AggregateGroups()
  private entries = 0
  private ranges: [number, number][] = []
  private invalid = false

  constructor(private readonly maxEntries = 200_000) {}

  /** Adds a committed batch whose rows got the ids firstId…lastId. */
  add(calls: readonly CallRecord[], firstId: number, lastId: number): void {
    if (this.invalid) return
    if (lastId - firstId + 1 !== calls.length) {
      this.invalid = true
      return
    }
    const last = this.ranges[this.ranges.length - 1]
    if (last && last[1] + 1 === firstId) last[1] = lastId
    else this.ranges.push([firstId, lastId])
    for (const call of calls) {
      const keys = [call.service, call.direction, call.api, call.statusCode === null ? null : String(call.statusCode), call.outcome, call.method, call.route, call.tenantId, call.model]
      const group = this.grain.get(bucketStart(call.timestamp, 'hour'), keys)
      if (group.state.requests === 0) this.entries++
      addCall(group.state, call)
    }
    if (this.entries > this.maxEntries) this.invalid = true
  }

  /** The aggregates, when they are exactly the calls with ids in (cursor, upto]. */
  rowsFor(cursor: number, upto: number): AggregateRow[] | null {
    if (this.invalid || this.ranges.length !== 1) return null
    const [first, last] = this.ranges[0]!
    return first === cursor + 1 && last === upto ? this.grain.rows() : null
  }

  reset(): void {
    this.grain = new AggregateGroups()
    this.entries = 0
    this.ranges = []
    this.invalid = false
  }
}

const CHUNK = 200
const UPDATED_COLUMNS = ALL_COLUMNS.slice(2 + KEY_COLUMNS.length)

/** SQL text per (dialect, table, rows), built once: rollup merges run often and with many parameters. */
const statementCache = new Map<string, { select: string; upsert: string }>()
function statements(dialect: SqlDialectName, table: string, rows: number): { select: string; upsert: string } {
  const cacheKey = `${dialect}|${table}|${rows}`
  let cached = statementCache.get(cacheKey)
  if (cached) return cached
  let n = 0
  const p = (): string => (dialect === 'postgres' ? `$${++n}` : '?')
  const tuple = (width: number): string => `(${Array.from({ length: width }, p).join(', ')})`
  const keyList = ['level', 'bucket_start', ...KEY_COLUMNS].join(', ')
  // PostgreSQL types the parameters of a bare VALUES list as text: cast the key tuple to the columns' types.
  const keyTypes = ['int2', 'int8', ...KEY_COLUMNS.map((c) => (c === 'status_code' ? 'int4' : 'text'))]
  const keyTuple = (): string => (dialect === 'postgres' ? `(${keyTypes.map((t) => `${p()}::${t}`).join(', ')})` : tuple(keyTypes.length))
  const select = `SELECT * FROM ${table} WHERE (${keyList}) IN (VALUES ${Array.from({ length: rows }, keyTuple).join(', ')})`
  n = 0
  const upsert =
    `INSERT INTO ${table} (${ALL_COLUMNS.join(', ')}) VALUES ${Array.from({ length: rows }, () => tuple(ALL_COLUMNS.length)).join(', ')} ` +
    `ON CONFLICT (${keyList}) DO UPDATE SET ${UPDATED_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}`
  cached = { select, upsert }
  statementCache.set(cacheKey, cached)
  return cached
}

/** Merges rows into a rollup table: read the existing rows, add, write back (the caller holds the write lock). */
async function mergeIntoTable(ctx: RollupContext, table: string, rows: RollupRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK)
    const text = statements(ctx.dialect, table, chunk.length)
    const keyParams: unknown[] = []
    for (const r of chunk) keyParams.push(r.level, r.bucketStart, ...KEY_COLUMNS.map((c) => r.key[c]))
    const existing = await execute(ctx, text.select, keyParams)
    if (existing.length > 0) {
      const byId = new Map(chunk.map((r) => [rowId(r.level, r.bucketStart, r.key), r]))
      for (const stored of existing) {
        const key = Object.fromEntries(KEY_COLUMNS.map((c) => [c, c === 'status_code' ? num(stored[c]) : stored[c]])) as Record<KeyColumn, string | number>
        const target = byId.get(rowId(num(stored.level), num(stored.bucket_start), key))
        if (target) storedState(stored, target.state)
      }
    }
    const params: unknown[] = []
    for (const r of chunk) {
      const s = r.state
      params.push(
        r.level, r.bucketStart, ...KEY_COLUMNS.map((c) => r.key[c]),
        s.requests, s.cached, s.costNanos, s.costUnknown, s.inputTokens, s.outputTokens, s.cachedInputTokens,
        s.requestBytes, s.responseBytes, s.durationSumUs, Math.round(s.durationMin * 1000), Math.round(s.durationMax * 1000),
        Buffer.from(s.sketch.encode()),
      )
    }
    await execute(ctx, text.upsert, params)
  }
}

/** The aggregate state of a stored rollup row (added into `into`). */
function storedState(row: Record<string, unknown>, into: AggregateState = emptyAggregate()): AggregateState {
  addSums(into, row)
  LatencySketch.decodeInto(row.latency_sketch as Uint8Array, into.sketch)
  // a row has one outcome: it is part of the key
  const outcome = row.outcome as string
  if ((OUTCOMES as readonly string[]).includes(outcome)) into.outcomes[outcome as keyof AggregateState['outcomes']] += num(row.requests)
  return into
}

/** Runs `fn` in a write transaction that serialises rollup maintenance across processes. */
export async function inWriteTransaction<T>(
  db: Kysely<unknown>,
  dialect: SqlDialectName,
  fn: (trx: Kysely<unknown>) => Promise<T>,
  options: { skipIfBusy?: boolean } = {},
): Promise<T | undefined> {
  if (dialect === 'postgres') {
    return db.transaction().execute(async (trx) => {
      // One maintainer per schema at a time: a transaction-scoped advisory lock, released at commit. A run after a
      // write does not queue behind another instance's run (that one is doing the work): it skips.
      const key = sql`hashtext('apimeter.maintenance'), hashtext(current_schema())`
      if (options.skipIfBusy) {
        const got = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${key}) AS ok`.execute(trx)
        if (!got.rows[0]?.ok) return undefined
      } else {
        await sql`SELECT pg_advisory_xact_lock(${key})`.execute(trx)
      }
      return fn(trx)
    })
  }
  // SQLite: one connection (the caller serialises use of it); BEGIN IMMEDIATE takes the file's write lock up front.
  await sql`BEGIN IMMEDIATE`.execute(db)
  try {
    const result = await fn(db)
    await sql`COMMIT`.execute(db)
    return result
  } catch (error) {
    await sql`ROLLBACK`.execute(db).catch(() => undefined)
    throw error
  }
}

/**
 * Rolls up the next raw calls not yet in the rollups (at most `maxRows` on SQLite), in one transaction. Returns how
 * many calls it rolled up.
 */
export async function rollUpPending(ctx: RollupContext, maxRows = 50_000, skipIfBusy = false): Promise<number> {
  const cursor = cursorFor(ctx.dialect)
  const rolled = await inWriteTransaction(ctx.db, ctx.dialect, async (trx) => {
    const inTrx: RollupContext = { ...ctx, db: trx }
    const from = (await readState(trx, 'cursor')) ?? 0
    let upto: number | null
    let rows: Record<RollupResolution, Map<string, RollupRow>>
    const pending = ctx.accumulator && ctx.dialect === 'sqlite' ? await SQLITE_CURSOR.upto(trx, from, Number.MAX_SAFE_INTEGER) : null
    const fast = pending !== null ? ctx.accumulator!.rowsFor(from, pending) : null
    if (fast) {
      upto = pending
      rows = foldToLevels(fast)
    } else {
      upto = await cursor.upto(trx, from, maxRows)
      if (upto === null) {
        ctx.accumulator?.reset()
        return 0
      }
      rows = await aggregateForRollup(inTrx, cursor.batch(from, upto))
    }
    ctx.accumulator?.reset()
    for (const resolution of ['hour', 'day', 'month'] as const) {
      await mergeIntoTable(inTrx, ROLLUP_TABLES[resolution], [...rows[resolution].values()])
    }
    await writeState(trx, 'cursor', upto!)
    let count = 0
    for (const row of rows.hour.values()) if (row.level === 0) count += row.state.requests
    return count
  }, { skipIfBusy })
  return rolled ?? 0
}

/** Rolls up until nothing is pending. */
export async function rollUpAll(ctx: RollupContext): Promise<number> {
  let total = 0
  for (;;) {
    const n = await rollUpPending(ctx)
    total += n
    if (n === 0) return total
  }
}

function rollupFilterExpression(filter: CallFilter): RawBuilder<boolean> {
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

/**
 * Answers an aggregate query from rollups where whole buckets allow, raw calls at the edges, and the not-yet-rolled
 * tail; falls back to raw calls when no rollup level keeps the query's dimensions.
 */
export async function aggregateWithRollups(ctx: RollupContext, query: AggregateQuery): Promise<AggregateRow[]> {
  const { db, dialect } = ctx
  const level = chooseLevel(query.filter, query.groupBy)
  const horizons = await readHorizons(db)
  const plan = planQuery(query.filter.from, query.filter.to, query.interval, horizons, level !== null)
  const groups = new AggregateGroups()
  const cursorValue = (await readState(db, 'cursor')) ?? 0
  const cursor = cursorFor(dialect)
  let rollupStart = Infinity
  let rollupEnd = -Infinity
  const rangeFilter = (start: number, end: number): CallFilter => ({
    ...query.filter,
    from: Number.isFinite(start) ? start : undefined,
    to: Number.isFinite(end) ? end : undefined,
  })

  for (const segment of plan.segments) {
    if (segment.unit === 'raw') {
      await aggregateCalls(db, dialect, { ...query, filter: rangeFilter(segment.start, segment.end) }, { into: groups })
      continue
    }
    rollupStart = Math.min(rollupStart, segment.start)
    rollupEnd = Math.max(rollupEnd, segment.end)
    const table = ROLLUP_TABLES[segment.unit]
    const bounds: RawBuilder<unknown>[] = [sql`level = ${level!.id}`]
    if (Number.isFinite(segment.start)) bounds.push(sql`bucket_start >= ${segment.start}`)
    if (Number.isFinite(segment.end)) bounds.push(sql`bucket_start < ${segment.end}`)
    const rows = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table)} WHERE ${sql.join(bounds, sql` AND `)} AND ${rollupFilterExpression(query.filter)}`.execute(db)
    // A bucket coarser than the query's interval (retention removed the finer one) is reported at its own start.
    const coarser = query.interval !== undefined && rankOf(segment.unit) > rankOf(query.interval)
    for (const row of rows.rows) {
      const t = num(row.bucket_start)
      const start = query.interval === undefined ? null : coarser ? t : bucketStart(t, query.interval)
      const keys = query.groupBy.map((d) => {
        const column = DIMENSION_KEY_COLUMN[d]!
        const v = row[column]
        if (column === 'status_code') return num(v) === 0 ? null : String(num(v))
        return v === '' || v === null || v === undefined ? null : String(v)
      })
      const group = groups.get(start, keys)
      storedState(row, group.state)
      if (coarser) group.resolution = coarserResolution(group.resolution ?? 'raw', segment.unit)
    }
  }
  if (rollupStart < rollupEnd) {
    await aggregateCalls(db, dialect, { ...query, filter: rangeFilter(rollupStart, rollupEnd) }, { where: cursor.tail(cursorValue), into: groups })
  }
  const result = groups.rows()
  // Summaries and breakdowns carry the plan's precision; timeseries points carry their own (marked above).
  if (plan.resolution !== 'raw' && (query.interval === undefined || plan.resolution === 'partial')) {
    for (const row of result) row.resolution = coarserResolution(row.resolution ?? 'raw', plan.resolution)
  }
  return result
}

function rankOf(unit: string): number {
  return ['minute', 'hour', 'day', 'month'].indexOf(unit === 'raw' ? 'minute' : unit)
}

/** Reads stored rollup rows of [start, end) and re-buckets them at a coarser resolution. */
async function coarsen(db: Kysely<unknown>, from: RollupResolution, to: RollupResolution, start: number, end: number): Promise<RollupRow[]> {
  const stored = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(ROLLUP_TABLES[from])} WHERE level IN (${sql.join(LEVEL_IDS)}) AND bucket_start >= ${start} AND bucket_start < ${end}`.execute(db)
  const out = new Map<string, RollupRow>()
  for (const row of stored.rows) {
    const key = Object.fromEntries(KEY_COLUMNS.map((c) => [c, c === 'status_code' ? num(row[c]) : row[c]])) as Record<KeyColumn, string | number>
    const level = num(row.level)
    const bucket = bucketStart(num(row.bucket_start), to)
    const id = rowId(level, bucket, key)
    let target = out.get(id)
    if (!target) {
      target = { level, bucketStart: bucket, key, state: emptyAggregate() }
      out.set(id, target)
    }
    storedState(row, target.state)
  }
  return [...out.values()]
}

/**
 * Recomputes the rollups of [from, to) (widened to whole hours): hour rollups from the raw calls already rolled up,
 * then the days and months those hours belong to from the hour and day rollups. Refuses a range whose raw calls
 * retention deleted (recomputing would lose what only the rollups still hold).
 */
export async function rebuildRollupRange(ctx: RollupContext, from: number, to: number): Promise<{ from: Date; to: Date; calls: number }> {
  const { db, dialect } = ctx
  return (await rebuild(db, dialect, ctx, from, to))!
}

async function rebuild(db: Kysely<unknown>, dialect: SqlDialectName, ctx: RollupContext, from: number, to: number): Promise<{ from: Date; to: Date; calls: number } | undefined> {
  const start = bucketStart(from, 'hour')
  const lastHour = bucketStart(to, 'hour')
  const end = lastHour === to ? to : nextBucket(lastHour, 'hour')
  return inWriteTransaction(db, dialect, async (trx) => {
    const horizons = await readHorizons(trx)
    if (start < horizons.raw) {
      throw new ApimeterError(
        'INVALID_OPTIONS',
        `cannot rebuild rollups from ${new Date(start).toISOString()}: retention deleted raw calls before ${new Date(horizons.raw).toISOString()}, so only the rollups still hold that range`,
      )
    }
    const cursorValue = (await readState(trx, 'cursor')) ?? 0
    const clear = async (resolution: RollupResolution, a: number, b: number): Promise<void> => {
      await sql`DELETE FROM ${sql.table(ROLLUP_TABLES[resolution])} WHERE level IN (${sql.join(LEVEL_IDS)}) AND bucket_start >= ${a} AND bucket_start < ${b}`.execute(trx)
    }
    // hours from raw calls
    await clear('hour', start, end)
    const inTrx: RollupContext = { ...ctx, db: trx }
    const fresh = await aggregateForRollup(inTrx, sql<boolean>`ts >= ${start} AND ts < ${end} AND ${cursorFor(dialect).rolled(cursorValue)}`)
    await mergeIntoTable(inTrx, ROLLUP_TABLES.hour, [...fresh.hour.values()])
    // the days those hours belong to, from hours; the months, from days
    const dayStart = bucketStart(start, 'day')
    const dayEnd = bucketStart(end - 1, 'day') + 86_400_000
    await clear('day', dayStart, dayEnd)
    await mergeIntoTable(inTrx, ROLLUP_TABLES.day, await coarsen(trx, 'hour', 'day', dayStart, dayEnd))
    const monthStart = bucketStart(start, 'month')
    const monthEnd = nextBucket(bucketStart(end - 1, 'month'), 'month')
    await clear('month', monthStart, monthEnd)
    await mergeIntoTable(inTrx, ROLLUP_TABLES.month, await coarsen(trx, 'day', 'month', monthStart, monthEnd))
    let calls = 0
    for (const row of fresh.hour.values()) if (row.level === 0) calls += row.state.requests
    return { from: new Date(start), to: new Date(end), calls }
  })
}

/** How long each level is kept, in milliseconds (`Infinity` = forever). */
export interface RetentionMs {
  raw: number
  hour: number
  day: number
  month: number
}

/**
 * Applies retention: moves the horizons, then deletes at most `maxRows` expired rows per table. Raw calls are deleted
 * only once rolled up. Returns the number of rows deleted.
 */
export async function applyRetention(ctx: RollupContext, retention: RetentionMs, now: number, maxRows = 20_000, skipIfBusy = false): Promise<number> {
  const { db, dialect } = ctx
  const removed = await inWriteTransaction(db, dialect, async (trx) => {
    let deleted = 0
    const cursorValue = (await readState(trx, 'cursor')) ?? 0
    const current = await readHorizons(trx)
    const cuts = {
      raw: Number.isFinite(retention.raw) ? bucketStart(now - retention.raw, 'hour') : -Infinity,
      hour: Number.isFinite(retention.hour) ? bucketStart(now - retention.hour, 'day') : -Infinity,
      day: Number.isFinite(retention.day) ? bucketStart(now - retention.day, 'month') : -Infinity,
      month: Number.isFinite(retention.month) ? bucketStart(now - retention.month, 'month') : -Infinity,
    }
    // Horizons move in the same transaction as the deletes (never backwards): a query planned after this commit no
    // longer relies on what is deleted, one planned before it still sees the rows.
    if (Number.isFinite(cuts.raw)) {
      const rolled = cursorFor(dialect).rolled(cursorValue)
      let horizon = cuts.raw
      if (ctx.rawRetention) {
        const result = await ctx.rawRetention(trx, cuts.raw, rolled, maxRows)
        deleted += result.deleted
        horizon = result.horizon
      } else {
        const r = await sql`DELETE FROM ${sql.table(TABLES.calls)} WHERE id IN (SELECT id FROM ${sql.table(TABLES.calls)} WHERE ts < ${cuts.raw} AND ${rolled} LIMIT ${maxRows})`.execute(trx)
        deleted += Number(r.numAffectedRows ?? 0)
      }
      if (horizon > current.raw) await writeState(trx, 'raw_horizon', horizon)
    }
    for (const level of ['hour', 'day'] as const) {
      if (cuts[level] > current[level]) await writeState(trx, `${level}_horizon`, cuts[level])
    }
    for (const [resolution, cut] of [['hour', cuts.hour], ['day', cuts.day], ['month', cuts.month]] as const) {
      if (!Number.isFinite(cut)) continue
      const table = ROLLUP_TABLES[resolution]
      const r = await sql`DELETE FROM ${sql.table(table)} WHERE level IN (${sql.join(LEVEL_IDS)}) AND bucket_start < ${cut}`.execute(trx)
      deleted += Number(r.numAffectedRows ?? 0)
    }
    return deleted
  }, { skipIfBusy })
  return removed ?? 0
}
