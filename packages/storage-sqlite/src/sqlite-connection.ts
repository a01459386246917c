import { existsSync } from 'node:fs'
import { dirname } from 'node:path'
import { ApimeterError, type CallRecord, type MaintenanceSchedule, type RetentionOptions, type SqlStorage } from '@apimeter/core'
import { CALL_COLUMNS, createSqlStorage, resolveRetention, sqliteDialect, TABLES, writeCallRow } from '@apimeter/core/sql'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'

/** The prefix of every message this package throws. */
export const PACKAGE = '@apimeter/storage-sqlite'

/** The better-sqlite3 database type (what `new Database(file)` returns). */
export type SqliteDatabase = Database.Database

/** What {@link openSqliteStorage} needs: the validated options, defaults filled in. */
export interface SqliteSettings {
  filename?: string
  database?: SqliteDatabase
  busyTimeoutMs: number
  migrate: boolean
  retention?: RetentionOptions
  schedule?: Partial<MaintenanceSchedule>
  now?: () => number
  /** See `SqlStorageConfig.awaitMaintenance` (set in the worker thread). */
  awaitMaintenance?: boolean
}

/** Rows per prepared multi-row INSERT (38 columns × 100 rows stays far below SQLite's 32,766 parameters). */
const ROWS_PER_STATEMENT = 100

/**
 * Opens a database file with apimeter's pragmas (WAL, busy timeout, `synchronous = NORMAL`), or applies them to the
 * connection given. Throws `STORAGE_UNAVAILABLE` when the file cannot be opened.
 */
export function openSqlite(settings: Pick<SqliteSettings, 'filename' | 'database' | 'busyTimeoutMs'>): SqliteDatabase {
  let database: SqliteDatabase
  if (settings.database) {
    database = settings.database
  } else {
    const filename = settings.filename!
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
    database.pragma(`busy_timeout = ${settings.busyTimeoutMs}`)
    if (!database.memory && !database.readonly) database.pragma('journal_mode = WAL')
    database.pragma('synchronous = NORMAL')
    database.pragma('foreign_keys = ON')
    database.pragma('cache_size = -32768') // 32 MiB of page cache (the default is 2 MiB)
  } catch (error) {
    if (!settings.database) database.close()
    throw new ApimeterError('STORAGE_UNAVAILABLE', `cannot use ${settings.filename ?? 'the given database'}: ${(error as Error).message}`, { cause: error, prefix: PACKAGE })
  }
  return database
}

/**
 * A kysely instance on a connection opened on first use by `open`. kysely closes its database on destroy(): when the
 * connection is the user's, it gets a view whose close() is a no-op.
 */
export function kyselyOn(open: () => SqliteDatabase | Promise<SqliteDatabase>, owned: boolean): Kysely<unknown> {
  return new Kysely<unknown>({
    dialect: new SqliteDialect({
      database: async () => {
        const database = await open()
        return owned ? database : { prepare: (query: string) => database.prepare(query), close: () => undefined }
      },
    }),
  })
}

/**
 * The SQLite storage on the calling thread: one better-sqlite3 connection, each batch one `BEGIN IMMEDIATE`
 * transaction of prepared multi-row inserts, rollups and stats from the shared SQL layer. `sqliteStorage()` runs it
 * on the host's thread or inside the worker thread.
 */
export function openSqliteStorage(settings: SqliteSettings): SqlStorage {
  const owned = settings.database === undefined
  let raw: SqliteDatabase | undefined
  const open = (): SqliteDatabase => (raw ??= openSqlite(settings))
  const db = kyselyOn(open, owned)

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
    durable: settings.filename !== ':memory:',
    // One connection: concurrent batches would only queue on it.
    maxWriteConcurrency: 1,
    migrate: settings.migrate,
    retention: resolveRetention(settings.retention),
    schedule: settings.schedule,
    now: settings.now,
    migrateHint: `apimeter migrate latest --db ${settings.filename ?? '<your database file>'}`,
    serializeWrites: true,
    awaitMaintenance: settings.awaitMaintenance,
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
