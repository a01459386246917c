import { createServer, type Server } from 'node:http'
import type { LookupFunction } from 'node:net'
import { Agent, fetch as undiciFetch } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { createMonitor, memoryStorage, type Monitor } from '@apimeter/core'
import { close, listen, waitFor } from '../support/http.js'

/**
 * Secrets in URL paths never reach storage: webhook and bot-token URLs (whose path is the credential), random
 * tokens, the user's own patterns — in the stored route and in the stored URL. And apimeter's own notifications
 * (whose URLs are such webhooks) are never metered at all.
 */

const SLACK = 'https://hooks.slack.com/services/T0A1B2C3D/B0E4F5G6H/aBcDeFgHiJkLmNoPqRsTuVwX'
const DISCORD = 'https://discord.com/api/webhooks/1234567890123456789/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_abcdefghijklmnopqrstuvwxYZ01'
const TELEGRAM = 'https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage?chat_id=42'
const SECRETS = ['T0A1B2C3D', 'B0E4F5G6H', 'aBcDeFgHiJkLmNoPqRsTuVwX', 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789', 'AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw', 'hunter2-customer-4711']

describe('secrets in URL paths', () => {
  const servers: Server[] = []
  let monitor: Monitor | undefined
  afterEach(async () => {
    await monitor?.close()
    monitor = undefined
    for (const s of servers.splice(0)) await close(s)
  })

  const stored = (storage: ReturnType<typeof memoryStorage>): string => JSON.stringify(storage.calls().map((c) => [c.route, c.url, c.host]))

  it('masks webhook and bot-token paths in the route and the URL of calls recorded by hand', async () => {
    const storage = memoryStorage()
    monitor = createMonitor({ storage, logger: false, flushOnExit: false, redact: { paths: [/\/customers\/([^/]+)\/vault/] } })
    for (const url of [SLACK, DISCORD, TELEGRAM, 'https://api.example.com/customers/hunter2-customer-4711/vault']) {
      monitor.record({ direction: 'outbound', method: 'POST', url, statusCode: 200, durationMs: 5 })
    }
    await monitor.flush()
    const calls = storage.calls()
    expect(calls.map((c) => c.route)).toEqual(['/services/:secret/:secret/:secret', '/api/webhooks/:id/:secret', '/bot:secret/sendMessage', '/customers/:secret/vault'])
    expect(calls.map((c) => c.url)).toEqual([
      'https://hooks.slack.com/services/:secret/:secret/:secret',
      'https://discord.com/api/webhooks/1234567890123456789/:secret',
      'https://api.telegram.org/bot:secret/sendMessage?chat_id=42',
      'https://api.example.com/customers/:secret/vault',
    ])
    for (const secret of SECRETS) expect(stored(storage)).not.toContain(secret)
  })

  it('masks them in calls metered on the wire (instrument(), monitor.fetch), whatever host name resolves where', async () => {
    const server = createServer((req, res) => res.end('ok'))
    servers.push(server)
    const base = await listen(server)
    const port = new URL(base).port
    // the real host names, resolved to this loopback server
    const lookup: LookupFunction = (_host, options, callback) => {
      if ((options as { all?: boolean }).all) (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: '127.0.0.1', family: 4 }])
      else callback(null, '127.0.0.1', 4)
    }
    const dispatcher = new Agent({ connect: { lookup } })
    const storage = memoryStorage()
    monitor = createMonitor({ storage, logger: false, flushOnExit: false }).instrument()
    for (const url of [SLACK, DISCORD, TELEGRAM]) {
      const res = await undiciFetch(url.replace('https://', 'http://').replace(/(\.com|\.org)\//, `$1:${port}/`), { method: 'POST', body: '{}', dispatcher })
      await res.text()
    }
    const viaFetch = await monitor.fetch(`${base}/bot987654321:ZZHdqTcvCH1vGWJxfSeofSAs0K5PALDxyz/getUpdates`)
    await viaFetch.text()
    await monitor.flush()
    expect(storage.calls().map((c) => c.route).sort()).toEqual(['/api/webhooks/:id/:secret', '/bot:secret/getUpdates', '/bot:secret/sendMessage', '/services/:secret/:secret/:secret'])
    for (const secret of [...SECRETS, 'ZZHdqTcvCH1vGWJxfSeofSAs0K5PALDxyz']) expect(stored(storage)).not.toContain(secret)
    await dispatcher.close()
  })

  it('never meters apimeter’s own alert webhooks, even with instrument() on', async () => {
    const received: string[] = []
    const receiver = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        received.push(body)
        res.end('ok')
      })
    })
    servers.push(receiver)
    const hook = `${await listen(receiver)}/services/T0A1B2C3D/B0E4F5G6H/aBcDeFgHiJkLmNoPqRsTuVwX`
    const storage = memoryStorage()
    monitor = createMonitor({
      storage,
      logger: false,
      flushOnExit: false,
      alertIntervalMs: 50,
      alerts: [{ name: 'any-traffic', kind: 'requests', window: '5m', threshold: 1, notify: [`webhook:${hook}`] }],
    }).instrument()
    monitor.record({ direction: 'inbound', method: 'GET', route: '/x', statusCode: 200, durationMs: 1 })
    await monitor.flush()
    await waitFor(() => received.length > 0, 'the alert webhook')
    await waitFor(async () => (await monitor!.alerts.history({ from: 0 })).length > 0, 'the alert history')
    await monitor.flush()
    expect(JSON.parse(received[0]!)).toMatchObject({ rule: 'any-traffic', state: 'firing' })
    expect(storage.calls().map((c) => c.route)).toEqual(['/x']) // the webhook call is not there
  })
})
