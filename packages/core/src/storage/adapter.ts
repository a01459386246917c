import type { AggregateRow } from './aggregate.js'
import type { AlertStore } from './alert-store.js'
import type { SloStore } from './slo-store.js'
import type { ProbeStore } from './probe-store.js'
import type { AuditStore } from './audit-store.js'
import type { SystemStore } from './system-store.js'
import type { ApimeterError } from '../errors.js'
import type { CallRecord } from '../call/types.js'
import type { PackedCalls } from '../call/packed.js'
import type { Interval } from '../time.js'
import type { StorageErrorClass } from './error-kind.js'
import type { CallFilter, Dimension } from './filter.js'

/** One aggregation request: filter, then group by dimensions and (optionally) by UTC time bucket. */
export interface AggregateQuery {
  filter: CallFilter
  groupBy: readonly Dimension[]
  interval?: Interval
  /**
   * Only the groups that rank in the first `limit` by a sum-based order (one dimension, no interval): a storage may
   * return just those — with every group tied at the boundary — instead of all groups, so a breakdown over 100,000
   * tenants builds ten. A storage may also ignore it and return every group (the stats layer orders and cuts).
   */
  top?: TopGroups
  /**
   * The caller reads each row only through `toSummary()` (stats timeseries and breakdowns): a storage may then give
   * each row its summary percentiles in `AggregateRow.percentiles` and leave its sketch empty. The SQLite storage
   * does, so that the sketches of thousands of groups need not cross from its worker thread: their percentiles are
   * read where the groups are made, by the same code. A storage may also ignore it.
   */
  summariesOnly?: boolean
}

/** Orders a storage can rank groups by from sums alone (percentiles need the sketches, so they are not here). */
export const SUM_ORDERS = ['requests', 'errors', 'errorRate', 'cost', 'cached', 'cacheHitRate', 'tokens', 'requestBytes', 'responseBytes', 'avgLatency', 'maxLatency'] as const

/** See {@link AggregateQuery.top}. */
export interface TopGroups {
  order: (typeof SUM_ORDERS)[number]
  descending: boolean
  limit: number
}

/** What a storage adapter can do; later flags default to "no" so adding one breaks no adapter. */
export interface StorageCapabilities {
  /** Data survives `close()` and a new adapter on the same location sees it. */
  durable: boolean
  /** Upper bound on concurrent `writeCalls()` the adapter wants (the monitor uses the smaller of this and its own). */
  maxWriteConcurrency?: number
}

/** What a monitor hands a storage it writes to. */
export interface StorageHooks {
  /** Reports a problem the storage handled in the background (a failed rollup run…) through the monitor. */
  report(error: ApimeterError): void
}

/**
 * The storage interface every backend implements. It is deliberately small: write a batch of calls, aggregate,
 * close. Adapters validate each batch (see `assertCallRecords`) and write it atomically: all rows or none.
 *
 * @example
 * ```ts
 * const storage: StorageAdapter = memoryStorage()
 * await storage.writeCalls([record])
 * const rows = await storage.aggregate({ filter: {}, groupBy: ['api'] })
 * ```
 */
export interface StorageAdapter {
  /** A short name for messages (`memory`, `sqlite`, `postgres`). */
  readonly name: string
  readonly capabilities: StorageCapabilities
  /** Called by each monitor that writes to this storage, so background problems reach its `error` event. */
  attach?(hooks: StorageHooks): void
  /** Connects / migrates. Called once before the first write or query; must be idempotent. */
  init?(): Promise<void>
  /** Writes one batch atomically. Rejects with `INVALID_RECORD` (nothing written) on a malformed row. */
  writeCalls(calls: readonly CallRecord[]): Promise<void>
  /**
   * Writes one batch handed over packed column by column (`@apimeter/core/sql`'s `PackedCalls`), like `writeCalls`
   * with the records `unpackCalls()` gives back. Optional: a monitor uses it, when present, for the batches its own
   * pipeline built (validated, so the adapter need not check them again) — a storage that sends batches to another
   * thread saves the record objects and their copying. Refusals follow `writeCalls`: on `INVALID_RECORD` or a
   * rejection the monitor goes on with the records, through `writeCalls`.
   * @example
   * ```ts
   * writePacked: (packed) => worker.send('writeCalls', packed)
   * ```
   */
  writePacked?(calls: PackedCalls): Promise<void>
  /** Aggregates the calls matching the filter, grouped. Groups with no calls are not returned. */
  aggregate(query: AggregateQuery): Promise<AggregateRow[]>
  /**
   * Releases connections/files. Later calls reject with `STORAGE_CLOSED`. With `timeoutMs`, finishes within about
   * that long (closing work that would take longer, such as a final rollup run, is left for the next start).
   */
  close(options?: { timeoutMs?: number }): Promise<void>
  /**
   * What a failed operation means (see `StorageErrorKind`): `transient` errors are retried, `rejected` batches are
   * split until the refused calls are isolated, `fatal` stops writing. Without it, every error but the SDK's own
   * codes and a native driver that cannot load counts as transient.
   */
  classifyError?(error: unknown): StorageErrorClass
  /**
   * Alert rules, state, events and notification attempts (memory, SQLite and PostgreSQL storages have it). Without
   * it a monitor keeps alert state in memory, for the life of the process.
   */
  readonly alerts?: AlertStore
  /**
   * Stored SLO definitions (memory, SQLite and PostgreSQL storages have it). Without it a monitor keeps them in
   * memory, and `apimeter slos status` cannot read them.
   */
  readonly slos?: SloStore
  /**
   * Probe definitions, leases, incident state, checks and incidents (memory, SQLite and PostgreSQL storages have
   * it). Without it a monitor keeps them in memory, for the life of the process.
   */
  readonly probes?: ProbeStore
  /**
   * The audit log (memory, SQLite and PostgreSQL storages have it). Without it a monitor keeps its audit rows in
   * memory, for the life of the process.
   */
  readonly audit?: AuditStore
  /**
   * Process metrics samples (memory, SQLite and PostgreSQL storages have it). Without it a monitor keeps them in
   * memory, for the life of the process.
   */
  readonly system?: SystemStore
}

