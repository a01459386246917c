import { sql } from 'kysely'
import type { SloStore } from '../storage/slo-store.js'
import { readyThenExclusive, type SqlAlertStoreContext } from './alert-store-sql.js'
import { TABLES } from './schema.js'

interface SloRow {
  name: string
  definition: string | object
  created_at: number | string
  updated_at: number | string
}

/** The SLO store of the SQL storages, over `apimeter_slos` (docs/schema.md). */
export function createSqlSloStore(ctx: SqlAlertStoreContext): SloStore {
  const { db, dialect } = ctx
  const run = readyThenExclusive(ctx)
  return {
    syncSlos(slos, now) {
      return run(async () => {
        for (const s of slos) {
          await sql`INSERT INTO ${sql.table(TABLES.slos)} (name, definition, created_at, updated_at)
            VALUES (${s.name}, ${dialect.json(s.definition)}, ${now}, ${now})
            ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at`.execute(db)
        }
      })
    },
    list() {
      return run(async () => {
        const r = await sql<SloRow>`SELECT name, definition, created_at, updated_at FROM ${sql.table(TABLES.slos)} ORDER BY name`.execute(db)
        return r.rows.map((row) => ({
          name: row.name,
          definition: typeof row.definition === 'string' ? row.definition : JSON.stringify(row.definition),
          createdAt: Number(row.created_at),
          updatedAt: Number(row.updated_at),
        }))
      })
    },
  }
}
