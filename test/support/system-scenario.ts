import { createStats, type StorageAdapter, type SystemSample } from '@apimeter/core'
import { expect } from 'vitest'

const HOUR = 3_600_000
const T0 = Date.UTC(2026, 2, 2, 10, 0, 0)

function sample(at: number, instance: string, over: Partial<SystemSample> = {}): SystemSample {
  return {
    at,
    service: 'svc',
    instance,
    intervalMs: 10_000,
    eventLoopDelayP50Us: 100,
    eventLoopDelayP99Us: 1000,
    eventLoopDelayMaxUs: 2000,
    eventLoopUtilization: 0.25,
    cpuUserUs: 1_000_000,
    cpuSystemUs: 500_000,
    rssBytes: 100_000_000,
    heapUsedBytes: 40_000_000,
    heapTotalBytes: 60_000_000,
    handles: 10,
    ...over,
  }
}

/** Stored samples come back per UTC bucket with the documented aggregates, filtered by time, service and instance. */
export async function systemScenario(storage: StorageAdapter): Promise<void> {
  await storage.system!.write([
    sample(T0 + 1000, 'a:1'),
    sample(T0 + 2000, 'b:2', { eventLoopDelayP50Us: 300, eventLoopDelayP99Us: 5000, eventLoopDelayMaxUs: 9000, eventLoopUtilization: 0.75, rssBytes: 300_000_000, handles: 30 }),
    sample(T0 + HOUR + 5, 'a:1', { cpuUserUs: 3_000_000, cpuSystemUs: 1_000_000 }),
    sample(T0 + 2 * HOUR, 'c:3', { service: 'other' }),
  ])
  const stats = createStats(storage, { clock: { now: () => T0 + 3 * HOUR } })
  const hourly = await stats.system({ from: T0, to: T0 + 2 * HOUR, interval: 'hour' })
  expect(hourly).toEqual([
    {
      start: new Date(T0),
      samples: 2,
      instances: 2,
      eventLoopDelayUs: { p50: 200, p99: 5000, max: 9000 },
      eventLoopUtilization: { avg: 0.5, max: 0.75 },
      cpu: { userUs: 2_000_000, systemUs: 1_000_000, percent: 15 }, // 3 s of CPU over 20 s sampled
      rssBytes: { avg: 200_000_000, max: 300_000_000 },
      heapUsedBytes: { avg: 40_000_000, max: 40_000_000 },
      heapTotalBytes: { avg: 60_000_000, max: 60_000_000 },
      handles: { avg: 20, max: 30 },
    },
    expect.objectContaining({ start: new Date(T0 + HOUR), samples: 1, instances: 1, cpu: { userUs: 3_000_000, systemUs: 1_000_000, percent: 40 } }),
  ])
  const daily = await stats.system({ from: '-1d', interval: 'day', service: 'svc' })
  expect(daily.map((b) => [b.start.toISOString(), b.samples])).toEqual([['2026-03-02T00:00:00.000Z', 3]])
  expect((await stats.system({ interval: 'month', instance: 'c:3' })).map((b) => b.samples)).toEqual([1])
  await expect(stats.system({ interval: 'week' as 'day' })).rejects.toThrow(/query.interval must be one of minute, hour, day, month/)
}
