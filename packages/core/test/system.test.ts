import { createMonitor, memoryStorage } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { afterAll, describe, expect, it } from 'vitest'
import { waitFor } from '../../../test/support/http.js'
import { systemScenario } from '../../../test/support/system-scenario.js'
import { makeStorage, removeTempFiles, STORAGE_KINDS } from './alerts/harness.js'

afterAll(removeTempFiles)

describe('process metrics', () => {
  for (const kind of STORAGE_KINDS) {
    it(`stores samples and answers per UTC bucket (${kind} storage)`, async () => {
      const { storage } = makeStorage(kind, Date.now)
      try {
        await systemScenario(storage)
      } finally {
        await storage.close()
      }
    })
  }

  it('samples the process on an unref\'d timer while the monitor is open, and stops on close()', async () => {
    const storage = memoryStorage()
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false, system: { intervalMs: 100 } })
    const count = async () => (await monitor.stats.system({ interval: 'day' })).reduce((n, b) => n + b.samples, 0)
    await waitFor(async () => (await count()) >= 2, 'two samples')
    const samples = await storage.system!.list({})
    for (const s of samples) {
      expect(s.service).toBe('default')
      expect(s.instance).toMatch(/^.+:\d+$/)
      expect(s.intervalMs).toBeGreaterThan(0)
      expect(s.rssBytes).toBeGreaterThan(0)
      expect(s.heapUsedBytes).toBeGreaterThan(0)
      expect(s.heapTotalBytes).toBeGreaterThanOrEqual(s.heapUsedBytes)
      expect(s.eventLoopUtilization).toBeGreaterThanOrEqual(0)
      expect(s.eventLoopUtilization).toBeLessThanOrEqual(1)
      expect(s.eventLoopDelayP99Us).toBeGreaterThanOrEqual(s.eventLoopDelayP50Us)
      expect(s.eventLoopDelayMaxUs).toBeGreaterThanOrEqual(s.eventLoopDelayP99Us)
      expect(s.cpuUserUs + s.cpuSystemUs).toBeGreaterThanOrEqual(0)
      expect(s.handles).toBeGreaterThan(0)
    }
    const timer = (monitor as unknown as { system: { timer: NodeJS.Timeout } }).system.timer
    expect(timer.hasRef()).toBe(false)
    await monitor.close()
    const after = (await storage.system!.list({})).length
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect((await storage.system!.list({})).length).toBe(after)
  })

  it('a sample that cannot be stored is reported once and retried at the next interval', async () => {
    const storage = sqliteStorage({ filename: ':memory:' })
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false, system: { intervalMs: 100 } })
    const errors: string[] = []
    monitor.on('error', (e) => errors.push(e.code))
    await storage.close() // every write now fails
    await new Promise((resolve) => setTimeout(resolve, 450))
    expect(errors.filter((c) => c === 'SYSTEM_SAMPLE_FAILED')).toHaveLength(1)
    await monitor.close()
  })

  it('validates the option', () => {
    expect(() => createMonitor({ system: { intervalMs: 5 } })).toThrow(/options.system.intervalMs must be a whole number of milliseconds from 100 to 3,600,000, got 5/)
  })
})
