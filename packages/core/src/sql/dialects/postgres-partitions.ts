import { type Kysely, sql } from 'kysely'
import { bucketStart, nextBucket } from '../../time.js'
import type { PartitionUpkeep } from '../dialect.js'
import { TABLES } from '../schema.js'

/**
 * Monthly range partitions of `apimeter_calls` on PostgreSQL: the partitions of the previous, current and next two
 * months exist ahead of the rows that need them (rows of a month without one wait in the default partition and move
 * when it is created), and retention drops whole expired partitions instead of deleting rows.
 */

const DAY = 86_400_000
/** Serialises partition creation between instances (transaction-scoped). */
const PARTITION_LOCK = BigInt('7236833521884319002')

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

export const monthlyPartitions: PartitionUpkeep = {
  async ensure(db, now) {
    const wanted: number[] = []
    for (let m = bucketStart(bucketStart(now, 'month') - DAY, 'month'), i = 0; i < 4; i++, m = nextBucket(m, 'month')) wanted.push(m)
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
  },

  async expire(trx, cut, rolled, maxRows) {
    let deleted = 0
    let horizon = -Infinity
    const dropped: string[] = []
    for (const p of (await listPartitions(trx)).sort((a, b) => a.from - b.from)) {
      if (p.to > cut) continue
      const pending = await sql<{ n: number }>`SELECT COUNT(*)::int AS n FROM ${sql.table(p.name)} WHERE NOT (${rolled})`.execute(trx)
      if ((pending.rows[0]?.n ?? 0) > 0) break // not rolled up yet: next time
      const rows = await sql<{ n: number }>`SELECT COUNT(*)::int AS n FROM ${sql.table(p.name)}`.execute(trx)
      await sql.raw(`DROP TABLE ${p.name}`).execute(trx)
      deleted += rows.rows[0]?.n ?? 0
      dropped.push(p.name)
      horizon = Math.max(horizon, p.to)
    }
    const old = await sql`DELETE FROM ${sql.table(`${TABLES.calls}_default`)} WHERE ctid IN (SELECT ctid FROM ${sql.table(`${TABLES.calls}_default`)} WHERE ts < ${cut} AND ${rolled} LIMIT ${maxRows})`.execute(trx)
    const fromDefault = Number(old.numAffectedRows ?? 0)
    if (fromDefault > 0) horizon = Math.max(horizon, cut)
    return { deleted: deleted + fromDefault, horizon, partitions: dropped }
  },
}
