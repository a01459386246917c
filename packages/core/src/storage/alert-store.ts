import type { CallRecord } from '../call/types.js'
import { type CallFilter, type Dimension, dimensionKey, matchesFilter } from './filter.js'

/** The state of an alert instance: Prometheus' inactive → pending (`for`) → firing. */
export type AlertState = 'inactive' | 'pending' | 'firing'
/** `warning`: past the rule's `warn` fraction of its threshold; `critical`: past the threshold itself. */
export type AlertSeverity = 'warning' | 'critical'
/** What a stored event records: a transition to pending or firing (or a repeat), or a resolve. */
export type AlertEventState = 'pending' | 'firing' | 'resolved'

/** One alert instance (a rule, or one group of a grouped rule) as stored in `apimeter_alert_state`. */
export interface AlertInstanceRecord {
  rule: string
  /** `''` for an ungrouped rule. */
  group: string
  state: AlertState
  severity: AlertSeverity | null
  value: number | null
  pendingSince: number | null
  firingSince: number | null
  /** Last evaluation at which the condition held (epoch ms). */
  activeAt: number | null
  lastEvaluatedAt: number | null
  lastNotifiedAt: number | null
  resolvedAt: number | null
  /** Compare-and-set counter: 0 means "no row yet". */
  version: number
}

/** One transition as stored in `apimeter_alert_events`. */
export interface AlertEventRecord {
  id: number
  rule: string
  group: string
  state: AlertEventState
  severity: AlertSeverity | null
  value: number | null
  threshold: number | null
  repeated: boolean
  at: number
}

/** One notification attempt as stored in `apimeter_alert_notifications`. */
export interface NotificationAttemptRecord {
  eventId: number
  /** `webhook:https://…` (without secrets), `log` or `callback`. */
  notifier: string
  attempt: number
  status: 'sent' | 'failed'
  httpStatus: number | null
  error: string | null
  at: number
}

/** A rule as stored in `apimeter_alert_rules`. */
export interface AlertRuleRecord {
  name: string
  kind: string
  /** JSON text of the rule, secrets masked. */
  definition: string
  enabled: boolean
}

/** The latest rate-limit headers seen for one group and API (and scope) in a time range. */
export interface RateLimitObservation {
  /** Group keys, in `groupBy` order. */
  keys: (string | null)[]
  api: string | null
  scope: string | null
  limit: number
  remaining: number
  resetMs: number | null
  timestamp: number
}

/** A compare-and-set write of one instance, with the event it causes (written in the same transaction). */
export interface AlertTransition {
  /** The version read; 0 when no row existed (the row is then inserted unless another writer got there first). */
  expectedVersion: number
  next: Omit<AlertInstanceRecord, 'version'>
  event?: Omit<AlertEventRecord, 'id'>
}

/**
 * What alerting needs from a storage: rules, instance state with compare-and-set writes, events, notification
 * attempts, and the latest rate-limit headers of recorded calls. Storages offer it as `storage.alerts`; memory,
 * SQLite and PostgreSQL storages do. Every method may reject (the evaluator reports it and carries on).
 */
export interface AlertStore {
  /** Inserts or updates rule definitions. */
  syncRules(rules: readonly AlertRuleRecord[], now: number): Promise<void>
  /** Every stored rule, by name (read before a sync, to audit what changed). Optional for custom stores. */
  rules?(): Promise<AlertRuleRecord[]>
  /** Every stored instance of a rule. */
  instances(rule: string): Promise<AlertInstanceRecord[]>
  /**
   * Writes `next` if the stored version is still `expectedVersion` (or, for 0, no row exists), bumping the version,
   * and inserts the event in the same transaction. `applied` is false when another writer changed the row first.
   */
  transition(write: AlertTransition): Promise<{ applied: boolean; eventId: number | null }>
  /** Stores one notification attempt. */
  recordAttempt(attempt: NotificationAttemptRecord): Promise<void>
  /** Events with `from <= at < to`, oldest first. */
  events(range: { from?: number; to?: number }): Promise<AlertEventRecord[]>
  /** Notification attempts (of one event, or all), oldest first. */
  attempts(eventId?: number): Promise<NotificationAttemptRecord[]>
  /** Per group (and API and scope): the latest call in the filter carrying rate-limit limit and remaining. */
  latestRateLimits(filter: CallFilter, groupBy: readonly Dimension[]): Promise<RateLimitObservation[]>
}

/** The reference "latest rate-limit headers" over a list of calls (memory storage; the SQL version must match). */
export function latestRateLimitsOf(calls: Iterable<CallRecord>, filter: CallFilter, groupBy: readonly Dimension[]): RateLimitObservation[] {
  const latest = new Map<string, CallRecord>()
  const keysOf = new Map<string, (string | null)[]>()
  for (const call of calls) {
    if (call.rateLimitLimit === null || call.rateLimitRemaining === null || !matchesFilter(call, filter)) continue
    const keys = groupBy.map((d) => dimensionKey(call, d))
    const id = JSON.stringify([keys, call.api, call.rateLimitScope])
    const seen = latest.get(id)
    if (seen === undefined || call.timestamp >= seen.timestamp) {
      latest.set(id, call)
      keysOf.set(id, keys)
    }
  }
  return [...latest].map(([id, c]) => ({
    keys: keysOf.get(id)!,
    api: c.api,
    scope: c.rateLimitScope,
    limit: c.rateLimitLimit!,
    remaining: c.rateLimitRemaining!,
    resetMs: c.rateLimitResetMs,
    timestamp: c.timestamp,
  }))
}

/**
 * An alert store in memory: what memory storage offers, and the fallback for a custom storage without one (state
 * then lasts as long as the process). `calls` gives the stored calls for rate-limit headers.
 *
 * @example
 * ```ts
 * const myStorage: StorageAdapter = { ...myAdapter, alerts: memoryAlertStore() }
 * ```
 */
export function memoryAlertStore(calls: () => Iterable<CallRecord> = () => []): AlertStore {
  const rules = new Map<string, AlertRuleRecord & { createdAt: number; updatedAt: number }>()
  const states = new Map<string, AlertInstanceRecord>()
  const events: AlertEventRecord[] = []
  const attempts: NotificationAttemptRecord[] = []
  const key = (rule: string, group: string): string => JSON.stringify([rule, group])
  return {
    async syncRules(list, now) {
      for (const r of list) rules.set(r.name, { ...r, createdAt: rules.get(r.name)?.createdAt ?? now, updatedAt: now })
    },
    async rules() {
      return [...rules.values()].map(({ name, kind, definition, enabled }) => ({ name, kind, definition, enabled })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    },
    async instances(rule) {
      return [...states.values()].filter((s) => s.rule === rule).map((s) => ({ ...s }))
    },
    async transition({ expectedVersion, next, event }) {
      const k = key(next.rule, next.group)
      const current = states.get(k)?.version ?? 0
      if (current !== expectedVersion) return { applied: false, eventId: null }
      states.set(k, { ...next, version: current + 1 })
      if (!event) return { applied: true, eventId: null }
      const id = events.length + 1
      events.push({ ...event, id })
      return { applied: true, eventId: id }
    },
    async recordAttempt(attempt) {
      attempts.push({ ...attempt })
    },
    async events({ from = -Infinity, to = Infinity }) {
      return events.filter((e) => e.at >= from && e.at < to).map((e) => ({ ...e }))
    },
    async attempts(eventId) {
      return attempts.filter((a) => eventId === undefined || a.eventId === eventId).map((a) => ({ ...a }))
    },
    async latestRateLimits(filter, groupBy) {
      return latestRateLimitsOf(calls(), filter, groupBy)
    },
  }
}
