import { dirname } from 'node:path'
import { existsSync } from 'node:fs'
import { ApimeterError, type CallRecord, type SqlStorage } from '@apimeter/core'
import { CALL_COLUMNS, createSqlStorage, intInRange, parseOrThrow, resolveRetention, sqliteDialect, sqlStorageOptionFields, type SqlStorageOptions, TABLES, writeCallRow } from '@apimeter/core/sql'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { z } from 'zod'

const PACKAGE = '@apimeter/storage-sqlite'

/** The better-sqlite3 database type (what `new Database(file)` returns). */
export type SqliteDatabase = Database.Database

/**
 * Options of {@link sqliteStorage}: give `filename` (apimeter opens and closes the file) or `database` (your own
 * better-sqlite3 connection, which apimeter never closes).
 */
export interface SqliteStorageOptions extends SqlStorageOptions {
  /**
   * Path of the database file (created when missing, its directory must exist), or `':memory:'`.
   * @example
   * ```ts
   * sqliteStorage({ filename: 'apimeter.db' })
   * ```
   */
  filename?: string
  /**
   * An open better-sqlite3 database to use instead of a file name. apimeter sets its pragmas (WAL, busy timeout)
   * and leaves it open on `close()`.
   * @example
   * ```ts
   * sqliteStorage({ database: new Database('app.db') })
   * ```
   */
  database?: SqliteDatabase
  /**
   * How long a write waits for another process's lock before failing (it is then retried by the monitor).
   * @default 5000
   * @example
   * ```ts
   * sqliteStorage({ filename: 'shared.db', busyTimeoutMs: 15_000 })
   * ```
   */
  busyTimeoutMs?: number
}

const optionsSchema = z
  .strictObject({
    filename: z.string({ error: 'a file path or ":memory:"' }).min(1, { error: 'a file path or ":memory:"' }).optional(),
    database: z
      .custom<SqliteDatabase>((v) => typeof v === 'object' && v !== null && typeof (v as SqliteDatabase).prepare === 'function' && typeof (v as SqliteDatabase).pragma === 'function', {
        error: 'an open better-sqlite3 Database',
      })
      .optional(),
    ...sqlStorageOptionFields,
    busyTimeoutMs: intInRange(0, 600_000, 'a whole number of milliseconds from 0 to 600,000').optional(),
  })
  .superRefine((o, ctx) => {
    if ((o.filename === undefined) === (o.database === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'exactly one of filename or database', input: o })
    }
  })

/** Rows per prepared multi-row INSERT (38 columns × 100 rows stays far below SQLite's 32,766 parameters). */
const ROWS_PER_STATEMENT = 100

/**
 * SQLite storage on better-sqlite3 and kysely: the embedded default. WAL journal, `synchronous = NORMAL`, a busy
 * timeout so several processes can share one file; each batch is one `BEGIN IMMEDIATE` transaction of prepared
 * multi-row inserts. Stats queries come from the shared SQL layer in `@apimeter/core`.
 *
 * @example
 * ```ts
 * import { createMonitor } from '@apimeter/core'
 * import { sqliteStorage } from '@apimeter/storage-sqlite'
 *
 * const monitor = createMonitor({ storage: sqliteStorage({ filename: 'apimeter.db' }) })
 * ```
 */
export function sqliteStorage(options: SqliteStorageOptions): SqlStorage {
  const parsed = parseOrThrow(optionsSchema, options, 'options', 'INVALID_OPTIONS', PACKAGE)
  const busyTimeoutMs = parsed.busyTimeoutMs ?? 5000
  const owned = parsed.database === undefined
  const label = parsed.filename ?? 'the given database'
  let raw: SqliteDatabase | undefined

  const open = (): SqliteDatabase => {
    if (raw) return raw
    let database: SqliteDatabase
    if (parsed.database) {
      database = parsed.database
    } else {
      const filename = parsed.filename!
      if (filename !== ':memory:' && !filename.startsWith('file:') && !existsSync(dirname(filename))) {
        throw new ApimeterError('STORAGE_UNAVAILABLE', `cannot open ${filename}: directory ${dirname(filename)} does not exist`, { prefix: PACKAGE })
      }
      try {
        database = new Database(filename)
      } catch (error) {
        throw new ApimeterError('STORAGE_UNAVAILABLE', `cannot open ${filename}: ${(error as Error).message}`, { cause: error, prefix: PACKAGE })
      }
    }
    try {
      database.pragma(`busy_timeout = ${busyTimeoutMs}`)
      if (!database.memory && !database.readonly) database.pragma('journal_mode = WAL')
      database.pragma('synchronous = NORMAL')
      database.pragma('foreign_keys = ON')
      database.pragma('cache_size = -32768') // 32 MiB of page cache (the default is 2 MiB)
    } catch (error) {
      if (owned) database.close()
      throw new ApimeterError('STORAGE_UNAVAILABLE', `cannot use ${label}: ${(error as Error).message}`, { cause: error, prefix: PACKAGE })
    }
    raw = database
    return database
  }

  // kysely closes its database on destroy(): hand it a view whose close() is a no-op when the connection is yours.
  const db = new Kysely<unknown>({
    dialect: new SqliteDialect({
      database: async () => {
        const database = open()
        return owned ? database : { prepare: (query: string) => database.prepare(query), close: () => undefined }
      },
    }),
  })

  // Prepared statements, created on first use (after migrations made the table exist). A full chunk of rows goes
  // through one multi-row statement whose parameter array is filled in place (no array per row); the remainder
  // goes row by row. The batch's rows get consecutive ids (AUTOINCREMENT under the write lock): returned so the
  // storage can aggregate them for the next rollup run without reading them back.
  type Insert = ((calls: readonly CallRecord[]) => number) & { immediate(calls: readonly CallRecord[]): number }
  let insertBatch: Insert | undefined
  const width = CALL_COLUMNS.length
  const prepareInsert = (database: SqliteDatabase): Insert => {
    const rowPlaceholder = `(${CALL_COLUMNS.map(() => '?').join(', ')})`
    const into = `INSERT INTO ${TABLES.calls} (${CALL_COLUMNS.join(', ')}) VALUES `
    const many = database.prepare(into + Array(ROWS_PER_STATEMENT).fill(rowPlaceholder).join(', '))
    const one = database.prepare(into + rowPlaceholder)
    const manyParams = new Array<unknown>(ROWS_PER_STATEMENT * width)
    const oneParams = new Array<unknown>(width)
    return database.transaction((batch: readonly CallRecord[]): number => {
      let i = 0
      let lastId = 0
      for (; i + ROWS_PER_STATEMENT <= batch.length; i += ROWS_PER_STATEMENT) {
        for (let j = 0; j < ROWS_PER_STATEMENT; j++) writeCallRow(batch[i + j]!, manyParams, j * width)
        lastId = Number(many.run(manyParams).lastInsertRowid)
      }
      for (; i < batch.length; i++) {
        writeCallRow(batch[i]!, oneParams, 0)
        lastId = Number(one.run(oneParams).lastInsertRowid)
      }
      return lastId
    })
  }

  const insertCalls = async (calls: readonly CallRecord[]): Promise<{ firstId: number; lastId: number }> => {
    insertBatch ??= prepareInsert(open())
    // IMMEDIATE takes the write lock up front, so two writing processes queue on the busy timeout instead of
    // failing on a lock upgrade.
    const lastId = insertBatch.immediate(calls)
    return { firstId: lastId - calls.length + 1, lastId }
  }

  // Rollup runs repeat a few long statements; keep them prepared (bounded: one per table and chunk size).
  const statements = new Map<string, Database.Statement>()
  const executeRaw = async (text: string, params: readonly unknown[]): Promise<Record<string, unknown>[]> => {
    const database = open()
    let statement = statements.get(text)
    if (!statement) {
      statement = database.prepare(text)
      if (statements.size < 64) statements.set(text, statement)
    }
    if (statement.reader) return statement.all(...params) as Record<string, unknown>[]
    statement.run(...params)
    return []
  }

  return createSqlStorage({
    name: 'sqlite',
    dialect: sqliteDialect,
    db,
    durable: parsed.filename !== ':memory:',
    // One connection: concurrent batches would only queue on it.
    maxWriteConcurrency: 1,
    migrate: parsed.migrate ?? true,
    retention: resolveRetention(parsed.retention),
    schedule: parsed.schedule,
    now: parsed.now,
    migrateHint: `apimeter migrate latest --db ${parsed.filename ?? '<your database file>'}`,
    serializeWrites: true,
    insertCalls,
    executeRaw,
    async prepare() {
      open()
    },
    async release() {
      statements.clear()
      await db.destroy().catch(() => undefined)
      if (raw && owned && raw.open) raw.close()
      raw = undefined
    },
  })
}
