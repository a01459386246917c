import { describe, expect, it } from 'vitest'
import { memoryStorage } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { tempDir } from '../../../storage-sqlite/test/helpers.js'
import { probeBehaviour, probeFleet } from './behaviour.js'

probeBehaviour('memory', async () => ({ storage: memoryStorage() }))

probeBehaviour('SQLite', async () => {
  const tmp = tempDir('apimeter-probes-')
  return { storage: sqliteStorage({ filename: tmp.file() }), cleanup: async () => tmp.remove() }
})

// three storages on one file: each runs its own worker thread and connection, as separate processes would
probeFleet('one SQLite file', async (n) => {
  const tmp = tempDir('apimeter-probes-fleet-')
  const file = tmp.file()
  return { storages: Array.from({ length: n }, () => sqliteStorage({ filename: file })), cleanup: async () => tmp.remove() }
})

describe('probe checks on SQLite', () => {
  it('are deleted with raw calls (retention.raw); incidents are kept', async () => {
    const tmp = tempDir('apimeter-probes-retention-')
    const T0 = Date.UTC(2026, 2, 2, 10)
    let now = T0
    const storage = sqliteStorage({ filename: tmp.file(), retention: { raw: '1d' }, now: () => now })
    try {
      const store = storage.probes!
      const check = (at: number, ok: boolean) => ({ probe: 'p', at, ok, statusCode: ok ? 200 : 503, durationMs: 5, cause: ok ? null : ('status' as const), error: ok ? null : 'HTTP 503', instance: 'test' })
      const idle = { probe: 'p', failures: 0, failingSince: null, successes: 0, recoveringSince: null, lastOkAt: null, firstCheckAt: T0 }
      expect(await store.record({ check: check(T0, false), expectedVersion: 0, next: { ...idle, status: 'down', failures: 1, failingSince: T0, lastCheckAt: T0 }, open: { openedAt: T0, cause: 'status', error: 'HTTP 503' } })).toEqual({ applied: true, incidentId: 1 })
      expect(await store.record({ check: check(T0 + 1000, true), expectedVersion: 0, next: { ...idle, status: 'up', lastCheckAt: T0 + 1000 } })).toEqual({ applied: false, incidentId: null })
      const later = T0 + 3 * 86_400_000
      expect(await store.record({ check: check(later, true), expectedVersion: 1, next: { ...idle, status: 'up', successes: 1, recoveringSince: later, lastCheckAt: later, lastOkAt: later }, resolve: { id: 1, resolvedAt: later } })).toEqual({ applied: true, incidentId: 1 })
      now = later + 3_600_000
      await storage.maintain()
      expect((await store.checks({ probe: 'p' })).map((c) => c.at)).toEqual([later])
      expect(await store.incidents({ probe: 'p' })).toEqual([{ id: 1, probe: 'p', openedAt: T0, resolvedAt: later, durationMs: later - T0, cause: 'status', error: 'HTTP 503' }])
    } finally {
      await storage.close()
      tmp.remove()
    }
  })
})
