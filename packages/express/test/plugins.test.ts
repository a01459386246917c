import { createServer, type Server } from 'node:http'
import { definePlugin, type Monitor, type PluginHealth } from '@apimeter/core'
import { apimeter } from '@apimeter/express'
import express from 'express'
import { afterEach, describe, expect, it } from 'vitest'
import { testMonitor } from '../../core/test/helpers/monitor.js'
import { close, listen, waitFor } from '../../../test/support/http.js'

// Four misbehaving plugins on a real Express 5 server: none of them may reach the host's requests.
const thrower = definePlugin({
  name: 'thrower',
  version: '1.0.0',
  maxConsecutiveErrors: 3,
  setup(ctx) {
    ctx.onCall(() => {
      throw new Error('boom')
    })
  },
})
const hanger = definePlugin({
  name: 'hanger',
  version: '1.0.0',
  timeoutMs: 30,
  maxConsecutiveErrors: 1000,
  setup(ctx) {
    ctx.onCall(() => new Promise<void>(() => {})) // never settles
  },
})
const slow = definePlugin({
  name: 'slow',
  version: '1.0.0',
  setup(ctx) {
    ctx.onCall((call) => {
      const until = performance.now() + 3 // 3 ms of busy work per call
      while (performance.now() < until);
      call.tenantId = 'enriched'
    })
  },
})
const badRedactor = definePlugin({
  name: 'bad-redactor',
  version: '1.0.0',
  maxConsecutiveErrors: 2,
  setup(ctx) {
    ctx.redact({ fields: ['userAgent', 'clientIp'] }, () => {
      throw new Error('redaction failed')
    })
  },
})

describe('plugins on a real Express server', () => {
  const servers: Server[] = []
  const monitors: Monitor[] = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(close))
    await Promise.all(monitors.splice(0).map((m) => m.close()))
  })

  it('a throwing, a hanging, a slow and a failing redaction plugin never reach the host; health shows each', async () => {
    const { monitor, storage, errors } = testMonitor({ plugins: [thrower(), hanger(), slow(), badRedactor()], batchSize: 4 })
    monitors.push(monitor)
    const app = express()
    app.use(apimeter(monitor))
    app.get('/items/:id', (req, res) => {
      res.json({ id: req.params.id })
    })
    const server = createServer(app)
    servers.push(server)
    const base = await listen(server)

    const statuses: number[] = []
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${base}/items/${i}`, { headers: { 'user-agent': 'agent-secret-ua' } })
      statuses.push(res.status)
      expect(await res.json()).toEqual({ id: String(i) })
    }
    expect(statuses).toEqual(Array(12).fill(200))

    await monitor.flush()
    await waitFor(() => storage.size === 12, '12 stored calls')
    const calls = storage.calls()
    expect(calls.every((c) => c.route === '/items/:id' && c.statusCode === 200)).toBe(true)
    // the failing redaction dropped its fields (also once its plugin was disabled), never stored them as they came
    expect(calls.every((c) => c.userAgent === null && c.clientIp === null)).toBe(true)
    expect(JSON.stringify(calls)).not.toContain('agent-secret-ua')
    // the slow plugin's enrichment is kept
    expect(calls.every((c) => c.tenantId === 'enriched')).toBe(true)

    const health = Object.fromEntries(monitor.health().plugins.map((p) => [p.name, p])) as Record<string, PluginHealth>
    expect(health.thrower!.state).toBe('disabled')
    expect(health.thrower!.errors).toBe(3)
    expect(health.thrower!.score).toBe(0)
    expect(health.hanger!.state).toBe('active')
    expect(health.hanger!.errors).toBe(12)
    expect(health.hanger!.timeouts).toBe(12)
    expect(health.hanger!.score).toBe(0) // every call failed
    expect(health.slow!.state).toBe('active')
    expect(health.slow!.errors).toBe(0)
    expect(health.slow!.calls).toBe(12)
    expect(health.slow!.timeUs.p50).toBeGreaterThanOrEqual(2900)
    expect(health.slow!.score).toBeLessThanOrEqual(50) // slow: p99 over 1 ms halves the score at most
    expect(health.slow!.score).toBeGreaterThanOrEqual(33)
    expect(health['bad-redactor']!.state).toBe('disabled')
    expect(health['bad-redactor']!.errors).toBe(2)

    // each failing plugin reported its first failure once, each disable once
    await waitFor(() => errors.filter((e) => e.code === 'PLUGIN_DISABLED').length === 2, 'two disable reports')
    expect(errors.filter((e) => e.code === 'PLUGIN_FAILED').map((e) => e.details?.plugin).sort()).toEqual(['bad-redactor', 'hanger', 'thrower'])
    const disabled = await monitor.audit.list({ kind: 'plugin.disabled' })
    expect(disabled.map((r) => r.subject).sort()).toEqual(['plugin:bad-redactor', 'plugin:thrower'])
  })

  it('responses never wait for a hook: requests finish while every call hook is still pending', async () => {
    let open: () => void = () => {}
    const gate = new Promise<void>((resolve) => (open = resolve))
    let entered = 0
    const held = definePlugin({
      name: 'held',
      version: '1.0.0',
      timeoutMs: 60_000,
      setup(ctx) {
        ctx.onCall(async () => {
          entered++
          await gate
        })
      },
    })
    const { monitor, storage } = testMonitor({ plugins: [held()], batchSize: 1 })
    monitors.push(monitor)
    const app = express()
    app.use(apimeter(monitor))
    app.get('/ping', (_req, res) => {
      res.send('pong')
    })
    const server = createServer(app)
    servers.push(server)
    const base = await listen(server)
    for (let i = 0; i < 5; i++) expect(await (await fetch(`${base}/ping`)).text()).toBe('pong')
    await waitFor(() => entered === 5, 'every call in the hook')
    expect(storage.size).toBe(0) // all five hooks are still waiting, every response was sent
    expect(monitor.health().queued).toBe(5)
    open()
    await monitor.flush()
    expect(storage.size).toBe(5)
  })
})
