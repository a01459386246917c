import { sql } from 'kysely'
import type { SystemSample, SystemStore } from '../storage/system-store.js'
import type { SqlAlertStoreContext } from './alert-store-sql.js'
import { whereAt } from './audit-store-sql.js'
import { TABLES } from './schema.js'

/** Sample field → column of `apimeter_system_samples`, in column order. */
export const SYSTEM_COLUMNS = {
  at: 'at',
  service: 'service',
  instance: 'instance',
  intervalMs: 'interval_ms',
  eventLoopDelayP50Us: 'el_delay_p50_us',
  eventLoopDelayP99Us: 'el_delay_p99_us',
  eventLoopDelayMaxUs: 'el_delay_max_us',
  eventLoopUtilization: 'el_utilization',
  cpuUserUs: 'cpu_user_us',
  cpuSystemUs: 'cpu_system_us',
  rssBytes: 'rss_bytes',
  heapUsedBytes: 'heap_used_bytes',
  heapTotalBytes: 'heap_total_bytes',
  handles: 'handles',
} as const satisfies Record<keyof SystemSample, string>

const FIELDS = Object.keys(SYSTEM_COLUMNS) as (keyof SystemSample)[]

/** Process metrics of the SQL storages, over `apimeter_system_samples` (docs/schema.md). */
export function createSqlSystemStore(ctx: SqlAlertStoreContext): SystemStore {
  const { db, exclusive } = ctx
  return {
    async write(samples) {
      if (samples.length === 0) return
      await ctx.ready()
      await exclusive(async () => {
        const values = samples.map((s) => sql`(${sql.join(FIELDS.map((f) => s[f]))})`)
        await sql`INSERT INTO ${sql.table(TABLES.systemSamples)} (${sql.join(FIELDS.map((f) => sql.ref(SYSTEM_COLUMNS[f])))}) VALUES ${sql.join(values)}`.execute(db)
      })
    },
    async list(query) {
      await ctx.ready()
      const where = whereAt(query, { service: query.service, instance: query.instance })
      return exclusive(async () => {
        const r = await sql<Record<string, unknown>>`SELECT ${sql.join(FIELDS.map((f) => sql.ref(SYSTEM_COLUMNS[f])))}
          FROM ${sql.table(TABLES.systemSamples)} WHERE ${sql.join(where, sql` AND `)} ORDER BY at, id`.execute(db)
        return r.rows.map((row) => {
          const out = {} as Record<string, unknown>
          for (const f of FIELDS) out[f] = f === 'service' || f === 'instance' ? row[SYSTEM_COLUMNS[f]] : Number(row[SYSTEM_COLUMNS[f]])
          return out as unknown as SystemSample
        })
      })
    },
  }
}
