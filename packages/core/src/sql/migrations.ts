import { type Kysely, type Migration, sql } from 'kysely'
import type { SqlDialect } from './dialect.js'
import { dialectOf } from './dialects/index.js'
import { callColumnDefinitions, type SqlDialectName, TABLES } from './schema.js'

/**
 * apimeter's migrations, in code (nothing is read from a folder at run time, so they work after bundling).
 * Each is written once as DDL in the dialect's types (the calls table's columns come from the field table);
 * docs/schema.md documents the result.
 * Migrations are append-only: a released migration is never edited, a change is a new migration.
 */

/** `apimeter_calls`: one row per recorded call, its columns from the field table. Partitioned by month on PostgreSQL. */
function callsTable(d: SqlDialect): string[] {
  return d.ddl.callsTable(callColumnDefinitions(d.types, '0001_initial', { checks: d.ddl.callsChecks }))
}

/** The outbound API registry: providers and their endpoints, with pricing and rate limits. */
function registryTables(d: SqlDialect): string[] {
  const t = d.types
  return [
    `CREATE TABLE ${TABLES.apiProviders} (
    name TEXT PRIMARY KEY,
    match_kind TEXT NOT NULL CHECK (match_kind IN ('prefix', 'host', 'regex')),
    match TEXT NOT NULL,
    pricing ${t.json},
    rate_limit_per_minute INTEGER CHECK (rate_limit_per_minute > 0),
    rate_limit_per_day INTEGER CHECK (rate_limit_per_day > 0),
    metadata ${t.json},
    updated_at ${t.bigint} NOT NULL
)`,
    `CREATE TABLE ${TABLES.apiEndpoints} (
    provider_name TEXT NOT NULL REFERENCES ${TABLES.apiProviders} (name) ON DELETE CASCADE,
    method TEXT NOT NULL,
    route TEXT NOT NULL,
    cost_per_request_nanos ${t.bigint} CHECK (cost_per_request_nanos >= 0),
    rate_limit_per_minute INTEGER CHECK (rate_limit_per_minute > 0),
    updated_at ${t.bigint} NOT NULL,
    PRIMARY KEY (provider_name, method, route)
)`,
  ]
}

/** Alert rules, the state of each rule instance, the transitions, and each notification attempt. */
function alertTables(d: SqlDialect): string[] {
  const t = d.types
  return [
    `CREATE TABLE ${TABLES.alertRules} (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('error_rate', 'latency', 'requests', 'cost', 'rate_limit', 'status')),
    definition ${t.json} NOT NULL,
    enabled SMALLINT NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at ${t.bigint} NOT NULL,
    updated_at ${t.bigint} NOT NULL
)`,
    `CREATE TABLE ${TABLES.alertState} (
    rule_name TEXT NOT NULL REFERENCES ${TABLES.alertRules} (name) ON DELETE CASCADE,
    group_key TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('inactive', 'pending', 'firing')),
    value ${t.double},
    pending_since ${t.bigint},
    firing_since ${t.bigint},
    last_evaluated_at ${t.bigint},
    last_notified_at ${t.bigint},
    resolved_at ${t.bigint},
    version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule_name, group_key)
)`,
    `CREATE TABLE ${TABLES.alertEvents} (
    id ${d.ddl.pk},
    rule_name TEXT NOT NULL,
    group_key TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    value ${t.double},
    threshold ${t.double},
    at ${t.bigint} NOT NULL
)`,
    `CREATE INDEX ${TABLES.alertEvents}_at ON ${TABLES.alertEvents} (at)`,
    `CREATE INDEX ${TABLES.alertEvents}_rule_at ON ${TABLES.alertEvents} (rule_name, at)`,
    `CREATE TABLE ${TABLES.alertNotifications} (
    id ${d.ddl.pk},
    event_id ${t.bigint} NOT NULL REFERENCES ${TABLES.alertEvents} (id) ON DELETE CASCADE,
    notifier TEXT NOT NULL,
    attempt INTEGER NOT NULL CHECK (attempt >= 1),
    status TEXT NOT NULL CHECK (status IN ('sent', 'failed')),
    http_status INTEGER,
    error TEXT,
    at ${t.bigint} NOT NULL
)`,
    `CREATE INDEX ${TABLES.alertNotifications}_event ON ${TABLES.alertNotifications} (event_id)`,
  ]
}

/** A rollup table as `0002_rollups` created it (without 0004's `cost_estimated_nanos`). */
function rollupTable(d: SqlDialect, name: string): string {
  const t = d.types
  return `CREATE TABLE ${name} (
    level SMALLINT NOT NULL CHECK (level IN (0, 1, 2)),
    bucket_start ${t.bigint} NOT NULL,
    service TEXT NOT NULL,
    direction TEXT NOT NULL,
    api TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    method TEXT NOT NULL,
    route TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    model TEXT NOT NULL,
    requests ${t.bigint} NOT NULL,
    cached ${t.bigint} NOT NULL,
    cost_nanos ${t.bigint} NOT NULL,
    cost_unknown ${t.bigint} NOT NULL,
    input_tokens ${t.bigint} NOT NULL,
    output_tokens ${t.bigint} NOT NULL,
    cached_input_tokens ${t.bigint} NOT NULL,
    request_bytes ${t.bigint} NOT NULL,
    response_bytes ${t.bigint} NOT NULL,
    duration_sum_us ${t.bigint} NOT NULL,
    duration_min_us ${t.bigint} NOT NULL,
    duration_max_us ${t.bigint} NOT NULL,
    latency_sketch ${t.blob} NOT NULL,
    PRIMARY KEY (level, bucket_start, service, direction, api, status_code, outcome, method, route, tenant_id, model)
)${d.ddl.rollupTableOptions}`
}

/** `0004_cost_estimated`'s column of a rollup table. */
const costEstimatedColumn = (d: SqlDialect, table: string): string => `ALTER TABLE ${table} ADD COLUMN cost_estimated_nanos ${d.types.bigint} NOT NULL DEFAULT 0`

/** Hour, day and month rollups (one table each), the rollup cursor and retention horizons. */
function rollupTables(d: SqlDialect): string[] {
  const t = d.types
  const statements = [
    rollupTable(d, TABLES.rollupHour),
    rollupTable(d, TABLES.rollupDay),
    rollupTable(d, TABLES.rollupMonth),
    `CREATE TABLE ${TABLES.rollupState} (
    name TEXT PRIMARY KEY,
    value ${t.bigint} NOT NULL
)`,
  ]
  // what the dialect's rollup cursor needs (PostgreSQL: the transaction id of each row)
  return [...statements, ...d.ddl.rollupCursorUp]
}

/**
 * What the alert evaluator needs beyond 0001's alert tables: the severity of an instance and of each event (a
 * budget warns at a fraction of its threshold before it alerts), when the condition last held (`keepFiringFor`), and
 * whether an event repeats a notification after the cooldown.
 */
function alertSeverityColumns(d: SqlDialect): string[] {
  const t = d.types
  const severity = `TEXT CHECK (severity IN ('warning', 'critical'))`
  return [
    `ALTER TABLE ${TABLES.alertState} ADD COLUMN severity ${severity}`,
    `ALTER TABLE ${TABLES.alertState} ADD COLUMN active_at ${t.bigint}`,
    `ALTER TABLE ${TABLES.alertEvents} ADD COLUMN severity ${severity}`,
    `ALTER TABLE ${TABLES.alertEvents} ADD COLUMN repeated SMALLINT NOT NULL DEFAULT 0 CHECK (repeated IN (0, 1))`,
  ]
}

/** The audit log (append-only) and the process metrics samples. */
function auditAndSystemTables(d: SqlDialect): string[] {
  const t = d.types
  return [
    `CREATE TABLE ${TABLES.auditLog} (
    id ${d.ddl.pk},
    at ${t.bigint} NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    instance TEXT NOT NULL,
    "before" ${t.json},
    "after" ${t.json},
    detail TEXT
)`,
    `CREATE INDEX ${TABLES.auditLog}_at ON ${TABLES.auditLog} (at)`,
    `CREATE INDEX ${TABLES.auditLog}_kind_at ON ${TABLES.auditLog} (kind, at)`,
    `CREATE INDEX ${TABLES.auditLog}_subject_at ON ${TABLES.auditLog} (subject, at)`,
    `CREATE TABLE ${TABLES.systemSamples} (
    id ${d.ddl.pk},
    at ${t.bigint} NOT NULL,
    service TEXT NOT NULL,
    instance TEXT NOT NULL,
    interval_ms ${t.bigint} NOT NULL CHECK (interval_ms > 0),
    el_delay_p50_us ${t.double} NOT NULL,
    el_delay_p99_us ${t.double} NOT NULL,
    el_delay_max_us ${t.double} NOT NULL,
    el_utilization ${t.double} NOT NULL,
    cpu_user_us ${t.bigint} NOT NULL,
    cpu_system_us ${t.bigint} NOT NULL,
    rss_bytes ${t.bigint} NOT NULL,
    heap_used_bytes ${t.bigint} NOT NULL,
    heap_total_bytes ${t.bigint} NOT NULL,
    handles INTEGER NOT NULL
)`,
    `CREATE INDEX ${TABLES.systemSamples}_at ON ${TABLES.systemSamples} (at)`,
  ]
}

async function run(db: Kysely<unknown>, statements: readonly string[]): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db)
}

/** The migration that creates the audit log: a run that leaves the database before it cannot record itself there. */
export const AUDIT_MIGRATION = '0008_plugins_audit_system'

/** A migration of apimeter: kysely's shape plus a name. */
export interface NamedMigration extends Migration {
  name: string
}

/**
 * apimeter's migrations for a dialect, oldest first.
 *
 * @example
 * ```ts
 * const names = apimeterMigrations('sqlite').map((m) => m.name)   // ['0001_initial', '0002_rollups', '0003_alerts']
 * ```
 */
export function apimeterMigrations(dialectOrName: SqlDialect | SqlDialectName): NamedMigration[] {
  const dialect = dialectOf(dialectOrName)
  return [
    {
      name: '0001_initial',
      async up(db) {
        await run(db, [...callsTable(dialect), ...registryTables(dialect), ...alertTables(dialect)])
      },
      async down(db) {
        await run(
          db,
          [
            TABLES.alertNotifications,
            TABLES.alertEvents,
            TABLES.alertState,
            TABLES.alertRules,
            TABLES.apiEndpoints,
            TABLES.apiProviders,
            TABLES.calls,
          ].map((table) => `DROP TABLE ${table}`),
        )
      },
    },
    {
      name: '0002_rollups',
      async up(db) {
        await run(db, rollupTables(dialect))
      },
      async down(db) {
        const drops = [TABLES.rollupState, TABLES.rollupMonth, TABLES.rollupDay, TABLES.rollupHour].map((table) => `DROP TABLE ${table}`)
        await run(db, [...drops, ...dialect.ddl.rollupCursorDown])
      },
    },
    {
      name: '0003_alerts',
      async up(db) {
        await run(db, alertSeverityColumns(dialect))
      },
      async down(db) {
        await run(db, [
          `ALTER TABLE ${TABLES.alertEvents} DROP COLUMN repeated`,
          `ALTER TABLE ${TABLES.alertEvents} DROP COLUMN severity`,
          `ALTER TABLE ${TABLES.alertState} DROP COLUMN active_at`,
          `ALTER TABLE ${TABLES.alertState} DROP COLUMN severity`,
        ])
      },
    },
    {
      // The estimated part of each rollup's cost (calls priced from partial usage), so stats report it apart.
      // Rows rolled up before this migration hold 0 there; `apimeter rollups rebuild` recomputes them from raw calls.
      name: '0004_cost_estimated',
      async up(db) {
        await run(db, [TABLES.rollupHour, TABLES.rollupDay, TABLES.rollupMonth].map((t) => costEstimatedColumn(dialect, t)))
      },
      async down(db) {
        await run(db, [TABLES.rollupHour, TABLES.rollupDay, TABLES.rollupMonth].map((t) => `ALTER TABLE ${t} DROP COLUMN cost_estimated_nanos`))
      },
    },
    {
      // 5-minute rollups, so the edges of a range read at most 5 minutes of raw calls each. Calls rolled up before
      // this migration are not in them: `fine_horizon` (the hour after the newest call at migration time) says
      // from when on they are complete, and queries read raw edges before it.
      name: '0005_rollups_5m',
      async up(db) {
        await run(db, [
          rollupTable(dialect, TABLES.rollup5m),
          costEstimatedColumn(dialect, TABLES.rollup5m),
          `INSERT INTO ${TABLES.rollupState} (name, value)
    SELECT 'fine_horizon', MAX(ts) - (MAX(ts) % 3600000) + 3600000 FROM ${TABLES.calls} HAVING MAX(ts) IS NOT NULL`,
        ])
      },
      async down(db) {
        await run(db, [`DROP TABLE ${TABLES.rollup5m}`, `DELETE FROM ${TABLES.rollupState} WHERE name = 'fine_horizon'`])
      },
    },
    {
      // The audit log (seeds 001 audit_logs, 003 PluginOperation) and process metrics (seed 000 system_metrics).
      name: AUDIT_MIGRATION,
      async up(db) {
        await run(db, auditAndSystemTables(dialect))
      },
      async down(db) {
        await run(db, [`DROP TABLE ${TABLES.systemSamples}`, `DROP TABLE ${TABLES.auditLog}`])
      },
    },
  ]
}
