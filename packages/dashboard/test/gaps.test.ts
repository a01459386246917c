import { createServer, type Server } from 'node:http'
import { type ApimeterError, createMonitor, type Monitor, readStored } from '@apimeter/core'
import { apimeter } from '@apimeter/express'
import { postgresStorage } from '@apimeter/storage-postgres'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import express4 from 'express4'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { close, listen, waitFor } from '../../../test/support/http.js'
import { freshSchema, query, testUrl } from '../../storage-postgres/test/helpers.js'
import { mountOnExpress, sampleCalls, seed, startDashboardCli, tempDir } from './fixtures.js'

const TOKEN = 'gaps-test-token'
const bearer = { authorization: `Bearer ${TOKEN}` }

/** An app's definitions: two budgets (one far from its threshold), an error-rate rule, an SLO and two probes. */
function definitions(probeUrl: string) {
  return {
    alerts: [
      { name: 'orders-errors', kind: 'error_rate' as const, route: '/orders/:id', window: '1h', threshold: 0.05 },
      { name: 'openai-daily', kind: 'cost' as const, api: 'openai', threshold: 0.001 },
      { name: 'monthly-cap', kind: 'cost' as const, window: 'month' as const, threshold: 100 },
    ],
    slos: [{ name: 'orders-availability', objective: 0.99, window: '30d' as const, indicator: { kind: 'availability' as const, filter: { route: '/orders/:id' } } }],
    probes: [
      { name: 'orders-api', url: `${probeUrl}/health`, intervalMs: 3_600_000 },
      { name: 'nightly-export', heartbeat: { everyMs: 86_400_000 } },
    ],
  }
}

/** Records the sample calls and runs the app's alert rules and probes once. */
async function runApp(monitor: Monitor): Promise<void> {
  await seed(monitor, sampleCalls(Date.now()))
  await monitor.probes.runOnce('orders-api')
  await monitor.probes.heartbeat('nightly-export')
  await monitor.alerts.evaluate()
}

interface Reliability {
  active: { rule: string; state: string; source: string }[]
  probes: { name: string; state: string; source: string; uptime: { checks: number; ratio: number | null } | null; bar: unknown[] }[]
  slos: { name: string; objective: number; sli: number; total: number; source: string }[]
  problems: unknown[]
}
interface Llm {
  budgets: { rule: string; spent: number; threshold: number; burn: number; state: string; window: string; source: string }[]
}

async function json<T>(url: string, headers: Record<string, string> = {}): Promise<T> {
  const res = await fetch(url, { headers })
  expect(res.status).toBe(200)
  return (await res.json()) as T
}

describe('alerts, probes, SLOs and budgets stored by an app, on a dashboard that does not define them', () => {
  let target: Server
  let probeUrl: string
  beforeAll(async () => {
    target = createServer((_req, res) => res.end('ok'))
    probeUrl = await listen(target)
  })
  afterAll(() => close(target))

  it('apimeter dashboard --db <SQLite file> shows them as the app reports them, and every budget whatever its state', async () => {
    const tmp = tempDir()
    const file = `${tmp.dir}/app.db`
    const app = createMonitor({ logger: false, flushOnExit: false, service: 'shop', storage: sqliteStorage({ filename: file }), runProbes: false, alertIntervalMs: 86_400_000, ...definitions(probeUrl) })
    let run: ReturnType<typeof startDashboardCli> | undefined
    try {
      await runApp(app)
      const expected = { active: await app.alerts.active(), budgets: await app.alerts.budgets(), probes: await app.probes.status(), slos: await app.slos.status() }
      await app.close()
      run = startDashboardCli('--db', file, '--port', '0')
      await waitFor(() => run!.out().includes('Ctrl-C') || run!.err() !== '', 'the URL')
      expect(run.err()).toBe('')
      const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(run.out())![1]!
      const reliability = await json<Reliability>(`${url}api/reliability?range=24h`)
      expect(reliability.active.map((a) => [a.rule, a.state, a.source]).sort()).toEqual(expected.active.map((a) => [a.rule, a.state, 'stored']).sort())
      expect(reliability.active.map((a) => a.rule)).toEqual(expect.arrayContaining(['openai-daily', 'orders-errors', 'slo:orders-availability:page']))
      expect(reliability.probes.map((p) => [p.name, p.state, p.source])).toEqual(expected.probes.map((p) => [p.name, p.state, 'stored']).sort())
      const orders = reliability.probes.find((p) => p.name === 'orders-api')!
      expect(orders.uptime).toMatchObject({ checks: 1, ratio: 1 })
      expect(orders.bar).toHaveLength(1)
      expect(reliability.slos.map((s) => [s.name, s.objective, s.total, s.source])).toEqual(expected.slos.map((s) => [s.name, s.objective, s.total, 'stored']))
      expect(reliability.slos[0]!.sli).toBeCloseTo(expected.slos[0]!.sli!, 12)
      expect(reliability.problems).toEqual([])
      // budgets: both cost rules, the one far below its threshold too, with spend and burn
      const llm = await json<Llm>(`${url}api/llm?range=24h`)
      expect(llm.budgets.map((b) => [b.rule, b.state, b.window, b.source])).toEqual([
        ['openai-daily', 'firing', 'day', 'stored'],
        ['monthly-cap', 'inactive', 'month', 'stored'],
      ])
      for (const [i, b] of llm.budgets.entries()) {
        const e = expected.budgets[i]!
        expect([b.rule, b.threshold]).toEqual([e.rule, e.threshold])
        expect(b.spent).toBeCloseTo(e.spent, 9)
        expect(b.burn).toBeCloseTo(b.spent / b.threshold, 9)
      }
      expect(llm.budgets[1]!.burn).toBeGreaterThan(0)
      expect(llm.budgets[1]!.burn).toBeLessThan(0.01)
      expect(await run.stop()).toBe(0)
    } finally {
      if (run) await run.stop()
      tmp.remove()
    }
  })

  it('a fleet member on PostgreSQL with no definitions of its own shows the ones another instance stored, beside its own', async () => {
    const { schema, drop } = await freshSchema('dashstored')
    const app = createMonitor({ logger: false, flushOnExit: false, service: 'shop', storage: postgresStorage({ connectionString: testUrl(), schema }), runProbes: false, alertIntervalMs: 86_400_000, ...definitions(probeUrl) })
    const member = createMonitor({
      logger: false,
      flushOnExit: false,
      service: 'worker',
      storage: postgresStorage({ connectionString: testUrl(), schema }),
      alertIntervalMs: 86_400_000,
      alerts: [{ name: 'worker-spend', kind: 'cost', window: '1h', threshold: 10 }],
    })
    const { base, stop } = await mountOnExpress(express4, member, { auth: { token: TOKEN } })
    try {
      await runApp(app)
      const reliability = await json<Reliability>(`${base}/apimeter/api/reliability`, bearer)
      expect(reliability.probes.map((p) => [p.name, p.source])).toEqual([['nightly-export', 'stored'], ['orders-api', 'stored']])
      expect(reliability.slos.map((s) => [s.name, s.source])).toEqual([['orders-availability', 'stored']])
      expect(reliability.active.map((a) => a.rule).sort()).toEqual((await app.alerts.active()).map((a) => a.rule).sort())
      const llm = await json<Llm>(`${base}/apimeter/api/llm`, bearer)
      // its own budget first (configured), then the app's that it does not define
      expect(llm.budgets.map((b) => [b.rule, b.source])).toEqual([['worker-spend', 'configured'], ['openai-daily', 'stored'], ['monthly-cap', 'stored']])
      // a stored definition this apimeter cannot read is named on the page, not dropped silently
      await query(`UPDATE apimeter_alert_rules SET definition = '{"name":"orders-errors","kind":"error_rate","threshold":"high"}' WHERE name = 'orders-errors'`, schema)
      const after = await json<Reliability>(`${base}/apimeter/api/reliability`, bearer)
      expect(after.problems).toEqual([{ what: 'alert_rule', name: 'orders-errors', message: expect.stringMatching(/threshold/) }])
      expect(after.active.map((a) => a.rule)).not.toContain('orders-errors')
      expect(await readStored(member.storage).problems()).toEqual(after.problems)
    } finally {
      await stop()
      await member.close()
      await app.close()
      await drop()
    }
  })
})

describe('the dashboard mounted on Express 4', () => {
  const tmp = tempDir()
  let monitor: Monitor
  let mounted: Awaited<ReturnType<typeof mountOnExpress>>
  let base: string
  const errors: ApimeterError[] = []

  beforeAll(async () => {
    monitor = createMonitor({ logger: false, flushOnExit: false, service: 'shop', storage: sqliteStorage({ filename: `${tmp.dir}/express4.db` }) })
    monitor.on('error', (e) => errors.push(e))
    await seed(monitor, sampleCalls(Date.now()))
    // the app meters itself and parses forms before the dashboard (Express 4 leaves an empty body for others)
    mounted = await mountOnExpress(express4, monitor, { auth: { token: TOKEN }, liveIntervalMs: 250 }, (app) => {
      app.use(apimeter(monitor))
      app.use(express4.urlencoded({ extended: false }))
      app.get('/ping', (_req, res) => res.send('pong'))
    })
    base = mounted.base
  })
  afterAll(async () => {
    await mounted.stop()
    await monitor.close()
    tmp.remove()
  })

  it('signs in, serves a JSON view with the numbers of monitor.stats and the live stream, and meters none of it', async () => {
    expect((await fetch(`${base}/apimeter/`)).status).toBe(401)
    const signin = await fetch(`${base}/apimeter/signin`, { method: 'POST', body: new URLSearchParams({ token: TOKEN }), redirect: 'manual' })
    expect([signin.status, signin.headers.get('location')]).toEqual([303, '/apimeter/'])
    const session = signin.headers.get('set-cookie')!.split(';')[0]!
    expect((await fetch(`${base}/apimeter/`, { headers: { cookie: session } })).status).toBe(200)
    const overview = await json<{ query: { from: number; to: number }; summary: unknown }>(`${base}/apimeter/api/overview?range=7d`, { cookie: session })
    expect(overview.summary).toEqual(await monitor.stats.summary({ from: overview.query.from, to: overview.query.to }))

    const controller = new AbortController()
    const stream = await fetch(`${base}/apimeter/api/stream?view=overview&range=1h`, { headers: { cookie: session }, signal: controller.signal })
    expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ''
    while (!/event: data\ndata: .*\n\n/.test(text)) text += (await reader.read()).value ?? ''
    const first = JSON.parse(/event: data\ndata: (.*)\n\n/.exec(text)![1]!) as { summary: { requests: number } }
    expect(first.summary.requests).toBe(18)
    controller.abort()

    await fetch(`${base}/ping`)
    await monitor.flush()
    await waitFor(async () => (await monitor.stats.summary({ route: '/ping' })).requests === 1, 'the /ping call')
    const routes = (await monitor.stats.breakdown({ by: 'route', direction: 'inbound', from: '-1h' })).map((r) => r.key)
    expect(routes).toContain('/ping')
    expect(routes.some((r) => r.startsWith('/apimeter'))).toBe(false)
    expect(errors).toEqual([])
  })
})

describe('the live streams', () => {
  it('share one read per view and query between the pages showing it', async () => {
    // every read of the clock moves it on by 1 ms, so two reads of a view would answer two different `query.to`
    let t = Date.now()
    const clock = { now: () => t++ }
    const monitor = createMonitor({ logger: false, flushOnExit: false, clock })
    const { base, stop } = await mountOnExpress(express4, monitor, { auth: { token: TOKEN }, liveIntervalMs: 250, clock })
    const controller = new AbortController()
    try {
      const open = async (query: string) => {
        const res = await fetch(`${base}/apimeter/api/stream?${query}`, { headers: bearer, signal: controller.signal })
        return res.body!.pipeThrough(new TextDecoderStream()).getReader()
      }
      const events = async (reader: ReadableStreamDefaultReader<string>, n: number): Promise<{ query: { to: number } }[]> => {
        let text = ''
        const found = () => [...text.matchAll(/event: data\ndata: (.*)\n\n/g)].map((m) => JSON.parse(m[1]!) as { query: { to: number } })
        while (found().length < n) text += (await reader.read()).value ?? ''
        return found().slice(0, n)
      }
      const a = await open('view=overview&range=1h')
      const [firstA] = await events(a, 1)
      // a second page on the same view and query (parameters in another order) gets the same read at once
      const b = await open('range=1h&view=overview')
      const [firstB] = await events(b, 1)
      expect(firstB!.query.to).toBe(firstA!.query.to)
      // another query is another read
      const c = await open('view=overview&range=24h')
      const [firstC] = await events(c, 1)
      expect(firstC!.query.to).not.toBe(firstA!.query.to)
      // a call recorded now reaches both pages in one read: the same `to`
      monitor.record({ direction: 'inbound', method: 'GET', route: '/x', statusCode: 200, durationMs: 1 })
      await monitor.flush()
      const [nextA] = await events(a, 1)
      const [nextB] = await events(b, 1)
      expect(nextA!.query.to).toBe(nextB!.query.to)
      expect(nextA!.query.to).toBeGreaterThan(firstA!.query.to)
    } finally {
      controller.abort()
      await stop()
      await monitor.close()
    }
  })
})

describe('a view that fails to read', () => {
  it('is an error event on the monitor (JSON view and live stream), reported through core\'s internal report', async () => {
    const { schema, drop } = await freshSchema('dashfail')
    const monitor = createMonitor({ logger: false, flushOnExit: false, storage: postgresStorage({ connectionString: testUrl(), schema }) })
    const errors: ApimeterError[] = []
    monitor.on('error', (e) => errors.push(e))
    const { base, stop } = await mountOnExpress(express4, monitor, { auth: { token: TOKEN }, liveIntervalMs: 250 })
    const controller = new AbortController()
    try {
      expect((await fetch(`${base}/apimeter/api/overview`, { headers: bearer })).status).toBe(200)
      // the tables go away under the running app: every read fails
      await query(`DROP SCHEMA ${schema} CASCADE`)
      const failed = await fetch(`${base}/apimeter/api/traffic`, { headers: bearer })
      expect([failed.status, await failed.json()]).toEqual([500, { error: 'internal error' }])
      await waitFor(() => errors.length >= 1, 'the error event')
      expect(errors[0]!.code).toBe('CALLBACK_FAILED')
      expect(errors[0]!.message).toMatch(/^@apimeter\/dashboard: GET \/api\/traffic failed: /)
      const stream = await fetch(`${base}/apimeter/api/stream?view=overview`, { headers: bearer, signal: controller.signal })
      const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader()
      let text = ''
      while (!text.includes('event: problem')) text += (await reader.read()).value ?? ''
      expect(text).toContain('data: {"error":"the data could not be read; retrying"}')
      await waitFor(() => errors.some((e) => /the overview view could not be read/.test(e.message)), 'the stream\'s error event')
    } finally {
      controller.abort()
      await stop()
      await monitor.close()
      await drop().catch(() => undefined)
    }
  })
})
