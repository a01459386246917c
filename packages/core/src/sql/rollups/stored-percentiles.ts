import { emptyAggregate, SUMMARY_PERCENTILES, summaryPercentiles } from '../../storage/aggregate.js'
import { LatencySketch } from '../../storage/sketch.js'

/**
 * The summary percentiles of a route-by-hour row, kept beside its sketch (`latency_percentiles`, migration 0012): an
 * hourly series by route asks for the percentiles of thousands of rows, and reading them from the sketches meant
 * reading ~460 bytes per row and a pass over each (7 ms of a 10M-call series on SQLite's worker, and ~1.5 MB of bytea
 * text on PostgreSQL); the four numbers are 40 bytes.
 *
 * The value is `requests` and then p50, p90, p95 and p99 in ms, five little-endian doubles, computed from the row as
 * it is stored (its sketch bytes, requests and extremes in µs) by the same code a query runs on a stored row, so a
 * query reading them gives what it would have read from the sketch. `requests` is what makes them checkable: a merge
 * always adds calls, so a writer that updated the row's sketch and left the percentiles as they were (a process of a
 * version before 0012 on the same database) leaves a count that no longer matches, and the reader uses the sketch.
 */

const FIELDS = 1 + SUMMARY_PERCENTILES
/** Bytes of a stored `latency_percentiles` value. */
export const STORED_PERCENTILES_BYTES = FIELDS * 8

const quantiles = new Float64Array(SUMMARY_PERCENTILES)

/**
 * The `latency_percentiles` value of a stored route-by-hour row: its requests, then its summary percentiles read from
 * its sketch bytes and extremes (µs) as a query reads them.
 *
 * @example
 * ```ts
 * const value = storedPercentiles(row.latency_sketch, row.requests, row.duration_min_us, row.duration_max_us)
 * ```
 */
export function storedPercentiles(sketch: Uint8Array, requests: number, minUs: number, maxUs: number): Buffer {
  const out = Buffer.alloc(STORED_PERCENTILES_BYTES)
  out.writeDoubleLE(requests, 0)
  // the state a query makes of the stored row (see storedState and addPackedSums)
  const state = emptyAggregate()
  state.requests = requests
  state.durationMin = minUs / 1000
  state.durationMax = maxUs / 1000
  LatencySketch.decodeInto(sketch, state.sketch)
  summaryPercentiles(state, quantiles)
  for (let i = 0; i < SUMMARY_PERCENTILES; i++) out.writeDoubleLE(quantiles[i]!, 8 * (i + 1))
  return out
}

/**
 * The percentiles a stored `latency_percentiles` value holds for a row of `requests` calls; undefined when there is
 * none, it is not one, or it was computed for another count (see the module comment): the row's sketch is read then.
 *
 * @example
 * ```ts
 * const [p50, p90, p95, p99] = readStoredPercentiles(row.latency_percentiles, Number(row.requests)) ?? []
 * ```
 */
export function readStoredPercentiles(value: unknown, requests: number): number[] | undefined {
  if (!(value instanceof Uint8Array) || value.byteLength !== STORED_PERCENTILES_BYTES) return undefined
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
  if (view.getFloat64(0, true) !== requests) return undefined
  const out: number[] = []
  for (let i = 1; i < FIELDS; i++) out.push(view.getFloat64(8 * i, true))
  return out
}
