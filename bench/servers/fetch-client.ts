// A fetching client for the peers bench's outbound pairs, in a child process of its own so that two clients (a line
// and its plain-fetch partner) can be loaded at the same time on one core:
//   node --import tsx bench/servers/fetch-client.ts <plain|empty-channels|monitor-fetch|instrument|otel>
// (empty-channels: plain fetch with a subscriber that does nothing on each of undici's request channels, the least
// any observer of fetch through those channels can cost.)
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
import { lastCpuPerRequest, lastMainCpuPerRequest, throughput } from '../fetch-load.js'

const MODES = ['plain', 'empty-channels', 'monitor-fetch', 'instrument', 'otel'] as const
type Mode = (typeof MODES)[number]
const mode = process.argv[2] as Mode
if (!MODES.includes(mode)) {
  console.error(`usage: fetch-client.ts <${MODES.join('|')}>`)
  process.exit(2)
}

// plain and otel fetch with no monitor at all
const dir = mode === 'monitor-fetch' || mode === 'instrument' ? mkdtempSync(join(tmpdir(), 'apimeter-bench-')) : undefined
const monitor = dir === undefined ? undefined : createMonitor({ service: 'bench', logger: false, flushOnExit: false, storage: sqliteStorage({ filename: join(dir, 'bench.db') }) })
let spans = (): number => 0
let fetchImpl: typeof fetch = (input, init) => globalThis.fetch(input, init)
if (mode === 'monitor-fetch') fetchImpl = monitor!.fetch
if (mode === 'instrument') monitor!.instrument()
if (mode === 'empty-channels') {
  const { subscribe } = await import('node:diagnostics_channel')
  for (const name of ['undici:request:create', 'undici:request:headers', 'undici:request:trailers', 'undici:request:error']) subscribe(name, () => {})
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
    process.send?.({ rps, cpuPerRequest: lastCpuPerRequest, mainCpuPerRequest: lastMainCpuPerRequest, recorded: health === undefined ? 0 : health.written + health.queued, spans: spans() })
  })
})
process.on('SIGTERM', () => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  process.exit(0)
})
console.log('listening 0')
