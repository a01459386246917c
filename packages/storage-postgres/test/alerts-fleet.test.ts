import { afterAll, describe, expect, it } from 'vitest'
import { createMonitor } from '@apimeter/core'
import { postgresStorage } from '@apimeter/storage-postgres'
import { webhookReceiver } from '../../core/test/alerts/harness.js'
import { waitFor } from '../../../test/support/http.js'
import { runFixture } from '../../../test/support/run-fixture.js'
import { freshSchema, query, testUrl } from './helpers.js'

describe('alerts with several instances on one PostgreSQL database', () => {
  const cleanups: (() => unknown)[] = []
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  it('3 processes evaluating the same rules back to back notify each transition exactly once (compare-and-set)', async () => {
    const { schema, drop } = await freshSchema('alerts')
    cleanups.push(drop)
    const hook = await webhookReceiver()
    cleanups.push(hook.close)
    // the writing app instance (its own monitor; the evaluators only read)
    const writer = createMonitor({ service: 'writer', logger: false, flushOnExit: false, storage: postgresStorage({ connectionString: testUrl(), schema }) })
    cleanups.push(() => writer.close())
    await writer.stats.summary() // migrates the schema before the children start
    const record = (tenantId: string, statusCode: number, n: number) => {
      for (let i = 0; i < n; i++) writer.record({ direction: 'outbound', api: 'x', method: 'GET', route: '/r', statusCode, durationMs: 5, tenantId })
    }

    const children = ['e1', 'e2', 'e3'].map((name) =>
      runFixture(new URL('./fixtures/alert-child.ts', import.meta.url), [testUrl(), schema, hook.url, name, '2'], 180_000),
    )
    await waitFor(async () => (await writer.stats.breakdown({ by: 'service', route: '/ready' })).length === 3, 'the three evaluators to start', 120_000)
    // both tenants start failing: each instance fires once
    record('acme', 500, 10)
    record('globex', 503, 10)
    await writer.flush()
    await waitFor(() => hook.received.length >= 2, 'both tenants to fire', 60_000)
    // then recover: 10 errors of 110 calls is under the 50% threshold; each instance resolves once
    record('acme', 200, 100)
    record('globex', 200, 100)
    await writer.flush()

    const runs = await Promise.all(children)
    const reports = runs.map((r) => {
      expect(r.code, r.stderr).toBe(0)
      return JSON.parse(r.stdout) as { name: string; notified: string[]; rounds: number; errors: string[]; timedOut: boolean }
    })
    const expected = ['acme firing', 'acme resolved', 'globex firing', 'globex resolved']
    // across the three processes, each transition was notified by exactly one of them…
    expect(reports.flatMap((r) => r.notified).sort()).toEqual(expected)
    // …and reached the webhook exactly once
    expect(hook.received.map((r) => `${r.body.group} ${r.body.state}`).sort()).toEqual(expected)
    for (const r of reports) {
      expect(r.errors, r.name).toEqual([])
      expect(r.timedOut, r.name).toBe(false)
      expect(r.rounds, r.name).toBeGreaterThan(10) // it evaluated before, during and after every transition
    }
    // the stored history and attempts agree
    const events = await query<{ group_key: string; state: string; id: string }>(`SELECT id, group_key, state FROM apimeter_alert_events ORDER BY id`, schema)
    expect(events.map((e) => `${e.group_key} ${e.state}`).sort()).toEqual(expected)
    const attempts = await query<{ event_id: string; status: string }>(`SELECT event_id, status FROM apimeter_alert_notifications ORDER BY id`, schema)
    expect(attempts.map((a) => `${a.event_id} ${a.status}`).sort()).toEqual(events.map((e) => `${e.id} sent`).sort())
    const state = await query<{ group_key: string; state: string; version: number }>(`SELECT group_key, state, version FROM apimeter_alert_state ORDER BY group_key`, schema)
    expect(state.map((s) => `${s.group_key} ${s.state}`)).toEqual(['acme inactive', 'globex inactive'])
    const rules = await query<{ name: string; kind: string }>(`SELECT name, kind FROM apimeter_alert_rules`, schema)
    expect(rules).toEqual([{ name: 'tenant-errors', kind: 'error_rate' }])
  }, 240_000)
})
