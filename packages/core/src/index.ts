// Public API of @apimeter/core. Every export is listed by name.
export {
  type AggregateState,
  addCall,
  emptyAggregate,
  mergeAggregate,
  type OutcomeCounts,
  type StatsSummary,
  toSummary,
} from './stats/aggregate.js'
export { type ActiveAlert, type AlertHealth, type AlertHistoryEntry, type MonitorAlerts } from './alerts/alert-manager.js'
export { type AlertEvent, SIGNATURE_HEADER, signWebhookBody } from './alerts/notifiers.js'
export {
  ALERT_KINDS,
  type AlertKind,
  type AlertRule,
  type DurationInput,
  LATENCY_STATS,
  NO_DATA_POLICIES,
  type NotifierInput,
  type WebhookNotifier,
} from './alerts/rules.js'
export {
  type AlertEventRecord,
  type AlertEventState,
  type AlertInstanceRecord,
  type AlertRuleRecord,
  type AlertSeverity,
  type AlertState,
  type AlertStore,
  type AlertTransition,
  memoryAlertStore,
  type NotificationAttemptRecord,
  type RateLimitObservation,
} from './alerts/store.js'
export {
  assertCallRecords,
  CALL_RECORD_FIELDS,
  type CallInput,
  type CallRecord,
  checkCallRecord,
  COST_SOURCES,
  type CostSource,
  type Direction,
  DIRECTIONS,
  LIMITS,
  nanosToUsd,
  type RateLimitInfo,
  usdToNanos,
} from './call/types.js'
export { type Clock, systemClock } from './clock.js'
export { ApimeterError, type ApimeterErrorCode, errorMessage, isApimeterError } from './errors.js'
export {
  createInboundMeter,
  hashApiKey,
  type IdentityValue,
  type IgnoreOption,
  type InboundAdapterConfig,
  type InboundCall,
  type InboundMeter,
  type InboundOptions,
  joinRoute,
  templateFromMatch,
} from './inbound/meter.js'
export { memoryStorage, type MemoryStorage, type MemoryStorageOptions } from './storage/memory-storage.js'
export { type CallHandle, type CallStart, type CallUpdate } from './call/handle.js'
export { createMonitor, type Monitor, type MonitorEvents } from './monitor/monitor.js'
export { DEFAULTS, type Logger, type MonitorOptions } from './monitor/options.js'
export {
  classifyError,
  classifyStatus,
  type ErrorClassification,
  isOutcome,
  type Outcome,
  OUTCOMES,
} from './call/outcome.js'
export type { HealthError, MonitorHealth, RetryPolicy } from './monitor/pipeline.js'
export { type CacheDetector, type CacheDetectorInput, type CacheVerdict, detectCache } from './outbound/cache.js'
export { type CaptureOptions, maskBody, maskHeaders } from './outbound/capture.js'
export {
  type CostContext,
  type CostModel,
  costs,
  type PerRequestOptions,
  type PerTokenOptions,
  type PricedCall,
  type ProviderCostOptions,
  tokenCost,
} from './outbound/cost.js'
export type { FetchLike, MeteredFetch, MeteredRequestInit } from './outbound/fetch.js'
export type { HeaderSource } from './outbound/headers.js'
export type { Dispatch, DispatchHandler, DispatchOptions, Interceptor } from './outbound/interceptor.js'
export { MARKER_HEADER } from './outbound/marker.js'
export type { OutboundCallOptions } from './outbound/options.js'
export type { OutboundOptions } from './outbound/options.js'
export { ANTHROPIC_PRICES, type ModelPrice, OPENAI_PRICES, PRICES_AS_OF } from './outbound/prices.js'
export { parseRateLimit } from './outbound/rate-limit.js'
export { type ApiDefinition, type ApiMatcher, type ConfiguredRateLimit, OTHER_HOSTS } from './outbound/registry.js'
export type { Usage, UsageFormat, UsageReader } from './outbound/usage.js'
export { maskUrl, normalizePath, OVERFLOW_ROUTE, UNMATCHED_ROUTE } from './call/route.js'
export { bucketValue, LatencySketch, latencyBucket, RELATIVE_ACCURACY, ZERO_BUCKET } from './stats/sketch.js'
export {
  BREAKDOWN_ORDERS,
  type BreakdownOrder,
  type BreakdownQuery,
  type BreakdownRow,
  createStats,
  type CreateStatsOptions,
  NO_VALUE_KEY,
  type Stats,
  type StatsFilter,
  type TimeseriesPoint,
  type TimeseriesQuery,
} from './stats/stats.js'
export { type AggregateQuery, type StorageAdapter, type StorageCapabilities, type StorageHooks } from './storage/adapter.js'
export { type AggregateRow, AggregateGroups, coarserResolution, type Resolution } from './stats/aggregate.js'
export { type CallFilter, type Dimension, DIMENSION_FIELD, DIMENSIONS, matchesFilter } from './storage/filter.js'
export { bucketStart, type Interval, INTERVALS, nextBucket, parseDuration, type TimeInput } from './time.js'
export { VERSION } from './version.js'
export { apimeterMigrations, type NamedMigration } from './sql/migrations.js'
export {
  getMigrationStatus,
  type MigrateOptions,
  type MigrationReport,
  type MigrationState,
  type MigrationStatus,
  type MigrationStep,
  type MigrationTarget,
  runMigrations,
} from './sql/migrator.js'
export { type ApimeterDatabase, CALL_COLUMNS, type CallRow, type SqlDialectName, TABLES } from './sql/schema.js'
export { aggregateCalls, bucketExpression, callToRow, DIMENSION_COLUMN, writeCallRow } from './sql/raw-aggregate.js'
export { DEFAULT_RETENTION, resolveRetention, retentionSchema, sqlStorageOptionFields, type RetentionOptions, type SqlStorageOptions } from './sql/storage-options.js'
export { type Horizons, planQuery, type QueryPlan, type Segment } from './sql/rollups/plan.js'
export { chooseLevel, ROLLUP_LEVELS, ROLLUP_TABLES, type RetentionMs, type RollupLevel } from './sql/rollups/rollups.js'
export {
  createSqlStorage,
  type MaintenanceReport,
  type MaintenanceSchedule,
  type SqlStorage,
  type SqlStorageConfig,
} from './sql/sql-storage.js'
export { parseOrThrow } from './validation.js'
