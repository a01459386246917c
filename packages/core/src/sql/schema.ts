/**
 * Table names and row types of the documented schema (docs/schema.md). Every table is prefixed `apimeter_` so it
 * can live in the application's own database without colliding with its tables (or with its own kysely migration
 * tables).
 */

/** The SQL dialects the shared SQL layer speaks. */
export type SqlDialectName = 'sqlite' | 'postgres'

/** Names of apimeter's tables. */
export const TABLES = {
  calls: 'apimeter_calls',
  rollupHour: 'apimeter_rollups_hour',
  rollupDay: 'apimeter_rollups_day',
  rollupMonth: 'apimeter_rollups_month',
  rollupState: 'apimeter_rollup_state',
  apiProviders: 'apimeter_api_providers',
  apiEndpoints: 'apimeter_api_endpoints',
  alertRules: 'apimeter_alert_rules',
  alertState: 'apimeter_alert_state',
  alertEvents: 'apimeter_alert_events',
  alertNotifications: 'apimeter_alert_notifications',
  migrations: 'apimeter_migrations',
  migrationLock: 'apimeter_migrations_lock',
} as const

/** One row of `apimeter_calls`. Numbers may arrive as strings from PostgreSQL BIGINT columns. */
export interface CallRow {
  id?: number | string
  call_id: string
  ts: number | string
  direction: string
  service: string
  api: string | null
  method: string
  route: string
  host: string | null
  url: string | null
  status_code: number | null
  outcome: string
  duration_us: number | string
  latency_bucket: number
  ttfb_us: number | string | null
  request_bytes: number | string | null
  response_bytes: number | string | null
  cached: number
  cache_signal: string | null
  cost_nanos: number | string | null
  cost_source: string | null
  model: string | null
  input_tokens: number | string | null
  output_tokens: number | string | null
  cached_input_tokens: number | string | null
  tenant_id: string | null
  user_id: string | null
  api_key_id: string | null
  client_ip: string | null
  user_agent: string | null
  error_type: string | null
  error_message: string | null
  rate_limit_limit: number | null
  rate_limit_remaining: number | null
  rate_limit_reset_ms: number | null
  rate_limit_scope: string | null
  attempt: number
  operation_id: string | null
  metadata: string | null
}

/** Columns of `apimeter_calls` written for each call, in insert order (everything but the surrogate `id`). */
export const CALL_COLUMNS = [
  'call_id', 'ts', 'direction', 'service', 'api', 'method', 'route', 'host', 'url', 'status_code', 'outcome',
  'duration_us', 'latency_bucket', 'ttfb_us', 'request_bytes', 'response_bytes', 'cached', 'cache_signal',
  'cost_nanos', 'cost_source', 'model', 'input_tokens', 'output_tokens', 'cached_input_tokens', 'tenant_id',
  'user_id', 'api_key_id', 'client_ip', 'user_agent', 'error_type', 'error_message', 'rate_limit_limit',
  'rate_limit_remaining', 'rate_limit_reset_ms', 'rate_limit_scope', 'attempt', 'operation_id', 'metadata',
] as const satisfies readonly (keyof CallRow)[]

/**
 * The kysely database type of apimeter's tables. Only `apimeter_calls` is typed precisely; the other tables are
 * reached through their own modules.
 */
export interface ApimeterDatabase {
  apimeter_calls: CallRow
}
