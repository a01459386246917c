import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { brief, fakeClock, harness, type Harness, makeStorage, MINUTE, removeTempFiles, SECOND, STORAGE_KINDS, webhookReceiver } from './harness.js'

afterAll(removeTempFiles)

for (const kind of STORAGE_KINDS) {
  describe(`alert state machine on ${kind} storage`, () => {
    const open: Harness[] = []
    const receivers: { close(): Promise<void> }[] = []
    afterEach(async () => {
      for (const h of open.splice(0)) await h.monitor.close()
      for (const r of receivers.splice(0)) await r.close()
    })
    const start = async (rules: NonNullable<Parameters<typeof harness>[0]['alerts']>, extra: Parameters<typeof harness>[0] = {}) => {
      const hook = await webhookReceiver()
      receivers.push(hook)
      const clock = fakeClock()
      const { storage } = makeStorage(kind, clock.now)
      const h = harness({ ...extra, storage, alerts: rules.map((r) => ({ notify: [`webhook:${hook.url}` as const], ...r })) }, clock)
      open.push(h)
      return { h, hook }
    }

    it('inactive → pending → firing → resolved: one notification per transition on the event, the callback and the webhook', async () => {
      const { h, hook } = await start([{ name: 'errors', kind: 'error_rate', window: '5m', threshold: 0.1, for: '2m' }])
      h.record(90)
      h.record(10, { statusCode: 500 })
      expect(await h.evaluate()).toEqual([]) // 10% errors: holds → pending (not notified)
      expect((await h.monitor.alerts.active()).map((a) => `${a.state} ${a.severity} ${a.value}`)).toEqual(['pending critical 0.1'])
      h.clock.advance(MINUTE)
      expect(await h.evaluate()).toEqual([]) // still pending: held 1 of 2 minutes
      h.clock.advance(MINUTE)
      h.record(10, { statusCode: 503 })
      const fired = await h.evaluate()
      expect(brief(fired)).toEqual(['firing critical 0.1818']) // 20 errors of 110 calls
      expect(fired[0]).toMatchObject({ rule: 'errors', kind: 'error_rate', threshold: 0.1, repeated: false, service: 'default', since: new Date(h.clock.t) })
      expect(fired[0]!.text).toBe('FIRING [critical] errors: 18.18% errors, at or above 10%')
      // further evaluations while it keeps firing notify nothing
      for (let i = 0; i < 3; i++) {
        h.clock.advance(30 * SECOND)
        h.record(1, { statusCode: 500 })
        expect(await h.evaluate()).toEqual([])
      }
      expect((await h.monitor.alerts.active()).map((a) => a.state)).toEqual(['firing'])
      // recovery: the 5-minute window slides past the errors
      h.clock.advance(6 * MINUTE)
      h.record(50)
      const resolved = await h.evaluate()
      expect(brief(resolved)).toEqual(['resolved critical 0'])
      expect(resolved[0]!.text).toBe('RESOLVED errors: 0% errors (critical bound 10%)')
      h.clock.advance(MINUTE)
      expect(await h.evaluate()).toEqual([])

      expect(brief(h.alerts)).toEqual(['firing critical 0.1818', 'resolved critical 0'])
      expect(brief(h.callbacks)).toEqual(brief(h.alerts))
      expect(hook.received.map((r) => `${r.body.state} ${r.body.rule}`)).toEqual(['firing errors', 'resolved errors'])
      expect(hook.received[0]!.body.text).toBe(fired[0]!.text)
      expect(hook.received[0]!.headers['content-type']).toBe('application/json')
      expect(await h.monitor.alerts.active()).toEqual([])
      const history = await h.monitor.alerts.history({ from: 0 })
      expect(history.map((e) => e.state)).toEqual(['pending', 'firing', 'resolved'])
      expect(history.map((e) => e.id)).toEqual([...new Set(history.map((e) => e.id))])
      // each notified event: one attempt per notifier, all sent
      const attempts = await h.monitor.alerts.notifications()
      expect(attempts.map((a) => `${a.eventId} ${a.notifier.split(':')[0]} ${a.status}`).sort()).toEqual(
        [history[1]!, history[2]!].flatMap((e) => [`${e.id} callback sent`, `${e.id} webhook sent`]).sort(),
      )
    })

    it('pending → inactive when the condition clears before `for`: nothing is notified', async () => {
      const { h, hook } = await start([{ name: 'slow', kind: 'latency', percentile: 'p95', window: '1m', threshold: 500, for: '3m' }])
      h.record(20, { durationMs: 900 })
      await h.evaluate()
      expect((await h.monitor.alerts.active()).map((a) => a.state)).toEqual(['pending'])
      h.clock.advance(2 * MINUTE)
      h.record(20, { durationMs: 50 })
      await h.evaluate()
      h.clock.advance(5 * MINUTE)
      await h.evaluate()
      expect(await h.monitor.alerts.active()).toEqual([])
      expect(h.alerts).toEqual([])
      expect(hook.received).toEqual([])
      expect((await h.monitor.alerts.history()).map((e) => e.state)).toEqual(['pending'])
    })

    it('keepFiringFor: a firing alert outlives a short dip, then resolves once', async () => {
      const { h } = await start([{ name: 'p95', kind: 'latency', window: '1m', threshold: 200, keepFiringFor: '3m' }])
      h.record(10, { durationMs: 400 })
      expect(brief(await h.evaluate())).toEqual(['firing critical 400'])
      h.clock.advance(2 * MINUTE)
      h.record(10, { durationMs: 20 })
      expect(await h.evaluate()).toEqual([]) // condition gone for 0 of 3 minutes (last held 2 minutes ago)
      h.clock.advance(30 * SECOND)
      h.record(10, { durationMs: 500 })
      expect(await h.evaluate()).toEqual([]) // held again: still firing, no new notification
      h.clock.advance(2 * MINUTE)
      h.record(10, { durationMs: 20 })
      expect(await h.evaluate()).toEqual([]) // 2 of 3 minutes since it last held
      h.clock.advance(MINUTE)
      h.record(10, { durationMs: 20 })
      expect(brief(await h.evaluate())).toEqual(['resolved critical 20'])
      h.clock.advance(MINUTE)
      expect(await h.evaluate()).toEqual([])
      expect(brief(h.alerts)).toEqual(['firing critical 400', 'resolved critical 20'])
    })

    it('cooldown: a still-firing alert repeats once per cooldown, never in between', async () => {
      const { h, hook } = await start([{ name: 'volume', kind: 'requests', window: '10m', threshold: 5, cooldown: '4m' }])
      h.record(6)
      expect(brief(await h.evaluate())).toEqual(['firing critical 6'])
      for (let minute = 1; minute <= 9; minute++) {
        h.clock.advance(MINUTE)
        h.record(1)
        await h.evaluate()
      }
      expect(brief(h.alerts)).toEqual(['firing critical 6', 'firing (repeat) critical 10', 'firing (repeat) critical 14'])
      expect(hook.received.map((r) => r.body.repeated)).toEqual([false, true, true])
      expect(hook.received[1]!.body.text).toMatch(/^STILL FIRING \[critical\] volume: 10 requests, at or above 5$/)
      expect((await h.monitor.alerts.history()).map((e) => `${e.state}${e.repeated ? '+' : ''}`)).toEqual(['firing', 'firing+', 'firing+'])
    })

    it('groupBy: one instance per tenant, each firing and resolving on its own', async () => {
      const { h, hook } = await start([{ name: 'tenant-5xx', kind: 'status', codes: ['5xx'], window: '5m', threshold: 3, groupBy: 'tenant' }])
      h.record(5, { tenantId: 'acme', statusCode: 502 })
      h.record(20, { tenantId: 'globex', statusCode: 404 }) // not a 5xx
      h.record(2, { statusCode: 500 }) // no tenant: a group of its own, below the threshold
      expect(brief(await h.evaluate())).toEqual(['acme firing critical 5'])
      h.clock.advance(MINUTE)
      h.record(3, { tenantId: 'globex', statusCode: 503 })
      expect(brief(await h.evaluate())).toEqual(['globex firing critical 3'])
      expect((await h.monitor.alerts.active()).map((a) => `${a.group} ${JSON.stringify(a.groups)}`).sort()).toEqual([
        'acme {"tenant":"acme"}',
        'globex {"tenant":"globex"}',
      ])
      h.clock.advance(4 * MINUTE + 1) // acme's errors leave the window; globex's last one stays
      expect(brief(await h.evaluate())).toEqual(['acme resolved critical 0'])
      h.clock.advance(MINUTE)
      expect(brief(await h.evaluate())).toEqual(['globex resolved critical 0'])
      expect(hook.received.map((r) => `${r.body.group} ${r.body.state}`)).toEqual(['acme firing', 'globex firing', 'acme resolved', 'globex resolved'])
      expect(hook.received[0]!.body.text).toBe('FIRING [critical] tenant-5xx [tenant=acme]: 5 matching responses, at or above 3')
    })

    it('groupBy several dimensions: instances per (api, route)', async () => {
      const { h } = await start([{ name: 'slow-routes', kind: 'latency', percentile: 'max', window: '5m', threshold: 1000, groupBy: ['api', 'route'] }])
      h.record(3, { api: 'openai', route: '/v1/chat/completions', durationMs: 1500 })
      h.record(3, { api: 'openai', route: '/v1/embeddings', durationMs: 20 })
      h.record(3, { api: 'stripe', route: '/v1/charges', durationMs: 1200 })
      const fired = await h.evaluate()
      expect(fired.map((e) => e.groups).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
        { api: 'openai', route: '/v1/chat/completions' },
        { api: 'stripe', route: '/v1/charges' },
      ])
      expect(fired.map((e) => Math.round(e.value!)).sort()).toEqual([1200, 1500])
    })

    it('cost budget on the calendar day: warning at 80%, critical at 100%, resolved when the UTC day turns', async () => {
      const { h, hook } = await start([{ name: 'openai-daily', kind: 'cost', api: 'openai', window: 'day', threshold: 10, warn: 0.8 }])
      h.record(7, { cost: 1 })
      h.record(5, { api: 'stripe', cost: 1 }) // another API's spending does not count
      expect(await h.evaluate()).toEqual([])
      h.clock.advance(MINUTE)
      h.record(1, { cost: 1.5 })
      expect(brief(await h.evaluate())).toEqual(['firing warning 8.5'])
      h.clock.advance(MINUTE)
      expect(await h.evaluate()).toEqual([])
      h.record(2, { cost: 0.75 })
      expect(brief(await h.evaluate())).toEqual(['firing critical 10'])
      expect(hook.received.map((r) => `${r.body.severity} ${r.body.threshold}`)).toEqual(['warning 8', 'critical 10'])
      expect(hook.received[0]!.body.text).toBe('FIRING [warning] openai-daily: $8.5, at or above $8')
      // the next UTC day starts with an empty budget
      h.clock.set(Date.UTC(2026, 2, 3, 0, 0, 1))
      expect(brief(await h.evaluate())).toEqual(['resolved critical 0'])
      expect(brief(h.alerts)).toEqual(['firing warning 8.5', 'firing critical 10', 'resolved critical 0'])
    })

    it('cost budget on a rolling window', async () => {
      const { h } = await start([{ name: 'hourly-spend', kind: 'cost', window: '1h', threshold: 2 }])
      h.record(4, { cost: 0.5 })
      expect(brief(await h.evaluate())).toEqual(['firing critical 2'])
      h.clock.advance(61 * MINUTE)
      expect(brief(await h.evaluate())).toEqual(['resolved critical 0'])
    })

    it('rate_limit with a configured limit: warning at 80% of the requests per minute, critical at 100%', async () => {
      const { h } = await start([{ name: 'finnhub-quota', kind: 'rate_limit', api: 'finnhub', limit: { requests: 60, per: '1m' } }])
      h.record(47, { api: 'finnhub' })
      expect(await h.evaluate()).toEqual([])
      h.record(1, { api: 'finnhub' })
      expect(brief(await h.evaluate())).toEqual(['firing warning 0.8'])
      h.record(12, { api: 'finnhub' })
      expect(brief(await h.evaluate())).toEqual(['firing critical 1'])
      h.clock.advance(61 * SECOND)
      expect(brief(await h.evaluate())).toEqual(['resolved critical 0'])
    })

    it('rate_limit from recorded rate-limit headers: the latest remaining per API decides', async () => {
      const { h } = await start([{ name: 'headroom', kind: 'rate_limit', window: '10m', groupBy: 'api' }])
      h.record(1, { api: 'openai', rateLimit: { limit: 100, remaining: 50, scope: 'requests' } })
      h.record(1, { api: 'github', rateLimit: { limit: 5000, remaining: 4900 } })
      expect(await h.evaluate()).toEqual([])
      h.clock.advance(SECOND)
      h.record(1, { api: 'openai', rateLimit: { limit: 100, remaining: 15, scope: 'requests' } })
      h.record(1, { api: 'openai' }) // a call without headers changes nothing
      const fired = await h.evaluate()
      expect(brief(fired)).toEqual(['openai firing warning 0.85'])
      expect(fired[0]!.text).toBe('FIRING [warning] headroom [api=openai]: 85% of the rate limit used, at or above 80%')
      h.clock.advance(SECOND)
      h.record(1, { api: 'openai', rateLimit: { limit: 100, remaining: 0, scope: 'requests' } })
      expect(brief(await h.evaluate())).toEqual(['openai firing critical 1'])
      h.clock.advance(SECOND)
      h.record(1, { api: 'openai', rateLimit: { limit: 100, remaining: 99, scope: 'requests' } })
      expect(brief(await h.evaluate())).toEqual(['openai resolved critical 0.01'])
    })

    it('requests below a floor, error_rate with minRequests', async () => {
      const { h } = await start([
        { name: 'too-quiet', kind: 'requests', when: 'below', direction: 'inbound', window: '5m', threshold: 3 },
        { name: 'errors', kind: 'error_rate', window: '5m', threshold: 0.5, minRequests: 4 },
      ])
      h.record(3, { statusCode: 500 }) // 100% errors, but fewer calls than minRequests: no data
      expect(brief(await h.evaluate())).toEqual(['firing critical 0']) // and no inbound traffic at all
      expect(h.alerts[0]!.rule).toBe('too-quiet')
      h.record(3, { direction: 'inbound', route: '/health', api: null })
      h.record(1, { statusCode: 500 })
      const events = await h.evaluate()
      expect(events.map((e) => `${e.rule} ${e.state}`).sort()).toEqual(['errors firing', 'too-quiet resolved'])
    })

    it('no data: ok resolves, keep holds the state, alert fires', async () => {
      const { h } = await start([
        { name: 'nd-ok', kind: 'error_rate', window: '1m', threshold: 0.5 },
        { name: 'nd-keep', kind: 'error_rate', window: '1m', threshold: 0.5, noData: 'keep' },
        { name: 'nd-alert', kind: 'latency', window: '1m', threshold: 1000, noData: 'alert' },
      ])
      h.record(4, { statusCode: 500, durationMs: 10 })
      expect((await h.evaluate()).map((e) => `${e.rule} ${e.state}`).sort()).toEqual(['nd-keep firing', 'nd-ok firing'])
      h.clock.advance(2 * MINUTE) // the window is empty now
      expect((await h.evaluate()).map((e) => `${e.rule} ${e.state} ${e.value}`).sort()).toEqual(['nd-alert firing null', 'nd-ok resolved null'])
      expect((await h.monitor.alerts.active()).map((a) => a.rule).sort()).toEqual(['nd-alert', 'nd-keep'])
      h.record(4, { durationMs: 10 })
      expect((await h.evaluate()).map((e) => `${e.rule} ${e.state}`).sort()).toEqual(['nd-alert resolved', 'nd-keep resolved'])
    })

    it('a disabled rule is stored but never evaluated', async () => {
      const { h } = await start([{ name: 'off', kind: 'requests', window: '5m', threshold: 1, enabled: false }])
      h.record(10)
      expect(await h.evaluate()).toEqual([])
      expect(h.monitor.health().alerts.rules).toBe(0)
      expect(h.monitor.alerts.rules).toEqual(['off'])
    })
  })
}
