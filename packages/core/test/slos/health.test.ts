import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createMonitor, createStats, DEFAULT_HEALTH_THRESHOLDS, type Monitor, type SloDefinition } from '@apimeter/core'
import { DAY, makeSloStorage, MINUTE, recordAt, removeSloStorages, SLO_STORAGES, testClock } from './helpers.js'

afterAll(removeSloStorages)

const N = Date.UTC(2026, 5, 15, 9, 30, 0)
const PAY: SloDefinition = { name: 'pay', objective: 0.99, window: '30d', indicator: { kind: 'availability', filter: { route: '/api/pay' } } }

function seed(monitor: Monitor): void {
  const at = (tenantId: string, n: number, extra: Parameters<typeof recordAt>[3] = {}, t = N - 10 * MINUTE) => recordAt(monitor, t, n, { route: '/api', tenantId, ...extra })
  at('acme', 100)
  at('bolt', 98)
  at('bolt', 2, { statusCode: 500 }) // 2% server errors: degraded
  at('core', 90)
  at('core', 10, { statusCode: undefined, outcome: 'timeout' }) // 10%: critical
  at('core', 30, { statusCode: 404 }) // client errors are not the service's failures: not counted
  at('dyna', 20, { durationMs: 1500 }) // p95 1500 ms: degraded
  at('echo', 20, { durationMs: 4000 }) // p95 4000 ms: critical
  at('fizz', 5, { statusCode: 500 }) // 5 calls: fewer than minRequests (10), not judged
  // the pay SLO, per tenant over its 30 days (outside the last hour)
  at('gold', 992, { route: '/api/pay' }, N - 5 * DAY)
  at('gold', 8, { route: '/api/pay', statusCode: 502 }, N - 5 * DAY) // 8 of 10 allowed: 20% left, degraded
  at('hulk', 99, { route: '/api/pay' }, N - 5 * DAY)
  at('hulk', 1, { route: '/api/pay', statusCode: 500 }, N - 5 * DAY) // 1 of 1 allowed: 0% left, critical
}

for (const kind of SLO_STORAGES) {
  describe(`stats.health on ${kind} storage`, () => {
    const monitors: Monitor[] = []
    afterEach(async () => {
      for (const m of monitors.splice(0)) await m.close()
    })

    it('by tenant: each level with its reasons (error rate, p95, SLO budget)', async () => {
      const clock = testClock(N)
      const { storage } = await makeSloStorage(kind, clock.now)
      const monitor = createMonitor({ storage, clock: { now: clock.now }, logger: false, flushOnExit: false, slos: [PAY] })
      monitors.push(monitor)
      seed(monitor)
      await monitor.flush()

      const rows = await monitor.stats.health({ by: 'tenant' })
      const brief = rows.map((r) => `${r.key} ${r.status} ${r.reasons.map((x) => `${x.metric}:${x.level}:${+x.value.toFixed(4)}≥${x.threshold}${x.slo ? `:${x.slo}` : ''}`).join(',')}`.trim())
      expect(brief).toEqual([
        'core critical errorRate:critical:0.0769≥0.05', // 10 of 130 calls
        'echo critical p95:critical:4000≥3000',
        'hulk critical sloBudget:critical:0≥0:pay',
        'bolt degraded errorRate:degraded:0.02≥0.01',
        'dyna degraded p95:degraded:1500≥1000',
        'gold degraded sloBudget:degraded:0.2≥0.25:pay',
        'acme healthy',
        'fizz healthy',
      ])
      expect(rows.find((r) => r.key === 'core')).toMatchObject({ requests: 130, p95: 20, reasons: [{ text: 'error rate 7.69% is at or above 5%' }] })
      expect(rows.find((r) => r.key === 'gold')).toMatchObject({ requests: 0, errorRate: null, p95: null, reasons: [{ text: 'SLO pay: 20% of the error budget left, at or below 25%' }] })
      expect(rows.find((r) => r.key === 'fizz')).toMatchObject({ requests: 5, errorRate: 1 })

      // configurable thresholds; the defaults are documented
      expect(DEFAULT_HEALTH_THRESHOLDS).toEqual({ errorRate: { degraded: 0.01, critical: 0.05 }, p95Ms: { degraded: 1000, critical: 3000 }, budgetRemaining: { degraded: 0.25, critical: 0 }, minRequests: 10 })
      const custom = await monitor.stats.health({ by: 'tenant', slos: [], thresholds: { errorRate: { degraded: 0.03, critical: 0.08 }, p95Ms: { critical: 5000 }, minRequests: 5 } })
      expect(custom.map((r) => `${r.key} ${r.status}`)).toEqual(['fizz critical', 'core degraded', 'dyna degraded', 'echo degraded', 'acme healthy', 'bolt healthy'])

      // the same from the storage alone, SLOs given to createStats; by route and api too
      const stats = createStats(storage, { clock: { now: clock.now }, slos: [PAY] })
      expect(await stats.health({ by: 'tenant' })).toEqual(rows)
      expect((await stats.health({ by: 'route', from: '-30d' })).map((r) => `${r.key} ${r.status}`)).toEqual(['/api critical', '/api/pay degraded'])
      await expect(stats.health({ by: 'user' as 'tenant' })).rejects.toThrow(/query\.by must be one of tenant, api, route/)
    })
  })
}
