import { type AggregateState, emptyAggregate } from './aggregate.js'
import type { AlertStore } from './alerts/store.js'
import type { ApimeterError } from './errors.js'
import type { CallRecord, Direction } from './call.js'
import type { Outcome } from './outcome.js'
import type { Interval } from './time.js'

/** What calls can be grouped by in `breakdown({ by })` and `timeseries({ groupBy })`. */
export const DIMENSIONS = [
  'service',
  'direction',
  'api',
  'route',
  'method',
  'status',
  'outcome',
  'tenant',
  'user',
  'model',
] as const
/** One of {@link DIMENSIONS}. */
export type Dimension = (typeof DIMENSIONS)[number]

/** The {@link CallRecord} field behind each dimension. */
export const DIMENSION_FIELD = {
  service: 'service',
  direction: 'direction',
  api: 'api',
  route: 'route',
  method: 'method',
  status: 'statusCode',
  outcome: 'outcome',
  tenant: 'tenantId',
  user: 'userId',
  model: 'model',
} as const satisfies Record<Dimension, keyof CallRecord>

/**
 * A resolved filter, as storage adapters receive it: absolute times and value lists. Within a field values are
 * OR-ed (`IN`), `null` in a list matches calls where the field is null; fields are AND-ed. `from` is inclusive and
 * `to` exclusive, both epoch ms.
 */
export interface CallFilter {
  from?: number
  to?: number
  service?: readonly string[]
  direction?: readonly Direction[]
  api?: readonly (string | null)[]
  route?: readonly string[]
  method?: readonly string[]
  tenantId?: readonly (string | null)[]
  userId?: readonly (string | null)[]
  outcome?: readonly Outcome[]
  model?: readonly (string | null)[]
  statusCode?: readonly (number | null)[]
}

/** The filterable fields of {@link CallFilter} other than the time range. */
export const FILTER_FIELDS = [
  'service',
  'direction',
  'api',
  'route',
  'method',
  'tenantId',
  'userId',
  'outcome',
  'model',
  'statusCode',
] as const satisfies readonly (keyof CallFilter)[]

/** One aggregation request: filter, then group by dimensions and (optionally) by UTC time bucket. */
export interface AggregateQuery {
  filter: CallFilter
  groupBy: readonly Dimension[]
  interval?: Interval
}

/**
 * How precisely a result honours the requested time range. `raw`: exactly (to the millisecond). `hour` / `day` /
 * `month`: retention deleted the finer data at an edge of the range, so that edge was widened to the enclosing
 * bucket of that size. `partial`: the query needs raw calls (a filter or grouping no rollup keeps, such as a user)
 * over a range where retention deleted them, so those calls are missing.
 */
export type Resolution = 'raw' | 'hour' | 'day' | 'month' | 'partial'
const RESOLUTION_ORDER: Record<Resolution, number> = { raw: 0, hour: 1, day: 2, month: 3, partial: 4 }

/** The coarser of two resolutions. */
export function coarserResolution(a: Resolution, b: Resolution): Resolution {
  return RESOLUTION_ORDER[a] >= RESOLUTION_ORDER[b] ? a : b
}

/** One group of an aggregation. `keys` follow `groupBy` order; a status key is its code as a string. */
export interface AggregateRow {
  /** Bucket start (epoch ms) when the query had an interval, else null. */
  start: number | null
  keys: (string | null)[]
  state: AggregateState
  /** How precisely this group honours the time range; absent means `raw`. */
  resolution?: Resolution
}

/** Collects aggregate rows by (bucket start, keys), creating each group on first use. */
export class AggregateGroups {
  private readonly groups = new Map<string, AggregateRow>()

  /** The group of a bucket and key list (created empty when new). */
  get(start: number | null, keys: (string | null)[]): AggregateRow {
    let id = start === null ? '' : String(start)
    for (const k of keys) id += k === null ? '\u0001\u0000' : `\u0001${k}`
    let row = this.groups.get(id)
    if (row === undefined) {
      row = { start, keys, state: emptyAggregate() }
      this.groups.set(id, row)
    }
    return row
  }

  /** Every group collected. */
  rows(): AggregateRow[] {
    return [...this.groups.values()]
  }
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
  /** Aggregates the calls matching the filter, grouped. Groups with no calls are not returned. */
  aggregate(query: AggregateQuery): Promise<AggregateRow[]>
  /** Releases connections/files. Later calls reject with `STORAGE_CLOSED`. */
  close(): Promise<void>
  /**
   * Alert rules, state, events and notification attempts (memory, SQLite and PostgreSQL storages have it). Without
   * it a monitor keeps alert state in memory, for the life of the process.
   */
  readonly alerts?: AlertStore
}

/** Whether a call passes a filter; the reference semantics every adapter must match. */
export function matchesFilter(call: CallRecord, filter: CallFilter): boolean {
  if (filter.from !== undefined && call.timestamp < filter.from) return false
  if (filter.to !== undefined && call.timestamp >= filter.to) return false
  for (const field of FILTER_FIELDS) {
    const allowed = filter[field] as readonly unknown[] | undefined
    if (allowed !== undefined && !allowed.includes(call[field])) return false
  }
  return true
}

/** The key of a call for one dimension, as a string or null. */
export function dimensionKey(call: CallRecord, dimension: Dimension): string | null {
  const value = call[DIMENSION_FIELD[dimension]]
  return value === null ? null : String(value)
}
