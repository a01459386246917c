import { existsSync } from 'node:fs'
import { dirname } from 'node:path'
import { ApimeterError, type CallRecord, type MaintenanceSchedule, type RetentionOptions, type SqlStorage } from '@apimeter/core'
import { CALL_COLUMN_SPECS, CALL_COLUMNS, createSqlStorage, mergeEncodedSketches, resolveRetention, sqliteDialect, storedPercentiles, TABLES, writeCallRow } from '@apimeter/core/sql'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'

/** The prefix of every message this package throws. */
export const PACKAGE = '@apimeter/storage-sqlite'
/**
 * The page cache of a connection by default, in MiB. 8 rather than 32: the cache fills up to its size and stays
 * resident, and the stats queries read rollups, whose pages for weeks of traffic fit in a few MiB (the rollups bench
 * answers as fast with 8 as with 32); `cacheSizeMiB` raises it for databases queried over raw calls.
 */
export const DEFAULT_CACHE_MIB = 8

/** The better-sqlite3 database type (what `new Database(file)` returns). */
export type SqliteDatabase = Database.Database

/** What {@link openSqliteStorage} needs: the validated options, defaults filled in. */
export interface SqliteSettings {
  filename?: string
  database?: SqliteDatabase
  busyTimeoutMs: number
  /** Page cache of the connection in MiB (default {@link DEFAULT_CACHE_MIB}). */
  cacheSizeMiB?: number
  migrate: boolean
  retention?: RetentionOptions
  schedule?: Partial<MaintenanceSchedule>
  now?: () => number
  /** See `SqlStorageConfig.awaitMaintenance` (set in the worker thread). */
  awaitMaintenance?: boolean
}

/** The SQL function merging two encoded latency sketches, registered on every connection this package opens or is given. */
const SKETCH_MERGE = 'apimeter_merge_sketches'
const SKETCH_PERCENTILES = 'apimeter_sketch_percentiles'

/** Rows per prepared multi-row INSERT (38 columns × 100 rows stays far below SQLite's 32,766 parameters). */
const ROWS_PER_STATEMENT = 100

/**
 * Opens a database file with apimeter's pragmas (WAL, busy timeout, `synchronous = NORMAL`), or applies them to the
 * connection given. Throws `STORAGE_UNAVAILABLE` when the file cannot be opened.
 */
export function openSqlite(settings: Pick<SqliteSettings, 'filename' | 'database' | 'busyTimeoutMs' | 'cacheSizeMiB'>): SqliteDatabase {
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
    database.pragma(`cache_size = -${(settings.cacheSizeMiB ?? DEFAULT_CACHE_MIB) * 1024}`) // KiB when negative (SQLite's own default is 2 MiB)
    // rollup runs merge latency sketches inside their upserts (see SqlStorageConfig.sketchMergeFunction)
    database.function(SKETCH_MERGE, { deterministic: true }, (stored: unknown, added: unknown) => {
      const merged = mergeEncodedSketches(stored as Uint8Array, added as Uint8Array)
      return Buffer.isBuffer(merged) ? merged : Buffer.from(merged.buffer, merged.byteOffset, merged.byteLength)
    })
    // and keep a route-by-hour row's stored percentiles current as they do (see SqlStorageConfig.sketchPercentilesFunction)
    database.function(SKETCH_PERCENTILES, { deterministic: true }, (sketch: unknown, requests: unknown, minUs: unknown, maxUs: unknown) =>
      storedPercentiles(sketch as Uint8Array, Number(requests), Number(minUs), Number(maxUs)),
    )
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

const WIDTH = CALL_COLUMNS.length
const ALL_COLUMNS = CALL_COLUMNS.map((_, k) => k)
/** Columns an INSERT may leave out when every row has NULL there: nullable, and NULL is what they default to. */
const OMITTABLE = CALL_COLUMN_SPECS.flatMap((c, k) => (c.nullable && c.default === undefined ? [k] : []))
/** The key of the column set with every column. */
const FULL = '1'.repeat(OMITTABLE.length)
/** Distinct column sets kept prepared; a batch of yet another shape uses the statement with every column. */
const MAX_SHAPES = 32

function insertText(columns: readonly number[], rows: number): string {
  const row = `(${columns.map(() => '?').join(', ')})`
  return `INSERT INTO ${TABLES.calls} (${columns.map((k) => CALL_COLUMNS[k]).join(', ')}) VALUES ${Array(rows).fill(row).join(', ')}`
}

/** A prepared multi-row INSERT of some of the columns, and its parameter array. */
interface Shape {
  statement: Database.Statement
  columns: readonly number[]
  params: unknown[]
}

/**
 * The multi-row INSERTs of full chunks. Most optional fields are NULL in every call of a chunk (no tokens on a
 * plain API call, no user id on an anonymous one…), and binding a parameter costs about as much as storing it: a
 * chunk's statement leaves out the columns that are NULL in all its rows (they take their NULL default), one
 * prepared statement per such column set (a handful in practice). Measured: 38 bound columns 3.7 µs per row, the
 * 17 a typical call fills 2.8 µs.
 */
class ChunkStatements {
  private readonly shapes = new Map<string, Shape>()
  private readonly values = new Array<unknown>(ROWS_PER_STATEMENT * WIDTH)

  constructor(private readonly database: SqliteDatabase) {
    this.shape(FULL) // always there: the statement of every shape beyond MAX_SHAPES
  }

  /** Inserts rows `from…from + ROWS_PER_STATEMENT` of `batch`; returns the last row's id. */
  run(batch: readonly CallRecord[], from: number): number {
    const values = this.values
    for (let j = 0; j < ROWS_PER_STATEMENT; j++) writeCallRow(batch[from + j]!, values, j * WIDTH)
    let key = ''
    for (const k of OMITTABLE) {
      let empty = true
      for (let at = k; at < values.length; at += WIDTH) {
        if (values[at] !== null) {
          empty = false
          break
        }
      }
      key += empty ? '0' : '1'
    }
    const shape = this.shape(key)
    const { columns, params } = shape
    const width = columns.length
    if (width === WIDTH) return Number(shape.statement.run(values).lastInsertRowid)
    for (let j = 0; j < ROWS_PER_STATEMENT; j++) {
      const row = j * WIDTH
      const to = j * width
      for (let c = 0; c < width; c++) params[to + c] = values[row + columns[c]!]
    }
    return Number(shape.statement.run(params).lastInsertRowid)
  }

  private shape(key: string): Shape {
    const known = this.shapes.get(key)
    if (known) return known
    if (this.shapes.size >= MAX_SHAPES) return this.shapes.get(FULL)!
    const left = new Set(OMITTABLE.filter((_, i) => key[i] === '0'))
    const columns = ALL_COLUMNS.filter((k) => !left.has(k))
    const shape = { statement: this.database.prepare(insertText(columns, ROWS_PER_STATEMENT)), columns, params: new Array<unknown>(ROWS_PER_STATEMENT * columns.length) }
    this.shapes.set(key, shape)
    return shape
  }
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
  // through one multi-row statement; the remainder goes row by row. The batch's rows get consecutive ids
  // (AUTOINCREMENT under the write lock): returned so the storage can aggregate them for the next rollup run without
  // reading them back.
  type Insert = ((calls: readonly CallRecord[]) => number) & { immediate(calls: readonly CallRecord[]): number }
  let insertBatch: Insert | undefined
  const prepareInsert = (database: SqliteDatabase): Insert => {
    const chunks = new ChunkStatements(database)
    const one = database.prepare(insertText(ALL_COLUMNS, 1))
    const oneParams = new Array<unknown>(WIDTH)
    return database.transaction((batch: readonly CallRecord[]): number => {
      let i = 0
      let lastId = 0
      for (; i + ROWS_PER_STATEMENT <= batch.length; i += ROWS_PER_STATEMENT) lastId = chunks.run(batch, i)
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
    sketchMergeFunction: SKETCH_MERGE,
    sketchPercentilesFunction: SKETCH_PERCENTILES,
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
