// @apimeter/core/sql: what storage adapter authors need — the storage interface's building blocks, the shared SQL
// layer (schema, migrations, dialect objects, rollups) and the helpers the shipped adapters use. Application code
// needs none of it: see '@apimeter/core'. Every export is listed by name.

// Calls as storage sees them
export { assertCallRecords, checkCallRecord, isValidated, markValidated } from '../call/check.js'
export { CALL_FIELDS, CALL_RECORD_FIELDS, type CallField, type FieldKind, type FieldSpec } from '../call/fields.js'
export { nanosToUsd, usdToNanos } from '../call/types.js'
export { type PackedCalls, type PackedColumn, packCalls, unpackCalls } from '../call/packed.js'
export { compileFunction } from '../call/compile.js'

// The storage interface and the aggregates it returns
export { memoryAlertStore } from '../storage/alert-store.js'
export type {
  AlertEventRecord,
  AlertEventState,
  AlertInstanceRecord,
  AlertRuleRecord,
  AlertSeverity,
  AlertState,
  AlertStore,
  AlertTransition,
  NotificationAttemptRecord,
  RateLimitObservation,
} from '../storage/alert-store.js'
export { memorySloStore, type SloRecord, type SloStore } from '../storage/slo-store.js'
export { incidentOverlaps, memoryProbeStore } from '../storage/probe-store.js'
export type {
  IncidentRecord,
  ProbeCheckRecord,
  ProbeCheckWrite,
  ProbeDefinitionRecord,
  ProbeLeaseClaim,
  ProbeStateRecord,
  ProbeStore,
} from '../storage/probe-store.js'
export { AUDIT_KINDS, type AuditQuery, type AuditRecord, type AuditRecordInput, type AuditStore, memoryAuditStore } from '../storage/audit-store.js'
export { memorySystemStore, type SystemSample, type SystemSampleQuery, type SystemStore } from '../storage/system-store.js'
export { addCall, AggregateGroups, type AggregateRow, type AggregateState, coarserResolution, emptyAggregate, mergeAggregate, SUMMARY_PERCENTILES, summaryPercentiles, toSummary } from '../storage/aggregate.js'
export { bucketValue, LatencySketch, latencyBucket, mergeEncodedSketches, RELATIVE_ACCURACY, SKETCH_SEPARATOR, ZERO_BUCKET } from '../storage/sketch.js'
export type { AggregateQuery, StorageHooks } from '../storage/adapter.js'
export { defaultErrorClass, type StorageErrorClass, type StorageErrorKind } from '../storage/error-kind.js'
export { type CallFilter, DIMENSION_FIELD, matchesFilter } from '../storage/filter.js'
export { bucketStart, nextBucket, parseDuration, resolveTime } from '../time.js'

// Errors and option validation, the way every apimeter package reports them
export { errorMessage } from '../errors.js'
export { intInRange, parseOrThrow } from '../validation.js'

// The shared SQL layer
export type { DialectDdl, PartitionUpkeep, RollupCursor, SqlDialect } from './dialect.js'
export { postgresDialect } from './dialects/postgres.js'
export { sqliteDialect } from './dialects/sqlite.js'
export { apimeterMigrations, type NamedMigration } from './migrations.js'
export { getMigrationStatus, type MigrateOptions, runMigrations } from './migrator.js'
export { aggregateCalls, bucketExpression, DIMENSION_COLUMN } from './raw-aggregate.js'
export { chooseLevel, ROLLUP_LEVELS, ROLLUP_TABLES, type RollupLevel } from './rollups/levels.js'
export { type Horizons, planQuery, type QueryPlan, type Segment } from './rollups/plan.js'
export type { RetentionMs, RetentionRun } from './rollups/retention.js'
export {
  addCallColumns,
  type ApimeterDatabase,
  CALL_COLUMN_SPECS,
  CALL_COLUMNS,
  type CallColumn,
  callColumnDefinitions,
  type CallRow,
  callToRow,
  type ColumnTypes,
  dropCallColumns,
  type SqlDialectName,
  TABLES,
  writeCallRow,
} from './schema.js'
export { createSqlStorage, type InsertedBatch, type SqlStorageConfig } from './sql-storage.js'
export { readStoredPercentiles, storedPercentiles } from './rollups/stored-percentiles.js'
export { DEFAULT_RETENTION, resolveRetention, retentionSchema, sqlStorageOptionFields, type SqlStorageOptions } from './storage-options.js'
