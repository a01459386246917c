import type { CallRecord } from '../call/types.js'
import type { Direction } from '../call/fields.js'
import type { Outcome } from '../call/outcome.js'

/**
 * Filters and dimensions: which calls a query selects and what it groups them by. The reference semantics every
 * storage adapter must match are the two functions at the end.
 */

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
