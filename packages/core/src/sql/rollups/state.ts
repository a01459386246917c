import { type Kysely, sql } from 'kysely'
import { num } from '../num.js'
import { TABLES } from '../schema.js'
import type { Horizons } from './plan.js'

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

/** The retention horizons recorded in the state table. */
export async function readHorizons(db: Kysely<unknown>): Promise<Horizons> {
  const r = await sql<{ name: string; value: unknown }>`SELECT name, value FROM ${sql.table(TABLES.rollupState)} WHERE name IN ('raw_horizon', 'hour_horizon', 'day_horizon')`.execute(db)
  const h = { raw: -Infinity, hour: -Infinity, day: -Infinity }
  for (const row of r.rows) h[row.name.replace('_horizon', '') as keyof Horizons] = num(row.value)
  return h
}
