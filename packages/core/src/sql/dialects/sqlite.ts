import { sql } from 'kysely'
import { num } from '../num.js'
import type { SqlDialect } from '../dialect.js'
import { TABLES } from '../schema.js'

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
  },
  param: () => '?',
  typedParam: () => '?',
  json: (text) => sql`${text}`,
  monthStart: () => sql<number>`(CAST(strftime('%s', ts / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000)`,
  joinSketchPairs: () => sql<string>`group_concat(lb || ':' || requests, ',')`,
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
  cursor: {
    async upto(db, cursor, maxRows) {
      const r = await sql<{ m: number | null }>`SELECT MAX(id) AS m FROM (SELECT id FROM ${sql.table(TABLES.calls)} WHERE id > ${cursor} ORDER BY id LIMIT ${maxRows})`.execute(db)
      const m = r.rows[0]?.m
      return m === null || m === undefined ? null : num(m)
    },
    batch: (cursor, upto) => sql<boolean>`id > ${cursor} AND id <= ${upto}`,
    tail: (cursor) => sql<boolean>`id > ${cursor}`,
    rolled: (cursor) => sql<boolean>`id <= ${cursor}`,
  },
  idsInCommitOrder: true,
}
