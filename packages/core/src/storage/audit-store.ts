import { hostname } from 'node:os'

/**
 * The audit log (`apimeter_audit_log`): one row per change apimeter made or saw — alert rules added, changed or
 * removed, migrations run, rollups rebuilt, retention runs, plugins added, changed or disabled. apimeter only ever
 * appends to it (never updates or deletes a row); see docs/audit.md.
 */

/**
 * Kinds apimeter writes. A query's `kind` matches a kind exactly or as a prefix before a dot (`'plugin'` matches
 * `plugin.disabled`). Applications may add kinds of their own.
 */
export const AUDIT_KINDS = [
  'alert_rule.added',
  'alert_rule.changed',
  'alert_rule.removed',
  'probe.added',
  'probe.changed',
  'probe.removed',
  'slo.added',
  'slo.changed',
  'slo.removed',
  'migration.run',
  'rollups.rebuild',
  'retention.run',
  'plugin.added',
  'plugin.changed',
  'plugin.disabled',
  'dashboard.signin',
  'dashboard.signin_failed',
] as const

/** One row of the audit log. */
export interface AuditRecord {
  id: number
  /** When it happened, epoch ms (UTC). */
  at: number
  /** What happened (`alert_rule.changed`, `migration.run`, …). */
  kind: string
  /** What it happened to (`alert_rule:api-errors`, `plugin:slack`, `migrations`, `rollups`, `retention`). */
  subject: string
  /** Who did it: `<service>@<host>:<pid>` for a monitor, `<host>:<pid>` for a storage or the CLI. */
  instance: string
  /** The subject's state before the change (JSON), or null. */
  before: unknown
  /** …and after it. */
  after: unknown
  /** A sentence or JSON text with more detail, or null. */
  detail: string | null
}

/** A row to append (its `id` is assigned by the store). */
export type AuditRecordInput = Omit<AuditRecord, 'id'>

/**
 * What `monitor.audit.append()` takes: `at` defaults to now and `instance` to the monitor's.
 *
 * @example
 * ```ts
 * await monitor.audit.append({ kind: 'slo.changed', subject: 'slo:checkout', before: old, after: next })
 * ```
 */
export interface AuditEntry {
  kind: string
  subject: string
  before?: unknown
  after?: unknown
  detail?: string | null
  at?: number
  instance?: string
}

/** A query of the audit log (times in epoch ms; `from` inclusive, `to` exclusive). */
export interface AuditQuery {
  from?: number
  to?: number
  /** One kind, or several; each matches exactly or as a prefix before a dot. */
  kind?: string | readonly string[]
  subject?: string
  /** Most rows returned (1 … 100,000). @default 1000 */
  limit?: number
  /** `asc` (oldest first, the default) or `desc` (newest first; with `limit`, the latest rows). */
  order?: 'asc' | 'desc'
}

/** What a storage offers for the audit log (memory, SQLite and PostgreSQL storages have it as `storage.audit`). */
export interface AuditStore {
  /** Appends rows. */
  append(rows: readonly AuditRecordInput[]): Promise<void>
  /** Rows matching the query, ordered by time then id. */
  list(query: AuditQuery): Promise<AuditRecord[]>
}

/** The default `instance` of rows a storage or the CLI writes. */
export function processInstance(): string {
  let host = 'unknown-host'
  try {
    host = hostname()
  } catch {
    // keep the placeholder
  }
  return `${host}:${process.pid}`
}

/** Whether a row's kind matches a query's kind filter. */
export function kindMatches(kind: string, filter: AuditQuery['kind']): boolean {
  if (filter === undefined) return true
  const list = typeof filter === 'string' ? [filter] : filter
  return list.some((k) => kind === k || kind.startsWith(`${k}.`))
}

/** The row limit of a query. */
export function auditLimit(query: AuditQuery): number {
  return Math.max(1, Math.min(100_000, Math.floor(query.limit ?? 1000)))
}

/**
 * An audit store in memory: what memory storage offers, and the fallback for a custom storage without one (the log
 * then lasts as long as the process). Keeps at most `maxRows` rows (the oldest go first).
 *
 * @example
 * ```ts
 * const myStorage: StorageAdapter = { ...myAdapter, audit: memoryAuditStore() }
 * ```
 */
export function memoryAuditStore(maxRows = 100_000): AuditStore {
  let rows: AuditRecord[] = []
  let nextId = 1
  const clone = (r: AuditRecord): AuditRecord => structuredClone(r)
  return {
    async append(list) {
      for (const r of list) rows.push(clone({ ...r, id: nextId++ }))
      if (rows.length > maxRows) rows = rows.slice(rows.length - maxRows)
    },
    async list(query) {
      const from = query.from ?? -Infinity
      const to = query.to ?? Infinity
      const matched = rows.filter((r) => r.at >= from && r.at < to && kindMatches(r.kind, query.kind) && (query.subject === undefined || r.subject === query.subject))
      matched.sort((a, b) => a.at - b.at || a.id - b.id)
      if (query.order === 'desc') matched.reverse()
      return matched.slice(0, auditLimit(query)).map(clone)
    },
  }
}
