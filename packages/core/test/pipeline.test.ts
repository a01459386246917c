import { describe, expect, it, vi } from 'vitest'
import { type CallInput, type CallRecord, memoryStorage } from '@apimeter/core'
import type { PackedCalls } from '@apimeter/core/sql'
import { testMonitor, tick } from './helpers/monitor.js'
import { downStorage, failingFirst, gated, packedStorage, refusingStorage } from './helpers/storages.js'
import { stagingLimit } from '../src/monitor/pipeline.js'

/** The monitor's write pipeline, to read how many rows its staging columns have room for. */
const stagingCapacity = (monitor: object): number => (monitor as { pipeline: { stagingCapacity: number } }).pipeline.stagingCapacity

const call = (i = 0): CallInput => ({ direction: 'inbound', method: 'GET', route: '/r', statusCode: 200, durationMs: i % 100, cost: 0.000001 })
const fastRetry = { initialDelayMs: 1, maxDelayMs: 5, jitter: 0 }

describe('write pipeline', () => {
  it('loses nothing when storage fails 5 times then recovers', async () => {
    const real = memoryStorage({ maxCalls: Infinity })
    const storage = failingFirst(real, 5)
    const { monitor, errors } = testMonitor({ storage, batchSize: 500, retry: fastRetry })
    for (let i = 0; i < 1200; i++) monitor.record(call(i))
    await monitor.flush()
    await tick()
    expect(real.size).toBe(1200)
    expect(storage.failed).toBe(5)
    expect(monitor.health()).toMatchObject({ queued: 0, written: 1200, dropped: 0, invalid: 0, failedWrites: 5 })
    expect(monitor.health().lastError).toMatchObject({ code: 'WRITE_FAILED' })
    expect(monitor.health().lastError!.message).toMatch(/simulated outage/)
    expect(errors.some((e) => e.code === 'WRITE_FAILED')).toBe(true)
    expect((await monitor.stats.summary()).cost).toBe(0.0012)
    await monitor.close()
  })

  it('writes a full batch without waiting for the interval', async () => {
    const { monitor, storage } = testMonitor({ batchSize: 10, flushIntervalMs: 3_600_000 })
    for (let i = 0; i < 9; i++) monitor.record(call(i))
    await tick()
    await tick()
    expect(storage.size).toBe(0)
    monitor.record(call())
    await vi.waitFor(() => expect(storage.size).toBe(10))
    await monitor.close()
  })

  it('writes a partial batch on the interval', async () => {
    const { monitor, storage } = testMonitor({ batchSize: 100, flushIntervalMs: 20 })
    for (let i = 0; i < 3; i++) monitor.record(call(i))
    expect(storage.size).toBe(0)
    await vi.waitFor(() => expect(storage.size).toBe(3), { timeout: 2000 })
    await monitor.close()
  })

  it('drops and counts the newest calls when the buffer is full, with one warning', async () => {
    const storage = gated(memoryStorage({ maxCalls: Infinity }))
    const { monitor, errors } = testMonitor({ storage, batchSize: 10, maxBufferSize: 100, flushIntervalMs: 10 })
    for (let i = 0; i < 150; i++) monitor.record(call(i))
    await tick()
    expect(monitor.health()).toMatchObject({ queued: 100, dropped: 50, written: 0 })
    expect(errors.filter((e) => e.code === 'BUFFER_OVERFLOW')).toHaveLength(1)
    for (let i = 0; i < 50; i++) monitor.record(call(i))
    expect(monitor.health().dropped).toBe(100)
    storage.open()
    await monitor.flush()
    expect(monitor.health()).toMatchObject({ queued: 0, written: 100, dropped: 100 })
    expect(storage.maxActive).toBeLessThanOrEqual(2)
    await monitor.close()
  })

  it('stages at most whole batches of about 4,096 rows, at least one batch, never more than the buffer', () => {
    expect(stagingLimit(500, 50_000)).toBe(4000)
    expect(stagingLimit(1000, 50_000)).toBe(4000)
    expect(stagingLimit(3000, 50_000)).toBe(3000)
    expect(stagingLimit(5000, 50_000)).toBe(5000)
    expect(stagingLimit(100, 300)).toBe(300)
  })

  it('gives back the staging columns a burst grew once an interval passes without a larger drain; every call written once', async () => {
    const storage = packedStorage()
    const { monitor } = testMonitor({ storage, batchSize: 500, flushIntervalMs: 20 })
    const t0 = Date.UTC(2026, 0, 1)
    // one synchronous loop: no drain runs between these calls, so the columns grow to hold them all
    for (let i = 0; i < 30_000; i++) monitor.record({ ...call(i), timestamp: t0 + i })
    expect(stagingCapacity(monitor)).toBe(32_768)
    expect(monitor.health()).toMatchObject({ queued: 30_000, dropped: 0 })
    await monitor.flush()
    await vi.waitFor(() => expect(stagingCapacity(monitor)).toBe(stagingLimit(500, 50_000)), { timeout: 2000 })
    expect(monitor.health()).toMatchObject({ queued: 0, written: 30_000, dropped: 0 })
    const rows = storage.inner.calls()
    expect(new Set(rows.map((r) => r.id)).size).toBe(30_000)
    expect(rows.map((r) => r.timestamp).sort((a, b) => a - b)).toEqual(Array.from({ length: 30_000 }, (_, i) => t0 + i))
    // shrunk columns stage and write as before, and grow again for the next burst
    for (let i = 0; i < 10_000; i++) monitor.record({ ...call(i), route: '/after', timestamp: t0 + i })
    expect(stagingCapacity(monitor)).toBe(16_000)
    await monitor.flush()
    expect(storage.inner.calls().filter((r) => r.route === '/after').map((r) => r.timestamp)).toEqual(Array.from({ length: 10_000 }, (_, i) => t0 + i))
    await monitor.close()
  })

  it('bounds concurrent writes by the option and by the storage capability', async () => {
    const a = gated(memoryStorage())
    const m1 = testMonitor({ storage: a, batchSize: 5, concurrency: 3 }).monitor
    for (let i = 0; i < 100; i++) m1.record(call(i))
    m1.flush().catch(() => undefined)
    await tick()
    expect(a.maxActive).toBe(3)
    a.open()
    await m1.close()

    const inner = memoryStorage()
    const b = gated({ ...inner, name: 'single', capabilities: { durable: false, maxWriteConcurrency: 1 }, writeCalls: inner.writeCalls, aggregate: inner.aggregate, close: inner.close })
    const m2 = testMonitor({ storage: b, batchSize: 5, concurrency: 8 }).monitor
    for (let i = 0; i < 100; i++) m2.record(call(i))
    m2.flush().catch(() => undefined)
    await tick()
    expect(b.maxActive).toBe(1)
    b.open()
    await m2.close()
  })

  it('flush() resolves only when everything recorded before it is written', async () => {
    const storage = gated(memoryStorage())
    const { monitor } = testMonitor({ storage, batchSize: 1000 })
    for (let i = 0; i < 25; i++) monitor.record(call(i))
    let flushed = false
    const flushing = monitor.flush().then(() => (flushed = true))
    await tick()
    expect(flushed).toBe(false)
    expect(monitor.health().queued).toBe(25)
    storage.open()
    await flushing
    expect(monitor.health()).toMatchObject({ queued: 0, written: 25 })
    await monitor.flush() // nothing pending: resolves at once
    await monitor.close()
  })

  it('flush({ timeoutMs }) rejects when storage is down, keeps the calls, and writes them once it is back', async () => {
    const real = memoryStorage()
    const storage = failingFirst(real, 1_000_000)
    const { monitor } = testMonitor({ storage, retry: fastRetry })
    for (let i = 0; i < 7; i++) monitor.record(call(i))
    await expect(monitor.flush({ timeoutMs: 50 })).rejects.toMatchObject({ code: 'FLUSH_TIMEOUT' })
    expect(monitor.health().queued).toBe(7)
    expect(monitor.health().failedWrites).toBeGreaterThan(1)
    // recovery: make the wrapper stop failing by swapping its failure budget
    Object.defineProperty(storage, 'writeCalls', { value: (calls: never) => real.writeCalls(calls) })
    await monitor.flush()
    expect(real.size).toBe(7)
    expect(monitor.health()).toMatchObject({ queued: 0, written: 7, dropped: 0 })
    await monitor.close()
  })

  it('gives up after retry.maxAttempts and counts the calls as dropped', async () => {
    const storage = downStorage()
    const { monitor, errors } = testMonitor({ storage, retry: { ...fastRetry, maxAttempts: 3 } })
    for (let i = 0; i < 4; i++) monitor.record(call(i))
    await monitor.flush()
    expect(storage.attempts).toBe(3)
    expect(monitor.health()).toMatchObject({ queued: 0, written: 0, dropped: 4, failedWrites: 3 })
    expect(monitor.health().lastError?.code).toBe('DROPPED')
    await tick()
    expect(errors.map((e) => e.code)).toContain('DROPPED')
    await monitor.close()
  })

  it('counts a call the storage refuses for good as rejected (not retried) even though it passed validation', async () => {
    const { monitor } = testMonitor({ storage: refusingStorage(), retry: fastRetry })
    monitor.record(call())
    await monitor.flush()
    expect(monitor.health()).toMatchObject({ written: 0, dropped: 0, rejected: 1, failedWrites: 1 })
    expect(monitor.health().lastError?.message).toMatch(/column "route" is too long/)
    await monitor.close()
  })

  it('hands a storage that takes packed batches every call packed, ids distinct, fields as recorded', async () => {
    const storage = packedStorage()
    const { monitor } = testMonitor({ storage, batchSize: 100 })
    for (let i = 0; i < 250; i++) monitor.record({ ...call(i), tenantId: `t${i % 3}`, timestamp: Date.UTC(2026, 0, 1) + i })
    await monitor.flush()
    expect(storage.packed).toBe(250)
    expect(storage.records).toBe(0)
    const rows = storage.inner.calls()
    expect(new Set(rows.map((r) => r.id)).size).toBe(250)
    expect(rows.map((r) => [r.tenantId, r.timestamp, r.durationMs])).toEqual(Array.from({ length: 250 }, (_, i) => [`t${i % 3}`, Date.UTC(2026, 0, 1) + i, i % 100]))
    expect(monitor.health()).toMatchObject({ written: 250, rejected: 0, dropped: 0 })
    await monitor.close()
  })

  it('a full batch drains whole batches only: the calls staged after it wait for the next batch or a flush, each written and counted once', async () => {
    for (const kind of ['packed', 'records'] as const) {
      const packed = packedStorage()
      // records: a storage without writePacked; packed: with it
      const storage = kind === 'packed' ? packed : { ...memoryStorage({ maxCalls: Infinity }), name: 'records' }
      const sizes: number[] = []
      const writePacked = packed.writePacked!.bind(packed)
      const writeCalls = storage.writeCalls.bind(storage)
      const writes = kind === 'packed'
        ? { writePacked: async (batch: PackedCalls) => { sizes.push(batch.count); await writePacked(batch) } }
        : { writeCalls: async (calls: readonly CallRecord[]) => { sizes.push(calls.length); await writeCalls(calls) } }
      const { monitor } = testMonitor({ storage: { ...storage, ...writes }, batchSize: 100, flushIntervalMs: 3_600_000, metrics: true })
      // 100 fill a batch; the 3 after it are staged before the drain the full batch scheduled runs
      for (let i = 0; i < 103; i++) monitor.record({ ...call(i), timestamp: Date.UTC(2026, 0, 1) + i })
      await vi.waitFor(() => expect(sizes, kind).toEqual([100]))
      await tick()
      expect(sizes, kind).toEqual([100])
      expect(monitor.health().queued, kind).toBe(3)
      // the next batch takes the 3 that waited first; of the 150 staged when its drain runs, 50 wait again
      for (let i = 103; i < 250; i++) monitor.record({ ...call(i), timestamp: Date.UTC(2026, 0, 1) + i })
      await vi.waitFor(() => expect(sizes, kind).toEqual([100, 100]))
      expect(monitor.health().queued, kind).toBe(50)
      await monitor.flush()
      expect(sizes, kind).toEqual([100, 100, 50])
      const rows = kind === 'packed' ? packed.inner.calls() : (storage as ReturnType<typeof memoryStorage>).calls()
      expect(rows.map((r) => r.timestamp), kind).toEqual(Array.from({ length: 250 }, (_, i) => Date.UTC(2026, 0, 1) + i))
      expect(new Set(rows.map((r) => r.id)).size, kind).toBe(250)
      // the live metrics saw each call once, the ones that waited included
      const histogram = (await monitor.metrics.collect()).families.find((f) => f.name === 'http.server.request.duration')!
      expect(histogram.points.reduce((n, p) => n + p.histogram!.count, 0), kind).toBe(250)
      await monitor.close()
    }
  })

  it('isolates a call a packed batch was refused for, writing the rest of the batch as records', async () => {
    const storage = packedStorage((c) => c.route === '/refused')
    const { monitor } = testMonitor({ storage, batchSize: 64, retry: fastRetry })
    for (let i = 0; i < 64; i++) monitor.record(i === 40 ? { ...call(i), route: '/refused' } : call(i))
    await monitor.flush()
    expect(storage.packed).toBe(0)
    expect(storage.records).toBe(63)
    expect(storage.inner.calls().some((c) => c.route === '/refused')).toBe(false)
    expect(monitor.health()).toMatchObject({ written: 63, rejected: 1, dropped: 0, queued: 0 })
    expect(monitor.health().lastError?.message).toMatch(/call\.route: value too long/)
    await monitor.close()
  })

  it('close() is idempotent, flushes, closes storage; record() afterwards counts a drop and never throws', async () => {
    const storage = memoryStorage()
    const { monitor, errors } = testMonitor({ storage, batchSize: 1000 })
    for (let i = 0; i < 42; i++) monitor.record(call(i))
    const first = monitor.close()
    const second = monitor.close()
    expect(second).toStrictEqual(first)
    await first
    expect(monitor.health()).toMatchObject({ written: 42, queued: 0, dropped: 0 })
    await expect(storage.writeCalls([])).rejects.toMatchObject({ code: 'STORAGE_CLOSED' })
    expect(() => monitor.record(call())).not.toThrow()
    expect(() => monitor.record(call())).not.toThrow()
    expect(monitor.health().dropped).toBe(2)
    await monitor.flush()
    await tick()
    expect(errors.filter((e) => e.code === 'DROPPED')).toHaveLength(1)
  })

  it('close() gives up after closeTimeoutMs when storage stays down, counting what it could not write', async () => {
    const storage = downStorage()
    const { monitor } = testMonitor({ storage, closeTimeoutMs: 150, retry: { initialDelayMs: 20, maxDelayMs: 40, jitter: 0 } })
    for (let i = 0; i < 30; i++) monitor.record(call(i))
    const started = performance.now()
    await monitor.close()
    const took = performance.now() - started
    expect(took).toBeGreaterThanOrEqual(100)
    expect(took).toBeLessThan(5000)
    expect(monitor.health()).toMatchObject({ queued: 0, written: 0, dropped: 30 })
    expect(storage.closed).toBe(true)
  })

  it('close() does not hang on a write that never returns', async () => {
    const storage = gated(memoryStorage()) // never opened
    const { monitor } = testMonitor({ storage, closeTimeoutMs: 50 })
    monitor.record(call())
    await monitor.close()
    expect(monitor.health()).toMatchObject({ queued: 0, dropped: 1, written: 0 })
  })

  it('health() has exactly the documented fields', async () => {
    const { monitor } = testMonitor()
    expect(Object.keys(monitor.health()).sort()).toEqual(['alerts', 'dropped', 'failedWrites', 'invalid', 'lastError', 'listenerFailures', 'plugins', 'probes', 'queued', 'rejected', 'written'])
    expect(monitor.health().lastError).toBeNull()
    await monitor.close()
  })
})
