import { CALL_FIELDS, CALL_RECORD_FIELDS, type CallField, type CallFields, type FieldSpec } from '../call/fields.js'
import { compileFunction } from '../call/compile.js'
import type { CallRecord } from '../call/types.js'
import { latencyBucket } from '../storage/sketch.js'

/**
 * Table names of the documented schema (docs/schema.md), and the columns of `apimeter_calls`, derived from the field
 * table (`call/fields.ts`): names, SQLite and PostgreSQL types, DDL, row type, and the function that turns a record
 * into column values. Every table is prefixed `apimeter_` so it can live in the application's own database without
 * colliding with its tables (or with its own kysely migration tables).
 */

/** The SQL dialects the shared SQL layer speaks. */
export type SqlDialectName = 'sqlite' | 'postgres'

/** Names of apimeter's tables. */
export const TABLES = {
  calls: 'apimeter_calls',
  rollup5m: 'apimeter_rollups_5m',
  rollupHour: 'apimeter_rollups_hour',
  rollupDay: 'apimeter_rollups_day',
  rollupMonth: 'apimeter_rollups_month',
  rollupRouteHour: 'apimeter_rollups_route_hour',
  rollupRoute5m: 'apimeter_rollups_route_5m',
  rollupState: 'apimeter_rollup_state',
  apiProviders: 'apimeter_api_providers',
  apiEndpoints: 'apimeter_api_endpoints',
  alertRules: 'apimeter_alert_rules',
  alertState: 'apimeter_alert_state',
  alertEvents: 'apimeter_alert_events',
  alertNotifications: 'apimeter_alert_notifications',
  slos: 'apimeter_slos',
  probes: 'apimeter_probes',
  probeLeases: 'apimeter_probe_leases',
  probeState: 'apimeter_probe_state',
  probeChecks: 'apimeter_probe_checks',
  incidents: 'apimeter_incidents',
  auditLog: 'apimeter_audit_log',
  systemSamples: 'apimeter_system_samples',
  migrations: 'apimeter_migrations',
  migrationLock: 'apimeter_migrations_lock',
} as const

/** The column types a dialect gives each storage class. */
export interface ColumnTypes {
  /** Integers up to 2^63 (times, durations, counts, money). */
  bigint: string
  /** 32-bit integers. */
  integer: string
  /** Booleans as 0/1. */
  smallint: string
  double: string
  text: string
  json: string
  blob: string
}

/** One column of `apimeter_calls`, as the field table defines it. */
export interface CallColumn {
  name: string
  /** The field it stores; null for a computed column. */
  field: CallField | null
  storage: keyof ColumnTypes
  nullable: boolean
  /** SQL text of the column default. */
  default?: string
  check?: string
  /** The migration that added it. */
  since: string
  /** Element type of the column as a PostgreSQL array parameter (UNNEST inserts). */
  pgElement: 'text' | 'int8' | 'int4' | 'int2' | 'float8'
}

function storageClass(spec: FieldSpec): CallColumn['storage'] {
  switch (spec.kind) {
    case 'text':
    case 'id':
    case 'enum':
      return 'text'
    case 'json':
      return 'json'
    case 'bool':
      return 'smallint'
    case 'int':
      return 'integer'
    case 'real':
      return 'double'
    default:
      return 'bigint'
  }
}

const PG_ELEMENT: Record<CallColumn['storage'], CallColumn['pgElement']> = {
  bigint: 'int8',
  integer: 'int4',
  smallint: 'int2',
  double: 'float8',
  text: 'text',
  json: 'text',
  blob: 'text',
}

function columnOf(field: CallField): CallColumn {
  const spec = CALL_FIELDS[field] as FieldSpec
  const storage = storageClass(spec)
  const enumCheck = spec.kind === 'enum' ? `${spec.column} IN (${spec.values!.map((v) => `'${v}'`).join(', ')})` : undefined
  return {
    name: spec.column,
    field,
    storage,
    nullable: spec.nullable,
    ...(spec.default !== undefined ? { default: String(Number(spec.default)) } : {}),
    ...(spec.check ?? enumCheck ? { check: spec.check ?? enumCheck } : {}),
    since: spec.since,
    pgElement: PG_ELEMENT[storage],
  }
}

/**
 * The one column that is not a field: the index of the latency sketch bucket of the duration, computed when a row is
 * written, so SQL builds latency sketches by grouping.
 */
const LATENCY_BUCKET: CallColumn = { name: 'latency_bucket', field: null, storage: 'integer', nullable: false, since: '0001_initial', pgElement: 'int4' }

/** Every column of `apimeter_calls` written for a call, in insert order (everything but the surrogate `id`). */
export const CALL_COLUMN_SPECS: readonly CallColumn[] = CALL_RECORD_FIELDS.flatMap((field) =>
  field === 'durationMs' ? [columnOf(field), LATENCY_BUCKET] : [columnOf(field)],
)

/** The call field stored in a column of `apimeter_calls` named in `text` (a column or constraint name), if any. */
export function fieldOfColumn(text: string | undefined): string | undefined {
  if (!text) return undefined
  const column = [...CALL_COLUMN_SPECS].sort((a, b) => b.name.length - a.name.length).find((c) => text === c.name || text.includes(`_${c.name}_`) || text.endsWith(`_${c.name}`))
  return column?.field ?? undefined
}

/** Column names of `apimeter_calls` written for each call, in insert order. */
export const CALL_COLUMNS: readonly string[] = CALL_COLUMN_SPECS.map((c) => c.name)

/**
 * Column definitions (`name TYPE [NOT NULL] [DEFAULT …] [CHECK (…)]`) of the calls columns a migration adds, in a
 * dialect's types. `0001_initial` creates the table with its columns; a later migration that adds a field calls
 * {@link addCallColumns} with its own name.
 */
export function callColumnDefinitions(types: ColumnTypes, since: string, options: { checks: boolean }): string[] {
  return CALL_COLUMN_SPECS.filter((c) => c.since === since).map((c) => {
    let definition = `${c.name} ${types[c.storage]}`
    if (!c.nullable) definition += ' NOT NULL'
    if (c.default !== undefined) definition += ` DEFAULT ${c.default}`
    if (c.check && options.checks) definition += ` CHECK (${c.check})`
    return definition
  })
}

/** `ALTER TABLE … ADD COLUMN` statements for the calls columns a migration adds (see {@link callColumnDefinitions}). */
export function addCallColumns(types: ColumnTypes, since: string, options: { checks: boolean }): string[] {
  return callColumnDefinitions(types, since, options).map((definition) => `ALTER TABLE ${TABLES.calls} ADD COLUMN ${definition}`)
}

/** The `ALTER TABLE … DROP COLUMN` statements undoing {@link addCallColumns} (newest column first). */
export function dropCallColumns(since: string): string[] {
  return CALL_COLUMN_SPECS.filter((c) => c.since === since)
    .reverse()
    .map((c) => `ALTER TABLE ${TABLES.calls} DROP COLUMN ${c.name}`)
}

type RowValue<S> = S extends { kind: 'text' | 'id' | 'enum' | 'json' } ? string : S extends { kind: 'bool' | 'int' } ? number : number | string
type RowNullable<S, T> = S extends { nullable: true } ? T | null : T

/** One row of `apimeter_calls`. Numbers may arrive as strings from PostgreSQL BIGINT columns. */
export type CallRow = { id?: number | string; latency_bucket: number } & {
  -readonly [K in CallField as CallFields[K]['column']]: RowNullable<CallFields[K], RowValue<CallFields[K]>>
}

/**
 * The kysely database type of apimeter's tables. Only `apimeter_calls` is typed precisely; the other tables are
 * reached through their own modules.
 */
export interface ApimeterDatabase {
  apimeter_calls: CallRow
}

// The SQL value of each column, as straight-line code generated once (the reason is in call/compile.ts).
function valueExpression(column: CallColumn): string {
  if (column.field === null) return `latencyBucket(call.durationMs)` // the one computed column: latency_bucket
  const spec = CALL_FIELDS[column.field] as FieldSpec
  const value = `call.${column.field}`
  if (spec.kind === 'bool') return `${value} ? 1 : 0`
  if (spec.kind === 'ms') return spec.nullable ? `${value} === null ? null : Math.round(${value} * 1000)` : `Math.round(${value} * 1000)`
  return value
}

/** The body of {@link writeCallRow}, for tests and for reading. */
export const WRITE_ROW_SOURCE = CALL_COLUMN_SPECS.map((c, k) => `out[offset + ${k}] = ${valueExpression(c)};`).join('\n')

/**
 * Writes the values of one call in {@link CALL_COLUMNS} order into `out` from `offset`: durations in integer
 * microseconds, the latency sketch bucket computed, booleans as 0/1, metadata as JSON text. Adapters fill one reused
 * parameter array for a multi-row statement this way, without a temporary array per row.
 */
export const writeCallRow = compileFunction<(call: CallRecord, out: unknown[], offset: number) => void>('writeCallRow', 'call, out, offset', WRITE_ROW_SOURCE, { latencyBucket })

/** The values of one call in {@link CALL_COLUMNS} order (see {@link writeCallRow}). */
export function callToRow(call: CallRecord): unknown[] {
  const row = new Array<unknown>(CALL_COLUMNS.length)
  writeCallRow(call, row, 0)
  return row
}
