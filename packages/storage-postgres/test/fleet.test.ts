import { afterAll, describe, expect, it } from 'vitest'
import { createMonitor, createStats } from '@apimeter/core'
import { aggregateCalls, LatencySketch } from '@apimeter/core/sql'
import { exactQuantile } from '@apimeter/core/testing'
import { postgresStorage } from '@apimeter/storage-postgres'
import { startPgCluster } from '../../../scripts/pg-cluster.js'
import { runFixture as run } from '../../../test/support/run-fixture.js'
import { freshSchema, testUrl } from './helpers.js'

const runFixture = (fixture: string, args: string[]) => run(new URL(`./fixtures/${fixture}`, import.meta.url), args, 300_000)
const FOREVER = { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' }

describe('a fleet on one PostgreSQL database', () => {
  const cleanups: (() => unknown)[] = []
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  it('4 processes × 50,000 calls at once: counts, cost, tokens and rollups exact, percentiles within 1%', async () => {
    const { schema, drop } = await freshSchema('fleet')
    cleanups.push(drop)
    const writers = ['w1', 'w2', 'w3', 'w4']
    const perWriter = 50_000
    const runs = await Promise.all(writers.map((w) => runFixture('writer-child.ts', [testUrl(), schema, w, String(perWriter)])))
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ written: perWriter, dropped: 0, invalid: 0, queued: 0 })
    }
    const storage = postgresStorage({ connectionString: testUrl(), schema, retention: FOREVER })
    await storage.maintain()
    const stats = createStats(storage)
    const total = writers.length * perWriter
    const s = await stats.summary()
    expect(s.requests).toBe(total)
    expect(s.cost).toBe(total * 0.000007)
    expect(s.tokens).toEqual({ input: 3 * total, output: total, cachedInput: 0 })
    expect(s.outcomes.server_error).toBe(total / 10)
    // rollups (whole range) against a raw scan through the same SQL layer
    const raw = await aggregateCalls(storage.db, 'postgres', { filter: {}, groupBy: ['service'] })
    const perService = await stats.breakdown({ by: 'service', orderBy: 'key' })
    expect(perService.map((r) => [r.key, r.requests])).toEqual(writers.map((w) => [w, perWriter]))
    expect(raw.map((r) => r.state.requests).sort()).toEqual(writers.map(() => perWriter))
    const hourly = await stats.timeseries({ interval: 'hour', fill: false })
    expect(hourly.reduce((n, p) => n + p.requests, 0)).toBe(total)
    expect(hourly).toHaveLength(72)
    // percentiles within 1% of the exact values of what the writers recorded
    const durations: number[] = []
    for (const w of writers) for (let i = 0; i < perWriter; i++) durations.push(Math.round((1 + (i % 1000) + Number(w.slice(-1)) / 10) * 1000) / 1000)
    for (const [q, key] of [[0.5, 'p50'], [0.9, 'p90'], [0.95, 'p95'], [0.99, 'p99']] as const) {
      const exact = exactQuantile(durations, q)
      expect(Math.abs(s.latency![key] - exact) / exact, key).toBeLessThanOrEqual(0.01)
    }
    expect(new LatencySketch().count).toBe(0)
    await storage.close()
  }, 300_000)

  it('a server stopped and restarted mid-workload: the app sees no error, nothing is lost', async () => {
    const cluster = await startPgCluster()
    cleanups.push(() => cluster.destroy())
    const storage = postgresStorage({ connectionString: cluster.url, retention: FOREVER })
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false, batchSize: 200, flushIntervalMs: 50, maxBufferSize: 100_000, retry: { initialDelayMs: 50, maxDelayMs: 500 } })
    const errors: string[] = []
    monitor.on('error', (e) => errors.push(`${e.code}`))
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown) => unhandled.push(e)
    process.on('unhandledRejection', onUnhandled)
    let recorded = 0
    const record = (n: number) => {
      for (let i = 0; i < n; i++, recorded++) {
        monitor.record({ direction: 'outbound', api: 'x', method: 'GET', route: '/r', statusCode: 200, durationMs: 5, cost: 0.000001 })
      }
    }
    record(5000)
    await monitor.flush()
    expect(monitor.health().written).toBe(5000)
    cluster.stop('fast')
    for (let round = 0; round < 10; round++) {
      expect(() => record(1000)).not.toThrow()
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(monitor.health().failedWrites).toBeGreaterThan(0)
    expect(monitor.health().queued).toBe(10_000)
    cluster.start()
    record(5000)
    await monitor.flush({ timeoutMs: 60_000 })
    expect(monitor.health()).toMatchObject({ written: recorded, dropped: 0, queued: 0, invalid: 0 })
    expect(errors).toContain('WRITE_FAILED')
    expect((await monitor.stats.summary()).requests).toBe(recorded)
    expect((await monitor.stats.summary()).cost).toBe(recorded / 1e6)
    process.off('unhandledRejection', onUnhandled)
    expect(unhandled).toEqual([])
    await monitor.close()
  }, 180_000)
})
