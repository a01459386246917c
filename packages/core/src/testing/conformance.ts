import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { memoryStorage } from '../storage/memory-storage.js'
import { memoryAuditStore } from '../storage/audit-store.js'
import { memorySystemStore } from '../storage/system-store.js'
import { DIMENSIONS } from '../storage/filter.js'
import type { BreakdownQuery, StatsFilter, TimeseriesQuery } from '../stats/stats.js'
import type { CallInput, CallRecord } from '../call/types.js'
import { isApimeterError } from '../errors.js'
import { BREAKDOWN_ORDERS, createStats, type Stats } from '../stats/stats.js'
import type { StorageAdapter } from '../storage/adapter.js'
import { exactQuantile, recordFactory, seededRandom } from './records.js'

/** What a conformance factory hands the suite for one test. */
export interface ConformanceHarness {
  /** A fresh, empty storage. */
  storage: StorageAdapter
  /**
   * For durable adapters: opens a new adapter on the same data after the suite closed `storage`.
   * Leave it out for non-durable storage.
   */
  reopen?: () => StorageAdapter | Promise<StorageAdapter>
  /** Removes files, drops schemas… after the test. */
  cleanup?: () => void | Promise<void>
  /**
   * Brings derived data up to date (rollups). The property tests call it at random points between writes, so
   * answers are checked both from rollups and from raw calls not yet rolled up.
   */
  maintain?: () => Promise<unknown>
}

/** Tuning of {@link runStorageConformance}. */
export interface ConformanceOptions {
  /** Calls in the exact-sum test. @default 100_000 */
  exactSumCalls?: number
  /** Latencies in the percentile-accuracy test. @default 20_000 */
  percentileCalls?: number
  /** Per-test timeout in ms (real databases need more). @default 60_000 */
  timeoutMs?: number
  /** The adapter keeps data across close/reopen; the harness must then provide `reopen`. @default false */
  durable?: boolean
  /** Random datasets per property test (each with several random queries). @default 25 */
  propertyRuns?: number
}

/** 2026-01-15T10:00:00Z, a Thursday. */
const T0 = Date.UTC(2026, 0, 15, 10, 0, 0)
const MIN = 60_000
const HOUR = 3_600_000
const DAY = 86_400_000

/**
 * The hand-computed dataset every adapter must answer identically. Expected values are written out in the tests
 * below, derived by hand, not by running any adapter.
 */
function knownDataset(make: (input: CallInput) => CallRecord): CallRecord[] {
  const openai = { direction: 'outbound', api: 'openai', method: 'POST', route: '/v1/chat/completions', service: 'svc-a' } as const
  const finnhub = { direction: 'outbound', api: 'finnhub', method: 'GET', route: '/api/v1/quote', service: 'svc-a' } as const
  const inbound = { direction: 'inbound', service: 'svc-b' } as const
  return [
    make({ ...openai, statusCode: 200, durationMs: 100, cost: 0.0021, model: 'gpt-4o-mini', inputTokens: 1200, outputTokens: 80, cachedInputTokens: 200, tenantId: 'acme', userId: 'u1', requestBytes: 500, responseBytes: 2000, timestamp: T0 }),
    make({ ...openai, statusCode: 200, durationMs: 300, cost: 0.0009, model: 'gpt-4o-mini', inputTokens: 400, outputTokens: 20, tenantId: 'acme', timestamp: T0 + MIN }),
    make({ ...openai, statusCode: 429, durationMs: 50, tenantId: 'globex', timestamp: T0 + 2 * MIN }),
    make({ ...finnhub, statusCode: 200, durationMs: 20, cost: 0.0001, cached: true, cacheSignal: 'age', tenantId: 'acme', timestamp: T0 + HOUR }),
    make({ ...finnhub, statusCode: 500, durationMs: 40, cost: 0.0001, timestamp: T0 + HOUR + 30_000 }),
    make({ ...finnhub, outcome: 'timeout', durationMs: 5000, tenantId: 'globex', costSource: 'unknown', timestamp: T0 + 2 * HOUR }),
    make({ ...inbound, method: 'GET', route: '/users/:id', statusCode: 200, durationMs: 5, tenantId: 'acme', userId: 'u1', timestamp: T0 + DAY }),
    make({ ...inbound, method: 'POST', route: '/orders', statusCode: 201, durationMs: 15, tenantId: 'acme', requestBytes: 300, responseBytes: 100, timestamp: T0 + DAY + HOUR }),
    make({ ...inbound, method: 'GET', route: '/users/:id', statusCode: 404, durationMs: 2, timestamp: T0 + DAY + 2 * HOUR }),
    make({ ...inbound, method: 'GET', route: '/orders', outcome: 'aborted', durationMs: 1000, timestamp: T0 + 32 * DAY }),
  ]
}

/** Relative error of an estimate against the exact value. */
function relativeError(estimate: number, exact: number): number {
  return exact === 0 ? Math.abs(estimate) : Math.abs(estimate - exact) / Math.abs(exact)
}

/**
 * The one suite every storage adapter must pass. Call it inside a test file; it registers a `describe` block.
 * Each test gets a fresh harness from `factory` and closes its storage afterwards.
 *
 * @example
 * ```ts
 * import { runStorageConformance } from '@apimeter/core/testing'
 * import { memoryStorage } from '@apimeter/core'
 *
 * runStorageConformance('memory', () => ({ storage: memoryStorage({ maxCalls: Infinity }) }))
 * ```
 */
export function runStorageConformance(
  name: string,
  factory: () => ConformanceHarness | Promise<ConformanceHarness>,
  options: ConformanceOptions = {},
): void {
  const exactSumCalls = options.exactSumCalls ?? 100_000
  const percentileCalls = options.percentileCalls ?? 20_000
  const timeout = options.timeoutMs ?? 60_000
  const durable = options.durable ?? false
  const propertyRuns = options.propertyRuns ?? 25

  describe(`storage conformance: ${name}`, { timeout }, () => {
    let harness: ConformanceHarness
    let storage: StorageAdapter
    let stats: Stats
    let make: (input: CallInput) => CallRecord
    const extraStorages: StorageAdapter[] = []

    beforeEach(async () => {
      harness = await factory()
      storage = harness.storage
      await storage.init?.()
      stats = createStats(storage, { clock: { now: () => T0 + 3 * HOUR } })
      make = recordFactory({ service: 'svc-a', now: () => T0 })
    })

    afterEach(async () => {
      for (const s of [storage, ...extraStorages.splice(0)]) {
        try {
          await s.close()
        } catch {
          // already closed by the test
        }
      }
      await harness.cleanup?.()
    })

    async function writeKnown(): Promise<void> {
      await storage.writeCalls(knownDataset(make))
    }

    it('starts empty: zero summary, null latency, no rows', async () => {
      const summary = await stats.summary()
      expect(summary.requests).toBe(0)
      expect(summary.errorRate).toBe(0)
      expect(summary.cacheHitRate).toBe(0)
      expect(summary.cost).toBe(0)
      expect(summary.latency).toBeNull()
      expect(await stats.breakdown({ by: 'api' })).toEqual([])
      expect(await stats.timeseries({ interval: 'hour' })).toEqual([])
    })

    it('round-trips the known dataset into the hand-computed summary', async () => {
      await writeKnown()
      const s = await stats.summary()
      expect(s.requests).toBe(10)
      expect(s.successes).toBe(5)
      expect(s.errors).toBe(5)
      expect(s.errorRate).toBe(0.5)
      expect(s.outcomes).toEqual({
        success: 5,
        client_error: 1,
        server_error: 1,
        rate_limited: 1,
        timeout: 1,
        network_error: 0,
        aborted: 1,
      })
      expect(s.cached).toBe(1)
      expect(s.cacheHitRate).toBe(0.1)
      expect(s.cost).toBe(0.0032)
      expect(s.costUnknown).toBe(1)
      expect(s.tokens).toEqual({ input: 1600, output: 100, cachedInput: 200 })
      expect(s.requestBytes).toBe(800)
      expect(s.responseBytes).toBe(2100)
      expect(s.latency).not.toBeNull()
      const latency = s.latency!
      expect(latency.avg).toBe(653.2)
      expect(latency.min).toBe(2)
      expect(latency.max).toBe(5000)
      // sorted: 2 5 15 20 40 50 100 300 1000 5000 → nearest rank p50=#5, p90=#9, p95=#10, p99=#10
      expect(relativeError(latency.p50, 40)).toBeLessThanOrEqual(0.01)
      expect(relativeError(latency.p90, 1000)).toBeLessThanOrEqual(0.01)
      expect(latency.p95).toBe(5000) // clamped to the exact max
      expect(latency.p99).toBe(5000)
    })

    it('keeps every field of a call through storage (checked through stats)', async () => {
      const call = make({
        direction: 'outbound', api: 'anthropic', method: 'post', url: 'https://api.anthropic.com/v1/messages?key=secret',
        statusCode: 200, durationMs: 812.4567, ttfbMs: 120.5, requestBytes: 1, responseBytes: 2, cached: false,
        cost: 0.123456789, costSource: 'provider', model: 'claude-x', inputTokens: 3, outputTokens: 4, cachedInputTokens: 5,
        tenantId: 't', userId: 'u', apiKeyId: 'k', clientIp: '127.0.0.1', userAgent: 'ua', attempt: 2, operationId: 'op',
        rateLimit: { limit: 60, remaining: 10, resetMs: 1000, scope: 'requests' }, metadata: { a: 1 }, timestamp: T0,
      })
      await storage.writeCalls([call])
      const s = await stats.summary({ api: 'anthropic', method: 'POST', route: '/v1/messages', model: 'claude-x', tenantId: 't', userId: 'u' })
      expect(s.requests).toBe(1)
      expect(s.cost).toBe(0.123456789)
      expect(s.latency?.avg).toBe(812.457)
      expect(s.tokens).toEqual({ input: 3, output: 4, cachedInput: 5 })
    })

    describe('filters', () => {
      const cases: Array<[string, Parameters<Stats['summary']>[0], number]> = [
        ['api', { api: 'openai' }, 3],
        ['api null (inbound calls have none)', { api: null }, 4],
        ['api list', { api: ['openai', 'finnhub'] }, 6],
        ['direction', { direction: 'inbound' }, 4],
        ['service', { service: 'svc-b' }, 4],
        ['tenantId', { tenantId: 'acme' }, 5],
        ['tenantId null', { tenantId: null }, 3],
        ['tenantId list with null', { tenantId: ['globex', null] }, 5],
        ['userId', { userId: 'u1' }, 2],
        ['route', { route: '/users/:id' }, 2],
        ['method, case-insensitive', { method: 'get' }, 6],
        ['outcome', { outcome: 'success' }, 5],
        ['outcome list', { outcome: ['timeout', 'aborted'] }, 2],
        ['model', { model: 'gpt-4o-mini' }, 2],
        ['model null', { model: null }, 8],
        ['statusCode', { statusCode: 429 }, 1],
        ['statusCode null', { statusCode: null }, 2],
        ['from inclusive, to exclusive', { from: new Date(T0 + HOUR), to: new Date(T0 + DAY) }, 3],
        ['ISO strings', { from: new Date(T0 + HOUR).toISOString(), to: new Date(T0 + DAY).toISOString() }, 3],
        ['epoch ms', { from: T0 + HOUR, to: T0 + DAY }, 3],
        ['relative times', { from: '-3h', to: 'now' }, 6],
        ['several fields AND-ed', { api: 'finnhub', tenantId: 'acme' }, 1],
        ['no match', { api: 'nope' }, 0],
      ]
      for (const [label, filter, expected] of cases) {
        it(label, async () => {
          await writeKnown()
          expect((await stats.summary(filter)).requests).toBe(expected)
        })
      }
    })

    it('applies from (inclusive) and to (exclusive) at bucket edges', async () => {
      const H = Date.UTC(2026, 2, 1, 12)
      const base = { direction: 'inbound', method: 'GET', route: '/edge', statusCode: 200, durationMs: 1 } as const
      await storage.writeCalls([
        make({ ...base, timestamp: H - 1 }),
        make({ ...base, timestamp: H }),
        make({ ...base, timestamp: H + HOUR - 1 }),
        make({ ...base, timestamp: H + HOUR }),
      ])
      expect((await stats.summary({ from: new Date(H), to: new Date(H + HOUR) })).requests).toBe(2)
      expect((await stats.summary({ from: new Date(H) })).requests).toBe(3)
      expect((await stats.summary({ to: new Date(H) })).requests).toBe(1)
      expect((await stats.summary({ from: new Date(H), to: new Date(H) })).requests).toBe(0)
      const hourly = await stats.timeseries({ interval: 'hour', from: new Date(H - HOUR), to: new Date(H + 2 * HOUR) })
      expect(hourly.map((p) => [p.start.toISOString(), p.requests])).toEqual([
        ['2026-03-01T11:00:00.000Z', 1],
        ['2026-03-01T12:00:00.000Z', 2],
        ['2026-03-01T13:00:00.000Z', 1],
      ])
    })

    it('aligns timeseries buckets to UTC minute, hour, day and month', async () => {
      await writeKnown()
      const minute = await stats.timeseries({ interval: 'minute', from: new Date(T0), to: new Date(T0 + 3 * MIN) })
      expect(minute.map((p) => [p.start.getTime(), p.requests])).toEqual([
        [T0, 1],
        [T0 + MIN, 1],
        [T0 + 2 * MIN, 1],
      ])
      const hour = await stats.timeseries({ interval: 'hour', from: new Date(T0), to: new Date(T0 + 5 * HOUR) })
      expect(hour.map((p) => p.requests)).toEqual([3, 2, 1, 0, 0])
      expect(hour[1]!.cost).toBe(0.0002)
      expect(hour[3]!.latency).toBeNull()
      const day = await stats.timeseries({ interval: 'day', fill: false })
      expect(day.map((p) => [p.start.toISOString(), p.requests])).toEqual([
        ['2026-01-15T00:00:00.000Z', 6],
        ['2026-01-16T00:00:00.000Z', 3],
        ['2026-02-16T00:00:00.000Z', 1],
      ])
      const month = await stats.timeseries({ interval: 'month' })
      expect(month.map((p) => [p.start.toISOString(), p.requests])).toEqual([
        ['2026-01-01T00:00:00.000Z', 9],
        ['2026-02-01T00:00:00.000Z', 1],
      ])
      const monthFilled = await stats.timeseries({ interval: 'month', from: '2025-12-20', to: '2026-04-01' })
      expect(monthFilled.map((p) => [p.start.toISOString().slice(0, 7), p.requests])).toEqual([
        ['2025-12', 0],
        ['2026-01', 9],
        ['2026-02', 1],
        ['2026-03', 0],
      ])
    })

    it('groups timeseries by a dimension, null keys as (none)', async () => {
      await writeKnown()
      const rows = await stats.timeseries({ interval: 'day', groupBy: 'api' })
      expect(rows.map((p) => [p.start.toISOString().slice(0, 10), p.group, p.requests])).toEqual([
        ['2026-01-15', 'finnhub', 3],
        ['2026-01-15', 'openai', 3],
        ['2026-01-16', '(none)', 3],
        ['2026-02-16', '(none)', 1],
      ])
    })

    it('orders and limits breakdowns', async () => {
      await writeKnown()
      const byApi = await stats.breakdown({ by: 'api' })
      expect(byApi.map((r) => [r.key, r.requests])).toEqual([
        ['(none)', 4],
        ['finnhub', 3],
        ['openai', 3],
      ])
      const byTenantCost = await stats.breakdown({ by: 'tenant', orderBy: 'cost' })
      expect(byTenantCost.map((r) => [r.key, r.cost])).toEqual([
        ['acme', 0.0031],
        ['(none)', 0.0001],
        ['globex', 0],
      ])
      const top = await stats.breakdown({ by: 'tenant', orderBy: 'cost', limit: 1 })
      expect(top.map((r) => r.key)).toEqual(['acme'])
      const asc = await stats.breakdown({ by: 'tenant', orderBy: 'requests', order: 'asc' })
      expect(asc.map((r) => [r.key, r.requests])).toEqual([
        ['globex', 2],
        ['(none)', 3],
        ['acme', 5],
      ])
      const byStatus = await stats.breakdown({ by: 'status', orderBy: 'key' })
      expect(byStatus.map((r) => r.key)).toEqual(['(none)', '200', '201', '404', '429', '500'])
      const byOutcome = await stats.breakdown({ by: 'outcome', orderBy: 'requests' })
      expect(byOutcome[0]).toMatchObject({ key: 'success', requests: 5, errorRate: 0 })
      const byRouteLatency = await stats.breakdown({ by: 'route', orderBy: 'maxLatency' })
      expect(byRouteLatency.map((r) => r.key)).toEqual(['/api/v1/quote', '/orders', '/v1/chat/completions', '/users/:id'])
      const byErrorRate = await stats.breakdown({ by: 'direction', orderBy: 'errorRate' })
      expect(byErrorRate.map((r) => [r.key, r.errorRate])).toEqual([
        ['inbound', 0.5],
        ['outbound', 0.5],
      ])
      const byModel = await stats.breakdown({ by: 'model', orderBy: 'tokens' })
      expect(byModel.map((r) => [r.key, r.tokens.input])).toEqual([
        ['gpt-4o-mini', 1600],
        ['(none)', 0],
      ])
    })

    it('ranks a limited breakdown by every order exactly as a full sort does, ties included', async () => {
      // Tenants whose profiles each win a different order; `twin-a`/`twin-b` are identical (a tie at the boundary).
      const base = { direction: 'outbound', api: 'x', method: 'GET', route: '/', statusCode: 200 } as const
      const profiles: [string, number, Partial<CallInput>][] = [
        ['busy', 9, { durationMs: 2, cost: 0.000001 }],
        ['rich', 1, { durationMs: 3, cost: 0.5 }],
        ['broken', 4, { durationMs: 4, statusCode: 503, cost: 0.001 }],
        ['cached', 3, { durationMs: 1, cached: true }],
        ['slow', 2, { durationMs: 900 }],
        ['bulky', 2, { durationMs: 5, requestBytes: 90_000, responseBytes: 400_000 }],
        ['chatty', 2, { durationMs: 6, inputTokens: 50_000, outputTokens: 9_000 }],
        ['twin-a', 5, { durationMs: 7, cost: 0.02 }],
        ['twin-b', 5, { durationMs: 7, cost: 0.02 }],
        ['nobody', 1, { durationMs: 8, tenantId: null }],
      ]
      const calls: CallRecord[] = []
      profiles.forEach(([tenant, n, extra], p) => {
        for (let i = 0; i < n; i++) {
          // spread over two days so whole rollup buckets and raw edges both take part after maintenance
          calls.push(make({ ...base, durationMs: 1, tenantId: tenant, ...extra, timestamp: T0 - DAY + ((p * 7 + i) % 48) * HOUR + i }))
        }
      })
      await storage.writeCalls(calls.slice(0, 30))
      await harness.maintain?.()
      await storage.writeCalls(calls.slice(30))
      for (const orderBy of BREAKDOWN_ORDERS) {
        for (const order of ['asc', 'desc'] as const) {
          for (const limit of [1, 2, 3]) {
            const q = { by: 'tenant', orderBy, order, from: T0 - 2 * DAY, to: T0 + 2 * DAY } as const
            const full = await stats.breakdown(q)
            expect(await stats.breakdown({ ...q, limit }), `${orderBy} ${order} limit ${limit}`).toEqual(full.slice(0, limit))
          }
        }
      }
    })

    it('sums costs exactly (no float drift)', async () => {
      const base = { direction: 'outbound', api: 'x', method: 'GET', route: '/', statusCode: 200, durationMs: 1, timestamp: T0 } as const
      const batch: CallRecord[] = []
      for (let i = 0; i < exactSumCalls; i++) {
        batch.push(make({ ...base, cost: 0.000001 }))
        if (batch.length === 5000) await storage.writeCalls(batch.splice(0))
      }
      if (batch.length) await storage.writeCalls(batch.splice(0))
      expect((await stats.summary()).cost).toBe(exactSumCalls / 1e6)
      await storage.writeCalls([make({ ...base, api: 'y', cost: 0.1 }), make({ ...base, api: 'y', cost: 0.2 })])
      expect((await stats.summary({ api: 'y' })).cost).toBe(0.3)
      await storage.writeCalls([1, 2, 3].map(() => make({ ...base, api: 'z', cost: 1234.567890123 })))
      expect((await stats.summary({ api: 'z' })).cost).toBe(3703.703670369)
    })

    it('reads percentiles within 1% of the exact values, overall and per group', async () => {
      const random = seededRandom(20260115)
      const durations: Record<string, number[]> = { a: [], b: [] }
      const batch: CallRecord[] = []
      for (let i = 0; i < percentileCalls; i++) {
        const api = i % 3 === 0 ? 'b' : 'a'
        // log-uniform between 0.05 ms and 60 s, microsecond resolution
        const d = Math.round(Math.exp(Math.log(0.05) + random() * (Math.log(60_000) - Math.log(0.05))) * 1000) / 1000
        durations[api]!.push(d)
        batch.push(make({ direction: 'outbound', api, method: 'GET', route: '/p', statusCode: 200, durationMs: d, timestamp: T0 + (i % 1000) * MIN }))
        if (batch.length === 5000) await storage.writeCalls(batch.splice(0))
      }
      if (batch.length) await storage.writeCalls(batch.splice(0))
      const all = [...durations.a!, ...durations.b!]
      const check = (latency: NonNullable<Awaited<ReturnType<Stats['summary']>>['latency']>, values: number[]): void => {
        for (const [q, key] of [[0.5, 'p50'], [0.9, 'p90'], [0.95, 'p95'], [0.99, 'p99']] as const) {
          expect(relativeError(latency[key], exactQuantile(values, q)), `${key}`).toBeLessThanOrEqual(0.01)
        }
        expect(latency.min).toBe(Math.min(...values))
        expect(latency.max).toBe(Math.max(...values))
      }
      check((await stats.summary()).latency!, all)
      const groups = await stats.breakdown({ by: 'api', orderBy: 'key' })
      check(groups[0]!.latency!, durations.a!)
      check(groups[1]!.latency!, durations.b!)
      // across time buckets: merged sketches keep the bound
      const hourly = await stats.timeseries({ interval: 'hour', fill: false })
      expect(hourly.reduce((n, p) => n + p.requests, 0)).toBe(percentileCalls)
    })

    it('counts late and out-of-order calls in their own buckets', async () => {
      const base = { direction: 'inbound', method: 'GET', route: '/late', statusCode: 200, durationMs: 3 } as const
      await storage.writeCalls([make({ ...base, timestamp: T0 + 2 * HOUR })])
      await storage.writeCalls([make({ ...base, timestamp: T0 }), make({ ...base, timestamp: T0 + HOUR })])
      await storage.writeCalls([make({ ...base, timestamp: T0 - 40 * DAY })])
      const hourly = await stats.timeseries({ interval: 'hour', from: new Date(T0), to: new Date(T0 + 3 * HOUR) })
      expect(hourly.map((p) => p.requests)).toEqual([1, 1, 1])
      expect((await stats.summary()).requests).toBe(4)
      const monthly = await stats.timeseries({ interval: 'month' })
      expect(monthly.map((p) => [p.start.toISOString().slice(0, 7), p.requests])).toEqual([
        ['2025-12', 1],
        ['2026-01', 3],
      ])
    })

    it('takes concurrent writers without losing a call', async () => {
      const writers = 8
      const perWriter = 1000
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          for (let b = 0; b < 4; b++) {
            const rows = Array.from({ length: perWriter / 4 }, (_, i) =>
              make({ direction: 'outbound', api: `w${w}`, method: 'GET', route: '/c', statusCode: 200, durationMs: i % 50, cost: 0.000003, timestamp: T0 + i }),
            )
            await storage.writeCalls(rows)
          }
        }),
      )
      const s = await stats.summary()
      expect(s.requests).toBe(writers * perWriter)
      expect(s.cost).toBe(0.024)
      const perApi = await stats.breakdown({ by: 'api' })
      expect(perApi).toHaveLength(writers)
      for (const row of perApi) expect(row.requests).toBe(perWriter)
    })

    it('rejects a batch with a malformed row with a clear error, writing none of it', async () => {
      const good = make({ direction: 'inbound', method: 'GET', route: '/ok', statusCode: 200, durationMs: 1, timestamp: T0 })
      const bad = { ...good, id: `${good.id}-bad`, method: '' }
      const error = await storage.writeCalls([good, bad]).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(isApimeterError(error, 'INVALID_RECORD')).toBe(true)
      expect((error as Error).message).toMatch(/row 1/)
      expect((error as Error).message).toMatch(/method/)
      expect((await stats.summary()).requests).toBe(0)
      const badStatus = { ...good, id: `${good.id}-bad2`, outcome: 'exploded' }
      await expect(storage.writeCalls([badStatus as unknown as CallRecord])).rejects.toThrow(/outcome/)
      expect((await stats.summary()).requests).toBe(0)
    })

    it('refuses to be used after close()', async () => {
      await storage.close()
      await expect(
        storage.writeCalls([make({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 })]),
      ).rejects.toThrow()
    })

    it('rejects bad stats queries with errors naming the field', async () => {
      await expect(stats.summary({ from: 'yesterday' })).rejects.toThrow(/query\.from must be/)
      await expect(stats.summary({ outcome: 'fine' as never })).rejects.toThrow(/query\.outcome must be/)
      await expect(stats.summary({ from: new Date(T0 + DAY), to: new Date(T0) })).rejects.toThrow(/query\.from must not be after query\.to/)
      await expect(stats.breakdown({ by: 'planet' as never })).rejects.toThrow(/query\.by must be one of/)
      await expect(stats.breakdown({ by: 'api', limit: 0 })).rejects.toThrow(/query\.limit must be a whole number >= 1, got 0/)
      await expect(stats.timeseries({ interval: 'fortnight' as never })).rejects.toThrow(/query\.interval must be one of minute, hour, day, month/)
      await expect(stats.summary({ tenant: 'acme' } as never)).rejects.toThrow(/query\.tenant is not a known option \(did you mean tenantId\?\)/)
    })

    describe('properties: equals an in-memory raw scan on random workloads and windows', () => {
      // Dec 2025 … Mar 2026: spans month, day and hour boundaries; late writes come in random order.
      const SPAN_START = Date.UTC(2025, 11, 20)
      const SPAN_END = Date.UTC(2026, 2, 5)
      const pools = {
        api: ['openai', 'finnhub', null],
        route: ['/a', '/b/:id', '/c'],
        method: ['GET', 'POST'],
        tenantId: ['acme', 'globex', null],
        userId: ['u1', 'u2', null],
        model: ['m1', null],
        status: [200, 201, 404, 429, 500, 503, null],
      } as const
      const arbCall = fc.record({
        t: fc.integer({ min: SPAN_START, max: SPAN_END - 1 }),
        api: fc.constantFrom(...pools.api),
        route: fc.constantFrom(...pools.route),
        method: fc.constantFrom(...pools.method),
        tenantId: fc.constantFrom(...pools.tenantId),
        userId: fc.constantFrom(...pools.userId),
        model: fc.constantFrom(...pools.model),
        status: fc.constantFrom(...pools.status),
        durationUs: fc.integer({ min: 0, max: 90_000_000 }),
        cost: fc.option(fc.integer({ min: 0, max: 5_000_000 }), { nil: null }),
        tokens: fc.nat({ max: 5000 }),
        bytes: fc.option(fc.nat({ max: 100_000 }), { nil: null }),
        cached: fc.boolean(),
      })
      // an edge: absent, or aligned to a month/day/hour, or anywhere
      const arbEdge = fc.oneof(
        fc.constant(undefined),
        fc.integer({ min: SPAN_START - 86_400_000, max: SPAN_END + 86_400_000 }).map((t) => t),
        fc.integer({ min: 0, max: 80 }).map((d) => SPAN_START + d * 86_400_000),
        fc.integer({ min: 0, max: 80 * 24 }).map((h) => SPAN_START + h * 3_600_000),
        fc.constantFrom(Date.UTC(2026, 0, 1), Date.UTC(2026, 1, 1), Date.UTC(2026, 2, 1)),
      )
      // 0–2 filter fields, so most queries fit a rollup level (all fields at once would almost always need raw calls)
      const filterValues = {
        api: fc.constantFrom<StatsFilter['api']>('openai', null, ['openai', 'finnhub']),
        route: fc.constantFrom('/a', '/b/:id'),
        method: fc.constantFrom('GET', 'POST'),
        tenantId: fc.constantFrom<StatsFilter['tenantId']>('acme', null, ['globex', null]),
        userId: fc.constantFrom('u1', null),
        model: fc.constantFrom('m1', null),
        outcome: fc.constantFrom<StatsFilter['outcome']>('success', ['server_error', 'timeout']),
        statusCode: fc.constantFrom<StatsFilter['statusCode']>(200, null, [429, 503]),
        direction: fc.constantFrom<StatsFilter['direction']>('outbound', 'inbound'),
      }
      const arbFilter = fc
        .subarray(Object.keys(filterValues) as (keyof typeof filterValues)[], { maxLength: 2 })
        .chain((keys) => fc.record(Object.fromEntries(keys.map((k) => [k, filterValues[k]])) as Record<string, fc.Arbitrary<unknown>>))
        .map((f) => f as StatsFilter)
      const arbQuery = fc.record({
        from: arbEdge,
        to: arbEdge,
        filter: arbFilter,
        kind: fc.constantFrom('summary', 'timeseries', 'breakdown'),
        interval: fc.constantFrom<TimeseriesQuery['interval']>('hour', 'day', 'month', 'minute'),
        by: fc.constantFrom(...DIMENSIONS),
        // every order, both directions, with and without a limit (a ranked breakdown may be answered in SQL)
        orderBy: fc.option(fc.constantFrom(...BREAKDOWN_ORDERS), { nil: undefined }),
        order: fc.option(fc.constantFrom<'asc' | 'desc'>('asc', 'desc'), { nil: undefined }),
        limit: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
        groupBy: fc.option(fc.constantFrom(...DIMENSIONS), { nil: undefined }),
      })
      const arbCase = fc.record({
        calls: fc.array(arbCall, { minLength: 1, maxLength: 300 }),
        maintainAfter: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
        queries: fc.array(arbQuery, { minLength: 4, maxLength: 8 }),
      })

      it('summary, timeseries and breakdown match the raw scan exactly, before and after maintenance', async () => {
        await fc.assert(
          fc.asyncProperty(arbCase, async ({ calls, maintainAfter, queries }) => {
            const h = await factory()
            const reference = memoryStorage({ maxCalls: Infinity })
            const clock = { now: () => SPAN_END + 3_600_000 }
            try {
              await h.storage.init?.()
              const records = calls.map((c) =>
                make({
                  direction: c.api === null ? 'inbound' : 'outbound',
                  api: c.api,
                  route: c.route,
                  method: c.method,
                  tenantId: c.tenantId,
                  userId: c.userId,
                  model: c.model,
                  ...(c.status === null ? { outcome: 'timeout' as const } : { statusCode: c.status }),
                  durationMs: c.durationUs / 1000,
                  cost: c.cost === null ? null : c.cost / 1e9,
                  costSource: c.cost === null && c.api === 'openai' ? 'unknown' : c.cost !== null && c.tokens % 5 === 0 ? 'estimated' : undefined,
                  inputTokens: c.tokens,
                  outputTokens: c.tokens % 97,
                  cachedInputTokens: c.tokens % 13,
                  responseBytes: c.bytes,
                  cached: c.cached,
                  timestamp: c.t,
                }),
              )
              // three writes, with maintenance (rollups) after some of them
              const third = Math.ceil(records.length / 3)
              for (let i = 0; i < 3; i++) {
                const part = records.slice(i * third, (i + 1) * third)
                if (part.length) {
                  await h.storage.writeCalls(part)
                  await reference.writeCalls(part)
                }
                if (maintainAfter[i]) await h.maintain?.()
              }
              const actual = createStats(h.storage, { clock })
              const expected = createStats(reference, { clock })
              for (const q of queries) {
                const [from, to] = q.from !== undefined && q.to !== undefined && q.from > q.to ? [q.to, q.from] : [q.from, q.to]
                const filter: StatsFilter = { ...q.filter, from, to }
                if (q.kind === 'summary') {
                  expect(await actual.summary(filter)).toEqual(await expected.summary(filter))
                } else if (q.kind === 'breakdown') {
                  const bq: BreakdownQuery = { ...filter, by: q.by, orderBy: q.orderBy, order: q.order, limit: q.limit }
                  expect(await actual.breakdown(bq)).toEqual(await expected.breakdown(bq))
                } else {
                  const tq: TimeseriesQuery = { ...filter, interval: q.interval, groupBy: q.groupBy, fill: false }
                  if (q.interval === 'minute' && (from === undefined || to === undefined || to - from > 3 * 86_400_000)) continue
                  expect(await actual.timeseries(tq)).toEqual(await expected.timeseries(tq))
                }
              }
            } finally {
              await h.storage.close().catch(() => undefined)
              await h.cleanup?.()
            }
          }),
          { numRuns: propertyRuns },
        )
      })
    })

    it('keeps an append-only audit log, read by time, kind (or kind prefix) and subject, in order (or its fallback)', async () => {
      const audit = storage.audit ?? memoryAuditStore()
      const row = (at: number, kind: string, subject: string) => ({ at, kind, subject, instance: 'svc@host:1', before: { n: 1, nested: { x: [1, 'two'] } }, after: null, detail: `${kind} ${subject}` })
      await audit.append([row(T0 + 2 * MIN, 'alert_rule.changed', 'alert_rule:a'), row(T0, 'alert_rule.added', 'alert_rule:a'), row(T0 + MIN, 'plugin.disabled', 'plugin:p')])
      await audit.append([row(T0 + 3 * MIN, 'alert_rules.custom', 'x'), row(T0 + 3 * MIN, 'plugin_x', 'y')])
      // (a SQL storage has recorded its own migrations on init: rows after this test's range)
      const all = await audit.list({ to: T0 + HOUR })
      expect(all.map((r) => r.kind)).toEqual(['alert_rule.added', 'plugin.disabled', 'alert_rule.changed', 'alert_rules.custom', 'plugin_x'])
      const { id, ...first } = all[0]!
      expect(first).toEqual(row(T0, 'alert_rule.added', 'alert_rule:a'))
      expect(Number.isInteger(id)).toBe(true)
      expect((await audit.list({ kind: 'alert_rule' })).map((r) => r.kind)).toEqual(['alert_rule.added', 'alert_rule.changed'])
      expect((await audit.list({ kind: ['plugin', 'alert_rule.added'] })).map((r) => r.kind)).toEqual(['alert_rule.added', 'plugin.disabled'])
      expect((await audit.list({ subject: 'alert_rule:a', order: 'desc', limit: 1 })).map((r) => r.kind)).toEqual(['alert_rule.changed'])
      expect((await audit.list({ from: T0 + MIN, to: T0 + 3 * MIN })).map((r) => r.kind)).toEqual(['plugin.disabled', 'alert_rule.changed'])
    })

    it('stores process samples and lists them by time, service and instance (or its fallback)', async () => {
      const system = storage.system ?? memorySystemStore()
      const sample = (at: number, service: string, instance: string) => ({
        at, service, instance, intervalMs: 10_000, eventLoopDelayP50Us: 12.5, eventLoopDelayP99Us: 250.5, eventLoopDelayMaxUs: 1000, eventLoopUtilization: 0.125,
        cpuUserUs: 1_234_567, cpuSystemUs: 89_012, rssBytes: 123_456_789, heapUsedBytes: 45_678_901, heapTotalBytes: 67_890_123, handles: 17,
      })
      await system.write([sample(T0 + MIN, 'svc-a', 'h:1'), sample(T0, 'svc-a', 'h:2'), sample(T0 + 2 * MIN, 'svc-b', 'h:1')])
      expect(await system.list({})).toEqual([sample(T0, 'svc-a', 'h:2'), sample(T0 + MIN, 'svc-a', 'h:1'), sample(T0 + 2 * MIN, 'svc-b', 'h:1')])
      expect((await system.list({ from: T0 + MIN, to: T0 + 2 * MIN })).map((s) => s.at)).toEqual([T0 + MIN])
      expect((await system.list({ service: 'svc-a', instance: 'h:1' })).map((s) => s.at)).toEqual([T0 + MIN])
    })

    if (durable) {
      it('keeps data across close and reopen', async () => {
        expect(storage.capabilities.durable).toBe(true)
        expect(harness.reopen, 'a durable adapter must give the suite a reopen() function').toBeTypeOf('function')
        await writeKnown()
        const before = await stats.summary()
        await storage.close()
        const reopened = await harness.reopen!()
        extraStorages.push(reopened)
        await reopened.init?.()
        const after = await createStats(reopened, { clock: { now: () => T0 + 3 * HOUR } }).summary()
        expect(after).toEqual(before)
        expect(after.requests).toBe(10)
      })
    } else {
      it('says it is not durable', () => {
        expect(storage.capabilities.durable).toBe(false)
      })
    }
  })
}
