import type { SloStore } from '../storage/slo-store.js'
import { readDefinitions, readyThenExclusive, type SqlAlertStoreContext, upsertDefinitions } from './alert-store-sql.js'
import { TABLES } from './schema.js'

/** The SLO store of the SQL storages, over `apimeter_slos` (docs/schema.md). */
export function createSqlSloStore(ctx: SqlAlertStoreContext): SloStore {
  const { db, dialect } = ctx
  const run = readyThenExclusive(ctx)
  return {
    syncSlos: (slos, now) => run(() => upsertDefinitions(db, dialect, TABLES.slos, slos, [], now)),
    list: () => run(async () => (await readDefinitions(db, TABLES.slos, [])).map(({ name, definition, createdAt, updatedAt }) => ({ name, definition, createdAt, updatedAt }))),
  }
}
