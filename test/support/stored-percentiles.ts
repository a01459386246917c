import type { Stats } from '@apimeter/core'
import { readStoredPercentiles, storedPercentiles } from '@apimeter/core/sql'
import { expect } from 'vitest'

/**
 * Checks the stored percentiles of route-by-hour rows (all their columns, numbers as either database returns them): they are what the truth's summary of that hour and route gives,
 * and what `storedPercentiles` makes of the row's own sketch, count and extremes.
 */
export async function expectStoredPercentiles(rows: readonly Record<string, unknown>[], truth: Stats): Promise<void> {
  for (const r of rows) {
    const start = Number(r.bucket_start)
    const hour = await truth.summary({ from: new Date(start), to: new Date(start + 3_600_000), route: String(r.route) })
    const { p50, p90, p95, p99 } = hour.latency!
    expect(readStoredPercentiles(r.latency_percentiles, Number(r.requests))).toEqual([p50, p90, p95, p99])
    expect(r.latency_percentiles).toEqual(storedPercentiles(r.latency_sketch as Uint8Array, Number(r.requests), Number(r.duration_min_us), Number(r.duration_max_us)))
  }
}
