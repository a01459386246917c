import { afterAll, describe, expect, it } from 'vitest'
import { createMonitor, readStored } from '@apimeter/core'
import { DAY, HOUR, makeSloStorage, MINUTE, recordAt, removeSloStorages, SLO_STORAGES, testClock } from './slos/helpers.js'

afterAll(removeSloStorages)

// a Tuesday, 15:00 UTC: the daily cost window started 15 hours ago
const N = Date.UTC(2026, 2, 3, 15, 0, 0)
const SECOND = 1000

/** An app's definitions: budgets (one grouped), an error-rate rule, an SLO with burn alerts and a heartbeat with maintenance. */
const DEFINITIONS = {
  alerts: [
    { name: 'llm-daily', kind: 'cost' as const, threshold: 2, warn: 0.5, api: 'openai' },
    { name: 'tenant-monthly', kind: 'cost' as const, threshold: 1, window: 'month' as const, groupBy: 'tenant' as const },
    { name: 'hourly-cap', kind: 'cost' as const, threshold: 5, window: '1h' },
    { name: 'errors', kind: 'error_rate' as const, threshold: 0.2, window: '1h', notify: ['log' as const] },
  ],
  slos: [{ name: 'api', objective: 0.99, window: '30d' as const, indicator: { kind: 'availability' as const, filter: { direction: 'inbound' as const } } }],
  probes: [{ name: 'nightly', heartbeat: { everyMs: 60 * SECOND, graceMs: 0 }, intervalMs: 10 * SECOND, maintenance: [{ from: N + 20 * SECOND, to: N + 30 * SECOND }] }],
}

describe.each(SLO_STORAGES)('readStored() on %s storage', (kind) => {
  it('lists what the app stored — alert states and history, budgets, probes with uptime, SLO status — as the app itself reports them, writing nothing', async () => {
    const clock = testClock(N)
    const { storage } = await makeSloStorage(kind, clock.now)
    const app = createMonitor({ storage, clock: { now: clock.now }, logger: false, flushOnExit: false, alertIntervalMs: 86_400_000, runProbes: false, ...DEFINITIONS })
    try {
      recordAt(app, N - 10 * MINUTE, 6)
      recordAt(app, N - 10 * MINUTE, 4, { statusCode: 500 })
      app.record({ direction: 'outbound', api: 'openai', method: 'POST', route: '/v1/chat/completions', statusCode: 200, durationMs: 100, timestamp: N - 2 * HOUR, tenantId: 'acme', cost: 0.75 })
      app.record({ direction: 'outbound', api: 'openai', method: 'POST', route: '/v1/chat/completions', statusCode: 200, durationMs: 100, timestamp: N - 30 * MINUTE, tenantId: 'globex', cost: 0.5 })
      app.record({ direction: 'outbound', api: 'openai', method: 'POST', route: '/v1/chat/completions', statusCode: 200, durationMs: 100, timestamp: N - 2 * DAY, tenantId: 'acme', cost: 0.5 })
      await app.flush()
      await app.alerts.evaluate()
      expect(await app.probes.heartbeat('nightly')).toBe(true)
      clock.advance(70 * SECOND)
      await app.probes.runOnce() // the beat due at +60 s is late: an incident opens
      clock.advance(10 * SECOND)

      const stored = readStored(storage, { clock: { now: clock.now } })
      const byRule = <T extends { rule: string; group?: string }>(list: T[]): T[] => [...list].sort((a, b) => `${a.rule} ${a.group}`.localeCompare(`${b.rule} ${b.group}`))
      const appActive = byRule(await app.alerts.active())
      expect(appActive.map((a) => `${a.rule} ${a.group ?? ''} ${a.state}`)).toEqual(['errors  firing', 'llm-daily  firing', 'slo:api:page  firing', 'slo:api:ticket  firing', 'tenant-monthly acme firing'])
      expect(byRule(await stored.alerts.active())).toEqual(appActive)
      expect(await stored.alerts.history({ from: N - HOUR })).toEqual(await app.alerts.history({ from: N - HOUR }))

      // every budget, firing or not, with its spend in its own window and its burn
      const budgets = await stored.alerts.budgets()
      expect(budgets).toEqual(await app.alerts.budgets())
      expect(budgets.map((b) => [b.rule, b.group ?? null, b.window, b.from.getTime(), b.spent, b.threshold, b.burn, b.state, b.severity])).toEqual([
        ['tenant-monthly', 'acme', 'month', Date.UTC(2026, 2, 1), 1.25, 1, 1.25, 'firing', 'critical'],
        ['llm-daily', null, 'day', Date.UTC(2026, 2, 3), 1.25, 2, 0.625, 'firing', 'warning'],
        ['tenant-monthly', 'globex', 'month', Date.UTC(2026, 2, 1), 0.5, 1, 0.5, 'inactive', null],
        ['hourly-cap', null, '1h', N + 80 * SECOND - HOUR, 0.5, 5, 0.1, 'inactive', null],
      ])
      expect(budgets[2]!.groups).toEqual({ tenant: 'globex' })

      const appSlos = await app.slos.status()
      expect(appSlos.map((s) => [s.name, s.good, s.total])).toEqual([['api', 6, 10]])
      expect(await stored.slos.status()).toEqual(appSlos)

      const probes = await stored.probes.status()
      expect(probes).toEqual(await app.probes.status())
      expect(probes.map((p) => [p.name, p.state, p.openIncident?.cause])).toEqual([['nightly', 'down', 'heartbeat_late']])
      // the stored maintenance window (20–30 s) is left out, as the app's own uptime leaves it out
      const range = { name: 'nightly', from: N, to: N + 80 * SECOND }
      const uptime = await stored.probes.uptime(range)
      expect(uptime).toEqual(await app.probes.uptime(range))
      expect(uptime).toMatchObject({ observedMs: 70_000, downtimeMs: 20_000 })
      await expect(stored.probes.uptime({ name: 'nope' })).rejects.toThrow(/a stored probe \(nightly\), got nope/)
      expect(await stored.problems()).toEqual([])
      // what the caller defines itself can be left out (the dashboard reads those through its monitor)
      expect((await stored.alerts.active({ except: ['errors', 'slo:api:page'] })).map((a) => a.rule).sort()).toEqual(['llm-daily', 'slo:api:ticket', 'tenant-monthly'])
      expect((await stored.alerts.budgets({ except: ['tenant-monthly'] })).map((b) => b.rule)).toEqual(['llm-daily', 'hourly-cap'])
      expect(await stored.slos.status({ except: ['api'] })).toEqual([])
      expect(await stored.probes.status({ except: ['nightly'] })).toEqual([])

      // reading wrote nothing: no transition, check or state change, even after the windows moved on
      const before = { events: await storage.alerts!.events({}), states: await storage.probes!.states(), checks: await storage.probes!.checks({}) }
      clock.advance(2 * HOUR)
      await Promise.all([stored.alerts.active(), stored.alerts.budgets(), stored.probes.status(), stored.slos.status()])
      expect({ events: await storage.alerts!.events({}), states: await storage.probes!.states(), checks: await storage.probes!.checks({}) }).toEqual(before)
    } finally {
      await app.close()
    }
  })

  it('names the stored definitions it cannot read instead of leaving them out silently', async () => {
    const clock = testClock(N)
    const { storage } = await makeSloStorage(kind, clock.now)
    const app = createMonitor({ storage, clock: { now: clock.now }, logger: false, flushOnExit: false })
    try {
      await app.flush()
      await storage.alerts!.syncRules([{ name: 'future', kind: 'error_rate', definition: JSON.stringify({ name: 'future', kind: 'error_rate', threshold: 'high' }), enabled: true }], N)
      await storage.slos!.syncSlos([{ name: 'odd', definition: JSON.stringify({ name: 'odd', objective: 2 }) }], N)
      const stored = readStored(storage, { clock: { now: clock.now } })
      const problems = await stored.problems()
      expect(problems.map((p) => [p.what, p.name])).toEqual([['alert_rule', 'future'], ['slo', 'odd']])
      expect(problems[0]!.message).toMatch(/threshold/)
      expect(await stored.alerts.active()).toEqual([])
      expect(await stored.slos.status()).toEqual([])
    } finally {
      await app.close()
    }
  })
})
