import { createServer, type Server } from 'node:http'
import { type ApimeterError, createMonitor, isApimeterError, type Monitor } from '@apimeter/core'
import { dashboard, dashboardFastify, isLoopback, serveDashboard } from '@apimeter/dashboard'
import { apimeter } from '@apimeter/express'
import { apimeterFastify } from '@apimeter/fastify'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import express from 'express'
import Fastify from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { close, listen, waitFor } from '../../../test/support/http.js'
import { sampleCalls, seed, tempDir } from './fixtures.js'

const TOKEN = 'dashboard-test-token'
const bearer = { authorization: `Bearer ${TOKEN}` }

function errorOf(fn: () => unknown): ApimeterError {
  try {
    fn()
  } catch (error) {
    if (isApimeterError(error)) return error
    throw error
  }
  throw new Error('expected an ApimeterError')
}

describe('dashboard options', () => {
  const monitor = createMonitor({ logger: false })
  afterAll(() => monitor.close())

  it('refuses to start without auth, naming the field and what it takes', () => {
    const e = errorOf(() => dashboard(monitor, {} as never))
    expect(e.code).toBe('INVALID_OPTIONS')
    expect(e.message).toMatch(/^@apimeter\/dashboard: options\.auth is required: pass \{ token/)
  })

  it('names a malformed field and what was expected', () => {
    expect(errorOf(() => dashboard(monitor, { auth: { token: TOKEN }, liveIntervalMs: 5 })).message).toBe(
      '@apimeter/dashboard: options.liveIntervalMs must be a whole number of milliseconds from 250 to 600,000, got 5',
    )
    expect(errorOf(() => dashboard(monitor, { auth: { token: '' } })).message).toMatch(/^@apimeter\/dashboard: options\.auth/)
    expect(errorOf(() => dashboard(monitor, { auth: { token: TOKEN }, titel: 'x' } as never)).message).toMatch(/options\.titel is not a known option \(did you mean title\?\)/)
  })

  it('serves without auth only on a loopback address', async () => {
    await expect(serveDashboard(monitor, { host: '0.0.0.0', port: 0 })).rejects.toThrow(/^@apimeter\/dashboard: options\.auth is required when listening on 0\.0\.0\.0/)
    expect([isLoopback('127.0.0.1'), isLoopback('::1'), isLoopback('::ffff:127.0.0.2'), isLoopback('localhost'), isLoopback('10.0.0.1'), isLoopback('0.0.0.0')]).toEqual([true, true, true, true, false, false])
    const served = await serveDashboard(monitor, { port: 0 })
    try {
      expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
      const page = await fetch(served.url)
      expect(page.status).toBe(200)
      expect(await page.text()).toContain('<script src="assets/app.js" defer></script>')
    } finally {
      await served.close()
    }
  })
})

describe('dashboard in Express, on SQLite', () => {
  const tmp = tempDir()
  let monitor: Monitor
  let server: Server
  let base: string
  let handle: ReturnType<typeof dashboard>
  const errors: ApimeterError[] = []

  beforeAll(async () => {
    monitor = createMonitor({ logger: false, flushOnExit: false, service: 'shop', storage: sqliteStorage({ filename: `${tmp.dir}/express.db` }) })
    monitor.on('error', (e) => errors.push(e))
    await seed(monitor, sampleCalls(Date.now()))
    const app = express()
    app.use(apimeter(monitor))
    handle = dashboard(monitor, { auth: { token: TOKEN }, liveIntervalMs: 250 })
    app.use('/apimeter', handle)
    app.get('/ping', (_req, res) => res.send('pong'))
    server = createServer(app)
    base = await listen(server)
  })
  afterAll(async () => {
    handle.close()
    await close(server)
    await monitor.close()
    tmp.remove()
  })

  it('answers 401 without credentials: the sign-in form for the page, a Bearer challenge for the JSON and the stream', async () => {
    const page = await fetch(`${base}/apimeter/`)
    expect(page.status).toBe(401)
    const html = await page.text()
    expect(html).toContain('<form method="post" action="signin">')
    expect(html).not.toContain('assets/app.js')
    for (const path of ['api/overview', 'api/stream?view=overview', 'api/health']) {
      const res = await fetch(`${base}/apimeter/${path}`)
      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="apimeter"')
    }
    expect((await fetch(`${base}/apimeter/api/overview`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401)
  })

  it('redirects the mount path to its slash, which the page links relative to', async () => {
    const res = await fetch(`${base}/apimeter?x=1`, { redirect: 'manual' })
    expect(res.status).toBe(308)
    expect(res.headers.get('location')).toBe('/apimeter/?x=1')
  })

  it('serves the numbers of monitor.stats for the same range and filters', async () => {
    const res = await fetch(`${base}/apimeter/api/overview?range=24h&tenant=acme`, { headers: bearer })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { query: { from: number; to: number; interval: string; tenant: string }; summary: unknown; tenants: string[]; series: { t: number[]; requests: number[] } }
    expect(body.query).toMatchObject({ interval: 'hour', tenant: 'acme' })
    expect(body.query.to - body.query.from).toBe(86_400_000)
    expect(body.summary).toEqual(await monitor.stats.summary({ from: body.query.from, to: body.query.to, tenantId: 'acme' }))
    expect(body.tenants).toEqual(['acme', 'globex'])
    expect(body.series.requests.reduce((a, b) => a + b, 0)).toBe((body.summary as { requests: number }).requests)
    const custom = (await (await fetch(`${base}/apimeter/api/overview?from=${body.query.from}&to=${body.query.to}`, { headers: bearer })).json()) as { query: { range: string }; summary: unknown }
    expect(custom.query.range).toBe('custom')
    expect(custom.summary).toEqual(await monitor.stats.summary({ from: body.query.from, to: body.query.to }))
    expect((await fetch(`${base}/apimeter/api/overview?range=2w`, { headers: bearer })).status).toBe(400)
  })

  it('serves the other views from the same stats (routes and APIs with sparklines, LLM spend, reliability, health)', async () => {
    const traffic = (await (await fetch(`${base}/apimeter/api/traffic?range=7d`, { headers: bearer })).json()) as { query: { from: number; to: number }; routes: { key: string; requests: number; spark: number[] }[]; apis: { key: string; requests: number; cost: number }[] }
    const range = { from: traffic.query.from, to: traffic.query.to }
    const routes = await monitor.stats.breakdown({ ...range, direction: 'inbound', by: 'route' })
    expect(traffic.routes.map((r) => [r.key, r.requests])).toEqual(routes.map((r) => [r.key, r.requests]))
    for (const r of traffic.routes) expect(r.spark.reduce((a, b) => a + b, 0)).toBe(r.requests)
    expect(traffic.apis.map((r) => [r.key, r.requests, r.cost])).toEqual((await monitor.stats.breakdown({ ...range, direction: 'outbound', by: 'api' })).map((r) => [r.key, r.requests, r.cost]))
    const llm = (await (await fetch(`${base}/apimeter/api/llm?range=24h`, { headers: bearer })).json()) as { query: { from: number; to: number }; models: { key: string; cost: number }[] }
    expect(llm.models.map((m) => [m.key, m.cost])).toEqual((await monitor.stats.breakdown({ from: llm.query.from, to: llm.query.to, by: 'model', orderBy: 'cost' })).filter((m) => m.key !== '(none)').map((m) => [m.key, m.cost]))
    const reliability = (await (await fetch(`${base}/apimeter/api/reliability`, { headers: bearer })).json()) as Record<string, unknown>
    expect(reliability).toMatchObject({ active: [], probes: [], slos: [] })
    const health = (await (await fetch(`${base}/apimeter/api/health`, { headers: bearer })).json()) as { writePath: { written: number } }
    expect(health.writePath.written).toBe(monitor.health().written)
  })

  it('signs in through the form with an HttpOnly, SameSite=Strict cookie for its own path, and audits sign-ins', async () => {
    const wrong = await fetch(`${base}/apimeter/signin`, { method: 'POST', body: new URLSearchParams({ token: 'nope' }), redirect: 'manual' })
    expect(wrong.status).toBe(401)
    expect(await wrong.text()).toContain('That token is not right.')
    const res = await fetch(`${base}/apimeter/signin`, { method: 'POST', body: new URLSearchParams({ token: TOKEN }), redirect: 'manual' })
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/apimeter/')
    const cookie = res.headers.get('set-cookie')!
    expect(cookie).toMatch(/^apimeter_dashboard=\d+\.[\w-]+; Path=\/apimeter\/; Max-Age=43200; HttpOnly; SameSite=Strict$/) // no Secure over plain HTTP
    expect(cookie).not.toContain(TOKEN)
    const session = cookie.split(';')[0]!
    expect((await fetch(`${base}/apimeter/`, { headers: { cookie: session } })).status).toBe(200)
    expect((await fetch(`${base}/apimeter/api/overview`, { headers: { cookie: session } })).status).toBe(200)
    expect((await fetch(`${base}/apimeter/api/overview`, { headers: { cookie: `${session.slice(0, -2)}xx` } })).status).toBe(401)
    const crossSite = await fetch(`${base}/apimeter/signin`, { method: 'POST', headers: { origin: 'http://evil.example' }, body: new URLSearchParams({ token: TOKEN }), redirect: 'manual' })
    expect(crossSite.status).toBe(403)
    await waitFor(async () => (await monitor.audit.list({ kind: 'dashboard' })).length >= 2, 'the sign-in audit rows')
    const rows = await monitor.audit.list({ kind: 'dashboard' })
    expect(rows.map((r) => [r.kind, r.subject, r.detail])).toEqual([
      ['dashboard.signin_failed', 'dashboard', 'wrong token from 127.0.0.1'],
      ['dashboard.signin', 'dashboard', 'signed in from 127.0.0.1'],
    ])
  })

  it('refuses token sign-ins from an address after 5 wrong tokens in 15 minutes, through the form and bearer headers alike', async () => {
    let now = Date.parse('2026-03-01T12:00:00Z')
    const clock = { now: () => now }
    const limited = createMonitor({ logger: false, flushOnExit: false, clock })
    const app = express()
    const limitedHandle = dashboard(limited, { auth: { token: TOKEN }, clock })
    app.use('/apimeter', limitedHandle)
    const limitedServer = createServer(app)
    const at = await listen(limitedServer)
    const signIn = (token: string) => fetch(`${at}/apimeter/signin`, { method: 'POST', body: new URLSearchParams({ token }), redirect: 'manual' })
    try {
      for (let i = 0; i < 4; i++) expect((await signIn(`wrong-${i}`)).status).toBe(401)
      expect((await fetch(`${at}/apimeter/api/overview`, { headers: { authorization: 'Bearer wrong-4' } })).status).toBe(401)
      // the sixth attempt is refused before its token is looked at, the right one too
      const refused = await signIn(TOKEN)
      expect(refused.status).toBe(429)
      expect(refused.headers.get('retry-after')).toBe('900')
      expect(await refused.text()).toContain('Too many wrong tokens')
      const api = await fetch(`${at}/apimeter/api/overview`, { headers: bearer })
      expect(api.status).toBe(429)
      now += 10 * 60_000
      expect((await fetch(`${at}/apimeter/api/overview`, { headers: bearer })).headers.get('retry-after')).toBe('300')
      now += 5 * 60_000 // the first wrong token is 15 minutes old: one attempt is free again
      expect((await signIn(TOKEN)).status).toBe(303)
      expect((await fetch(`${at}/apimeter/api/overview`, { headers: bearer })).status).toBe(200) // a right token clears the address
    } finally {
      limitedHandle.close()
      await close(limitedServer)
      await limited.close()
    }
  })

  it('streams the view over server-sent events and sends a call recorded while it is open', async () => {
    const controller = new AbortController()
    const res = await fetch(`${base}/apimeter/api/stream?view=overview&range=1h`, { headers: bearer, signal: controller.signal })
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ''
    const nextData = async (): Promise<{ summary: { requests: number } }> => {
      for (;;) {
        const end = text.indexOf('\n\n', text.indexOf('event: data'))
        if (text.includes('event: data') && end !== -1) {
          const event = text.slice(text.indexOf('event: data'), end)
          text = text.slice(end + 2)
          return JSON.parse(event.split('\ndata: ')[1]!)
        }
        const { value, done } = await reader.read()
        if (done) throw new Error('stream ended')
        text += value
      }
    }
    const first = await nextData()
    monitor.record({ direction: 'inbound', method: 'GET', route: '/live', statusCode: 200, durationMs: 1 })
    await monitor.flush()
    const second = await nextData()
    expect(second.summary.requests).toBe(first.summary.requests + 1)
    controller.abort()
  })

  it('never meters its own requests (the app\'s are)', async () => {
    await fetch(`${base}/ping`)
    await fetch(`${base}/apimeter/api/overview`, { headers: bearer })
    await fetch(`${base}/apimeter/assets/app.js`)
    await monitor.flush()
    await waitFor(async () => (await monitor.stats.summary({ route: '/ping' })).requests === 1, 'the /ping call')
    const routes = (await monitor.stats.breakdown({ by: 'route', direction: 'inbound', from: '-1h' })).map((r) => r.key)
    expect(routes.some((r) => r.startsWith('/apimeter'))).toBe(false)
    expect(errors).toEqual([])
  })
})

describe('the sign-in form behind the app\'s own body parsers', () => {
  it.each([
    ['express.urlencoded()', express.urlencoded({ extended: false })],
    ['express.json() (the form is left unread)', express.json()],
  ])('signs in after %s', async (_name, parser) => {
    const monitor = createMonitor({ logger: false, flushOnExit: false })
    const app = express()
    app.use(parser)
    const handle = dashboard(monitor, { auth: { token: TOKEN } })
    app.use('/apimeter', handle)
    const server = createServer(app)
    const base = await listen(server)
    try {
      const res = await fetch(`${base}/apimeter/signin`, { method: 'POST', body: new URLSearchParams({ token: TOKEN }), redirect: 'manual' })
      expect(res.status).toBe(303)
      expect(res.headers.get('set-cookie')).toMatch(/^apimeter_dashboard=/)
    } finally {
      handle.close()
      await close(server)
      await monitor.close()
    }
  })
})

describe('dashboard as a Fastify plugin, with the host\'s own auth check', () => {
  it('serves under its prefix, lets the host decide, and is not metered', async () => {
    const monitor = createMonitor({ logger: false, flushOnExit: false })
    await seed(monitor, sampleCalls(Date.now()))
    const app = Fastify({ forceCloseConnections: true })
    await app.register(apimeterFastify, { monitor })
    await app.register(dashboardFastify, { prefix: '/ops/apimeter', monitor, auth: (req) => req.headers['x-role'] === 'admin' })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      const denied = await fetch(`${base}/ops/apimeter/`)
      expect(denied.status).toBe(401)
      expect(await denied.text()).not.toContain('action="signin"') // the host signs people in, not the dashboard
      expect((await fetch(`${base}/ops/apimeter/api/overview`)).status).toBe(401)
      const redirect = await fetch(`${base}/ops/apimeter`, { headers: { 'x-role': 'admin' }, redirect: 'manual' })
      expect([redirect.status, redirect.headers.get('location')]).toEqual([308, '/ops/apimeter/'])
      const page = await fetch(`${base}/ops/apimeter/`, { headers: { 'x-role': 'admin' } })
      expect(page.status).toBe(200)
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'")
      const body = (await (await fetch(`${base}/ops/apimeter/api/overview?range=7d`, { headers: { 'x-role': 'admin' } })).json()) as { query: { from: number; to: number }; summary: unknown }
      expect(body.summary).toEqual(await monitor.stats.summary({ from: body.query.from, to: body.query.to }))
      const css = await fetch(`${base}/ops/apimeter/assets/app.css`)
      expect([css.status, css.headers.get('content-type')]).toEqual([200, 'text/css; charset=utf-8'])
      await monitor.flush()
      expect((await monitor.stats.summary({ from: '-1h', direction: 'inbound' })).requests).toBe((await monitor.stats.summary({ from: '-1h', direction: 'inbound', route: ['/orders/:id', '/checkout'] })).requests)
    } finally {
      await app.close()
      await monitor.close()
    }
  })
})
