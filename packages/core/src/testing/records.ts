import { randomBytes } from 'node:crypto'
import type { CallInput, CallRecord } from '../call/types.js'
import { normalizeCall } from '../call/normalize.js'
import { RouteGuard } from '../call/route.js'

/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the same sequence on every machine, so
 * randomised tests are reproducible.
 *
 * @example
 * ```ts
 * const random = seededRandom(42)
 * random() // 0.6011037519201636, always
 * ```
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Builds {@link CallRecord}s from {@link CallInput}s the way a monitor would (validated, normalised, unique ids),
 * for writing straight into a storage adapter in tests.
 *
 * @example
 * ```ts
 * const make = recordFactory({ service: 'test' })
 * await storage.writeCalls([make({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 })])
 * ```
 */
export function recordFactory(options: { service?: string; now?: () => number } = {}): (input: CallInput) => CallRecord {
  const prefix = randomBytes(6).toString('hex')
  let sequence = 0
  const ctx = {
    service: options.service ?? 'test',
    now: options.now ?? (() => Date.now()),
    nextId: () => `${prefix}${(sequence++).toString(36)}`,
    routeGuard: new RouteGuard(1_000_000, 1_000_000),
  }
  return (input) => normalizeCall(input, ctx)
}

/** Exact nearest-rank quantile of a list of numbers (the reference the sketch is held to). */
export function exactQuantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)))
  return sorted[rank - 1]!
}
