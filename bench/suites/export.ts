// What the Prometheus/OpenTelemetry export costs: record() with live metrics on and off (the request path), the
// per-batch aggregation it adds off the request path, and the time to render /metrics with 1,000 series.
import { type CallInput, createMonitor, type Monitor } from '@apimeter/core'
import { discardStorage, type Figure, median, type SuiteResult, timeMedian } from '../lib.js'

const CALLS = Number(process.env.EXPORT_CALLS ?? 200_000)
const ROUNDS = Number(process.env.EXPORT_ROUNDS ?? 7)
const RENDERS = Number(process.env.EXPORT_RENDERS ?? 50)

/** Calls spread over 100 inbound series (25 routes × 4 statuses), the shape a busy API records. */
const CALL_SHAPES: CallInput[] = Array.from({ length: 100 }, (_, i) => ({
  direction: 'inbound',
  method: 'GET',
  route: `/r${i % 25}/:id`,
  statusCode: [200, 201, 404, 500][Math.floor(i / 25)]!,
  durationMs: 1 + (i % 17) * 7.3,
  tenantId: 'acme',
}))

const monitorWith = (metrics: boolean): Monitor =>
  createMonitor({ logger: false, flushOnExit: false, batchSize: 5000, maxBufferSize: 1_000_000, flushIntervalMs: 3_600_000, storage: discardStorage, metrics })

/** ns per record() call, and ns per call of flush() (draining, aggregation when metrics are on, the discarding write). */
async function recordCost(metrics: boolean): Promise<{ record: number; drain: number }> {
  const monitor = monitorWith(metrics)
  let recordMs = 0
  let drainMs = 0
  for (let done = 0; done < CALLS; done += 50_000) {
    let t = performance.now()
    for (let i = 0; i < 50_000; i++) monitor.record(CALL_SHAPES[i % 100]!)
    recordMs += performance.now() - t
    t = performance.now()
    await monitor.flush()
    drainMs += performance.now() - t
  }
  await monitor.close()
  return { record: (recordMs * 1e6) / CALLS, drain: (drainMs * 1e6) / CALLS }
}

/** A monitor holding 1,000 series of the server duration histogram (250 routes × 4 statuses), 10 calls each. */
async function thousandSeries(): Promise<Monitor> {
  const monitor = monitorWith(true)
  for (let i = 0; i < 10_000; i++) {
    const s = i % 1000
    monitor.record({ direction: 'inbound', method: 'GET', route: `/route-${s % 250}/:id`, statusCode: [200, 201, 404, 500][Math.floor(s / 250)]!, durationMs: (i % 97) * 3.1 })
  }
  await monitor.flush()
  return monitor
}

export async function runExportSuite(): Promise<SuiteResult> {
  const off: { record: number; drain: number }[] = []
  const on: { record: number; drain: number }[] = []
  await recordCost(false) // warm-up of both paths
  await recordCost(true)
  for (let round = 0; round < ROUNDS; round++) {
    // alternate which goes first, so a drift of the machine's load weighs on both alike
    if (round % 2 === 0) {
      off.push(await recordCost(false))
      on.push(await recordCost(true))
    } else {
      on.push(await recordCost(true))
      off.push(await recordCost(false))
    }
  }
  const ratio = median(on.map((o, r) => o.record / off[r]!.record))

  const monitor = await thousandSeries()
  const { value: sample } = await timeMedian(() => monitor.metrics.prometheus(), 3)
  const series = sample.body.split('\n').filter((l) => l.startsWith('http_server_request_duration_seconds_count')).length
  if (series !== 1000) throw new Error(`export: expected 1,000 series, rendered ${series}`)
  const text = await timeMedian(() => monitor.metrics.prometheus(), RENDERS)
  const open = await timeMedian(() => monitor.metrics.prometheus({ openMetrics: true }), RENDERS)
  await monitor.close()

  const figures: Figure[] = [
    { name: 'record(), metrics off', value: median(off.map((o) => o.record)), unit: 'ns/call' },
    { name: 'record(), metrics on', value: median(on.map((o) => o.record)), unit: 'ns/call' },
    { name: 'record() with metrics on / off', value: ratio, unit: 'ratio', note: `1.00 = nothing measurable on the request path (per round: ${on.map((o, r) => (o.record / off[r]!.record).toFixed(2)).join(', ')})` },
    { name: 'draining a batch, metrics off (off the request path)', value: median(off.map((o) => o.drain)), unit: 'ns/call' },
    { name: 'draining a batch, metrics on: aggregation included', value: median(on.map((o) => o.drain)), unit: 'ns/call' },
    { name: '`/metrics` with 1,000 series, text 0.0.4', value: text.ms, unit: 'ms', note: `${Math.round(sample.body.length / 1024)} KiB` },
    { name: '`/metrics` with 1,000 series, OpenMetrics', value: open.ms, unit: 'ms' },
  ]
  return {
    id: 'export',
    title: 'Export: what live metrics cost, and rendering /metrics',
    method: `In one process, on storage that discards batches: ${CALLS.toLocaleString('en')} record() calls spread over 100 label sets, with \`metrics: true\` and without, ${ROUNDS} alternating rounds; the time inside record() and the time of the flush() that drains them (where metrics are aggregated, per batch) are reported per call, medians of the rounds. Rendering: a monitor holding 1,000 series of \`http_server_request_duration_seconds\` (plus the health, alert and probe families), \`monitor.metrics.prometheus()\` timed ${RENDERS} times, median.`,
    figures,
  }
}
