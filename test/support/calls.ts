import { type CallRecord, type MemoryStorage, type Monitor, UNMATCHED_ROUTE } from '@apimeter/core'
import { expect } from 'vitest'
import { waitFor } from './http.js'

/** `recorded(n)`: waits until the storage holds n calls (flushing the monitor), then returns them all. */
export function recordedCalls(monitor: Monitor, storage: MemoryStorage): (count: number) => Promise<CallRecord[]> {
  return async (count) => {
    await waitFor(async () => {
      await monitor.flush()
      return storage.calls().length >= count
    }, `${count} recorded calls`)
    return storage.calls()
  }
}

/** `METHOD route status` of each call, for compact assertions. */
export const summary = (calls: readonly CallRecord[]): string[] => calls.map((c) => `${c.method} ${c.route} ${c.statusCode}`)

/** Asserts that a scan left only declared routes and the unmatched route, and that it hit both kinds. */
export function expectBoundedRoutes(calls: readonly CallRecord[], declared: readonly string[], mustInclude: string): void {
  const routes = new Set(calls.map((c) => c.route))
  expect([...routes].filter((r) => !declared.includes(r) && r !== UNMATCHED_ROUTE)).toEqual([])
  expect(routes.size).toBeLessThanOrEqual(declared.length + 1)
  expect(routes.has(UNMATCHED_ROUTE)).toBe(true)
  expect(routes.has(mustInclude)).toBe(true)
}
