import {
  ApimeterError,
  bucketStart,
  CALL_COLUMNS,
  type CallRecord,
  createSqlStorage,
  errorMessage,
  nextBucket,
  parseOrThrow,
  resolveRetention,
  sqlStorageOptionFields,
  type SqlStorageOptions,
  type SqlStorage,
  TABLES,
  writeCallRow,
} from '@apimeter/core'
import { Kysely, PostgresAdapter, PostgresDialect, type RawBuilder, sql } from 'kysely'
import pg from 'pg'
import { z } from 'zod'

const PACKAGE = '@apimeter/storage-postgres'

/** The pg pool type (what `new pg.Pool(config)` returns). */
export type PostgresPool = pg.Pool

/**
 * Options of {@link postgresStorage}: give `connectionString` (apimeter opens and closes its own pool) or `pool`
 * (yours; apimeter never ends it).
 */
export interface PostgresStorageOptions extends SqlStorageOptions {
  /**
   * A `postgres://user:password@host:5432/database` URL.
   * @example
   * ```ts
   * postgresStorage({ connectionString: process.env.DATABASE_URL })
   * ```
   */
  connectionString?: string
  /**
   * An existing pg pool to use instead of a connection string. apimeter leaves it open on `close()`.
   * @example
   * ```ts
   * postgresStorage({ pool: new pg.Pool({ max: 10 }) })
   * ```
   */
  pool?: PostgresPool
  /**
   * The schema apimeter's tables live in; created when missing. Connections get `search_path` set to it.
   * @default the connection's current schema (usually `public`)
   * @example
   * ```ts
   * postgresStorage({ connectionString, schema: 'apimeter' })
   * ```
   */
  schema?: string
  /**
   * Connections of the pool apimeter opens (ignored with `pool`). Writes use up to this many at once.
   * @default 4
   * @example
   * ```ts
   * postgresStorage({ connectionString, maxConnections: 8 })
   * ```
   */
  maxConnections?: number
}

const optionsSchema = z
  .strictObject({
    connectionString: z.string({ error: 'a postgres:// connection URL' }).regex(/^postgres(ql)?:\/\//i, { error: 'a postgres:// connection URL' }).optional(),
    pool: z.custom<PostgresPool>((v) => typeof v === 'object' && v !== null && typeof (v as PostgresPool).connect === 'function' && typeof (v as PostgresPool).query === 'function', { error: 'a pg Pool' }).optional(),
    schema: z.string({ error: 'a schema name (letters, digits, underscores)' }).regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, { error: 'a schema name (letters, digits, underscores)' }).optional(),
    maxConnections: z.number({ error: 'a whole number from 1 to 100' }).int({ error: 'a whole number from 1 to 100' }).min(1, { error: 'a whole number from 1 to 100' }).max(100, { error: 'a whole number from 1 to 100' }).optional(),
    ...sqlStorageOptionFields,
  })
  .superRefine((o, ctx) => {
    if ((o.connectionString === undefined) === (o.pool === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'exactly one of connectionString or pool', input: o })
    }
  })

/** apimeter's own advisory lock key for migrations (kysely's default key is shared by every kysely user). */
const MIGRATION_LOCK = BigInt('7236833521884319001')
/** Serialises partition creation between instances (transaction-scoped). */
const PARTITION_LOCK = BigInt('7236833521884319002')

class ApimeterPostgresAdapter extends PostgresAdapter {
  override async acquireMigrationLock(db: Kysely<unknown>): Promise<void> {
    await sql`SELECT pg_advisory_lock(${sql.lit(MIGRATION_LOCK)})`.execute(db)
  }

  override async releaseMigrationLock(db: Kysely<unknown>): Promise<void> {
    await sql`SELECT pg_advisory_unlock(${sql.lit(MIGRATION_LOCK)})`.execute(db)
  }
}

class ApimeterPostgresDialect extends PostgresDialect {
  override createAdapter(): PostgresAdapter {
    return new ApimeterPostgresAdapter()
  }
}

/** Array element types of the UNNEST insert, in CALL_COLUMNS order. */
const COLUMN_TYPES: Record<(typeof CALL_COLUMNS)[number], string> = {
  call_id: 'text', ts: 'int8', direction: 'text', service: 'text', api: 'text', method: 'text', route: 'text',
  host: 'text', url: 'text', status_code: 'int4', outcome: 'text', duration_us: 'int8', latency_bucket: 'int4',
  ttfb_us: 'int8', request_bytes: 'int8', response_bytes: 'int8', cached: 'int2', cache_signal: 'text',
  cost_nanos: 'int8', cost_source: 'text', model: 'text', input_tokens: 'int8', output_tokens: 'int8',
  cached_input_tokens: 'int8', tenant_id: 'text', user_id: 'text', api_key_id: 'text', client_ip: 'text',
  user_agent: 'text', error_type: 'text', error_message: 'text', rate_limit_limit: 'float8',
  rate_limit_remaining: 'float8', rate_limit_reset_ms: 'float8', rate_limit_scope: 'text', attempt: 'int4',
  operation_id: 'text', metadata: 'text',
}

// One statement per batch: each column travels as one array parameter, UNNEST turns them back into rows. A batch
// retried after a commit that was not acknowledged (the connection dropped) is ignored row by row.
const INSERT_SQL = `INSERT INTO ${TABLES.calls} (${CALL_COLUMNS.join(', ')})
SELECT ${CALL_COLUMNS.map((c) => (c === 'metadata' ? 'metadata::jsonb' : c)).join(', ')}
FROM UNNEST(${CALL_COLUMNS.map((c, i) => `$${i + 1}::${COLUMN_TYPES[c]}[]`).join(', ')}) AS u(${CALL_COLUMNS.join(', ')})
ON CONFLICT (call_id, ts) DO NOTHING`

const DAY = 86_400_000

function partitionName(monthStart: number): string {
  const d = new Date(monthStart)
  return `${TABLES.calls}_p${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`
}

/** Monthly partitions of apimeter_calls with their bounds. */
async function listPartitions(db: Kysely<unknown>): Promise<{ name: string; from: number; to: number }[]> {
  const r = await sql<{ name: string; bound: string }>`
    SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = to_regclass(${TABLES.calls})`.execute(db)
  const out: { name: string; from: number; to: number }[] = []
  for (const row of r.rows) {
    const m = /FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)/.exec(row.bound)
    if (m) out.push({ name: row.name, from: Number(m[1]), to: Number(m[2]) })
  }
  return out
}

/**
 * PostgreSQL storage on pg and kysely, for several app instances sharing one database: batches written with one
 * UNNEST insert each, raw calls range-partitioned by month (partitions created ahead; retention drops whole
 * partitions), migrations under an advisory lock, rollups maintained by one instance at a time with a
 * transaction-id cursor so totals stay exact with any number of writers.
 *
 * @example
 * ```ts
 * import { createMonitor } from '@apimeter/core'
 * import { postgresStorage } from '@apimeter/storage-postgres'
 *
 * const monitor = createMonitor({ storage: postgresStorage({ connectionString: process.env.DATABASE_URL }) })
 * ```
 */
export function postgresStorage(options: PostgresStorageOptions): SqlStorage {
  const parsed = parseOrThrow(optionsSchema, options, 'options', 'INVALID_OPTIONS', PACKAGE)
  const owned = parsed.pool === undefined
  const maxConnections = parsed.maxConnections ?? 4
  let report: (error: unknown) => void = () => undefined
  const searchPath = parsed.schema ? `"${parsed.schema}"` : undefined
  const pool =
    parsed.pool ??
    new pg.Pool({
      connectionString: parsed.connectionString,
      max: maxConnections,
      ...(searchPath ? { options: `-c search_path=${searchPath},public` } : {}),
    })
  if (!owned && searchPath) {
    pool.on('connect', (client) => {
      client.query(`SET search_path TO ${searchPath}, public`).catch((error: unknown) => report(error))
    })
  }
  // An idle connection that dies (a restarted server) must not crash the process: pg emits 'error' on the pool.
  const onPoolError = (error: Error): void =>
    report(new ApimeterError('STORAGE_UNAVAILABLE', `a PostgreSQL connection failed while idle (it is replaced on next use): ${error.message}`, { cause: error, prefix: PACKAGE }))
  pool.on('error', onPoolError)
  // A connection can also die while checked out between two statements (inside a transaction of a background
  // rollup run): pg then emits 'error' on the client itself, which would be an uncaught exception without a listener.
  // The statement in flight (or the next one) fails and is retried; here it is only reported.
  const onClientError = (error: Error): void =>
    report(new ApimeterError('STORAGE_UNAVAILABLE', `a PostgreSQL connection failed while in use (the work is retried): ${error.message}`, { cause: error, prefix: PACKAGE }))
  const onConnect = (client: pg.PoolClient): void => {
    client.on('error', onClientError)
  }
  pool.on('connect', onConnect)

  const db = new Kysely<unknown>({ dialect: new ApimeterPostgresDialect({ pool }) })
  const now = parsed.now ?? Date.now
  let schema = parsed.schema

  const insertName = `apimeter_insert_calls_${parsed.schema ?? 'default'}`
  const insertCalls = async (calls: readonly CallRecord[]): Promise<void> => {
    const width = CALL_COLUMNS.length
    const columns: unknown[][] = Array.from({ length: width }, () => new Array<unknown>(calls.length))
    const row = new Array<unknown>(width)
    for (let i = 0; i < calls.length; i++) {
      writeCallRow(calls[i]!, row, 0)
      for (let c = 0; c < width; c++) columns[c]![i] = row[c]
    }
    // A named (prepared) statement: parsed and planned once per connection, not once per batch.
    await pool.query({ name: insertName, text: INSERT_SQL, values: columns })
  }

  /** Creates the partitions of the previous, current and next two months (moving rows out of the default one). */
  const housekeeping = async (t: number): Promise<void> => {
    const wanted: number[] = []
    for (let m = bucketStart(bucketStart(t, 'month') - DAY, 'month'), i = 0; i < 4; i++, m = nextBucket(m, 'month')) wanted.push(m)
    const existing = new Set((await listPartitions(db)).map((p) => p.from))
    for (const from of wanted) {
      if (existing.has(from)) continue
      const to = nextBucket(from, 'month')
      const name = partitionName(from)
      await db.transaction().execute(async (trx) => {
        await sql`SELECT pg_advisory_xact_lock(${sql.lit(PARTITION_LOCK)})`.execute(trx)
        if ((await listPartitions(trx)).some((p) => p.from === from)) return // another instance made it
        const moved = await sql<{ n: number }>`SELECT COUNT(*)::int AS n FROM ${sql.table(`${TABLES.calls}_default`)} WHERE ts >= ${from} AND ts < ${to}`.execute(trx)
        if ((moved.rows[0]?.n ?? 0) === 0) {
          await sql.raw(`CREATE TABLE ${name} PARTITION OF ${TABLES.calls} FOR VALUES FROM (${from}) TO (${to})`).execute(trx)
          return
        }
        // Rows of that month already sit in the default partition: move them into the new one, then attach it.
        await sql.raw(`CREATE TABLE ${name} (LIKE ${TABLES.calls} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`).execute(trx)
        await sql.raw(`WITH moved AS (DELETE FROM ${TABLES.calls}_default WHERE ts >= ${from} AND ts < ${to} RETURNING *) INSERT INTO ${name} SELECT * FROM moved`).execute(trx)
        await sql.raw(`ALTER TABLE ${TABLES.calls} ATTACH PARTITION ${name} FOR VALUES FROM (${from}) TO (${to})`).execute(trx)
      })
    }
  }

  /** Drops whole monthly partitions that expired (once rolled up); trims the default partition in batches. */
  const rawRetention = async (trx: Kysely<unknown>, cut: number, rolled: RawBuilder<boolean>, maxRows: number): Promise<{ deleted: number; horizon: number }> => {
    let deleted = 0
    let horizon = -Infinity
    for (const p of (await listPartitions(trx)).sort((a, b) => a.from - b.from)) {
      if (p.to > cut) continue
      const pending = await sql<{ n: number }>`SELECT COUNT(*)::int AS n FROM ${sql.table(p.name)} WHERE NOT (${rolled})`.execute(trx)
      if ((pending.rows[0]?.n ?? 0) > 0) break // not rolled up yet: next time
      const rows = await sql<{ n: number }>`SELECT COUNT(*)::int AS n FROM ${sql.table(p.name)}`.execute(trx)
      await sql.raw(`DROP TABLE ${p.name}`).execute(trx)
      deleted += rows.rows[0]?.n ?? 0
      horizon = Math.max(horizon, p.to)
    }
    const old = await sql`DELETE FROM ${sql.table(`${TABLES.calls}_default`)} WHERE ctid IN (SELECT ctid FROM ${sql.table(`${TABLES.calls}_default`)} WHERE ts < ${cut} AND ${rolled} LIMIT ${maxRows})`.execute(trx)
    const fromDefault = Number(old.numAffectedRows ?? 0)
    if (fromDefault > 0) horizon = Math.max(horizon, cut)
    return { deleted: deleted + fromDefault, horizon }
  }

  return createSqlStorage({
    name: 'postgres',
    dialect: 'postgres',
    db,
    durable: true,
    maxWriteConcurrency: maxConnections,
    migrate: parsed.migrate ?? true,
    migrateHint: 'apimeter migrate latest --db <your postgres:// URL>',
    retention: resolveRetention(parsed.retention),
    schedule: parsed.schedule,
    now,
    get schema() {
      return schema
    },
    insertCalls,
    housekeeping,
    rawRetention,
    bindReporter(r) {
      report = r
    },
    async prepare() {
      try {
        if (parsed.schema) {
          await sql.raw(`CREATE SCHEMA IF NOT EXISTS "${parsed.schema}"`).execute(db)
        } else {
          schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db)).rows[0]?.s ?? 'public'
        }
      } catch (error) {
        throw new ApimeterError('STORAGE_UNAVAILABLE', `cannot reach PostgreSQL: ${errorMessage(error)}`, { cause: error, prefix: PACKAGE })
      }
    },
    async release() {
      pool.off('error', onPoolError)
      pool.off('connect', onConnect)
      if (owned) await db.destroy().catch(() => undefined)
    },
  })
}
