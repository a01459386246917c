import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createMonitor, type Monitor } from '@apimeter/core'
import { makeSloStorage, MINUTE, recordAt, removeSloStorages, SLO_STORAGES, testClock } from './helpers.js'

afterAll(removeSloStorages)

// Runs in UTC and again under TZ=America/New_York and TZ=Asia/Kolkata (vitest.config.ts, TIME_SENSITIVE): the month
// turns at 00:00 UTC whatever the server's zone (in New York, March lasts four more hours).
const MARCH_1 = Date.UTC(2026, 2, 1)
const MARCH_10 = Date.UTC(2026, 2, 10)
const APRIL_1 = Date.UTC(2026, 3, 1)

for (const kind of SLO_STORAGES) {
  describe(`calendar-month SLO on ${kind} storage (TZ=${process.env.TZ ?? 'unset'})`, () => {
    const monitors: Monitor[] = []
    afterEach(async () => {
      for (const m of monitors.splice(0)) await m.close()
    })

    it('spends March’s budget, then starts April with the whole budget at 00:00 UTC', async () => {
      const clock = testClock(APRIL_1 - 5 * MINUTE)
      const { storage } = await makeSloStorage(kind, clock.now)
      const monitor = createMonitor({ storage, clock: { now: clock.now }, logger: false, flushOnExit: false, slos: [{ name: 'monthly', objective: 0.99, window: { calendar: 'month' }, indicator: { kind: 'availability' } }] })
      monitors.push(monitor)
      recordAt(monitor, MARCH_10, 100)
      recordAt(monitor, APRIL_1 - 10 * MINUTE, 98)
      recordAt(monitor, APRIL_1 - 10 * MINUTE, 2, { statusCode: 500 })
      await monitor.flush()

      // 23:55 UTC on March 31: 200 calls, 2 bad, 1% of 200 = 2 allowed: exactly spent
      let [s] = await monitor.slos.status()
      expect(s).toMatchObject({ window: 'month', total: 200, good: 198, bad: 2, from: new Date(MARCH_1), firstDataAt: new Date(MARCH_10) })
      expect(s!.budget.allowed).toBeCloseTo(2, 12)
      expect(s!.budget.consumed).toBeCloseTo(1, 12)
      expect(s!.budget.exhausted).toBe(true)
      expect(s!.coverage).toBeCloseTo((APRIL_1 - 5 * MINUTE - MARCH_10) / (APRIL_1 - 5 * MINUTE - MARCH_1), 12)

      // 00:10 UTC on April 1: a new window with no calls yet, the whole budget left
      clock.set(APRIL_1 + 10 * MINUTE)
      ;[s] = await monitor.slos.status()
      expect(s).toMatchObject({ total: 0, good: 0, bad: 0, sli: null, from: new Date(APRIL_1), coverage: 0, firstDataAt: null })
      expect(s!.budget).toEqual({ allowed: 0, consumed: 0, remaining: 1, exhausted: false })
      // burn rates are about the last minutes' traffic, across the month turn: 2 bad of 100 over 30m is 2× the budget
      expect(s!.burnRates['30m']).toBeCloseTo(2, 12)
      expect(s!.burnRates['5m']).toBe(0)

      recordAt(monitor, APRIL_1 + 5 * MINUTE, 10)
      await monitor.flush()
      ;[s] = await monitor.slos.status()
      expect(s).toMatchObject({ total: 10, good: 10, sli: 1, firstDataAt: new Date(APRIL_1 + 5 * MINUTE) })
      expect(s!.budget.remaining).toBe(1)
      expect(s!.coverage).toBeCloseTo(0.5, 12)
    })
  })
}
