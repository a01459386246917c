import { createServer, type Server } from 'node:http'
import { type Monitor, VERSION } from '@apimeter/core'
import { apimeter } from '@apimeter/express'
import { apimeterMetricProducer } from '@apimeter/otel'
import { AggregationTemporality, DataPointType, type HistogramMetricData, InMemoryMetricExporter, MeterProvider, type MetricData, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics'
import express from 'express'
import { afterEach, describe, expect, it } from 'vitest'
import { testMonitor } from '../../core/test/helpers/monitor.js'
import { close, listen } from '../../../test/support/http.js'

/**
 * The producer's output as a real MeterProvider's reader exports it: a PeriodicExportingMetricReader (whose interval
 * never fires during a test) with the producer, pushing to the SDK's in-memory exporter on forceFlush().
 */
function pipeline(monitor: Monitor) {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000, metricProducers: [apimeterMetricProducer(monitor)] })
  const provider = new MeterProvider({ readers: [reader] })
  return {
    provider,
    /** Every metric of the last export, by name. */
    async export(): Promise<Map<string, MetricData>> {
      exporter.reset()
      await reader.forceFlush()
      const last = exporter.getMetrics().at(-1)!
      return new Map(last.scopeMetrics.flatMap((s) => s.metrics.map((m) => [m.descriptor.name, m] as const)))
    },
    scopes: () => exporter.getMetrics().at(-1)!.scopeMetrics.map((s) => s.scope),
  }
}

describe('@apimeter/otel', () => {
  const cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const step of cleanup.splice(0)) await step()
  })

  it('hands the HTTP, GenAI and cost instruments, named per the semantic conventions, to a MeterProvider', async () => {
    const { monitor } = testMonitor({ metrics: true })
    cleanup.push(() => monitor.close())
    const app = express()
    app.use(apimeter(monitor))
    app.get('/users/:id', (_req, res) => res.send('user'))
    const server: Server = createServer(app)
    cleanup.push(() => close(server))
    const base = await listen(server)
    for (const id of [1, 2, 3]) expect((await fetch(`${base}/users/${id}`)).status).toBe(200)
    // an Anthropic-style call: input tokens exclude cache reads there; the GenAI convention counts them in
    monitor.record({
      direction: 'outbound', api: 'anthropic', method: 'POST', url: 'https://api.anthropic.com/v1/messages', statusCode: 200, durationMs: 1500,
      model: 'claude-sonnet-4', inputTokens: 1000, cachedInputTokens: 300, outputTokens: 42, cost: 0.00447,
    })
    const { provider, export: exportNow, scopes } = pipeline(monitor)
    cleanup.push(() => provider.shutdown())
    const metrics = await exportNow()
    expect(scopes()).toContainEqual({ name: '@apimeter/otel', version: VERSION })

    const server_ = metrics.get('http.server.request.duration') as HistogramMetricData
    expect(server_.descriptor).toMatchObject({ name: 'http.server.request.duration', unit: 's', valueType: 1 })
    expect(server_.dataPointType).toBe(DataPointType.HISTOGRAM)
    expect(server_.aggregationTemporality).toBe(AggregationTemporality.CUMULATIVE)
    expect(server_.dataPoints).toHaveLength(1)
    const point = server_.dataPoints[0]!
    expect(point.attributes).toEqual({ 'http.request.method': 'GET', 'http.route': '/users/:id', 'http.response.status_code': 200 })
    expect(point.value.count).toBe(3)
    expect(point.value.buckets.boundaries).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10])
    expect(point.value.buckets.counts.reduce((a, b) => a + b, 0)).toBe(3)
    expect(point.value.min).toBeGreaterThan(0)
    expect(point.value.max).toBeGreaterThanOrEqual(point.value.min!)

    const client = metrics.get('http.client.request.duration') as HistogramMetricData
    expect(client.dataPoints.map((p) => [p.attributes, p.value.count, p.value.sum])).toEqual([
      [{ 'http.request.method': 'POST', 'http.route': '/v1/messages', 'http.response.status_code': 200, 'server.address': 'api.anthropic.com', 'apimeter.api': 'anthropic' }, 1, 1.5],
    ])

    const tokens = metrics.get('gen_ai.client.token.usage') as HistogramMetricData
    expect(tokens.descriptor).toMatchObject({ unit: '{token}', valueType: 0 })
    expect(tokens.dataPoints.map((p) => [p.attributes, p.value.sum])).toEqual([
      [{ 'gen_ai.token.type': 'input', 'gen_ai.request.model': 'claude-sonnet-4', 'gen_ai.system': 'anthropic' }, 1300],
      [{ 'gen_ai.token.type': 'output', 'gen_ai.request.model': 'claude-sonnet-4', 'gen_ai.system': 'anthropic' }, 42],
    ])

    const cost = metrics.get('apimeter.cost')!
    expect(cost).toMatchObject({ dataPointType: DataPointType.SUM, isMonotonic: true, descriptor: { unit: 'USD' } })
    expect(cost.dataPoints).toEqual([expect.objectContaining({ attributes: { 'apimeter.api': 'anthropic', 'gen_ai.request.model': 'claude-sonnet-4' }, value: 0.00447 })])
    expect(metrics.get('apimeter.dropped.calls')!.dataPoints[0]!.value).toBe(0)
    expect(metrics.get('apimeter.buffer.calls')!.dataPointType).toBe(DataPointType.GAUGE)

    // cumulative: a later export counts everything since the monitor started, from the same start time
    expect((await fetch(`${base}/users/4`)).status).toBe(200)
    const later = (await exportNow()).get('http.server.request.duration') as HistogramMetricData
    expect(later.dataPoints[0]!.value.count).toBe(4)
    expect(later.dataPoints[0]!.startTime).toEqual(point.startTime)
  })

  it('refuses a monitor without metrics, and a bad scope', () => {
    const off = testMonitor().monitor
    const { monitor } = testMonitor({ metrics: true })
    cleanup.push(() => off.close(), () => monitor.close())
    expect(() => apimeterMetricProducer(off)).toThrow("@apimeter/otel: the monitor's metrics are off; create it with createMonitor({ metrics: true }) to export them")
    expect(() => apimeterMetricProducer(undefined as never)).toThrow('@apimeter/otel: monitor must be a monitor from createMonitor(), got undefined')
    expect(() => apimeterMetricProducer(monitor, { scope: { name: '' } })).toThrow('@apimeter/otel: options.scope must be an object { name, version? } with a non-empty name, got an object')
  })
})
