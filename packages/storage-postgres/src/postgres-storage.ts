import { ApimeterError, type CallRecord, type SqlStorage } from '@apimeter/core'
import { createSqlStorage, errorMessage, intInRange, parseOrThrow, postgresDialect, resolveRetention, sqlStorageOptionFields, type SqlStorageOptions } from '@apimeter/core/sql'
import { Kysely, PostgresAdapter, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { z } from 'zod'
import { writeBatch } from './copy-insert.js'

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
  /**
   * How long one statement may run on the server (`statement_timeout`) and how long connecting may take (ms), on the
   * connections apimeter opens. A write that times out is retried; a stats query rejects.
   * @default 30_000
   * @example
   * ```ts
   * postgresStorage({ connectionString, timeoutMs: 10_000 })
   * ```
   */
  timeoutMs?: number
}

const optionsSchema = z
  .strictObject({
    connectionString: z.string({ error: 'a postgres:// connection URL' }).regex(/^postgres(ql)?:\/\//i, { error: 'a postgres:// connection URL' }).optional(),
    pool: z.custom<PostgresPool>((v) => typeof v === 'object' && v !== null && typeof (v as PostgresPool).connect === 'function' && typeof (v as PostgresPool).query === 'function', { error: 'a pg Pool' }).optional(),
    schema: z.string({ error: 'a schema name (letters, digits, underscores)' }).regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, { error: 'a schema name (letters, digits, underscores)' }).optional(),
    maxConnections: intInRange(1, 100, 'a whole number from 1 to 100').optional(),
    timeoutMs: intInRange(100, 3_600_000, 'a whole number of milliseconds from 100 to 3,600,000').optional(),
    ...sqlStorageOptionFields,
  })
  .superRefine((o, ctx) => {
    if ((o.connectionString === undefined) === (o.pool === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'exactly one of connectionString or pool', input: o })
    }
  })

/** apimeter's own advisory lock key for migrations (kysely's default key is shared by every kysely user). */
const MIGRATION_LOCK = BigInt('7236833521884319001')

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

/**
 * PostgreSQL storage on pg and kysely, for several app instances sharing one database: batches written with one
 * COPY each, raw calls range-partitioned by month (partitions created ahead; retention drops whole
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
  const timeoutMs = parsed.timeoutMs ?? 30_000
  let report: (error: unknown) => void = () => undefined
  const searchPath = parsed.schema ? `"${parsed.schema}"` : undefined
  const pool =
    parsed.pool ??
    new pg.Pool({
      connectionString: parsed.connectionString,
      max: maxConnections,
      // Idle connections never keep the process alive: a script that forgets close() still exits.
      allowExitOnIdle: true,
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs,
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
  const insertCalls = async (calls: readonly CallRecord[]): Promise<{ tx: number } | undefined> => {
    const tx = await writeBatch(pool, calls, insertName)
    return tx === undefined ? undefined : { tx }
  }

  return createSqlStorage({
    name: 'postgres',
    dialect: postgresDialect,
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
