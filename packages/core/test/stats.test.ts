import { describe, expect, it } from 'vitest'
import { createMonitor, createStats, memoryStorage } from '@apimeter/core'
import { exactQuantile, seededRandom } from '@apimeter/core/testing'
import { testMonitor } from './helpers/monitor.js'

describe('stats through a monitor', () => {
  it('sums a million calls at $0.000001 to exactly $1', async () => {
    const { monitor } = testMonitor({ batchSize: 10_000, maxBufferSize: 1_000_000 })
    for (let i = 0; i < 1_000_000; i++) {
      monitor.record({ direction: 'outbound', api: 'micro', method: 'GET', route: '/', statusCode: 200, durationMs: 1, cost: 0.000001 })
    }
    await monitor.flush()
    const summary = await monitor.stats.summary()
    expect(summary.requests).toBe(1_000_000)
    expect(summary.cost).toBe(1)
    await monitor.close()
  }, 60_000)

  it('reads p50/p90/p95/p99 within 1% of the exact values on 100k seeded random latencies', async () => {
    const { monitor } = testMonitor({ batchSize: 10_000, maxBufferSize: 200_000 })
    const random = seededRandom(7)
    const values: number[] = []
    for (let i = 0; i < 100_000; i++) {
      // a realistic long-tailed mix: mostly fast, some slow, a few very slow
      const r = random()
      const base = r < 0.8 ? 5 + random() * 45 : r < 0.98 ? 50 + random() * 950 : 1000 + random() * 29_000
      const d = Math.round(base * 1000) / 1000
      values.push(d)
      monitor.record({ direction: 'inbound', method: 'GET', route: '/p', statusCode: 200, durationMs: d })
    }
    await monitor.flush()
    const { latency } = await monitor.stats.summary()
    for (const [q, key] of [[0.5, 'p50'], [0.9, 'p90'], [0.95, 'p95'], [0.99, 'p99']] as const) {
      const exact = exactQuantile(values, q)
      expect(Math.abs(latency![key] - exact) / exact, key).toBeLessThanOrEqual(0.01)
    }
    const sum = values.reduce((a, b) => a + Math.round(b * 1000), 0)
    expect(latency!.avg).toBeCloseTo(sum / 100_000 / 1000, 9)
    await monitor.close()
  }, 60_000)

  it('resolves relative times against the monitor clock', async () => {
    const now = Date.UTC(2026, 3, 10, 12)
    const { monitor } = testMonitor({ clock: { now: () => now } })
    const base = { direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 } as const
    monitor.record({ ...base, timestamp: now - 25 * 3_600_000 })
    monitor.record({ ...base, timestamp: now - 23 * 3_600_000 })
    monitor.record({ ...base, timestamp: now - 60_000 })
    await monitor.flush()
    expect((await monitor.stats.summary({ from: '-24h' })).requests).toBe(2)
    expect((await monitor.stats.summary({ from: '-2d', to: '-1d' })).requests).toBe(1)
    expect((await monitor.stats.summary({ from: '-90s' })).requests).toBe(1)
    expect((await monitor.stats.summary({ from: '-1w' })).requests).toBe(3)
    const hours = await monitor.stats.timeseries({ interval: 'hour', from: '-24h' })
    // from 12:00 yesterday up to (not including) 12:00 today
    expect(hours).toHaveLength(24)
    expect(hours[0]!.start.toISOString()).toBe('2026-04-09T12:00:00.000Z')
    expect(hours.reduce((n, h) => n + h.requests, 0)).toBe(2)
    await monitor.close()
  })

  it('reads everything in the storage: the monitor service is not an implicit filter', async () => {
    const storage = memoryStorage()
    const a = createMonitor({ service: 'a', storage, logger: false, flushOnExit: false })
    const b = createMonitor({ service: 'b', storage, logger: false, flushOnExit: false })
    const base = { direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 } as const
    a.record(base)
    b.record(base)
    b.record(base)
    await a.flush()
    await b.flush()
    expect((await a.stats.summary()).requests).toBe(3)
    expect((await a.stats.summary({ service: 'b' })).requests).toBe(2)
    expect((await createStats(storage).breakdown({ by: 'service' })).map((r) => [r.key, r.requests])).toEqual([
      ['b', 2],
      ['a', 1],
    ])
    await a.close()
  })

  it('refuses a timeseries that would produce an absurd number of buckets', async () => {
    const stats = createStats(memoryStorage())
    await expect(stats.timeseries({ interval: 'minute', from: '2000-01-01' })).rejects.toThrow(/more than 100000 buckets/)
    expect(await stats.timeseries({ interval: 'minute', from: '2000-01-01', fill: false })).toEqual([])
  })

  it('createStats() rejects something that is not a storage', () => {
    expect(() => createStats({} as never)).toThrow(/@apimeter\/core: createStats\(storage\) needs a storage adapter/)
  })
})

