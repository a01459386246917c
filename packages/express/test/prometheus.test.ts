import { createServer, type Server } from 'node:http'
import { costs, type Monitor } from '@apimeter/core'
import { apimeter, metricsHandler } from '@apimeter/express'
import express from 'express'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startPrometheus, type PrometheusServer } from '../../../scripts/prometheus-server.js'
import { testMonitor } from '../../core/test/helpers/monitor.js'
import { type FakeProvider, startFakeProvider } from '../../core/test/outbound/fake-provider.js'
import { close, listen, waitFor } from '../../../test/support/http.js'

const TOKEN = 'scrape-token-0123456789'
const ROUTE = '/orders/:id'
/** How long each request to ROUTE takes (ms): spread over several buckets of the OpenTelemetry default bounds. */
const DELAYS = [0, 0, 0, 1, 2, 3, 8, 8, 15, 20, 30, 30, 40, 60, 60, 90, 120, 150, 200, 320]
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A real Prometheus (Debian's package, started by scripts/prometheus-server.ts) scrapes a metered Express app every
 * second through `metricsHandler`; what its HTTP API answers must agree with `monitor.stats` for the same calls.
 */
describe('Prometheus scraping a metered Express 5 app', () => {
  let monitor: Monitor
  let server: Server
  let provider: FakeProvider
  let prometheus: PrometheusServer
  let base: string

  beforeAll(async () => {
    provider = await startFakeProvider()
    monitor = testMonitor({ metrics: true, apis: [{ name: 'openai', match: `${provider.url}/v1/chat`, cost: costs.openai() }] }).monitor
    const app = express()
    app.use(apimeter(monitor))
    app.get('/metrics', metricsHandler(monitor, { auth: { token: TOKEN } }))
    app.get('/orders/:id', async (req, res) => {
      await sleep(Number(req.query.delay ?? 0))
      res.status(req.params.id === 'missing' ? 404 : 200).json({ id: req.params.id })
    })
    server = createServer(app)
    base = await listen(server)
    prometheus = await startPrometheus({ target: base.replace('http://', ''), bearerToken: TOKEN, intervalMs: 1000 })
  })

  afterAll(async () => {
    await prometheus?.destroy()
    if (server) await close(server)
    await monitor?.close()
    await provider?.close()
  })

  /** The value of a one-sample query, once Prometheus has scraped what `ready` waits for. */
  const scalar = async (promql: string): Promise<number> => {
    const result = await prometheus.query(promql)
    expect(result, promql).toHaveLength(1)
    return result[0]!.value
  }

  it('returns the request counts, histogram_quantile and cost totals that monitor.stats returns', async () => {
    for (const [i, delay] of DELAYS.entries()) expect((await fetch(`${base}/orders/${i}?delay=${delay}`)).status).toBe(200)
    for (let i = 0; i < 3; i++) expect((await fetch(`${base}/orders/missing`)).status).toBe(404)
    const openai = new OpenAI({ apiKey: 'sk-test-0123456789abcdef', baseURL: `${provider.url}/v1`, fetch: monitor.fetch, maxRetries: 0 })
    for (const model of ['gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o']) await openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] })
    const total = DELAYS.length + 3

    // Prometheus scrapes every second: wait until a scrape has seen every call
    await waitFor(async () => (await prometheus.query(`sum(http_server_request_duration_seconds_count{http_route="${ROUTE}"})`))[0]?.value === total, 'Prometheus to scrape every call', 30_000)
    await waitFor(async () => (await prometheus.query('sum(gen_ai_client_token_usage_count{gen_ai_token_type="input"})'))[0]?.value === 3, 'the LLM calls', 30_000)
    await monitor.flush()

    // request counts, by status, as the stats count them; the scrapes of /metrics themselves are not metered
    const byStatus = await prometheus.query(`sum by (http_response_status_code) (http_server_request_duration_seconds_count{http_route="${ROUTE}"})`)
    const stats = await monitor.stats.breakdown({ by: 'status', direction: 'inbound', route: ROUTE })
    expect(Object.fromEntries(byStatus.map((s) => [s.metric.http_response_status_code, s.value]))).toEqual(Object.fromEntries(stats.map((row) => [row.key, row.requests])))
    expect(await prometheus.query('http_server_request_duration_seconds_count{http_route="/metrics"}')).toEqual([])
    expect((await monitor.stats.summary({ route: '/metrics' })).requests).toBe(0)

    // p95: Prometheus interpolates linearly inside the bucket holding the 95th percentile rank; the stats answer
    // from a quantile sketch of the exact durations. Both estimate the same rank of the same calls, so the sketch's
    // p95 lies in that bucket (lower bound, upper bound] — with the sketch's 1 % relative error at the edges.
    const summary = await monitor.stats.summary({ route: ROUTE, direction: 'inbound' })
    expect(summary.requests).toBe(total)
    const fromBuckets = await scalar(`histogram_quantile(0.95, sum by (le) (http_server_request_duration_seconds_bucket{http_route="${ROUTE}"}))`)
    const bounds = [0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
    const upper = bounds.findIndex((b) => b >= fromBuckets)
    const [low, high] = [bounds[upper - 1] ?? 0, bounds[upper]!]
    const sketchP95 = summary.latency!.p95 / 1000
    expect(sketchP95).toBeGreaterThanOrEqual(low * 0.99)
    expect(sketchP95).toBeLessThanOrEqual(high * 1.01)
    // the count and the sum of durations agree exactly (up to the stats' microsecond rounding)
    expect(await scalar(`sum(http_server_request_duration_seconds_sum{http_route="${ROUTE}"})`)).toBeCloseTo((summary.latency!.avg * total) / 1000, 3)

    // cost totals, per model and overall, and token usage with cached input included (OpenAI's prompt_tokens)
    const costByModel = await prometheus.query('sum by (gen_ai_request_model) (apimeter_cost_usd_total)')
    const statsByModel = await monitor.stats.breakdown({ by: 'model', direction: 'outbound' })
    expect(costByModel).toHaveLength(2)
    for (const row of statsByModel) expect(costByModel.find((s) => s.metric.gen_ai_request_model === row.key)!.value).toBeCloseTo(row.cost, 9)
    const outbound = await monitor.stats.summary({ direction: 'outbound' })
    expect(await scalar('sum(apimeter_cost_usd_total)')).toBeCloseTo(outbound.cost, 9)
    expect(await scalar('sum(gen_ai_client_token_usage_sum{gen_ai_token_type="input"})')).toBe(outbound.tokens.input + outbound.tokens.cachedInput)
    expect(await scalar('sum(gen_ai_client_token_usage_sum{gen_ai_token_type="output"})')).toBe(outbound.tokens.output)
    expect(await scalar('sum(http_client_request_duration_seconds_count{apimeter_api="openai"})')).toBe(outbound.requests)

    // write-path health and the scrape itself
    expect(await scalar('apimeter_dropped_calls_total')).toBe(0)
    expect(await scalar('up{job="app"}')).toBe(1)
  })
})
