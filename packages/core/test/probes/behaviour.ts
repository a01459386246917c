import { timingSafeEqual } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { createMonitor, type IncidentEvent, type Monitor, type ProbeDefinition, SIGNATURE_HEADER, signWebhookBody, type StorageAdapter } from '@apimeter/core'
import { webhookReceiver } from '../alerts/harness.js'
import { probeClock, probeTarget } from './harness.js'

/** A storage for one test, and what removes it afterwards. */
export type StorageFactory = () => Promise<{ storage: StorageAdapter; cleanup?: () => Promise<void> }>
/** Several storages on one database (a fleet), and what removes them. */
export type FleetFactory = (n: number) => Promise<{ storages: StorageAdapter[]; cleanup?: () => Promise<void> }>

const SECOND = 1000
// a Monday, 10:00:00 UTC: round boundaries of every interval below fall on it
const T0 = Date.UTC(2026, 2, 2, 10, 0, 0)

/**
 * Probe behaviour on one kind of storage, against a real loopback server that goes down and comes back, time driven
 * by an injected clock and `monitor.probes.runOnce()`.
 */
export function probeBehaviour(kind: string, makeStorage: StorageFactory): void {
  describe(`probes on ${kind} storage`, () => {
    const cleanups: (() => unknown)[] = []
    afterEach(async () => {
      for (const c of cleanups.reverse()) await c()
      cleanups.length = 0
    })

    async function setup(probes: (url: string) => ProbeDefinition[]) {
      const target = await probeTarget()
      cleanups.push(target.close)
      const { storage, cleanup } = await makeStorage()
      if (cleanup) cleanups.push(cleanup)
      const clock = probeClock(T0)
      const events: IncidentEvent[] = []
      const errors: string[] = []
      const monitor = createMonitor({ storage, clock, runProbes: false, logger: false, flushOnExit: false, probes: probes(target.url) })
      monitor.on('incident', (e) => void events.push(e))
      monitor.on('error', (e) => void errors.push(e.message))
      cleanups.push(() => monitor.close())
      return { target, clock, monitor, events, errors }
    }

    /** Runs one round per step, `intervalMs` apart, `before` setting the target up for each. */
    async function rounds(monitor: Monitor, clock: { advance(ms: number): void }, steps: readonly (() => unknown)[], intervalMs: number): Promise<void> {
      for (const before of steps) {
        await before()
        const results = await monitor.probes.runOnce()
        for (const r of results) expect(r.ran, `${r.probe} ran its round`).toBe(true)
        clock.advance(intervalMs)
      }
    }

    it('opens an incident after exactly 3 failures and resolves it after 2 successes; durations and uptime agree with the checks', async () => {
      const hook = await webhookReceiver()
      cleanups.push(hook.close)
      const { target, clock, monitor, events, errors } = await setup((url) => [
        { name: 'api', url, intervalMs: 10 * SECOND, timeoutMs: 2000, expect: { status: [200], jsonPath: 'checks[0].status', equals: 'pass' }, notify: [{ webhook: hook.url, secret: 's3cret' }] },
        // the same target, with a maintenance window over the 3rd and 4th failure: no incident, and left out of uptime
        { name: 'api-maint', url, intervalMs: 10 * SECOND, timeoutMs: 2000, maintenance: [{ from: T0 + 25 * SECOND, to: T0 + 45 * SECOND }] },
      ])
      const up = () => target.up()
      const down = () => target.down()
      // t0 ok, 10s ok, 20s ✗, 30s ✗, 40s ✗ (opens, from 20s), 50s ok, 60s ok (resolves, at 50s), 70s ok
      await rounds(monitor, clock, [up, up, down, down, down, up, up, up], 10 * SECOND)
      expect(errors).toEqual([])

      const checks = await monitor.probes.checks({ name: 'api', from: T0, to: T0 + 80 * SECOND })
      expect(checks.map((c) => [c.at.getTime() - T0, c.ok, c.cause])).toEqual([
        [0, true, null],
        [10_000, true, null],
        [20_000, false, 'connection_refused'],
        [30_000, false, 'connection_refused'],
        [40_000, false, 'connection_refused'],
        [50_000, true, null],
        [60_000, true, null],
        [70_000, true, null],
      ])
      expect(checks.filter((c) => c.ok).every((c) => c.statusCode === 200 && c.durationMs > 0)).toBe(true)

      // exactly one incident: opened by the 3rd failure, from the 1st; resolved by the 2nd success, from the 1st
      expect(events.map((e) => [e.probe, e.state, e.at.getTime() - T0])).toEqual([
        ['api', 'opened', 40_000],
        ['api', 'resolved', 60_000],
      ])
      const incidents = await monitor.probes.incidents({ name: 'api', from: T0, to: T0 + 80 * SECOND })
      expect(incidents).toEqual([
        { id: events[0]!.id, probe: 'api', openedAt: new Date(T0 + 20_000), resolvedAt: new Date(T0 + 50_000), durationMs: 30_000, cause: 'connection_refused', error: expect.stringMatching(/ECONNREFUSED/) },
      ])
      expect(events[1]).toMatchObject({ id: events[0]!.id, cause: 'connection_refused', openedAt: new Date(T0 + 20_000), resolvedAt: new Date(T0 + 50_000), durationMs: 30_000 })
      expect(await monitor.probes.incidents({ name: 'api-maint', from: T0 })).toEqual([])

      // the webhook got each transition once, signed
      expect(hook.received.map((r) => JSON.parse(r.raw) as { probe: string; state: string }).map((b) => `${b.probe} ${b.state}`)).toEqual(['api opened', 'api resolved'])
      for (const r of hook.received) {
        expect(timingSafeEqual(Buffer.from(String(r.headers[SIGNATURE_HEADER])), Buffer.from(signWebhookBody(r.raw, 's3cret')))).toBe(true)
      }

      // uptime over [t0, t0 + 80 s): computed here from the stored checks and incidents, and by the SDK
      const uptime = await monitor.probes.uptime({ name: 'api', from: T0, to: T0 + 80 * SECOND })
      const ok = checks.filter((c) => c.ok).length
      const down30 = incidents[0]!.durationMs!
      expect(uptime).toEqual({ checks: checks.length, ok, ratio: ok / checks.length, timeRatio: (80_000 - down30) / 80_000, downtimeMs: down30, observedMs: 80_000, incidents: 1 })
      expect(uptime).toMatchObject({ checks: 8, ok: 5, ratio: 5 / 8, timeRatio: 0.625, downtimeMs: 30_000 })

      // maintenance [25 s, 45 s): the 30 s and 40 s checks are left out, and so is the window's time
      const maint = await monitor.probes.uptime({ name: 'api-maint', from: T0, to: T0 + 80 * SECOND })
      expect(maint).toEqual({ checks: 6, ok: 5, ratio: 5 / 6, timeRatio: 1, downtimeMs: 0, observedMs: 60_000, incidents: 0 })

      // status: both up, with their last check
      const status = await monitor.probes.status()
      expect(status.map((s) => [s.name, s.state, s.lastCheck?.at.getTime(), s.openIncident])).toEqual([
        ['api', 'up', T0 + 70_000, null],
        ['api-maint', 'up', T0 + 70_000, null],
      ])
      // checks are not calls
      expect((await monitor.stats.summary({ from: T0 - 3_600_000, to: T0 + 3_600_000 })).requests).toBe(0)
    })

    it('tells apart a refused connection, a timeout, a slow response, a wrong status, body and JSON value', async () => {
      const { target, clock, monitor } = await setup((url) => [
        { name: 'api', url, intervalMs: 10 * SECOND, timeoutMs: 300, expect: { status: [200], bodyIncludes: '"status"', jsonPath: '$.checks[0].status', equals: 'pass', maxDurationMs: 150 } },
      ])
      const steps: [() => unknown, string | null][] = [
        [() => target.mode({ kind: 'up' }), null],
        [() => target.mode({ kind: 'hang' }), 'timeout'],
        [() => target.mode({ kind: 'slow', delayMs: 200 }), 'slow'],
        [() => target.mode({ kind: 'status', status: 503 }), 'status'],
        [() => target.mode({ kind: 'body', body: 'plain text' }), 'body'],
        [() => target.mode({ kind: 'body', body: '{"status":"ok","checks":[{"status":"fail"}]}' }), 'json'],
        [() => target.down(), 'connection_refused'],
      ]
      await rounds(monitor, clock, steps.map(([before]) => before), 10 * SECOND)
      const checks = await monitor.probes.checks({ name: 'api', from: T0 })
      expect(checks.map((c) => c.cause)).toEqual(steps.map(([, cause]) => cause))
      expect(checks[1]).toMatchObject({ statusCode: null, error: 'timed out after 300 ms' })
      expect(checks[1]!.durationMs).toBeGreaterThanOrEqual(290)
      expect(checks[2]!.durationMs).toBeGreaterThan(150)
      expect(checks[2]).toMatchObject({ statusCode: 200, error: expect.stringMatching(/more than 150 ms/) })
      expect(checks[3]).toMatchObject({ statusCode: 503, error: 'HTTP 503, expected 200' })
      expect(checks[5]!.error).toBe('$.checks[0].status is "fail", expected "pass"')
      // 6 failures in a row: one incident, opened by the third (a wrong status), from the first (a timeout)
      const [incident] = await monitor.probes.incidents({ name: 'api', from: T0 })
      expect(incident).toMatchObject({ openedAt: new Date(T0 + 10 * SECOND), resolvedAt: null, durationMs: null, cause: 'status' })
      const [status] = await monitor.probes.status()
      expect(status).toMatchObject({ state: 'down', failures: 6, openIncident: { id: incident!.id } })
      // an open incident counts as downtime up to now
      const uptime = await monitor.probes.uptime({ name: 'api', from: T0, to: T0 + 70 * SECOND })
      expect(uptime).toMatchObject({ checks: 7, ok: 1, downtimeMs: 60_000, observedMs: 70_000, incidents: 1 })
    })

    it('keeps checks out of call stats unless a probe asks (recordCall)', async () => {
      const { target, clock, monitor } = await setup((url) => [
        { name: 'rec', url, intervalMs: 10 * SECOND, timeoutMs: 2000, recordCall: true },
        { name: 'plain', url, intervalMs: 10 * SECOND, timeoutMs: 2000 },
      ])
      await rounds(monitor, clock, [() => target.up(), () => target.down()], 10 * SECOND)
      expect((await monitor.probes.checks({ from: T0 })).length).toBe(4)
      await monitor.flush()
      const range = { from: T0, to: T0 + 60 * SECOND }
      expect(await monitor.stats.summary(range)).toMatchObject({ requests: 2, errors: 1 })
      expect(await monitor.stats.summary({ ...range, api: 'probe:rec' })).toMatchObject({ requests: 2, errors: 1, outcomes: { success: 1, network_error: 1 } })
    })

    it('heartbeats: late opens a heartbeat_late incident at the deadline, the next beat resolves it', async () => {
      const { clock, monitor, events } = await setup(() => [{ name: 'nightly', heartbeat: { everyMs: 60 * SECOND, graceMs: 10 * SECOND }, intervalMs: 5 * SECOND }])
      expect(await monitor.probes.heartbeat('nightly')).toBe(true) // at t0
      clock.advance(65 * SECOND)
      expect((await monitor.probes.runOnce())[0]).toMatchObject({ ran: true, checks: [] }) // due at 70 s: not late yet
      clock.advance(10 * SECOND)
      const [late] = await monitor.probes.runOnce()
      expect(late!.checks.map((c) => [c.at.getTime() - T0, c.ok, c.cause])).toEqual([[70_000, false, 'heartbeat_late']])
      clock.advance(5 * SECOND)
      expect((await monitor.probes.runOnce())[0]!.checks).toEqual([]) // already down: nothing more to record
      clock.advance(20 * SECOND)
      expect(await monitor.probes.heartbeat('nightly')).toBe(true) // at 100 s
      expect(events.map((e) => [e.state, e.cause, e.openedAt.getTime() - T0, e.resolvedAt && e.resolvedAt.getTime() - T0])).toEqual([
        ['opened', 'heartbeat_late', 70_000, null],
        ['resolved', 'heartbeat_late', 70_000, 100_000],
      ])
      expect(events[1]!.durationMs).toBe(30_000)
      clock.advance(20 * SECOND) // uptime counts time up to now at most
      const uptime = await monitor.probes.uptime({ name: 'nightly', from: T0, to: T0 + 120 * SECOND })
      expect(uptime).toEqual({ checks: 3, ok: 2, ratio: 2 / 3, timeRatio: 90 / 120, downtimeMs: 30_000, observedMs: 120_000, incidents: 1 })
      // unknown names are reported, not thrown
      expect(await monitor.probes.heartbeat('nope')).toBe(false)
    })

    it('runs on its own timer (unref’d) and stops on close()', async () => {
      const target = await probeTarget()
      cleanups.push(target.close)
      const { storage, cleanup } = await makeStorage()
      if (cleanup) cleanups.push(cleanup)
      const monitor = createMonitor({ storage, logger: false, flushOnExit: false, probes: [{ name: 'live', url: target.url, intervalMs: 100, timeoutMs: 1000 }] })
      const deadline = Date.now() + 20_000
      while (target.hits() < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      await monitor.close()
      const hits = target.hits()
      expect(hits).toBeGreaterThanOrEqual(3)
      await new Promise((r) => setTimeout(r, 300))
      expect(target.hits()).toBe(hits)
      expect(monitor.health().probes).toMatchObject({ probes: 1, failedRounds: 0 })
      expect(monitor.health().probes.checks).toBeGreaterThanOrEqual(3)
    })
  })
}

/**
 * Several monitors sharing one database: each round of each probe runs on one of them, and each incident transition
 * is notified once (by `incident` events across the monitors, and at the webhook). Removing the lease makes every
 * monitor run every round: the check count and the target's hits then fail this test.
 */
export function probeFleet(kind: string, makeStorages: FleetFactory): void {
  describe(`probes on a fleet sharing ${kind}`, () => {
    it('3 monitors: each probe runs once per interval and each incident transition is notified once', async () => {
      const cleanups: (() => unknown)[] = []
      try {
        const target = await probeTarget()
        cleanups.push(target.close)
        const hook = await webhookReceiver()
        cleanups.push(hook.close)
        const { storages, cleanup } = await makeStorages(3)
        if (cleanup) cleanups.push(cleanup)
        const clock = probeClock(T0)
        const events: string[] = []
        const monitors = storages.map((storage, i) => {
          const m = createMonitor({
            storage,
            clock,
            runProbes: false,
            logger: false,
            flushOnExit: false,
            service: `m${i}`,
            probes: [{ name: 'dep', url: target.url, intervalMs: 10 * SECOND, timeoutMs: 2000, notify: [`webhook:${hook.url}`] }],
          })
          m.on('incident', (e) => void events.push(`${e.state} ${e.id}`))
          m.on('error', (e) => void events.push(`error ${e.message}`))
          cleanups.push(() => m.close())
          return m
        })
        const plan = ['up', 'up', 'down', 'down', 'down', 'down', 'up', 'up', 'up', 'down', 'down', 'down', 'up', 'up'] as const
        for (const [round, state] of plan.entries()) {
          await (state === 'up' ? target.up() : target.down())
          const before = target.hits()
          const results = (await Promise.all(monitors.map((m) => m.probes.runOnce()))).flat()
          expect(results.filter((r) => r.ran).length, `round ${round}: one monitor ran it`).toBe(1)
          if (state === 'up') expect(target.hits() - before, `round ${round}: one request`).toBe(1)
          clock.advance(10 * SECOND)
        }
        const checks = await monitors[0]!.probes.checks({ name: 'dep', from: T0 })
        expect(checks.map((c) => c.ok)).toEqual(plan.map((s) => s === 'up'))
        const incidents = await monitors[1]!.probes.incidents({ name: 'dep', from: T0 })
        expect(incidents.map((i) => [i.openedAt.getTime() - T0, i.resolvedAt!.getTime() - T0, i.durationMs])).toEqual([
          [20_000, 60_000, 40_000],
          [90_000, 120_000, 30_000],
        ])
        const ids = incidents.map((i) => i.id)
        expect(events.sort()).toEqual([`opened ${ids[0]}`, `opened ${ids[1]}`, `resolved ${ids[0]}`, `resolved ${ids[1]}`].sort())
        expect(hook.received.map((r) => `${r.body.state} ${r.body.id}`)).toEqual([`opened ${ids[0]}`, `resolved ${ids[0]}`, `opened ${ids[1]}`, `resolved ${ids[1]}`])
        // the rounds were spread over the fleet as the lease allowed, and every instance sees the same uptime
        const uptimes = await Promise.all(monitors.map((m) => m.probes.uptime({ name: 'dep', from: T0, to: T0 + 140 * SECOND })))
        for (const u of uptimes) expect(u).toEqual({ checks: 14, ok: 7, ratio: 0.5, timeRatio: 70 / 140, downtimeMs: 70_000, observedMs: 140_000, incidents: 2 })
      } finally {
        for (const c of cleanups.reverse()) await c()
      }
    })
  })
}
