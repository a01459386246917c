import { sql } from 'kysely'
import { num } from '../num.js'
import type { SqlDialect } from '../dialect.js'
import { fieldOfColumn, TABLES } from '../schema.js'
import { findCode } from '../../storage/error-kind.js'

/**
 * SQLite (better-sqlite3, one connection per process, writers serialised by the file's lock).
 *
 * The rollup cursor is the calls table's `id`: AUTOINCREMENT ids are never reused and, with one writer at a time,
 * grow in commit order, so "every id up to the cursor is rolled up" is exact.
 */
export const sqliteDialect: SqlDialect = {
  name: 'sqlite',
  types: { bigint: 'INTEGER', integer: 'INTEGER', smallint: 'SMALLINT', double: 'REAL', text: 'TEXT', json: 'TEXT', blob: 'BLOB' },
  ddl: {
    callId: 'id INTEGER PRIMARY KEY AUTOINCREMENT',
    pk: 'INTEGER PRIMARY KEY',
    callsTable: (columns) => [
      `CREATE TABLE ${TABLES.calls} (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n    ${columns.join(',\n    ')}\n)`,
      `CREATE INDEX ${TABLES.calls}_ts ON ${TABLES.calls} (ts)`,
    ],
    // No CHECK constraints on the hottest table of an embedded database: every row is validated before it is
    // written (assertCallRecords), and the constraints cost a third of the insert rate.
    callsChecks: false,
    rollupTableOptions: ' WITHOUT ROWID',
    rollupCursorUp: [],
    rollupCursorDown: [],
    // the tail in memory checks the ids above the cursor instead (see `RollupAccumulator`)
    rawDeletionsUp: [],
    rawDeletionsDown: [],
  },
  param: () => '?',
  typedParam: () => '?',
  json: (text) => sql`${text}`,
  monthStart: () => sql<number>`(CAST(strftime('%s', ts / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000)`,
  joinSketchPairs: () => sql<string>`group_concat(lb || ':' || requests, ',')`,
  joinLatencyBuckets: () => sql<string>`group_concat(latency_bucket, ',')`,
  // group_concat treats the blobs as text but keeps their bytes (the database is UTF-8); CAST gives the blob back
  joinSketches: () => sql<Uint8Array>`CAST(group_concat(latency_sketch, X'0000') AS BLOB)`,
  packRows: {
    texts: (column) => sql<string>`json_group_array(${sql.ref(column)})`,
    joined: (expression) => sql<string>`group_concat(${expression}, ';')`,
    blobs: (expression) => sql<Uint8Array>`CAST(group_concat(${expression}, '') AS BLOB)`,
  },
  async tableExists(db, table) {
    const r = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ${table}`.execute(db)
    return Number(r.rows[0]?.n ?? 0) > 0
  },
  // One connection (the caller serialises use of it); BEGIN IMMEDIATE takes the file's write lock up front, so a
  // second process waits on the busy timeout instead of failing on a lock upgrade.
  async writeTransaction(db, fn) {
    await sql`BEGIN IMMEDIATE`.execute(db)
    try {
      const result = await fn(db)
      await sql`COMMIT`.execute(db)
      return result
    } catch (error) {
      await sql`ROLLBACK`.execute(db).catch(() => undefined)
      throw error
    }
  },
  // One connection: keep writes and maintenance off it while the reads run, inside one read transaction.
  readSnapshot(db, fn, exclusive) {
    return exclusive(async () => {
      await sql`BEGIN`.execute(db)
      try {
        return await fn(db)
      } finally {
        await sql`COMMIT`.execute(db).catch(() => undefined)
      }
    })
  },
  // kysely runs SQLite migrations without a transaction and without a lock (one connection per process): the whole
  // run goes in one BEGIN IMMEDIATE, which waits out the busy timeout while another process migrates and makes the
  // run all-or-nothing. A lock that cannot be taken throws.
  async migrationRun(db, go) {
    await sql`BEGIN IMMEDIATE`.execute(db)
    let outcome = await go()
    try {
      await sql.raw(outcome.error ? 'ROLLBACK' : 'COMMIT').execute(db)
    } catch (error) {
      outcome = { ...outcome, error: outcome.error ?? error }
      await sql`ROLLBACK`.execute(db).catch(() => undefined)
    }
    return outcome
  },
  // `upto` is the last id rolled up: ids above it are not, ids up to it are.
  cursor: {
    async next(db, at, maxRows) {
      const limit = Number.isFinite(maxRows) ? maxRows : Number.MAX_SAFE_INTEGER
      const r = await sql<{ m: number | null }>`SELECT MAX(id) AS m FROM (SELECT id FROM ${sql.table(TABLES.calls)} WHERE id > ${at.upto} ORDER BY id LIMIT ${limit})`.execute(db)
      const m = r.rows[0]?.m
      if (m === null || m === undefined) return null
      const upto = num(m)
      return { batch: sql<boolean>`id > ${at.upto} AND id <= ${upto}`, to: { upto, pending: [] } }
    },
    tail: (at) => sql<boolean>`id > ${at.upto}`,
    // unary plus: not an index column, so SQLite reads the tail by id range (a few rows) instead of by time range
    tailTime: sql<number>`+ts`,
    rolled: (at) => sql<boolean>`id <= ${at.upto}`,
  },
  idsInCommitOrder: true,
  classifyError(error) {
    const code = findCode(error, (c) => c.startsWith('SQLITE_'))
    if (code === undefined) return undefined
    // busy/locked: another writer; read-only, cannot open, full, I/O: the environment, which an operator can fix
    // while calls wait in the buffer
    if (/^SQLITE_(BUSY|LOCKED|READONLY|CANTOPEN|FULL|IOERR|PROTOCOL|INTERRUPT|NOMEM)/.test(code)) return { kind: 'transient' }
    if (/^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/.test(code)) {
      return { kind: 'rejected', field: fieldOfColumn(/\b(?:apimeter_calls\.)?(\w+)$/.exec(errorText(error))?.[1]) }
    }
    if (/^SQLITE_(CORRUPT|NOTADB|FORMAT)/.test(code)) return { kind: 'fatal', hint: 'the database file is damaged or not a SQLite database' }
    return undefined
  },
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : ''
}
