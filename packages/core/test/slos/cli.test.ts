import { afterAll, describe, expect, it } from 'vitest'
import { createMonitor, type SloDefinition, type SloStatus } from '@apimeter/core'
import { binExitCode, cli } from '../../../../test/support/cli.js'
import { HOUR, makeSloStorage, recordAt, removeSloStorages, testClock } from './helpers.js'

afterAll(removeSloStorages)

const N = Date.UTC(2026, 4, 10, 8, 0, 0)
const AT = new Date(N).toISOString()
// 1000 calls to /checkout with 5 server errors: 99.9% allows 1 bad call (budget exhausted), 99% allows 10 (half spent)
const STRICT: SloDefinition = { name: 'checkout-strict', objective: 0.999, window: '30d', indicator: { kind: 'availability', filter: { route: '/checkout' } }, notify: [{ webhook: 'https://hooks.example/x', secret: 'do-not-store' }] }
const LOOSE: SloDefinition = { name: 'checkout-loose', objective: 0.99, window: '7d', indicator: { kind: 'availability', filter: { route: '/checkout' } } }

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`apimeter slos status on ${kind}`, () => {
    it('reads the stored SLOs and exits 1 when a budget is exhausted, 0 otherwise', async () => {
      const clock = testClock(N)
      const { storage, db } = await makeSloStorage(kind, clock.now, { ownDatabase: true })
      const monitor = createMonitor({ storage, clock: { now: clock.now }, logger: false, flushOnExit: false, slos: [STRICT, LOOSE] })
      recordAt(monitor, N - 2 * HOUR, 995)
      recordAt(monitor, N - 2 * HOUR, 5, { statusCode: 500 })
      await monitor.slos.status() // stores the definitions (also done in the background at start)
      await monitor.close()

      const all = await cli('slos', 'status', '--db', db!, '--at', AT)
      expect(all.code).toBe(1)
      expect(all.err).toMatch(/error budget exhausted: checkout-strict\n/)
      expect(all.out).toMatch(/checkout-strict {2}EXHAUSTED/)
      expect(all.out).toMatch(/budget consumed 500\.00% {2}remaining -400\.00%/) // 5 bad of 1 allowed

      const loose = await cli('slos', 'status', '--db', db!, '--at', AT, '--name', 'checkout-loose', '--json')
      expect(loose.code).toBe(0)
      const [status] = JSON.parse(loose.out) as (Omit<SloStatus, 'from' | 'to'> & { from: string })[]
      expect(status).toMatchObject({ name: 'checkout-loose', good: 995, total: 1000, bad: 5, from: new Date(N - 7 * 24 * HOUR).toISOString() })
      expect(status!.budget.consumed).toBeCloseTo(0.5, 12)
      expect(status!.budget.exhausted).toBe(false)

      expect(await cli('slos', 'status', '--db', db!, '--at', AT, '--name', 'nope')).toMatchObject({ code: 1, err: expect.stringMatching(/no SLO named 'nope' is stored \(stored: checkout-loose, checkout-strict\)/) })
      // the stored definition has no secret
      expect(JSON.stringify(await cli('slos', 'status', '--db', db!, '--json'))).not.toMatch(/do-not-store/)

      // the real bin, as a pipeline runs it: the process's exit code gates
      const run = (...args: string[]) => binExitCode('slos', 'status', '--db', db!, '--at', AT, ...args)
      expect(await run()).toBe(1)
      expect(await run('--name', 'checkout-loose')).toBe(0)
    })
  })
}

describe('apimeter slos (command line)', () => {
  it('exits 2 on a wrong command line and 1 when no SLO is stored', async () => {
    expect(await cli('slos')).toMatchObject({ code: 2, err: expect.stringMatching(/slos needs a subcommand: status/) })
    expect(await cli('slos', 'status')).toMatchObject({ code: 2, err: expect.stringMatching(/needs --db/) })
    expect(await cli('slos', 'status', '--db', 'x.db', '--at', 'yesterday')).toMatchObject({ code: 2, err: expect.stringMatching(/--at must be/) })
    expect((await cli('slos', '--help')).out).toMatch(/Exits 1 when any error budget is exhausted/)
    const clock = testClock(N)
    const { storage, db } = await makeSloStorage('sqlite', clock.now)
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false })
    await monitor.stats.summary() // creates and migrates the file
    await monitor.close()
    expect(await cli('slos', 'status', '--db', db!)).toMatchObject({ code: 1, err: expect.stringMatching(/no SLOs are stored/) })
  })
})
