import { performance } from 'node:perf_hooks'

/**
 * Where apimeter reads time. Inject one in tests to make timestamps and durations deterministic.
 *
 * @example
 * ```ts
 * let t = Date.parse('2026-01-01T00:00:00Z')
 * const monitor = createMonitor({ clock: { now: () => t } })   // monotonic falls back to now()
 * t += 250
 * ```
 */
export interface Clock {
  /** Wall-clock time in epoch milliseconds: the timestamp of a call. */
  now(): number
  /**
   * A monotonic time in milliseconds (any origin), used for durations so wall-clock jumps never distort them.
   * Defaults to `performance.now()`; when a custom `now` is given without `monotonic`, `now` is used for both.
   */
  monotonic?(): number
}

/** A clock with both functions present. */
export interface ResolvedClock {
  now(): number
  monotonic(): number
}

/** The real clock: `Date.now()` and `performance.now()`. */
export const systemClock: ResolvedClock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
}

/** Fills in `monotonic` for a partial clock. */
export function resolveClock(clock: Clock | undefined): ResolvedClock {
  if (!clock) return systemClock
  const now = clock.now.bind(clock)
  const monotonic = clock.monotonic ? clock.monotonic.bind(clock) : now
  return { now, monotonic }
}

/**
 * Where a monitor from `createMonitor()` exposes its resolved clock to the inbound meters of the framework adapters,
 * which time each request with it directly. Internal.
 */
export const MONITOR_CLOCK: unique symbol = Symbol.for('apimeter.monitorClock')
