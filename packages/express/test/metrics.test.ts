import { createServer, type Server } from 'node:http'
import { createMonitor, type Monitor, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE } from '@apimeter/core'
import { seededRandom } from '@apimeter/core/testing'
import { apimeter, metricsHandler } from '@apimeter/express'
import express from 'express'
import { afterEach, describe, expect, it } from 'vitest'
import { testMonitor } from '../../core/test/helpers/monitor.js'
import { close, inBatches, listen, scanPaths } from '../../../test/support/http.js'

const TOKEN = 'metrics-token-abcdef'
const auth = { authorization: `Bearer ${TOKEN}` }

describe('metricsHandler (Express 5)', () => {
  const servers: Server[] = []
  const monitors: Monitor[] = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(close))
    await Promise.all(monitors.splice(0).map((m) => m.close()))
  })

  async function start(declare: (app: express.Express) => void = () => undefined) {
    const { monitor, errors } = testMonitor({ metrics: true })
    monitors.push(monitor)
    const app = express()
    app.use(apimeter(monitor))
    app.get('/metrics', metricsHandler(monitor, { auth: { token: TOKEN } }))
    declare(app)
    const server = createServer(app)
    servers.push(server)
    return { monitor, errors, base: await listen(server) }
  }

  it('refuses to be built without auth, or for a monitor without metrics', () => {
    const { monitor } = testMonitor({ metrics: true })
    monitors.push(monitor)
    expect(() => metricsHandler(monitor, undefined as never)).toThrow(/^@apimeter\/express: options\.auth is required/)
    expect(() => metricsHandler(monitor, {} as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
    expect(() => metricsHandler(monitor, { auth: { token: '' } })).toThrow(/^@apimeter\/express: options\.auth/)
    const off = createMonitor({ logger: false, flushOnExit: false })
    monitors.push(off)
    expect(() => metricsHandler(off, { auth: { token: TOKEN } })).toThrow("@apimeter/express: the monitor's metrics are off; create it with createMonitor({ metrics: true }) to serve them")
  })

  it('serves text 0.0.4 or OpenMetrics by Accept to an authorised scraper, 401 to anyone else, and is never metered', async () => {
    const { monitor, base } = await start((app) => app.get('/orders/:id', (_req, res) => res.send('ok')))
    expect((await fetch(`${base}/orders/1`)).status).toBe(200)

    const denied = await fetch(`${base}/metrics`)
    expect(denied.status).toBe(401)
    expect(denied.headers.get('www-authenticate')).toBe('Bearer realm="apimeter"')
    expect((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401)

    const text = await fetch(`${base}/metrics`, { headers: auth })
    expect(text.status).toBe(200)
    expect(text.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE)
    const body = await text.text()
    expect(body).toContain('http_server_request_duration_seconds_count{http_request_method="GET",http_route="/orders/:id",http_response_status_code="200"} 1')

    const open = await fetch(`${base}/metrics`, { headers: { ...auth, accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' } })
    expect(open.headers.get('content-type')).toBe(OPENMETRICS_CONTENT_TYPE)
    expect((await open.text()).endsWith('# EOF\n')).toBe(true)
    const head = await fetch(`${base}/metrics`, { method: 'HEAD', headers: auth })
    expect([head.status, await head.text()]).toEqual([200, ''])

    // neither the scrapes nor the refused requests were metered
    await monitor.flush()
    expect((await monitor.stats.summary()).requests).toBe(1)
    const again = await (await fetch(`${base}/metrics`, { headers: auth })).text()
    expect(again).not.toContain('http_route="/metrics"')
  })

  it('keeps the series bounded under a 10,000-path URL scan: templates only, unknown paths collapse', async () => {
    const declared = ['/users/:id', '/orgs/:orgId/projects/:id']
    const { base } = await start((app) => {
      app.get('/users/:id', (_req, res) => res.send('user'))
      app.get('/orgs/:orgId/projects/:id', (_req, res) => res.send('project'))
    })
    const word = (r: () => number) => Math.floor(r() * 36 ** 5).toString(36)
    const paths = scanPaths(10_000, seededRandom(20_261_203), [(r) => `/users/${word(r)}`, (r) => `/orgs/${word(r)}/projects/${Math.floor(r() * 1e6)}`])
    await inBatches(paths, 16, (path) => fetch(base + path).then((r) => r.arrayBuffer()))
    const body = await (await fetch(`${base}/metrics`, { headers: auth })).text()
    const series = body.split('\n').filter((line) => line.startsWith('http_server_request_duration_seconds_count'))
    const routes = new Set(series.map((line) => /http_route="([^"]*)"/.exec(line)![1]))
    expect([...routes].sort()).toEqual([...declared, '(unmatched)'].sort())
    expect(series.length).toBeLessThanOrEqual(routes.size * 2) // 200 and 404 at most
    const counted = series.reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0)
    expect(counted).toBe(10_000)
    expect(body.length).toBeLessThan(20_000)
  }, 240_000) // 10,000 real requests: generous on a loaded machine (a limit, not an assertion)
})
