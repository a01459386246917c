import { writeFileSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { createMonitor } from '@apimeter/core'
import { postgresStorage } from '@apimeter/storage-postgres'
import { webhookReceiver } from '../../core/test/alerts/harness.js'
import { probeTarget } from '../../core/test/probes/harness.js'
import { tempDir } from '../../storage-sqlite/test/helpers.js'
import { waitFor } from '../../../test/support/http.js'
import { runFixture } from '../../../test/support/run-fixture.js'
import { freshSchema, query, testUrl } from './helpers.js'

describe('probes with several processes on one PostgreSQL database, on their own timers', () => {
  const cleanups: (() => unknown)[] = []
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  it('3 processes: every 200 ms round runs once, and the outage is one incident, notified once', async () => {
    const { schema, drop } = await freshSchema('probeprocs')
    cleanups.push(drop)
    const tmp = tempDir('apimeter-probe-procs-')
    cleanups.push(() => tmp.remove())
    const stopFile = tmp.file('stop')
    const target = await probeTarget()
    cleanups.push(target.close)
    const hook = await webhookReceiver()
    cleanups.push(hook.close)
    // migrate once before the children start; this monitor only reads
    const reader = createMonitor({ logger: false, flushOnExit: false, runProbes: false, storage: postgresStorage({ connectionString: testUrl(), schema }) })
    cleanups.push(() => reader.close())
    await reader.stats.summary()
    const checks = async () => query<{ at: string; ok: number; instance: string }>(`SELECT at, ok, instance FROM apimeter_probe_checks ORDER BY at`, schema)

    const children = ['p1', 'p2', 'p3'].map((name) => runFixture(new URL('./fixtures/probe-child.ts', import.meta.url), [testUrl(), schema, target.url, hook.url, name, stopFile], 180_000))
    await waitFor(async () => (await checks()).length >= 10, 'ten rounds while the target is up', 120_000)
    await target.down()
    await waitFor(() => hook.received.length >= 1, 'the incident to open', 60_000)
    await target.up()
    await waitFor(() => hook.received.length >= 2, 'the incident to resolve', 60_000)
    await waitFor(async () => (await checks()).length >= 40, 'more rounds', 60_000)
    writeFileSync(stopFile, '')
    const reports = (await Promise.all(children)).map((r) => {
      expect(r.code, r.stderr).toBe(0)
      return JSON.parse(r.stdout) as { name: string; notified: string[]; rounds: number; errors: string[]; timedOut: boolean }
    })
    for (const r of reports) {
      expect(r.errors, r.name).toEqual([])
      expect(r.timedOut, r.name).toBe(false)
    }

    const stored = await checks()
    // each 200 ms round was run by one process only: no round holds two checks
    const rounds = stored.map((c) => Math.floor(Number(c.at) / 200))
    expect(new Set(rounds).size).toBe(rounds.length)
    // every up check was one request to the target (the down ones found it closed)
    expect(target.hits()).toBe(stored.filter((c) => Number(c.ok) === 1).length)
    // the processes ran rounds between them, as many as stored
    expect(reports.reduce((n, r) => n + r.rounds, 0)).toBe(stored.length)
    // one incident, opened once and resolved once across the three processes and at the webhook
    const incidents = await reader.probes.incidents({ name: 'dep', from: 0 })
    expect(incidents).toHaveLength(1)
    const id = incidents[0]!.id
    expect(reports.flatMap((r) => r.notified).sort()).toEqual([`opened ${id}`, `resolved ${id}`])
    expect(hook.received.map((r) => `${r.body.state} ${r.body.id}`)).toEqual([`opened ${id}`, `resolved ${id}`])
    expect(incidents[0]!.cause).toBe('connection_refused')
  }, 240_000)
})
