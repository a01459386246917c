// A fetching client for the peers bench's outbound pairs, in a child process of its own so that two clients (a line
// and its plain-fetch partner) can be loaded at the same time on one core:
//   node --import tsx bench/servers/fetch-client.ts <plain|empty-channels|minimal-timer|minimal-record|monitor-fetch|instrument|otel>
// (empty-channels: plain fetch with a subscriber that does nothing on each of undici's request channels, the least
// any observer of fetch through those channels can cost; minimal-timer and minimal-record: see below.)
// apimeter's modes write to SQLite storage in a temporary file, the default a user runs (its worker thread does the
// writes). Prints `listening 0` when ready (the bench's spawn helper waits for that line). Each IPC message
// `{ url, ms }` runs the outbound loops (16 concurrent fetches, each reading the body) against `url` for `ms` and
// answers with the requests per second and the CPU time per request of the process and of its main thread, plus what
// apimeter recorded and OpenTelemetry exported so far (to check the tool really ran).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMonitor } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { lastCpuPerRequest, lastMainCpuPerRequest, lastMainSystemPerRequest, throughput } from '../fetch-load.js'

const MODES = ['plain', 'empty-channels', 'minimal-timer', 'minimal-record', 'monitor-fetch', 'instrument', 'otel'] as const
type Mode = (typeof MODES)[number]
const mode = process.argv[2] as Mode
if (!MODES.includes(mode)) {
  console.error(`usage: fetch-client.ts <${MODES.join('|')}>`)
  process.exit(2)
}

// plain, empty-channels, minimal-timer and otel fetch with no monitor at all. The storage's thread is named: the
// client starts pinned to one core (taskset), where the default would be 'main' (`availableParallelism()` honours
// the pinning); its helper threads are let onto both cores after the warm-up, as on a machine with a spare core.
const dir = mode === 'monitor-fetch' || mode === 'instrument' || mode === 'minimal-record' ? mkdtempSync(join(tmpdir(), 'apimeter-bench-')) : undefined
const monitor = dir === undefined ? undefined : createMonitor({ service: 'bench', logger: false, flushOnExit: false, storage: sqliteStorage({ filename: join(dir, 'bench.db'), thread: 'worker' }) })
let spans = (): number => 0
let fetchImpl: typeof fetch = (input, init) => globalThis.fetch(input, init)
if (mode === 'monitor-fetch') fetchImpl = monitor!.fetch
if (mode === 'instrument') monitor!.instrument()
if (mode === 'empty-channels') {
  const { subscribe } = await import('node:diagnostics_channel')
  for (const name of ['undici:request:create', 'undici:request:headers', 'undici:request:trailers', 'undici:request:error']) subscribe(name, () => {})
}
if (mode === 'minimal-timer' || mode === 'minimal-record') {
  // What a meter observing fetch through undici's channels does at the least: a start time, the status and the body's
  // bytes per request (held in a WeakMap beside undici's request object), and at the end of the body the method, URL,
  // status and duration kept in arrays (emptied now and then) — or, minimal-record, given to monitor.record().
  const { subscribe } = await import('node:diagnostics_channel')
  type UndiciRequest = { method: string; origin: string; path: string; onData: (chunk: Uint8Array) => unknown }
  type Timing = { start: number; status: number; bytes: number }
  const held = new WeakMap<object, Timing>()
  const methods: string[] = []
  const urls: string[] = []
  const statuses: number[] = []
  const durations: number[] = []
  const recorder = mode === 'minimal-record' ? monitor! : undefined
  function onData(this: UndiciRequest, chunk: Uint8Array): unknown {
    const timing = held.get(this)
    if (timing !== undefined) timing.bytes += chunk.byteLength
    return (Object.getPrototypeOf(this) as UndiciRequest).onData.call(this, chunk)
  }
  subscribe('undici:request:create', (message) => {
    const { request } = message as { request: UndiciRequest }
    held.set(request, { start: performance.now(), status: 0, bytes: 0 })
    request.onData = onData
  })
  subscribe('undici:request:headers', (message) => {
    const { request, response } = message as { request: UndiciRequest; response: { statusCode: number } }
    const timing = held.get(request)
    if (timing !== undefined) timing.status = response.statusCode
  })
  subscribe('undici:request:trailers', (message) => {
    const { request } = message as { request: UndiciRequest }
    const timing = held.get(request)
    if (timing === undefined) return
    const url = request.origin + request.path
    const durationMs = performance.now() - timing.start
    if (recorder !== undefined) {
      recorder.record({ direction: 'outbound', method: request.method, api: 'upstream', route: '/v1/items/:id', url, statusCode: timing.status, durationMs, responseBytes: timing.bytes })
      return
    }
    if (methods.length === 10_000) methods.length = urls.length = statuses.length = durations.length = 0
    methods.push(request.method)
    urls.push(url)
    statuses.push(timing.status)
    durations.push(durationMs)
  })
}
if (mode === 'otel') {
  const { discardingTracer } = await import('../otel.js')
  const { UndiciInstrumentation } = await import('@opentelemetry/instrumentation-undici')
  const tracer = discardingTracer()
  spans = tracer.spans
  const instrumentation = new UndiciInstrumentation()
  instrumentation.setTracerProvider(tracer.provider)
  instrumentation.enable()
}

process.on('message', (message: { url: string; ms: number }) => {
  void throughput(fetchImpl, message.url, message.ms).then((rps) => {
    const health = monitor?.health()
    process.send?.({ rps, cpuPerRequest: lastCpuPerRequest, mainCpuPerRequest: lastMainCpuPerRequest, mainSystemPerRequest: lastMainSystemPerRequest, recorded: health === undefined ? 0 : health.written + health.queued, spans: spans() })
  })
})
process.on('SIGTERM', () => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  process.exit(0)
})
console.log('listening 0')
