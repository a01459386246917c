import { z } from 'zod'
import { addCall } from './aggregate.js'
import { memoryAlertStore } from './alert-store.js'
import { memorySloStore } from './slo-store.js'
import { memoryProbeStore } from './probe-store.js'
import { memoryAuditStore } from './audit-store.js'
import { memorySystemStore } from './system-store.js'
import { assertCallRecords } from '../call/check.js'
import type { CallRecord } from '../call/types.js'
import { ApimeterError } from '../errors.js'
import type { AggregateQuery, StorageAdapter } from './adapter.js'
import { AggregateGroups, type AggregateRow } from './aggregate.js'
import { dimensionKey, matchesFilter } from './filter.js'
import { bucketStart } from '../time.js'
import { parseOrThrow, wholeOrInfinity } from '../validation.js'

/** Options of {@link memoryStorage}. */
export interface MemoryStorageOptions {
  /**
   * Most calls kept; when full, the oldest tenth is evicted (and counted in `evicted`). Memory storage is for
   * tests, scripts and short-lived processes: use SQLite or PostgreSQL to keep history.
   *
   * @default 100_000
   * @example
   * ```ts
   * memoryStorage({ maxCalls: 1_000_000 })   // roughly 0.5 GB of heap at most
   * ```
   */
  maxCalls?: number
}

const optionsSchema = z.strictObject({
  maxCalls: wholeOrInfinity(1, 'a whole number >= 1 (or Infinity)').optional(),
})

/** The in-memory storage, with what it adds to {@link StorageAdapter}. */
export interface MemoryStorage extends StorageAdapter {
  /** Calls currently held. */
  readonly size: number
  /** Calls evicted because `maxCalls` was reached. */
  readonly evicted: number
  /** A copy of the stored calls (for tests and debugging). */
  calls(): CallRecord[]
}

/**
 * Storage in the process's memory: the default when `createMonitor()` gets no `storage`. Not durable; bounded by
 * `maxCalls`. It answers every stats query exactly like the SQL storages (the conformance suite holds it to that).
 *
 * @example
 * ```ts
 * const monitor = createMonitor({ storage: memoryStorage({ maxCalls: 10_000 }) })
 * ```
 */
export function memoryStorage(options: MemoryStorageOptions = {}): MemoryStorage {
  const { maxCalls = 100_000 } = parseOrThrow(optionsSchema, options, 'memoryStorage.options')
  let rows: CallRecord[] = []
  let evicted = 0
  let closed = false

  const ensureOpen = (): void => {
    if (closed) throw new ApimeterError('STORAGE_CLOSED', 'memory storage was used after close()')
  }

  const alerts = memoryAlertStore(() => rows)
  const slos = memorySloStore()

  return {
    name: 'memory',
    alerts,
    slos,
    probes: memoryProbeStore(),
    audit: memoryAuditStore(),
    system: memorySystemStore(),
    capabilities: { durable: false },
    get size() {
      return rows.length
    },
    get evicted() {
      return evicted
    },
    calls() {
      return rows.slice()
    },
    async init() {
      ensureOpen()
    },
    async writeCalls(calls) {
      ensureOpen()
      assertCallRecords(calls)
      for (const call of calls) rows.push({ ...call })
      if (rows.length > maxCalls) {
        const excess = rows.length - maxCalls
        const cut = Math.min(rows.length, Math.max(excess, Math.ceil(maxCalls / 10)))
        rows = rows.slice(cut)
        evicted += cut
      }
    },
    async aggregate(query: AggregateQuery): Promise<AggregateRow[]> {
      ensureOpen()
      const groups = new AggregateGroups()
      const { filter, groupBy, interval } = query
      for (const call of rows) {
        if (!matchesFilter(call, filter)) continue
        const start = interval ? bucketStart(call.timestamp, interval) : null
        addCall(groups.get(start, groupBy.map((d) => dimensionKey(call, d))).state, call)
      }
      return groups.rows()
    },
    async close() {
      closed = true
      rows = []
    },
  }
}
