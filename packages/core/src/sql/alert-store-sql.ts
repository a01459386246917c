import { type Kysely, sql } from 'kysely'
import type {
  AlertEventRecord,
  AlertInstanceRecord,
  AlertSeverity,
  AlertState,
  AlertStore,
  AlertEventState,
  NotificationAttemptRecord,
} from '../storage/alert-store.js'
import type { SqlDialect } from './dialect.js'
import { keyText, num } from './num.js'
import { DIMENSION_COLUMN, filterExpression } from './raw-aggregate.js'
import { TABLES } from './schema.js'

/** What the SQL alert store needs from its storage. */
export interface SqlAlertStoreContext {
  db: Kysely<unknown>
  dialect: SqlDialect
  /** Runs `fn` with the connection to itself when the driver needs that (better-sqlite3's single connection). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>
  /** Connects and migrates (the storage's `init`). */
  ready(): Promise<void>
}

interface StateRow {
  rule_name: string
  group_key: string
  state: string
  severity: string | null
  value: number | null
  pending_since: number | string | null
  firing_since: number | string | null
  active_at: number | string | null
  last_evaluated_at: number | string | null
  last_notified_at: number | string | null
  resolved_at: number | string | null
  version: number | string
}

interface EventRow {
  id: number | string
  rule_name: string
  group_key: string
  state: string
  severity: string | null
  value: number | null
  threshold: number | null
  repeated: number
  at: number | string
}

interface AttemptRow {
  event_id: number | string
  notifier: string
  attempt: number
  status: string
  http_status: number | null
  error: string | null
  at: number | string
}

const orNull = (v: number | string | null): number | null => (v === null ? null : Number(v))

function toInstance(r: StateRow): AlertInstanceRecord {
  return {
    rule: r.rule_name,
    group: r.group_key,
    state: r.state as AlertState,
    severity: r.severity as AlertSeverity | null,
    value: r.value === null ? null : Number(r.value),
    pendingSince: orNull(r.pending_since),
    firingSince: orNull(r.firing_since),
    activeAt: orNull(r.active_at),
    lastEvaluatedAt: orNull(r.last_evaluated_at),
    lastNotifiedAt: orNull(r.last_notified_at),
    resolvedAt: orNull(r.resolved_at),
    version: Number(r.version),
  }
}

function toEvent(r: EventRow): AlertEventRecord {
  return {
    id: Number(r.id),
    rule: r.rule_name,
    group: r.group_key,
    state: r.state as AlertEventState,
    severity: r.severity as AlertSeverity | null,
    value: r.value === null ? null : Number(r.value),
    threshold: r.threshold === null ? null : Number(r.threshold),
    repeated: Number(r.repeated) === 1,
    at: Number(r.at),
  }
}

/** Runs a store operation once the storage is ready, on the connection to itself when the driver needs that. */
export function readyThenExclusive(ctx: SqlAlertStoreContext): <T>(fn: () => Promise<T>) => Promise<T> {
  return async (fn) => {
    await ctx.ready()
    return ctx.exclusive(fn)
  }
}

/** A named definition as the SQL stores keep them: alert rules, probes and SLOs. */
export interface StoredDefinition {
  name: string
  /** JSON text (stored in the dialect's JSON type). */
  definition: string
  createdAt: number
  updatedAt: number
}

/**
 * Inserts or updates named definitions of `table` (alert rules, probes, SLOs), one statement per row: `created_at`
 * is kept, `definition`, `updated_at` and the plain `columns` (kind, enabled) replaced.
 */
export async function upsertDefinitions(
  db: Kysely<unknown>,
  dialect: SqlDialect,
  table: string,
  rows: readonly ({ name: string; definition: string } & Record<string, unknown>)[],
  columns: readonly string[],
  now: number,
): Promise<void> {
  const names = sql.join(['name', ...columns, 'definition', 'created_at', 'updated_at'].map((c) => sql.ref(c)))
  const updates = sql.join([...columns, 'definition', 'updated_at'].map((c) => sql`${sql.ref(c)} = excluded.${sql.ref(c)}`))
  for (const r of rows) {
    const values = sql.join([r.name, ...columns.map((c) => r[c]), dialect.json(r.definition), now, now])
    await sql`INSERT INTO ${sql.table(table)} (${names}) VALUES (${values}) ON CONFLICT (name) DO UPDATE SET ${updates}`.execute(db)
  }
}

/** Every named definition of `table`, by name, with the plain `columns` as stored (see {@link upsertDefinitions}). */
export async function readDefinitions<C extends string>(db: Kysely<unknown>, table: string, columns: readonly C[]): Promise<(StoredDefinition & Record<C, unknown>)[]> {
  const extra = columns.map((c) => sql`, ${sql.ref(c)}`)
  const r = await sql<{ name: string; definition: string; created_at: number | string; updated_at: number | string } & Record<C, unknown>>`SELECT name${sql.join(extra, sql``)},
      CAST(definition AS TEXT) AS definition, created_at, updated_at FROM ${sql.table(table)} ORDER BY name`.execute(db)
  return r.rows.map((row) => ({ ...row, createdAt: Number(row.created_at), updatedAt: Number(row.updated_at) }))
}

/**
 * The alert store of the SQL storages, over the documented alert tables (docs/schema.md). A state write is a
 * compare-and-set on `version` in one transaction with the event it causes, so with several processes on one
 * database each transition is written, and therefore notified, once.
 */
export function createSqlAlertStore(ctx: SqlAlertStoreContext): AlertStore {
  const { db, dialect } = ctx
  const run = readyThenExclusive(ctx)

  return {
    syncRules(rules, now) {
      return run(() =>
        upsertDefinitions(db, dialect, TABLES.alertRules, rules.map((r) => ({ name: r.name, kind: r.kind, enabled: r.enabled ? 1 : 0, definition: r.definition })), ['kind', 'enabled'], now),
      )
    },

    rules() {
      return run(async () =>
        (await readDefinitions(db, TABLES.alertRules, ['kind', 'enabled'])).map((row) => ({ name: row.name, kind: String(row.kind), definition: row.definition, enabled: Number(row.enabled) === 1 })),
      )
    },

    instances(rule) {
      return run(async () => {
        const r = await sql<StateRow>`SELECT * FROM ${sql.table(TABLES.alertState)} WHERE rule_name = ${rule} ORDER BY group_key`.execute(db)
        return r.rows.map(toInstance)
      })
    },

    transition({ expectedVersion, next, event }) {
      return run(() =>
        db.transaction().execute(async (trx) => {
          const n = next
          const written =
            expectedVersion === 0
              ? await sql`INSERT INTO ${sql.table(TABLES.alertState)} (rule_name, group_key, state, severity, value,
                  pending_since, firing_since, active_at, last_evaluated_at, last_notified_at, resolved_at, version)
                  VALUES (${n.rule}, ${n.group}, ${n.state}, ${n.severity}, ${n.value}, ${n.pendingSince}, ${n.firingSince},
                    ${n.activeAt}, ${n.lastEvaluatedAt}, ${n.lastNotifiedAt}, ${n.resolvedAt}, 1)
                  ON CONFLICT (rule_name, group_key) DO NOTHING`.execute(trx)
              : await sql`UPDATE ${sql.table(TABLES.alertState)} SET state = ${n.state}, severity = ${n.severity},
                  value = ${n.value}, pending_since = ${n.pendingSince}, firing_since = ${n.firingSince},
                  active_at = ${n.activeAt}, last_evaluated_at = ${n.lastEvaluatedAt},
                  last_notified_at = ${n.lastNotifiedAt}, resolved_at = ${n.resolvedAt}, version = version + 1
                  WHERE rule_name = ${n.rule} AND group_key = ${n.group} AND version = ${expectedVersion}`.execute(trx)
          if (Number(written.numAffectedRows ?? 0) !== 1) return { applied: false, eventId: null }
          if (!event) return { applied: true, eventId: null }
          const e = event
          const inserted = await sql<{ id: number | string }>`INSERT INTO ${sql.table(TABLES.alertEvents)}
              (rule_name, group_key, state, severity, value, threshold, repeated, at)
              VALUES (${e.rule}, ${e.group}, ${e.state}, ${e.severity}, ${e.value}, ${e.threshold}, ${e.repeated ? 1 : 0}, ${e.at})
              RETURNING id`.execute(trx)
          return { applied: true, eventId: Number(inserted.rows[0]!.id) }
        }),
      )
    },

    recordAttempt(a) {
      return run(async () => {
        await sql`INSERT INTO ${sql.table(TABLES.alertNotifications)} (event_id, notifier, attempt, status, http_status, error, at)
          VALUES (${a.eventId}, ${a.notifier}, ${a.attempt}, ${a.status}, ${a.httpStatus}, ${a.error}, ${a.at})`.execute(db)
      })
    },

    events({ from, to }) {
      return run(async () => {
        const r = await sql<EventRow>`SELECT id, rule_name, group_key, state, severity, value, threshold, repeated, at
          FROM ${sql.table(TABLES.alertEvents)}
          WHERE at >= ${from ?? 0} ${to === undefined ? sql`` : sql`AND at < ${to}`}
          ORDER BY at, id`.execute(db)
        return r.rows.map(toEvent)
      })
    },

    attempts(eventId) {
      return run(async () => {
        const r = await sql<AttemptRow>`SELECT event_id, notifier, attempt, status, http_status, error, at
          FROM ${sql.table(TABLES.alertNotifications)}
          ${eventId === undefined ? sql`` : sql`WHERE event_id = ${eventId}`}
          ORDER BY id`.execute(db)
        return r.rows.map(
          (row): NotificationAttemptRecord => ({
            eventId: Number(row.event_id),
            notifier: row.notifier,
            attempt: Number(row.attempt),
            status: row.status as 'sent' | 'failed',
            httpStatus: row.http_status === null ? null : Number(row.http_status),
            error: row.error,
            at: Number(row.at),
          }),
        )
      })
    },

    latestRateLimits(filter, groupBy) {
      return run(async () => {
        const dims = groupBy.map((d) => sql.ref(DIMENSION_COLUMN[d]))
        const keys = groupBy.map((d, i) => sql`${sql.ref(DIMENSION_COLUMN[d])} AS ${sql.ref(`k${i}`)}`)
        const partition = [...dims, sql.ref('api'), sql.ref('rate_limit_scope')]
        const r = await sql<Record<string, unknown>>`SELECT * FROM (
            SELECT ${sql.join([...keys, sql`api, rate_limit_scope, rate_limit_limit, rate_limit_remaining, rate_limit_reset_ms, ts`])},
              ROW_NUMBER() OVER (PARTITION BY ${sql.join(partition)} ORDER BY ts DESC, id DESC) AS rn
            FROM ${sql.table(TABLES.calls)}
            WHERE ${filterExpression(filter)} AND rate_limit_limit IS NOT NULL AND rate_limit_remaining IS NOT NULL
          ) latest WHERE rn = 1`.execute(db)
        return r.rows.map((row) => ({
          keys: groupBy.map((_, i) => keyText(row[`k${i}`])),
          api: (row.api as string | null) ?? null,
          scope: (row.rate_limit_scope as string | null) ?? null,
          limit: num(row.rate_limit_limit),
          remaining: num(row.rate_limit_remaining),
          resetMs: row.rate_limit_reset_ms === null ? null : num(row.rate_limit_reset_ms),
          timestamp: num(row.ts),
        }))
      })
    },
  }
}
