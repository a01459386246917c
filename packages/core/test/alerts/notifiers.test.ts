import { createHmac } from 'node:crypto'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { signWebhookBody } from '@apimeter/core'
import { brief, fakeClock, harness, type Harness, makeStorage, removeTempFiles, STORAGE_KINDS, webhookReceiver } from './harness.js'

afterAll(removeTempFiles)

for (const kind of STORAGE_KINDS) {
  describe(`alert notifiers on ${kind} storage`, () => {
    const cleanup: (() => Promise<void>)[] = []
    afterEach(async () => {
      for (const c of cleanup.splice(0).reverse()) await c()
    })
    const receiver = async (respond?: Parameters<typeof webhookReceiver>[0]) => {
      const r = await webhookReceiver(respond)
      cleanup.push(r.close)
      return r
    }
    const start = (options: Parameters<typeof harness>[0]): Harness => {
      const clock = fakeClock()
      const h = harness({ ...options, storage: makeStorage(kind, clock.now).storage }, clock)
      cleanup.push(() => h.monitor.close())
      return h
    }

    it('a webhook answering 500 is retried with backoff; every attempt is stored; the alert is delivered once', async () => {
      const hook = await receiver((n) => (n < 2 ? 500 : 200))
      const h = start({ alerts: [{ name: 'busy', kind: 'requests', window: '5m', threshold: 2, notify: [{ webhook: hook.url, retries: 3, backoffMs: 5 }] }] })
      h.record(3)
      const [event] = await h.evaluate()
      expect(hook.hits()).toBe(3)
      expect(hook.received).toHaveLength(1)
      const attempts = await h.monitor.alerts.notifications(event!.id!)
      expect(attempts.filter((a) => a.notifier !== 'callback').map((a) => `${a.attempt} ${a.status} ${a.httpStatus} ${a.error}`)).toEqual([
        '1 failed 500 HTTP 500',
        '2 failed 500 HTTP 500',
        '3 sent 200 null',
      ])
      expect(attempts.filter((a) => a.notifier === `webhook:${hook.url}`)).toHaveLength(3)
      expect(h.monitor.health().alerts).toMatchObject({ notificationsSent: 2, failedNotifications: 0 })
    })

    it('a failing webhook, a throwing onAlert and a dead endpoint never block recording or the other notifiers', async () => {
      const good = await receiver()
      const bad = await receiver(() => 503)
      const h = start({
        onAlert: () => {
          throw new Error('pager is down')
        },
        alerts: [
          {
            name: 'spike',
            kind: 'status',
            codes: [500, 502],
            window: '5m',
            threshold: 1,
            notify: [
              { webhook: bad.url, retries: 2, backoffMs: 1 },
              { webhook: 'http://127.0.0.1:1/unreachable', retries: 1, backoffMs: 1 },
              `webhook:${good.url}`,
              'log',
            ],
          },
        ],
      })
      h.record(1, { statusCode: 502 })
      const events = await h.evaluate()
      expect(brief(events)).toEqual(['firing critical 1'])
      // the event listener and the healthy webhook got it
      expect(brief(h.alerts)).toEqual(['firing critical 1'])
      expect(good.received.map((r) => r.body.state)).toEqual(['firing'])
      expect(bad.hits()).toBe(3) // 1 + 2 retries
      const attempts = await h.monitor.alerts.notifications(events[0]!.id!)
      const byNotifier = (prefix: string) => attempts.filter((a) => a.notifier.startsWith(prefix)).map((a) => a.status)
      expect(byNotifier('callback')).toEqual(['failed'])
      expect(attempts.find((a) => a.notifier === 'callback')!.error).toBe('pager is down')
      expect(byNotifier(`webhook:${bad.url}`)).toEqual(['failed', 'failed', 'failed'])
      expect(byNotifier('webhook:http://127.0.0.1:1')).toEqual(['failed', 'failed']) // connection refused, retried once
      expect(byNotifier(`webhook:${good.url}`)).toEqual(['sent'])
      expect(byNotifier('log')).toEqual(['sent'])
      const health = h.monitor.health()
      expect(health.alerts.failedNotifications).toBe(3) // callback, bad webhook, unreachable webhook
      expect(health.alerts.lastError?.code).toBe('ALERT_NOTIFICATION_FAILED')
      expect(h.errors.filter((e) => e.code === 'ALERT_NOTIFICATION_FAILED')).toHaveLength(3)
      // recording carried on the whole time
      h.record(50)
      await h.monitor.flush()
      expect(h.monitor.health()).toMatchObject({ written: 51, dropped: 0, invalid: 0 })
    })

    it('signs the body with HMAC-SHA256 when a secret is set, and sends extra headers', async () => {
      const hook = await receiver()
      const h = start({ alerts: [{ name: 'signed', kind: 'requests', window: '1m', threshold: 1, notify: [{ webhook: hook.url, secret: 'topsecret', headers: { authorization: 'Bearer abc' } }] }] })
      h.record(1)
      await h.evaluate()
      const [got] = hook.received
      const expected = `sha256=${createHmac('sha256', 'topsecret').update(got!.raw).digest('hex')}`
      expect(got!.headers['x-apimeter-signature']).toBe(expected)
      expect(signWebhookBody(got!.raw, 'topsecret')).toBe(expected)
      expect(got!.headers.authorization).toBe('Bearer abc')
      expect(got!.body).toMatchObject({ rule: 'signed', state: 'firing', severity: 'critical', value: 1, threshold: 1, repeated: false })
      expect(typeof got!.body.text).toBe('string') // Slack-compatible
      expect(got!.body.at).toBe(new Date(h.clock.t).toISOString())
      // the secret and the extra headers are never stored with the rule
      const rows = JSON.stringify(await h.monitor.alerts.notifications())
      expect(rows).not.toContain('topsecret')
    })

    it('a webhook that never answers times out per attempt and is retried', async () => {
      const hook = await receiver((n) => (n === 0 ? 'hang' : 200))
      const h = start({ alerts: [{ name: 'slowhook', kind: 'requests', window: '1m', threshold: 1, notify: [{ webhook: hook.url, timeoutMs: 100, retries: 1, backoffMs: 1 }] }] })
      h.record(1)
      const [event] = await h.evaluate()
      const attempts = (await h.monitor.alerts.notifications(event!.id!)).filter((a) => a.notifier.startsWith('webhook'))
      expect(attempts.map((a) => `${a.status} ${a.error}`)).toEqual(['failed timed out after 100 ms', 'sent null'])
      expect(hook.received).toHaveLength(1)
    })

    it('the log notifier writes the one-line text through the logger', async () => {
      const lines: string[] = []
      const h = start({ logger: { warn: (m) => lines.push(m) }, alerts: [{ name: 'logged', kind: 'cost', window: '1h', threshold: 1, notify: ['log'] }] })
      h.record(2, { cost: 0.6 })
      await h.evaluate()
      expect(lines).toEqual(['FIRING [critical] logged: $1.2, at or above $1'])
    })
  })
}
