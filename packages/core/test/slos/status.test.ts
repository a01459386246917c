import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { type AlertEvent, createMonitor, type Monitor, type SloDefinition } from '@apimeter/core'
import { DAY, HOUR, makeSloStorage, MINUTE, recordAt, removeSloStorages, SLO_STORAGES, testClock } from './helpers.js'

afterAll(removeSloStorages)

// Thursday 2026-03-19 12:00 UTC: every call below is placed relative to it.
const N = Date.UTC(2026, 2, 19, 12, 0, 0)

const CHECKOUT: SloDefinition = { name: 'checkout', objective: 0.99, window: '30d', indicator: { kind: 'availability', filter: { route: '/checkout', direction: 'inbound' } } }
const SEARCH: SloDefinition = { name: 'search', objective: 0.9, window: '7d', indicator: { kind: 'latency', thresholdMs: 300, filter: { route: '/search' } } }

/**
 * The workload, with what each burn window sees (windows end at N):
 *
 * checkout (route /checkout, objective 0.99: error budget 1% of calls)
 *   N-31d  50 server errors           outside the 30-day window
 *   N-20d  3000 good
 *   N-2d   196 good, 4 server errors  (3d)
 *   N-3h   100 good                   (6h, 1d, 3d)
 *   N-20m  40 good, 5 timeouts, 5 server errors   (30m … 3d)
 *   N-2m   11 good, 5 client errors (good by default), 4 network errors   (every window)
 *   N-2m   100 server errors on /other: not in the SLO
 *
 * search (route /search, latency <= 300 ms, objective 0.9)
 *   N-5d   100 × 50 ms
 *   N-90m  30 × 100 ms, 6 × 299 ms, 4 × 500 ms
 *   N-3m   5 × 300 ms, 5 × 1000 ms, 2 × 301 ms (301 ms shares the sketch bucket of 300 ms: counted good)
 */
function seed(monitor: Monitor): void {
  const at = (t: number, n: number, extra: Parameters<typeof recordAt>[3] = {}) => recordAt(monitor, t, n, extra)
  at(N - 31 * DAY, 50, { statusCode: 500 })
  at(N - 20 * DAY, 3000)
  at(N - 2 * DAY, 196)
  at(N - 2 * DAY, 4, { statusCode: 503 })
  at(N - 3 * HOUR, 100)
  at(N - 20 * MINUTE, 40)
  at(N - 20 * MINUTE, 5, { statusCode: undefined, outcome: 'timeout' })
  at(N - 20 * MINUTE, 5, { statusCode: 500 })
  at(N - 2 * MINUTE, 11)
  at(N - 2 * MINUTE, 5, { statusCode: 404 })
  at(N - 2 * MINUTE, 4, { statusCode: undefined, outcome: 'network_error' })
  at(N - 2 * MINUTE, 100, { route: '/other', statusCode: 500 })
  const search = (t: number, n: number, durationMs: number) => at(t, n, { route: '/search', method: 'GET', durationMs })
  search(N - 5 * DAY, 100, 50)
  search(N - 90 * MINUTE, 30, 100)
  search(N - 90 * MINUTE, 6, 299)
  search(N - 90 * MINUTE, 4, 500)
  search(N - 3 * MINUTE, 5, 300)
  search(N - 3 * MINUTE, 5, 1000)
  search(N - 3 * MINUTE, 2, 301)
}

const close = (a: number, b: number): void => expect(a).toBeCloseTo(b, 9)

for (const kind of SLO_STORAGES) {
  describe(`SLO status and burn alerts on ${kind} storage`, () => {
    const monitors: Monitor[] = []
    afterEach(async () => {
      for (const m of monitors.splice(0)) await m.close()
    })

    async function start() {
      const clock = testClock(N)
      const { storage } = await makeSloStorage(kind, clock.now)
      const events: AlertEvent[] = []
      const monitor = createMonitor({ storage, clock: { now: clock.now }, logger: false, flushOnExit: false, alertIntervalMs: 86_400_000, slos: [CHECKOUT, SEARCH], onAlert: (e) => void events.push(e) })
      monitors.push(monitor)
      seed(monitor)
      await monitor.flush()
      return { monitor, clock, events }
    }

    it('status equals the hand-computed SLI, budget, burn rates, alert level and coverage', async () => {
      const { monitor } = await start()
      const [checkout, search] = await monitor.slos.status()

      // checkout: 3370 calls in the window (3000 + 200 + 100 + 50 + 20), 18 bad (4 + 10 + 4)
      expect(checkout).toMatchObject({ name: 'checkout', objective: 0.99, window: '30d', indicator: 'availability', good: 3352, total: 3370, bad: 18, alert: 'page', resolution: 'raw' })
      expect(checkout!.from).toEqual(new Date(N - 30 * DAY))
      expect(checkout!.to).toEqual(new Date(N))
      close(checkout!.sli!, 3352 / 3370)
      close(checkout!.budget.allowed, 33.7) // 1% of 3370
      close(checkout!.budget.consumed, 18 / 33.7) // 0.5333…
      close(checkout!.budget.remaining, 1 - 18 / 33.7)
      expect(checkout!.budget.exhausted).toBe(false)
      // burn rate = (bad / total in the window) / 0.01
      close(checkout!.burnRates['5m'], 4 / 20 / 0.01) // 20 calls, 4 bad: 20
      close(checkout!.burnRates['30m'], 14 / 70 / 0.01) // 70 calls, 14 bad: 20
      close(checkout!.burnRates['1h'], 14 / 70 / 0.01)
      close(checkout!.burnRates['6h'], 14 / 170 / 0.01) // 8.235…
      close(checkout!.burnRates['1d'], 14 / 170 / 0.01)
      close(checkout!.burnRates['3d'], 18 / 370 / 0.01) // 4.864…
      // first call in the window 20 days ago, of a 30-day window
      close(checkout!.coverage, 20 / 30)
      expect(checkout!.firstDataAt).toEqual(new Date(N - 20 * DAY))
      expect(checkout!.latencyBound).toBeUndefined()

      // search: 152 calls; by the sketch 143 at or under 300 ms (301 ms counted good), 9 over
      expect(search).toMatchObject({ name: 'search', objective: 0.9, window: '7d', indicator: 'latency', good: 143, total: 152, bad: 9, alert: 'page' })
      close(search!.sli!, 143 / 152)
      close(search!.budget.allowed, 15.2)
      close(search!.budget.consumed, 9 / 15.2)
      close(search!.burnRates['5m'], 5 / 12 / 0.1) // 4.1667 ≥ 3.36 (= 0.02 × 168 h / 1 h) over 1h and 5m: page
      close(search!.burnRates['1h'], 5 / 12 / 0.1)
      close(search!.burnRates['6h'], 9 / 52 / 0.1)
      close(search!.burnRates['3d'], 9 / 52 / 0.1)
      close(search!.coverage, 5 / 7)
      // the stated bound: the 13 calls of the 300 ms bucket (299, 300, 301 ms) may be counted good; exact is 141
      expect(search!.latencyBound).toMatchObject({ thresholdMs: 300, goodMin: 130, uncertain: 13 })
      expect(search!.latencyBound!.edgeMs).toBeGreaterThan(300)
      expect(search!.latencyBound!.edgeMs).toBeLessThan(300 * (1 + search!.latencyBound!.relativeError))
      close(search!.latencyBound!.relativeError, 0.01 / 0.995)
      const exactGood = 100 + 30 + 6 + 5
      expect(exactGood).toBeGreaterThanOrEqual(search!.latencyBound!.goodMin)
      expect(exactGood).toBeLessThanOrEqual(search!.good)

      expect((await monitor.slos.status({ name: 'search' })).map((s) => s.name)).toEqual(['search'])
      await expect(monitor.slos.status({ name: 'nope' })).rejects.toThrow(/no SLO is named 'nope'/)
    })

    it('a page fires once and resolves once through the alert machinery; the ticket stays', async () => {
      const { monitor, clock, events } = await start()
      const brief = (list: readonly AlertEvent[]) => list.map((e) => `${e.rule} ${e.state} ${e.severity} ${+(e.value ?? NaN).toFixed(4)}`)

      // page: max(min(1h 20, 5m 20) / 14.4, min(6h 8.235, 30m 20) / 6) = 1.3889; ticket: min(3d 4.865, 6h 8.235) / 1
      const fired = await monitor.alerts.evaluate()
      expect(brief(fired)).toEqual(['slo:checkout:page firing critical 1.3889', 'slo:checkout:ticket firing warning 4.8649', 'slo:search:page firing critical 1.2401', 'slo:search:ticket firing warning 7.4176'])
      expect(fired[0]).toMatchObject({ kind: 'slo_burn', threshold: 1 })

      clock.advance(MINUTE) // both pairs still hold: nothing new
      expect(await monitor.alerts.evaluate()).toEqual([])

      // 61 minutes on, no new calls: the 1h, 30m and 5m windows are empty, so the pages resolve; 3d and 6h still burn
      clock.set(N + 61 * MINUTE)
      const resolved = await monitor.alerts.evaluate()
      expect(brief(resolved)).toEqual(['slo:checkout:page resolved critical 0', 'slo:search:page resolved critical 0'])
      expect(await monitor.alerts.evaluate()).toEqual([])
      const [checkout] = await monitor.slos.status({ name: 'checkout' })
      expect(checkout!.alert).toBe('ticket')

      await new Promise((resolve) => setImmediate(resolve))
      expect(brief(events.filter((e) => e.rule === 'slo:checkout:page'))).toEqual(['slo:checkout:page firing critical 1.3889', 'slo:checkout:page resolved critical 0'])
      expect((await monitor.alerts.history({ from: 0 })).filter((h) => h.rule === 'slo:checkout:page').map((h) => h.state)).toEqual(['firing', 'resolved'])
      expect((await monitor.alerts.active()).map((a) => `${a.rule} ${a.severity}`)).toEqual(['slo:checkout:ticket warning', 'slo:search:ticket warning'])
    })
  })
}
