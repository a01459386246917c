import { type Kysely, sql } from 'kysely'
import { num } from '../num.js'
import { TABLES } from '../schema.js'
import type { CursorPosition } from '../dialect.js'
import { type Horizons, NO_HORIZONS } from './plan.js'

/** The rollup state table: the cursor (what is rolled up) and the retention horizons (what is kept). */

/** Reads a value of `apimeter_rollup_state`. */
export async function readState(db: Kysely<unknown>, name: string, forUpdate = false): Promise<number | null> {
  const r = await sql<{ value: unknown }>`SELECT value FROM ${sql.table(TABLES.rollupState)} WHERE name = ${name}${forUpdate ? sql` FOR UPDATE` : sql``}`.execute(db)
  return r.rows.length === 0 ? null : num(r.rows[0]!.value)
}

/** Writes a value of `apimeter_rollup_state`. */
export async function writeState(db: Kysely<unknown>, name: string, value: number): Promise<void> {
  await sql`INSERT INTO ${sql.table(TABLES.rollupState)} (name, value) VALUES (${name}, ${value}) ON CONFLICT (name) DO UPDATE SET value = excluded.value`.execute(db)
}

/**
 * The rollup cursor: `cursor` holds `upto`; each pending transaction is a row `pending:<id>` (PostgreSQL only — the
 * list is short: the transactions running at the last run).
 */
export async function readCursor(db: Kysely<unknown>): Promise<CursorPosition> {
  const r = await sql<{ name: string; value: unknown }>`SELECT name, value FROM ${sql.table(TABLES.rollupState)} WHERE name = 'cursor' OR name LIKE 'pending:%'`.execute(db)
  return cursorOf(r.rows)
}

function cursorOf(rows: readonly { name: string; value: unknown }[]): CursorPosition {
  let upto = 0
  const pending: number[] = []
  for (const row of rows) {
    if (row.name === 'cursor') upto = num(row.value)
    else if (row.name.startsWith('pending:')) pending.push(num(row.value))
  }
  return { upto, pending: pending.sort((a, b) => a - b) }
}

/** Stores the cursor (inside the rollup transaction). */
export async function writeCursor(db: Kysely<unknown>, at: CursorPosition, before: CursorPosition): Promise<void> {
  await writeState(db, 'cursor', at.upto)
  const keep = new Set(at.pending)
  const gone = before.pending.filter((x) => !keep.has(x))
  if (gone.length > 0) await sql`DELETE FROM ${sql.table(TABLES.rollupState)} WHERE name IN (${sql.join(gone.map((x) => `pending:${x}`))})`.execute(db)
  const had = new Set(before.pending)
  for (const x of at.pending) if (!had.has(x)) await writeState(db, `pending:${x}`, x)
}

/**
 * The cursor, the retention horizons and the count of statements that deleted raw calls (PostgreSQL's
 * `raw_deletions` row, see migration `0010_raw_deletions`; 0 without one) in one read: what planning a query needs.
 */
export async function readPlanState(db: Kysely<unknown>): Promise<{ at: CursorPosition; horizons: Horizons; deletions: number }> {
  const r = await sql<{ name: string; value: unknown }>`SELECT name, value FROM ${sql.table(TABLES.rollupState)}`.execute(db)
  const deletions = r.rows.find((row) => row.name === RAW_DELETIONS)
  return { at: cursorOf(r.rows), horizons: horizonsOf(r.rows), deletions: deletions ? num(deletions.value) : 0 }
}

/** The state row counting statements that deleted raw calls (PostgreSQL; written by a trigger). */
export const RAW_DELETIONS = 'raw_deletions'

/** The retention horizons recorded in the state table. */
export async function readHorizons(db: Kysely<unknown>): Promise<Horizons> {
  const r = await sql<{ name: string; value: unknown }>`SELECT name, value FROM ${sql.table(TABLES.rollupState)} WHERE name IN (${sql.join(Object.keys(HORIZON_ROWS))})`.execute(db)
  return horizonsOf(r.rows)
}

const HORIZON_ROWS: Record<string, keyof Horizons> = {
  raw_horizon: 'raw',
  hour_horizon: 'hour',
  day_horizon: 'day',
  fine_horizon: 'fine',
  route_hour_horizon: 'routeHour',
  route_5m_horizon: 'route5m',
}

function horizonsOf(rows: readonly { name: string; value: unknown }[]): Horizons {
  const h: Horizons = { ...NO_HORIZONS }
  for (const row of rows) {
    const field = HORIZON_ROWS[row.name]
    if (field) h[field] = num(row.value)
  }
  return h
}
