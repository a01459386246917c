import { type Monitor, OPENMETRICS_CONTENT_TYPE } from '@apimeter/core'
import { apimeterFastify, apimeterMetrics } from '@apimeter/fastify'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { testMonitor } from '../../core/test/helpers/monitor.js'

describe('apimeterMetrics (Fastify)', () => {
  const apps: FastifyInstance[] = []
  const monitors: Monitor[] = []
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()))
    await Promise.all(monitors.splice(0).map((m) => m.close()))
  })

  it('serves the metrics behind auth at its path (with a prefix), unmetered, on a real server', async () => {
    const { monitor } = testMonitor({ metrics: true })
    monitors.push(monitor)
    const app = Fastify()
    apps.push(app)
    await app.register(apimeterFastify, { monitor })
    await app.register(apimeterMetrics, { monitor, auth: (req) => req.headers['x-scraper'] === 'prom', prefix: '/internal' })
    app.get('/items/:id', async () => 'item')
    const base = await app.listen({ port: 0, host: '127.0.0.1' })

    expect((await fetch(`${base}/items/9`)).status).toBe(200)
    expect((await fetch(`${base}/internal/metrics`)).status).toBe(401)
    const res = await fetch(`${base}/internal/metrics`, { headers: { 'x-scraper': 'prom', accept: 'application/openmetrics-text' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe(OPENMETRICS_CONTENT_TYPE)
    const body = await res.text()
    expect(body).toContain('http_server_request_duration_seconds_count{http_request_method="GET",http_route="/items/:id",http_response_status_code="200"} 1')
    expect(body).not.toContain('/internal/metrics')
    await monitor.flush()
    expect((await monitor.stats.summary()).requests).toBe(1)
  })

  it('fails registration without auth, with a bad path, or when metrics are off', async () => {
    const { monitor } = testMonitor({ metrics: true })
    const off = testMonitor().monitor
    monitors.push(monitor, off)
    const register = async (options: object) => {
      const app = Fastify()
      apps.push(app)
      await app.register(apimeterMetrics, options as never)
      return app.ready()
    }
    await expect(register({ monitor })).rejects.toThrow(/^@apimeter\/fastify: options\.auth is required/)
    await expect(register({ monitor, auth: { token: 't' }, path: 'metrics' })).rejects.toThrow(`@apimeter/fastify: options.path must be a path starting with '/', got "metrics"`)
    await expect(register({ monitor: off, auth: { token: 't' } })).rejects.toThrow(/metrics are off/)
  })
})
