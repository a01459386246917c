import { type CallInput, createMonitor, HTTP_DURATION_BUCKETS, type MetricFamily, type MetricsSnapshot, type Monitor, type MonitorOptions, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE } from '@apimeter/core'
import { afterEach, describe, expect, it } from 'vitest'
import { testMonitor } from '../helpers/monitor.js'

const inbound = (route: string, statusCode: number | null, durationMs: number, extra: Partial<CallInput> = {}): CallInput => ({
  direction: 'inbound',
  method: 'GET',
  route,
  statusCode,
  durationMs,
  ...extra,
})

const family = (snapshot: MetricsSnapshot, name: string): MetricFamily => {
  const found = snapshot.families.find((f) => f.name === name)
  if (found === undefined) throw new Error(`no family ${name}`)
  return found
}

/** The sample lines of a rendered body whose name starts with `prefix`. */
const samples = (body: string, prefix: string): string[] => body.split('\n').filter((line) => line.startsWith(prefix))

describe('monitor.metrics', () => {
  const monitors: Monitor[] = []
  afterEach(async () => {
    await Promise.all(monitors.splice(0).map((m) => m.close()))
  })
  function start(options: MonitorOptions = {}) {
    const made = testMonitor({ metrics: true, flushIntervalMs: 3_600_000, ...options })
    monitors.push(made.monitor)
    return made
  }

  it('is off by default: nothing is collected, and collect() says how to turn it on', async () => {
    const { monitor } = testMonitor()
    monitors.push(monitor)
    expect(monitor.metrics.enabled).toBe(false)
    await expect(monitor.metrics.prometheus()).rejects.toThrow(/monitor\.metrics is off; turn it on with createMonitor\(\{ metrics: true \}\)/)
  })

  it('validates the metrics option', () => {
    expect(() => createMonitor({ metrics: { maxTenants: 0 } })).toThrow(/^@apimeter\/core: options\.metrics.*must be/)
    expect(() => createMonitor({ metrics: 'yes' as never })).toThrow(/options\.metrics must be true, false or an object \{ tenantLabel\?, maxTenants\?, maxSeries\? \}/)
  })

  it('counts every recorded call in the duration histograms, current before any flush and never twice', async () => {
    const { monitor } = start()
    monitor.record(inbound('/orders/:id', 200, 3))
    monitor.record(inbound('/orders/:id', 200, 40))
    monitor.record(inbound('/orders/:id', 500, 1200))
    monitor.record(inbound('/orders/:id', 200, 20_000, { method: 'FOO' }))
    monitor.record({ direction: 'outbound', method: 'POST', url: 'https://api.example.com/v1/items/42', statusCode: 201, durationMs: 80 })
    // nothing has been drained yet (a one-hour flush interval): the scrape folds the staged calls in itself
    let snapshot = await monitor.metrics.collect()
    const server = family(snapshot, 'http.server.request.duration')
    expect(server).toMatchObject({ promName: 'http_server_request_duration_seconds', kind: 'histogram', unit: 's' })
    const ok = server.points.find((p) => p.attributes['http.response.status_code'] === '200' && p.attributes['http.request.method'] === 'GET')!
    expect(ok.attributes).toEqual({ 'http.request.method': 'GET', 'http.route': '/orders/:id', 'http.response.status_code': '200' })
    expect(ok.histogram).toMatchObject({ boundaries: HTTP_DURATION_BUCKETS, count: 2, sum: expect.closeTo(0.043, 12), min: 0.003, max: 0.04 })
    // 0.003 <= 0.005 (bucket 0), 0.04 in (0.025, 0.05] (bucket 3)
    expect(ok.histogram!.counts).toEqual([1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    const other = server.points.find((p) => p.attributes['http.request.method'] === '_OTHER')!
    expect(other.histogram!.counts.at(-1)).toBe(1) // 20 s: above the last bound
    const client = family(snapshot, 'http.client.request.duration')
    expect(client.points.map((p) => p.attributes)).toEqual([
      { 'http.request.method': 'POST', 'http.route': '/v1/items/:id', 'http.response.status_code': '201', 'server.address': 'api.example.com' },
    ])

    await monitor.flush() // drained into storage: the same calls must not be counted again
    monitor.record(inbound('/orders/:id', 200, 5))
    snapshot = await monitor.metrics.collect()
    const again = family(snapshot, 'http.server.request.duration').points.find((p) => p.attributes['http.response.status_code'] === '200' && p.attributes['http.request.method'] === 'GET')!
    expect(again.histogram!.count).toBe(3)
    const stats = await monitor.stats.summary()
    expect(stats.requests).toBe(5)
    expect(family(snapshot, 'apimeter.written.calls').points[0]!.value).toBe(5)
    expect(family(snapshot, 'apimeter.buffer.calls').points[0]!.value).toBe(1)
  })

  it('exports GenAI token usage (input including cached input) and cost totals equal to the stats', async () => {
    const { monitor } = start()
    const llm = (model: string, input: number, cached: number, output: number, cost: number): CallInput => ({
      direction: 'outbound',
      api: 'openai',
      method: 'POST',
      url: 'https://api.openai.com/v1/chat/completions',
      statusCode: 200,
      durationMs: 900,
      model,
      inputTokens: input,
      cachedInputTokens: cached,
      outputTokens: output,
      cost,
    })
    monitor.record(llm('gpt-4o', 1000, 200, 50, 0.0123))
    monitor.record(llm('gpt-4o', 10, 0, 5, 0.0001))
    monitor.record(llm('gpt-4o-mini', 3000, 0, 100, 0.002))
    const snapshot = await monitor.metrics.collect()
    const tokens = family(snapshot, 'gen_ai.client.token.usage')
    const input = tokens.points.find((p) => p.attributes['gen_ai.token.type'] === 'input' && p.attributes['gen_ai.request.model'] === 'gpt-4o')!
    expect(input.attributes).toEqual({ 'gen_ai.token.type': 'input', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.system': 'openai' })
    expect(input.histogram).toMatchObject({ count: 2, sum: 1210, min: 10, max: 1200 })
    const output = tokens.points.find((p) => p.attributes['gen_ai.token.type'] === 'output' && p.attributes['gen_ai.request.model'] === 'gpt-4o')!
    expect(output.histogram).toMatchObject({ count: 2, sum: 55 })
    const cost = family(snapshot, 'apimeter.cost')
    await monitor.flush()
    const byModel = await monitor.stats.breakdown({ by: 'model' })
    for (const row of byModel) {
      const point = cost.points.find((p) => p.attributes['gen_ai.request.model'] === row.key)!
      expect(point.value).toBeCloseTo(row.cost, 12)
    }
    expect(cost.points.reduce((sum, p) => sum + p.value, 0)).toBeCloseTo((await monitor.stats.summary()).cost, 12)
    const { body } = await monitor.metrics.prometheus()
    expect(samples(body, 'apimeter_cost_usd_total')).toContain('apimeter_cost_usd_total{apimeter_api="openai",gen_ai_request_model="gpt-4o"} 0.0124')
  })

  it('renders text 0.0.4 by default and OpenMetrics when Accept asks, escaping label values', async () => {
    const { monitor } = start()
    monitor.record({ direction: 'outbound', api: 'llm', method: 'POST', route: '/v1/chat', host: 'llm.local', statusCode: 200, durationMs: 2, model: 'say "hi"\\now\nplease', outputTokens: 3 })
    const text = await monitor.metrics.prometheus()
    expect(text.contentType).toBe(PROMETHEUS_CONTENT_TYPE)
    expect(text.body).toContain('# TYPE http_client_request_duration_seconds histogram')
    expect(text.body).toContain('# TYPE apimeter_dropped_calls_total counter')
    expect(text.body).not.toContain('# EOF')
    expect(samples(text.body, 'gen_ai_client_token_usage_count')).toEqual([
      'gen_ai_client_token_usage_count{gen_ai_token_type="output",gen_ai_request_model="say \\"hi\\"\\\\now\\nplease",gen_ai_system="llm"} 1',
    ])
    expect(samples(text.body, 'http_client_request_duration_seconds_bucket{')).toHaveLength(HTTP_DURATION_BUCKETS.length + 1)
    expect(samples(text.body, 'http_client_request_duration_seconds_bucket{').at(-1)).toMatch(/le="\+Inf"\} 1$/)
    expect(samples(text.body, 'apimeter_dropped_calls_total')).toEqual(['apimeter_dropped_calls_total 0'])

    const open = await monitor.metrics.prometheus({ accept: 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' })
    expect(open.contentType).toBe(OPENMETRICS_CONTENT_TYPE)
    expect(open.body.endsWith('# EOF\n')).toBe(true)
    expect(open.body).toContain('# TYPE apimeter_cost_usd counter')
    expect(open.body).not.toContain('# TYPE apimeter_cost_usd_total')
    expect(open.body).toContain('# UNIT http_client_request_duration_seconds seconds')
    expect((await monitor.metrics.prometheus({ accept: 'text/plain;version=0.0.4' })).contentType).toBe(PROMETHEUS_CONTENT_TYPE)
    expect((await monitor.metrics.prometheus({ accept: 'application/openmetrics-text;q=0,text/plain' })).contentType).toBe(PROMETHEUS_CONTENT_TYPE)
  })

  it('adds tenant labels only when asked, capped at maxTenants', async () => {
    const plain = start()
    plain.monitor.record(inbound('/a', 200, 1, { tenantId: 'acme' }))
    expect(family(await plain.monitor.metrics.collect(), 'http.server.request.duration').points[0]!.attributes).not.toHaveProperty('apimeter.tenant')

    const { monitor } = start({ metrics: { tenantLabel: true, maxTenants: 2 } })
    for (const tenant of ['t1', 't2', 't3', 't4', 't1']) monitor.record(inbound('/a', 200, 1, { tenantId: tenant, cost: 1 }))
    monitor.record(inbound('/a', 200, 1))
    const snapshot = await monitor.metrics.collect()
    const tenants = family(snapshot, 'http.server.request.duration').points.map((p) => [p.attributes['apimeter.tenant'] ?? '(none)', p.value])
    expect(tenants).toEqual([['t1', 2], ['t2', 1], ['(other)', 2], ['(none)', 1]])
    expect(family(snapshot, 'apimeter.cost').points.map((p) => [p.attributes['apimeter.tenant'], p.value])).toEqual([['t1', 2], ['t2', 1], ['(other)', 2]])
  })

  it('keeps at most maxSeries series per metric, counting the rest in one (other) series', async () => {
    const { monitor } = start({ metrics: { maxSeries: 10 } })
    for (let i = 0; i < 100; i++) monitor.record({ direction: 'outbound', method: 'GET', url: `https://host-${i}.example/`, statusCode: 200, durationMs: 1 })
    const client = family(await monitor.metrics.collect(), 'http.client.request.duration')
    expect(client.points).toHaveLength(11)
    expect(client.points.at(-1)!.attributes).toEqual({ 'http.request.method': '(other)', 'http.route': '(other)', 'http.response.status_code': '(other)', 'server.address': '(other)' })
    expect(client.points.reduce((sum, p) => sum + p.value, 0)).toBe(100)
  })

  it('exports alert rule states and probe states as gauges', async () => {
    let now = Date.UTC(2026, 0, 5, 12)
    const { monitor } = start({
      clock: { now: () => now },
      alerts: [
        { name: 'busy', kind: 'requests', window: '5m', threshold: 2 },
        { name: 'quiet', kind: 'requests', window: '5m', threshold: 1000 },
      ],
      probes: [{ name: 'nightly', heartbeat: { everyMs: 60_000, graceMs: 1000 } }],
      runProbes: false,
    })
    for (let i = 0; i < 3; i++) monitor.record(inbound('/', 200, 1))
    await monitor.flush()
    await monitor.alerts.evaluate()
    await monitor.probes.heartbeat('nightly')
    let snapshot = await monitor.metrics.collect()
    expect(family(snapshot, 'apimeter.alert.state').points.map((p) => [p.attributes['apimeter.alert.rule'], p.value])).toEqual([['busy', 2], ['quiet', 0]])
    expect(family(snapshot, 'apimeter.probe.up').points).toEqual([{ attributes: { 'apimeter.probe': 'nightly' }, value: 1 }])
    now += 120_000 // the beat is late
    await monitor.probes.runOnce('nightly')
    snapshot = await monitor.metrics.collect()
    expect(family(snapshot, 'apimeter.probe.up').points).toEqual([{ attributes: { 'apimeter.probe': 'nightly' }, value: 0 }])
    const { body } = await monitor.metrics.prometheus()
    expect(samples(body, 'apimeter_alert_state')).toEqual(['apimeter_alert_state{apimeter_alert_rule="busy"} 2', 'apimeter_alert_state{apimeter_alert_rule="quiet"} 0'])
  })
})
