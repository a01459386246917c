import { type Expression, type Kysely, type RawBuilder, sql } from 'kysely'
import { type AggregateState, emptyAggregate } from '../aggregate.js'
import { assertCallRecords, type CallRecord } from '../call.js'
import { ApimeterError } from '../errors.js'
import { OUTCOMES } from '../outcome.js'
import { latencyBucket } from '../sketch.js'
import type { AggregateQuery, AggregateRow, CallFilter, Dimension, StorageAdapter } from '../storage.js'
import type { Interval } from '../time.js'
import {
  getMigrationStatus,
  type MigrationReport,
  type MigrationStatus,
  type MigrationTarget,
  runMigrations,
} from './migrator.js'
import { CALL_COLUMNS, type SqlDialectName, TABLES } from './schema.js'

/**
 * The one SQL layer: how calls become rows and how stats are computed, written once with kysely and shared by the
 * SQLite and PostgreSQL storages, so both answer every query identically (the conformance suite holds them to it).
 * Adapters add connection handling and a faster insert path.
 */

/** The column of `apimeter_calls` behind each dimension. */
export const DIMENSION_COLUMN: Record<Dimension, string> = {
  service: 'service',
  direction: 'direction',
  api: 'api',
  route: 'route',
  method: 'method',
  status: 'status_code',
  outcome: 'outcome',
  tenant: 'tenant_id',
  user: 'user_id',
  model: 'model',
}

const FILTER_COLUMN = {
  service: 'service',
  direction: 'direction',
  api: 'api',
  route: 'route',
  method: 'method',
  tenantId: 'tenant_id',
  userId: 'user_id',
  outcome: 'outcome',
  model: 'model',
  statusCode: 'status_code',
} as const satisfies Record<Exclude<keyof CallFilter, 'from' | 'to'>, string>

/**
 * Writes the values of one call in {@link CALL_COLUMNS} order into `out` from `offset`: durations in integer
 * microseconds, the latency sketch bucket precomputed, booleans as 0/1, metadata as JSON text. Adapters fill one
 * reused parameter array for a multi-row statement this way, without a temporary array per row.
 */
export function writeCallRow(call: CallRecord, out: unknown[], offset: number): void {
  let i = offset
  out[i++] = call.id
  out[i++] = call.timestamp
  out[i++] = call.direction
  out[i++] = call.service
  out[i++] = call.api
  out[i++] = call.method
  out[i++] = call.route
  out[i++] = call.host
  out[i++] = call.url
  out[i++] = call.statusCode
  out[i++] = call.outcome
  out[i++] = Math.round(call.durationMs * 1000)
  out[i++] = latencyBucket(call.durationMs)
  out[i++] = call.ttfbMs === null ? null : Math.round(call.ttfbMs * 1000)
  out[i++] = call.requestBytes
  out[i++] = call.responseBytes
  out[i++] = call.cached ? 1 : 0
  out[i++] = call.cacheSignal
  out[i++] = call.costNanos
  out[i++] = call.costSource
  out[i++] = call.model
  out[i++] = call.inputTokens
  out[i++] = call.outputTokens
  out[i++] = call.cachedInputTokens
  out[i++] = call.tenantId
  out[i++] = call.userId
  out[i++] = call.apiKeyId
  out[i++] = call.clientIp
  out[i++] = call.userAgent
  out[i++] = call.errorType
  out[i++] = call.errorMessage
  out[i++] = call.rateLimitLimit
  out[i++] = call.rateLimitRemaining
  out[i++] = call.rateLimitResetMs
  out[i++] = call.rateLimitScope
  out[i++] = call.attempt
  out[i++] = call.operationId
  out[i] = call.metadata
}

/** The values of one call in {@link CALL_COLUMNS} order (see {@link writeCallRow}). */
export function callToRow(call: CallRecord): unknown[] {
  const row = new Array<unknown>(CALL_COLUMNS.length)
  writeCallRow(call, row, 0)
  return row
}

const MINUTE = 60_000
const HOUR = 3_600_000
const DAY = 86_400_000

/** SQL for the UTC bucket start (epoch ms) of `ts`. Timestamps are never negative (the schema stores epoch ms). */
export function bucketExpression(dialect: SqlDialectName, interval: Interval): RawBuilder<number> {
  if (interval !== 'month') {
    const size = interval === 'minute' ? MINUTE : interval === 'hour' ? HOUR : DAY
    return sql<number>`(ts - (ts % ${sql.lit(size)}))`
  }
  if (dialect === 'sqlite') {
    return sql<number>`(CAST(strftime('%s', ts / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000)`
  }
  return sql<number>`(CAST(EXTRACT(EPOCH FROM date_trunc('month', to_timestamp(ts / 1000.0) AT TIME ZONE 'UTC')) AS BIGINT) * 1000)`
}

function filterExpression(filter: CallFilter): RawBuilder<boolean> {
  const parts: RawBuilder<unknown>[] = []
  if (filter.from !== undefined) parts.push(sql`ts >= ${filter.from}`)
  if (filter.to !== undefined) parts.push(sql`ts < ${filter.to}`)
  for (const field of Object.keys(FILTER_COLUMN) as (keyof typeof FILTER_COLUMN)[]) {
    const values = filter[field] as readonly (string | number | null)[] | undefined
    if (values === undefined) continue
    const column = sql.ref(FILTER_COLUMN[field])
    const present = values.filter((v) => v !== null)
    const alternatives: RawBuilder<unknown>[] = []
    if (present.length > 0) alternatives.push(sql`${column} IN (${sql.join(present)})`)
    if (present.length < values.length) alternatives.push(sql`${column} IS NULL`)
    parts.push(alternatives.length === 0 ? sql`1 = 0` : sql`(${sql.join(alternatives, sql` OR `)})`)
  }
  return parts.length === 0 ? sql<boolean>`1 = 1` : sql<boolean>`${sql.join(parts, sql` AND `)}`
}

/** Numbers come back as strings from PostgreSQL BIGINT/NUMERIC aggregates; null sums mean 0. */
function num(value: unknown): number {
  if (value === null || value === undefined) return 0
  return typeof value === 'number' ? value : Number(value)
}

/**
 * Aggregates raw calls: one SQL query grouped by the requested dimensions, the time bucket and the latency sketch
 * bucket; the rows of one group are then merged into its {@link AggregateState} (their sketch buckets form the
 * group's latency sketch, so percentiles need no second query).
 */
export async function aggregateCalls(db: Kysely<unknown>, dialect: SqlDialectName, query: AggregateQuery): Promise<AggregateRow[]> {
  const keyColumns = query.groupBy.map((d, i) => sql`${sql.ref(DIMENSION_COLUMN[d])} AS ${sql.ref(`k${i}`)}`)
  const groupColumns = query.groupBy.map((d) => sql.ref(DIMENSION_COLUMN[d]))
  const bucket = query.interval ? bucketExpression(dialect, query.interval) : undefined
  const outcomeSums = OUTCOMES.map((o, i) => sql`SUM(CASE WHEN outcome = ${sql.lit(o)} THEN 1 ELSE 0 END) AS ${sql.ref(`o${i}`)}`)
  const selected: Expression<unknown>[] = [
    ...keyColumns,
    ...(bucket ? [sql`${bucket} AS b`] : []),
    sql`latency_bucket AS lb`,
    sql`COUNT(*) AS n`,
    ...outcomeSums,
    sql`SUM(cached) AS cached`,
    sql`SUM(cost_nanos) AS cost`,
    sql`SUM(CASE WHEN cost_nanos IS NULL AND cost_source = 'unknown' THEN 1 ELSE 0 END) AS cost_unknown`,
    sql`SUM(input_tokens) AS tin`,
    sql`SUM(output_tokens) AS tout`,
    sql`SUM(cached_input_tokens) AS tcached`,
    sql`SUM(request_bytes) AS breq`,
    sql`SUM(response_bytes) AS bres`,
    sql`SUM(duration_us) AS dsum`,
    sql`MIN(duration_us) AS dmin`,
    sql`MAX(duration_us) AS dmax`,
  ]
  const groupBy = [...groupColumns, ...(bucket ? [bucket] : []), sql`latency_bucket`]
  const result = await sql<Record<string, unknown>>`SELECT ${sql.join(selected)} FROM ${sql.table(TABLES.calls)} WHERE ${filterExpression(query.filter)} GROUP BY ${sql.join(groupBy)}`.execute(db)

  const groups = new Map<string, AggregateRow>()
  for (const row of result.rows) {
    const keys = query.groupBy.map((_, i) => {
      const v = row[`k${i}`]
      return v === null || v === undefined ? null : String(v)
    })
    const start = bucket ? num(row.b) : null
    const id = `${start}\u0001${keys.map((k) => (k === null ? '\u0000' : k)).join('\u0001')}`
    let group = groups.get(id)
    if (group === undefined) {
      group = { start, keys, state: emptyAggregate() }
      groups.set(id, group)
    }
    addRow(group.state, row)
  }
  return [...groups.values()]
}

function addRow(state: AggregateState, row: Record<string, unknown>): void {
  const n = num(row.n)
  state.requests += n
  OUTCOMES.forEach((o, i) => {
    state.outcomes[o] += num(row[`o${i}`])
  })
  state.cached += num(row.cached)
  state.costNanos += num(row.cost)
  state.costUnknown += num(row.cost_unknown)
  state.inputTokens += num(row.tin)
  state.outputTokens += num(row.tout)
  state.cachedInputTokens += num(row.tcached)
  state.requestBytes += num(row.breq)
  state.responseBytes += num(row.bres)
  state.durationSumUs += num(row.dsum)
  const min = num(row.dmin) / 1000
  const max = num(row.dmax) / 1000
  if (min < state.durationMin) state.durationMin = min
  if (max > state.durationMax) state.durationMax = max
  state.sketch.addBucket(num(row.lb), n)
}

/** Options of {@link createSqlStorage}: what a dialect adapter provides. */
export interface SqlStorageConfig {
  /** Adapter name for messages (`sqlite`, `postgres`). */
  name: string
  dialect: SqlDialectName
  /** A kysely instance on the database; opened by the adapter. */
  db: Kysely<unknown>
  durable: boolean
  maxWriteConcurrency?: number
  /** Apply pending migrations in `init()`; otherwise `init()` fails when the schema is not current. */
  migrate: boolean
  /** How to tell a user to migrate by hand (`apimeter migrate latest --db …`). */
  migrateHint: string
  /**
   * The adapter's fast insert of an already validated batch, atomically. Defaults to kysely multi-row inserts in a
   * transaction.
   */
  insertCalls?(calls: readonly CallRecord[]): Promise<void>
  /**
   * Run writes and migrations one at a time (a single-connection driver such as better-sqlite3, where a raw write
   * issued while a migration transaction is open would join that transaction).
   */
  serializeWrites?: boolean
  /** Runs before the first statement (pragmas, partitions…). */
  prepare?(): Promise<void>
  /** Releases what the adapter opened. */
  release(): Promise<void>
}

/** A storage on the shared SQL layer, with migration control. */
export interface SqlStorage extends StorageAdapter {
  /** The kysely instance (for advanced queries over the documented schema). */
  readonly db: Kysely<unknown>
  readonly dialect: SqlDialectName
  /**
   * Applies or reverts migrations; never throws (see the report's `error`).
   * @example
   * ```ts
   * const report = await storage.migrate('latest')
   * ```
   */
  migrate(to?: MigrationTarget): Promise<MigrationReport>
  /**
   * Applied and pending migrations; read-only.
   * @example
   * ```ts
   * const { pending } = await storage.migrationStatus()
   * ```
   */
  migrationStatus(): Promise<MigrationStatus>
}

/** Rows per kysely INSERT in the default insert path (bounded by SQLite's 32,766 bound parameters). */
const DEFAULT_ROWS_PER_INSERT = 500

/**
 * Builds a {@link StorageAdapter} on the shared SQL layer. Dialect packages call this with their connection.
 */
export function createSqlStorage(config: SqlStorageConfig): SqlStorage {
  const { db, dialect, name } = config
  let closed = false
  let prepared: Promise<void> | undefined
  let ready: Promise<void> | undefined

  const ensureOpen = (): void => {
    if (closed) throw new ApimeterError('STORAGE_CLOSED', `${name} storage was used after close()`)
  }
  const prepare = (): Promise<void> => {
    prepared ??= Promise.resolve(config.prepare?.()).catch((error: unknown) => {
      prepared = undefined
      throw error
    })
    return prepared
  }

  const defaultInsert = async (calls: readonly CallRecord[]): Promise<void> => {
    await db.transaction().execute(async (trx) => {
      for (let i = 0; i < calls.length; i += DEFAULT_ROWS_PER_INSERT) {
        const chunk = calls.slice(i, i + DEFAULT_ROWS_PER_INSERT)
        const values = chunk.map((c) => sql`(${sql.join(callToRow(c))})`)
        await sql`INSERT INTO ${sql.table(TABLES.calls)} (${sql.join(CALL_COLUMNS.map((c) => sql.ref(c)))}) VALUES ${sql.join(values)}`.execute(trx)
      }
    })
  }
  const insert = config.insertCalls ?? defaultInsert
  let chain: Promise<unknown> = Promise.resolve()
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    if (!config.serializeWrites) return fn()
    const next = chain.then(fn, fn)
    chain = next.catch(() => undefined)
    return next
  }

  const storage: SqlStorage = {
    name,
    dialect,
    db,
    capabilities: { durable: config.durable, maxWriteConcurrency: config.maxWriteConcurrency },
    init() {
      ready ??= (async () => {
        ensureOpen()
        await prepare()
        if (config.migrate) {
          const report = await exclusive(() => runMigrations(db, { dialect }))
          if (report.error) throw report.error
          return
        }
        const status = await getMigrationStatus(db, { dialect })
        if (status.pending.length > 0) {
          throw new ApimeterError(
            'MIGRATION_REQUIRED',
            `the ${name} database is at migration ${status.current ?? '(none)'} but this version of apimeter needs ${status.migrations.at(-1)!.name} (pending: ${status.pending.join(', ')}); run \`${config.migrateHint}\` or create the storage with migrate: true`,
          )
        }
      })().catch((error: unknown) => {
        ready = undefined
        throw error
      })
      return ready
    },
    async writeCalls(calls) {
      ensureOpen()
      assertCallRecords(calls)
      if (calls.length === 0) return
      await storage.init!()
      await exclusive(() => insert(calls))
    },
    async aggregate(query) {
      ensureOpen()
      await storage.init!()
      return aggregateCalls(db, dialect, query)
    },
    async migrate(to = 'latest') {
      ensureOpen()
      await prepare()
      return exclusive(() => runMigrations(db, { dialect, to }))
    },
    async migrationStatus() {
      ensureOpen()
      await prepare()
      return getMigrationStatus(db, { dialect })
    },
    async close() {
      if (closed) return
      closed = true
      await config.release()
    },
  }
  return storage
}
