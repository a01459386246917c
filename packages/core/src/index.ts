// Public API of @apimeter/core for application code. Every export is listed by name; what storage adapters need is
// in '@apimeter/core/sql', what framework adapters need in '@apimeter/core/inbound', test helpers in
// '@apimeter/core/testing'. docs/api-report.md lists every entry point's exports (a test keeps it current).

// Monitor and recording
export { type CallHandle, type CallStart, type CallUpdate } from './call/handle.js'
export { COST_SOURCES, type CostSource, type Direction, DIRECTIONS, LIMITS } from './call/fields.js'
export { isOutcome, type Outcome, OUTCOMES } from './call/outcome.js'
export { OVERFLOW_ROUTE, UNMATCHED_ROUTE } from './call/route.js'
export { type CallInput, type CallRecord, type RateLimitInfo } from './call/types.js'
export { type Clock, systemClock } from './clock.js'
export { ApimeterError, type ApimeterErrorCode, type HealthError, isApimeterError } from './errors.js'
export { createMonitor, type Monitor, type MonitorEvents } from './monitor/monitor.js'
export { DEFAULTS, type Logger, type MonitorOptions } from './monitor/options.js'
export type { MonitorHealth, RetryPolicy } from './monitor/pipeline.js'
export { VERSION } from './version.js'

// Serving apimeter over HTTP (the metrics handler, the dashboard): auth, and requests that are not metered
export { type AuthCheck, type AuthOption, authOptionSchema, createAuthCheck, sendUnauthorized, tokenMatcher } from './http/auth.js'
export { isMeteringSkipped, skipMetering } from './http/unmetered.js'
export { createMetricsHandler, type MetricsHandlerOptions, type NodeRequestHandler } from './http/metrics-handler.js'

// Export to Prometheus and OpenTelemetry (docs/export.md)
export type { MonitorMetrics } from './metrics/monitor-metrics.js'
export { METRICS_DEFAULTS, type MetricsOptions } from './metrics/options.js'
export { OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, type PrometheusExposition } from './metrics/prometheus.js'
export {
  type HistogramValue,
  HTTP_DURATION_BUCKETS,
  type MetricFamily,
  type MetricKind,
  type MetricPoint,
  type MetricsSnapshot,
  TOKEN_USAGE_BUCKETS,
} from './metrics/snapshot.js'

// Stats
export { type OutcomeCounts, type Resolution, type StatsSummary } from './storage/aggregate.js'
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
  type SystemQuery,
  type TimeseriesPoint,
  type TimeseriesQuery,
} from './stats/stats.js'
export { type Dimension, DIMENSIONS } from './storage/filter.js'
export { type Interval, INTERVALS, type TimeInput } from './time.js'

// Storage: the in-memory default, the interface a storage option takes, and the types SQL storages return
export type { StorageAdapter, StorageCapabilities } from './storage/adapter.js'
export { memoryStorage, type MemoryStorage, type MemoryStorageOptions } from './storage/memory-storage.js'
export type { MigrationReport, MigrationState, MigrationStatus, MigrationStep, MigrationTarget } from './sql/migrator.js'
export type { MaintenanceReport, MaintenanceSchedule, SqlStorage } from './sql/sql-storage.js'
export type { RetentionOptions } from './sql/storage-options.js'

// Outbound
export type { CacheDetector, CacheDetectorInput, CacheVerdict } from './outbound/cache.js'
export type { CaptureOptions } from './outbound/capture.js'
export {
  type CostContext,
  type CostModel,
  costs,
  type PerRequestOptions,
  type PerTokenOptions,
  type PricedCall,
  type ProviderCostOptions,
} from './outbound/cost.js'
export type { FetchLike, MeteredFetch, MeteredRequestInit } from './outbound/fetch.js'
export type { HeaderSource } from './outbound/headers.js'
export type { Dispatch, DispatchHandler, DispatchOptions, Interceptor } from './outbound/interceptor.js'
export { MARKER_HEADER } from './outbound/marker.js'
export type { OutboundCallOptions, OutboundOptions } from './outbound/options.js'
export { ANTHROPIC_PRICES, type ModelPrice, OPENAI_PRICES, PRICES_AS_OF } from './outbound/prices.js'
export { type ApiDefinition, type ApiMatcher, type ConfiguredRateLimit, OTHER_HOSTS } from './outbound/registry.js'
export type { Usage, UsageFormat, UsageReader } from './outbound/usage.js'

// Plugins (docs/plugins.md) and the two shipped examples
export {
  type ApimeterPlugin,
  type CallHook,
  type CallHookResult,
  definePlugin,
  type PluginCall,
  type PluginContext,
  type PluginDefinition,
  type PluginFactory,
  type PluginNotifier,
  type RedactedField,
} from './plugins/plugin.js'
export { healthScore, type PluginHealth, type PluginState } from './plugins/host.js'
export { luhnValid, maskPii, PII_DEFAULT_FIELDS, piiRedactor } from './plugins/pii-redactor.js'
export { slackMessage, slackNotifier } from './plugins/slack-notifier.js'

// Audit log (docs/audit.md) and process metrics (docs/system-metrics.md)
export type { AuditListQuery, MonitorAudit } from './monitor/audit.js'
export { AUDIT_KINDS, type AuditEntry, type AuditRecord } from './storage/audit-store.js'
export type { SystemOptions } from './monitor/system-sampler.js'
export type { GaugeStats, SystemBucket, SystemSample } from './storage/system-store.js'

// Alerts
export type { ActiveAlert, AlertHealth, AlertHistoryEntry, CostBudget, MonitorAlerts } from './alerts/alert-manager.js'
export { readStored, type StoredExcept, type StoredProblem, type StoredReader } from './monitor/stored.js'
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

// SLOs and health
export type { MonitorSlos } from './slos/manager.js'
export {
  type AvailabilityIndicator,
  BURN_ALERTS,
  BURN_WINDOWS,
  type BurnWindow,
  DEFAULT_BAD_OUTCOMES,
  type LatencyIndicator,
  type SloDefinition,
  type SloFilter,
  type SloIndicator,
  type SloWindow,
} from './slos/slo.js'
export { fromOpenSLO, OPENSLO_SOURCE, toOpenSLO } from './slos/openslo.js'
export type { LatencyBound, SloAlertLevel, SloStatus } from './slos/status.js'
export {
  DEFAULT_HEALTH_THRESHOLDS,
  HEALTH_DIMENSIONS,
  type HealthBounds,
  type HealthQuery,
  type HealthReason,
  type HealthRow,
  type HealthStatus,
  type HealthThresholds,
} from './stats/health.js'
// Probes, incidents and uptime
export type { MaintenanceWindow } from './probes/maintenance.js'
export type { HeartbeatProbe, HttpProbe, ProbeDefinition, ProbeExpectations } from './probes/options.js'
export type {
  Incident,
  IncidentEvent,
  MonitorProbes,
  ProbeCheck,
  ProbeHealth,
  ProbeRange,
  ProbeRoundResult,
  ProbeStatus,
  ProbeUptime,
} from './probes/probe-manager.js'
export { type ProbeCause, PROBE_CAUSES } from './storage/probe-store.js'
