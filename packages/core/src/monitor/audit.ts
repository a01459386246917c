import { z } from 'zod'
import { ApimeterError, errorMessage } from '../errors.js'
import type { AuditEntry, AuditRecord, AuditStore } from '../storage/audit-store.js'
import { queryTime, type TimeInput } from '../time.js'
import { intInRange, parseOrThrow } from '../validation.js'

/**
 * A query of `monitor.audit.list()`.
 *
 * @example
 * ```ts
 * await monitor.audit.list({ from: '-7d', kind: ['alert_rule', 'plugin.disabled'] })
 * ```
 */
export interface AuditListQuery {
  /** Inclusive; a Date, epoch ms, an ISO string or a relative time such as `'-24h'`. */
  from?: TimeInput
  /** Exclusive. */
  to?: TimeInput
  /** One kind or several; `'plugin'` matches `plugin.added`, `plugin.disabled`, … */
  kind?: string | readonly string[]
  /** Only rows about this subject (`alert_rule:api-errors`, `plugin:slack`). */
  subject?: string
  /** Most rows returned (1 … 100,000). @default 1000 */
  limit?: number
  /** `asc` (oldest first, the default) or `desc` (newest first). */
  order?: 'asc' | 'desc'
}

/** `monitor.audit`: the audit log of the monitor's storage. */
export interface MonitorAudit {
  /**
   * Rows of the audit log, oldest first (every instance's, as the storage holds them).
   * @example
   * ```ts
   * for (const row of await monitor.audit.list({ from: '-24h' })) console.log(row.at, row.kind, row.subject, row.detail)
   * ```
   */
  list(query?: AuditListQuery): Promise<AuditRecord[]>
  /**
   * Appends a row (`at` defaults to now, `instance` to this monitor's). apimeter's own components record their
   * changes with it; an application may record its own. Rows are never updated or deleted by apimeter.
   * @example
   * ```ts
   * await monitor.audit.append({ kind: 'slo.changed', subject: 'slo:checkout', before, after })
   * ```
   */
  append(entry: AuditEntry): Promise<void>
}

const timeInput = z.union([z.date(), z.number(), z.string()], { error: `a Date, epoch milliseconds, an ISO-8601 string or a relative time such as '-24h'` })
const kind = z.string({ error: 'a non-empty string' }).min(1, { error: 'a non-empty string' })
const listSchema = z.strictObject({
  from: timeInput.optional(),
  to: timeInput.optional(),
  kind: z.union([kind, z.array(kind)], { error: 'a kind or a list of kinds' }).optional(),
  subject: kind.optional(),
  limit: intInRange(1, 100_000, 'a whole number from 1 to 100,000').optional(),
  order: z.enum(['asc', 'desc'], { error: `'asc' or 'desc'` }).optional(),
})
const entrySchema = z.strictObject({
  kind: z.string({ error: 'a non-empty string of at most 100 characters' }).min(1).max(100),
  subject: z.string({ error: 'a non-empty string of at most 500 characters' }).min(1).max(500),
  before: z.unknown().optional(),
  after: z.unknown().optional(),
  detail: z.string({ error: 'a string or null' }).max(4000).nullable().optional(),
  at: z.number({ error: 'epoch milliseconds' }).int().min(0).optional(),
  instance: z.string({ error: 'a non-empty string' }).min(1).max(500).optional(),
})

/** The monitor's side of the audit log: appends in the background (tracked, so close() waits), validates queries. */
export class AuditLog implements MonitorAudit {
  private readonly writes = new Set<Promise<void>>()

  constructor(
    private readonly store: AuditStore,
    private readonly instance: string,
    private readonly now: () => number,
    private readonly report: (error: ApimeterError) => void,
  ) {}

  async list(query: AuditListQuery = {}): Promise<AuditRecord[]> {
    const parsed = parseOrThrow(listSchema, query ?? {}, 'audit.list(query)', 'INVALID_QUERY')
    const now = this.now()
    const from = queryTime(parsed.from, now, 'audit.list(query).from')
    const to = queryTime(parsed.to, now, 'audit.list(query).to')
    return this.store.list({ from, to, kind: parsed.kind, subject: parsed.subject, limit: parsed.limit, order: parsed.order })
  }

  append(entry: AuditEntry): Promise<void> {
    const e = parseOrThrow(entrySchema, entry, 'audit.append(entry)')
    return this.store.append([{ at: e.at ?? this.now(), kind: e.kind, subject: e.subject, instance: e.instance ?? this.instance, before: e.before ?? null, after: e.after ?? null, detail: e.detail ?? null }])
  }

  /** Appends in the background; a failure is reported, never thrown. */
  record(entry: AuditEntry): void {
    let write: Promise<void>
    try {
      write = this.append(entry)
    } catch (error) {
      write = Promise.reject(error instanceof Error ? error : new Error(errorMessage(error)))
    }
    const tracked = write
      .catch((error: unknown) => this.report(new ApimeterError('WRITE_FAILED', `an audit row (${entry.kind} ${entry.subject}) could not be stored: ${errorMessage(error)}`, { cause: error })))
      .finally(() => this.writes.delete(tracked))
    this.writes.add(tracked)
  }

  /** The newest row of a subject among the given kinds. */
  async latest(subject: string, kinds: readonly string[]): Promise<AuditRecord | undefined> {
    return (await this.store.list({ subject, kind: kinds, order: 'desc', limit: 1 }))[0]
  }

  /** Resolves when the background appends are done. */
  async drain(): Promise<void> {
    while (this.writes.size > 0) await Promise.allSettled([...this.writes])
  }
}
