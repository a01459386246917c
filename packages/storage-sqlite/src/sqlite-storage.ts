import { ApimeterError, type SqlStorage } from '@apimeter/core'
import { intInRange, parseOrThrow, sqlStorageOptionFields, type SqlStorageOptions } from '@apimeter/core/sql'
import { availableParallelism } from 'node:os'
import { z } from 'zod'
import { DEFAULT_CACHE_MIB, openSqliteStorage, PACKAGE, type SqliteDatabase } from './sqlite-connection.js'
import { workerScript, workerSqliteStorage } from './worker-storage.js'

export type { SqliteDatabase } from './sqlite-connection.js'

/**
 * Where the SQLite storage does its work; see {@link SqliteStorageOptions.thread}.
 * @example
 * ```ts
 * const thread: SqliteThread = process.env.APIMETER_SQLITE_THREAD === 'main' ? 'main' : 'worker'
 * sqliteStorage({ filename: 'apimeter.db', thread })
 * ```
 */
export type SqliteThread = 'worker' | 'main'

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
   * and leaves it open on `close()`. The storage then runs on your thread (the connection cannot move to another).
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
  /**
   * SQLite's page cache of the storage's connection, in MiB: a part of what the storage adds to your process's
   * resident memory once the cache has filled. Smaller saves memory; larger keeps more of a big database in memory
   * (queries reading raw calls: user filters, minute timeseries).
   * @default 8
   * @example
   * ```ts
   * sqliteStorage({ filename: 'apimeter.db', cacheSizeMiB: 64 })   // a large database on a roomy host
   * ```
   */
  cacheSizeMiB?: number
  /**
   * Where the storage does its work. `'worker'`: a worker thread of its own opens the file and runs writes, rollups,
   * retention, stats queries, migrations and alert state, so your event loop only hands batches over and gets answers
   * back. `'main'`: all of it on the thread that created the storage, between your requests (what a `database` you
   * pass, a `':memory:'` database and a `now` function require, since none of them can move to another thread).
   * @default 'worker' for a database file when the process may use two cores or more (`os.availableParallelism()`,
   *   which honours `taskset` and CPU quotas), 'main' otherwise: on one core a second thread only adds the copying
   *   (and when the package was bundled without its worker script)
   * @example
   * ```ts
   * sqliteStorage({ filename: 'apimeter.db', thread: 'main' })   // no worker thread: everything on this one
   * ```
   */
  thread?: SqliteThread
}

/** Whether a file name names an in-memory database (which would be a different one in each thread). */
const inMemory = (filename: string): boolean => filename === ':memory:' || /^file:.*(:memory:|[?&]mode=memory)/.test(filename)

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
    cacheSizeMiB: intInRange(1, 65_536, 'a whole number of MiB from 1 to 65,536').optional(),
    thread: z.enum(['worker', 'main'], { error: `'worker' or 'main'` }).optional(),
  })
  .superRefine((o, ctx) => {
    if ((o.filename === undefined) === (o.database === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'exactly one of filename or database', input: o })
    }
    if (o.thread === 'worker') {
      const reason = o.database !== undefined ? 'a database connection is given' : o.filename !== undefined && inMemory(o.filename) ? 'the database is in memory' : o.now !== undefined ? 'a now function is given' : undefined
      if (reason) ctx.addIssue({ code: 'custom', path: ['thread'], message: `'main' when ${reason} (it cannot move to a worker thread)`, input: o.thread })
    }
  })

/**
 * SQLite storage on better-sqlite3 and kysely: the embedded default. WAL journal, `synchronous = NORMAL`, a busy
 * timeout so several processes can share one file; each batch is one `BEGIN IMMEDIATE` transaction of prepared
 * multi-row inserts. Stats queries come from the shared SQL layer in `@apimeter/core`. On a database file, all of
 * it runs in a worker thread of its own (see `thread`); `close()` ends that thread.
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
  const settings = {
    busyTimeoutMs: parsed.busyTimeoutMs ?? 5000,
    cacheSizeMiB: parsed.cacheSizeMiB ?? DEFAULT_CACHE_MIB,
    migrate: parsed.migrate ?? true,
    retention: parsed.retention,
    schedule: parsed.schedule,
  }
  const { filename } = parsed
  const canMove = filename !== undefined && !inMemory(filename) && parsed.now === undefined
  // With one core the worker's copies cost more than they take off the event loop: by default, only with a spare one.
  const wanted = parsed.thread ?? (availableParallelism() >= 2 ? 'worker' : 'main')
  const script = canMove && wanted === 'worker' ? workerScript() : undefined
  if (script) return workerSqliteStorage({ ...settings, filename: filename! }, script)
  if (parsed.thread === 'worker') {
    throw new ApimeterError('INVALID_OPTIONS', `options.thread is 'worker' but the worker script (sqlite-worker.js) is not beside the package's code (was it bundled into one file?); use thread: 'main'`, { prefix: PACKAGE })
  }
  return openSqliteStorage({ ...settings, filename, database: parsed.database, now: parsed.now })
}
