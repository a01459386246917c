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

/** The rule kinds `0001_initial` allowed in `apimeter_alert_rules.kind`; `0007_slos` adds `slo_burn`. */
const RULE_KINDS_0001 = ['error_rate', 'latency', 'requests', 'cost', 'rate_limit', 'status']
const RULE_KINDS_0007 = [...RULE_KINDS_0001, 'slo_burn']

function alertRulesTable(d: SqlDialect, name: string, kinds: readonly string[]): string {
  const t = d.types
  return `CREATE TABLE ${name} (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN (${kinds.map((k) => `'${k}'`).join(', ')})),
    definition ${t.json} NOT NULL,
    enabled SMALLINT NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at ${t.bigint} NOT NULL,
    updated_at ${t.bigint} NOT NULL
)`
}

/** `apimeter_alert_state` as `0001_initial` created it (0003 adds severity and active_at). */
function alertStateTable(d: SqlDialect): string {
  const t = d.types
  return `CREATE TABLE ${TABLES.alertState} (
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
)`
}

/**
 * Lets `apimeter_alert_rules.kind` take `kinds`. PostgreSQL swaps the check constraint. SQLite cannot alter a
 * constraint, so the table is rebuilt; `apimeter_alert_state` references it (with ON DELETE CASCADE), so its rows
 * are set aside and restored around the rebuild instead of being cascaded away.
 */
function ruleKindsCheck(d: SqlDialect, kinds: readonly string[]): string[] {
  const list = kinds.map((k) => `'${k}'`).join(', ')
  if (d.name === 'postgres') {
    return [
      `ALTER TABLE ${TABLES.alertRules} DROP CONSTRAINT ${TABLES.alertRules}_kind_check`,
      `ALTER TABLE ${TABLES.alertRules} ADD CONSTRAINT ${TABLES.alertRules}_kind_check CHECK (kind IN (${list}))`,
    ]
  }
  const rulesTmp = `${TABLES.alertRules}_rebuild`
  const stateTmp = `${TABLES.alertState}_rebuild`
  const stateColumns = 'rule_name, group_key, state, value, pending_since, firing_since, last_evaluated_at, last_notified_at, resolved_at, version, severity, active_at'
  return [
    `CREATE TABLE ${stateTmp} AS SELECT ${stateColumns} FROM ${TABLES.alertState}`,
    `DROP TABLE ${TABLES.alertState}`,
    alertRulesTable(d, rulesTmp, kinds),
    `INSERT INTO ${rulesTmp} (name, kind, definition, enabled, created_at, updated_at) SELECT name, kind, definition, enabled, created_at, updated_at FROM ${TABLES.alertRules}`,
    `DROP TABLE ${TABLES.alertRules}`,
    `ALTER TABLE ${rulesTmp} RENAME TO ${TABLES.alertRules}`,
    alertStateTable(d),
    ...alertSeverityColumns(d).slice(0, 2),
    `INSERT INTO ${TABLES.alertState} (${stateColumns}) SELECT ${stateColumns} FROM ${stateTmp}`,
    `DROP TABLE ${stateTmp}`,
  ]
}

/** SLO definitions (`0007_slos`). */
function sloTable(d: SqlDialect): string {
  const t = d.types
  return `CREATE TABLE ${TABLES.slos} (
    name TEXT PRIMARY KEY,
    definition ${t.json} NOT NULL,
    created_at ${t.bigint} NOT NULL,
    updated_at ${t.bigint} NOT NULL
)`
}

/** Alert rules, the state of each rule instance, the transitions, and each notification attempt. */
function alertTables(d: SqlDialect): string[] {
  const t = d.types
  return [
    alertRulesTable(d, TABLES.alertRules, RULE_KINDS_0001),
    alertStateTable(d),
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

/**
 * `0009_storage_limits`' route-by-hour rollups: one row per (hour, route) with the requests of each outcome as
 * columns, so an hourly timeseries by route reads one row per point instead of grouping a row per (api, status,
 * outcome, method) of every route and hour. Complete from `route_hour_horizon` on (the hour after the newest call when
 * the table was added; no row: everywhere), as 0005's 5-minute rows are from `fine_horizon`. `0011_route_5m` adds the
 * same table in 5-minute buckets (`route_5m_horizon`), so the sub-hour edges of a series by route read no raw call.
 */
function routeTable(d: SqlDialect, table: string, horizon: string): string[] {
  const t = d.types
  return [
    `CREATE TABLE ${table} (
    bucket_start ${t.bigint} NOT NULL,
    route TEXT NOT NULL,
${[...ROUTE_HOUR_SUMS, ...OUTCOME_COLUMNS].map((c) => `    ${c} ${t.bigint} NOT NULL,`).join('\n')}
    duration_min_us ${t.bigint} NOT NULL,
    duration_max_us ${t.bigint} NOT NULL,
    latency_sketch ${t.blob} NOT NULL,
    PRIMARY KEY (bucket_start, route)
)${d.ddl.rollupTableOptions}`,
    horizonAfterNewestCall(horizon),
  ]
}

/**
 * The state row saying a rollup table added now is complete from the hour after the newest call on (calls rolled up
 * before it have no rows there); no row when there is no call yet (complete everywhere).
 */
const horizonAfterNewestCall = (name: string): string => `INSERT INTO ${TABLES.rollupState} (name, value)
    SELECT '${name}', MAX(ts) - (MAX(ts) % 3600000) + 3600000 FROM ${TABLES.calls} HAVING MAX(ts) IS NOT NULL`

/** The sum columns of a rollup table, in its column order (0004 added `cost_estimated_nanos` last). */
const ROUTE_HOUR_SUMS = [
  'requests', 'cached', 'cost_nanos', 'cost_unknown', 'cost_estimated_nanos', 'input_tokens', 'output_tokens', 'cached_input_tokens',
  'request_bytes', 'response_bytes', 'duration_sum_us',
] as const
/** The requests of each outcome, as 0009 created them (written out: a migration's tables do not follow later code). */
const OUTCOME_COLUMNS = [
  'outcome_success', 'outcome_client_error', 'outcome_server_error', 'outcome_rate_limited', 'outcome_timeout', 'outcome_network_error', 'outcome_aborted',
] as const

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

const CAUSE_CHECK = `IN ('connection_refused', 'network', 'timeout', 'dns', 'tls', 'status', 'body', 'json', 'slow', 'cert_expiring', 'heartbeat_late')`

/**
 * Probes (`0006_probes`): their definitions, one lease row per probe (who runs its current round), the incident
 * state of each probe (compare-and-set on `version`), every check, and the incidents.
 */
function probeTables(d: SqlDialect): string[] {
  const t = d.types
  return [
    `CREATE TABLE ${TABLES.probes} (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('http', 'heartbeat')),
    definition ${t.json} NOT NULL,
    created_at ${t.bigint} NOT NULL,
    updated_at ${t.bigint} NOT NULL
)`,
    `CREATE TABLE ${TABLES.probeLeases} (
    probe TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    lease_round ${t.bigint} NOT NULL,
    expires_at ${t.bigint} NOT NULL
)`,
    `CREATE TABLE ${TABLES.probeState} (
    probe TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('unknown', 'up', 'down')),
    failures INTEGER NOT NULL CHECK (failures >= 0),
    failing_since ${t.bigint},
    successes INTEGER NOT NULL CHECK (successes >= 0),
    recovering_since ${t.bigint},
    last_check_at ${t.bigint},
    last_ok_at ${t.bigint},
    first_check_at ${t.bigint},
    incident_id ${t.bigint},
    version INTEGER NOT NULL DEFAULT 0
)`,
    `CREATE TABLE ${TABLES.probeChecks} (
    id ${d.ddl.pk},
    probe TEXT NOT NULL,
    at ${t.bigint} NOT NULL,
    ok SMALLINT NOT NULL CHECK (ok IN (0, 1)),
    status_code INTEGER,
    duration_ms ${t.double} NOT NULL CHECK (duration_ms >= 0),
    cause TEXT CHECK (cause ${CAUSE_CHECK}),
    error TEXT,
    instance TEXT NOT NULL
)`,
    `CREATE INDEX ${TABLES.probeChecks}_probe_at ON ${TABLES.probeChecks} (probe, at)`,
    `CREATE INDEX ${TABLES.probeChecks}_at ON ${TABLES.probeChecks} (at)`,
    `CREATE TABLE ${TABLES.incidents} (
    id ${d.ddl.pk},
    probe TEXT NOT NULL,
    opened_at ${t.bigint} NOT NULL,
    resolved_at ${t.bigint},
    duration_ms ${t.bigint} CHECK (duration_ms >= 0),
    cause TEXT NOT NULL CHECK (cause ${CAUSE_CHECK}),
    error TEXT
)`,
    `CREATE INDEX ${TABLES.incidents}_probe_opened ON ${TABLES.incidents} (probe, opened_at)`,
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
  /** A migration adding a route table (see {@link routeTable}) with its horizon state row, and removing both. */
  const routeTableMigration = (name: string, table: string, horizon: string): NamedMigration => ({
    name,
    async up(db) {
      await run(db, routeTable(dialect, table, horizon))
    },
    async down(db) {
      await run(db, [`DROP TABLE ${table}`, `DELETE FROM ${TABLES.rollupState} WHERE name = '${horizon}'`])
    },
  })
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
          horizonAfterNewestCall('fine_horizon'),
        ])
      },
      async down(db) {
        await run(db, [`DROP TABLE ${TABLES.rollup5m}`, `DELETE FROM ${TABLES.rollupState} WHERE name = 'fine_horizon'`])
      },
    },
    {
      // Probes, incidents and uptime (seed 004's monitors, monitor_checks and incidents).
      name: '0006_probes',
      async up(db) {
        await run(db, probeTables(dialect))
      },
      async down(db) {
        await run(db, [TABLES.incidents, TABLES.probeChecks, TABLES.probeState, TABLES.probeLeases, TABLES.probes].map((table) => `DROP TABLE ${table}`))
      },
    },
    {
      // SLO definitions, so `apimeter slos status` computes status from the database alone; and the `slo_burn` rule
      // kind, under which each SLO's page and ticket burn-rate alerts keep their state and history.
      name: '0007_slos',
      async up(db) {
        await run(db, [sloTable(dialect), ...ruleKindsCheck(dialect, RULE_KINDS_0007)])
      },
      async down(db) {
        await run(db, [`DELETE FROM ${TABLES.alertRules} WHERE kind = 'slo_burn'`, ...ruleKindsCheck(dialect, RULE_KINDS_0001), `DROP TABLE ${TABLES.slos}`])
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
    // Route-by-hour rollups with the outcomes as columns (an hourly timeseries by route without a big GROUP BY).
    routeTableMigration('0009_storage_limits', TABLES.rollupRouteHour, 'route_hour_horizon'),
    {
      // PostgreSQL: a trigger counts the statements that delete raw calls (state row `raw_deletions`), so a process
      // that answers the not-yet-rolled tail from memory knows when calls of it may be gone. Nothing on SQLite.
      name: '0010_raw_deletions',
      async up(db) {
        await run(db, dialect.ddl.rawDeletionsUp)
      },
      async down(db) {
        await run(db, dialect.ddl.rawDeletionsDown)
      },
    },
    // Route-by-5-minutes rollups: the sub-hour edges of a series by route (or of one route) from rollups, not raw
    // calls. Complete from `route_5m_horizon` on (the hour after the newest call at migration time).
    routeTableMigration('0011_route_5m', TABLES.rollupRoute5m, 'route_5m_horizon'),
    {
      // Route-by-hour rows keep their summary percentiles beside the sketch (see stored-percentiles.ts). Rows written
      // before have none (NULL): their sketches are read, as before, until a merge writes them.
      name: '0012_route_hour_percentiles',
      async up(db) {
        await run(db, [`ALTER TABLE ${TABLES.rollupRouteHour} ADD COLUMN latency_percentiles ${dialect.types.blob}`])
      },
      async down(db) {
        await run(db, [`ALTER TABLE ${TABLES.rollupRouteHour} DROP COLUMN latency_percentiles`])
      },
    },
  ]
}
