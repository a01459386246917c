// A hello-world server for the throughput benches, run in a child process so the load generator's CPU is not
// measured with it: node --import tsx bench/servers/hello.ts <express5|express4|fastify> <mode>
// Prints `listening <port>` when ready. Two routes answer `{"hello":"world"}`: `GET /` and `GET /hello/:id`.
//
// Modes: "without" (the bare framework); "empty-hook" (a middleware / onRequest hook that only calls next(): the
// least any per-request tool costs); "minimal-timer" (a middleware that keeps each request's method, route, status and
// duration in arrays at its response's 'finish', or on Fastify onRequest and onResponse hooks doing the same: the
// least a meter built the usual way costs); "with" registers apimeter first on a monitor whose storage accepts and
// discards every batch (the cost measured is the middleware, record() and the write pipeline's batching, not a
// storage engine); "with-memory" writes to in-memory storage (capped at 10,000 calls); "with-sqlite" writes to
// SQLite storage in a temporary file, the default a user runs; "with-sqlite-system" adds process metrics sampled every
// 100 ms. The peers a user would pick instead, each set up
// the way its README shows: "response-time", "prom-bundle" (express-prom-bundle), "swagger-stats",
// "otel" (OpenTelemetry's http and express instrumentations, spans batched to an exporter that discards them) and,
// for Fastify, "fastify-metrics".
//
// Frameworks are loaded with require() after the tool is set up, so that OpenTelemetry's require hooks see them
// (apimeter's adapters import no framework at run time).
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMonitor, memoryStorage, type StorageAdapter } from '@apimeter/core'
import { apimeter } from '@apimeter/express'
import { apimeterFastify } from '@apimeter/fastify'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import type express5 from 'express'
import type { RequestHandler } from 'express'
import type Fastify from 'fastify'
import { discardStorage } from '../lib.js'

const require = createRequire(import.meta.url)
const FRAMEWORKS = ['express5', 'express4', 'fastify'] as const
const MODES = ['without', 'empty-hook', 'minimal-timer', 'with', 'with-memory', 'with-sqlite', 'with-sqlite-system', 'with-sqlite-main', 'response-time', 'prom-bundle', 'swagger-stats', 'otel', 'fastify-metrics'] as const
type Mode = (typeof MODES)[number]

const [framework, mode] = process.argv.slice(2) as [(typeof FRAMEWORKS)[number], Mode]
if (!FRAMEWORKS.includes(framework) || !MODES.includes(mode) || (mode === 'fastify-metrics' && framework !== 'fastify')) {
  console.error(`usage: hello.ts <${FRAMEWORKS.join('|')}> <${MODES.join('|')}>`)
  process.exit(2)
}

let dir: string | undefined
function storageFor(m: Mode): StorageAdapter {
  if (m === 'with-memory') return memoryStorage({ maxCalls: 10_000 })
  if (m !== 'with-sqlite' && m !== 'with-sqlite-main' && m !== 'with-sqlite-system') return discardStorage
  dir = mkdtempSync(join(tmpdir(), 'apimeter-bench-'))
  // with-sqlite: the default (its worker thread); with-sqlite-main: everything on the server's own thread
  return sqliteStorage({ filename: join(dir, 'bench.db'), thread: m === 'with-sqlite-main' ? 'main' : 'worker' })
}
const metered = mode === 'with' || mode === 'with-memory' || mode === 'with-sqlite' || mode === 'with-sqlite-main' || mode === 'with-sqlite-system'
// with-sqlite-system: the same as with-sqlite, plus process metrics sampled every 100 ms (the most often allowed)
const system = mode === 'with-sqlite-system' ? { system: { intervalMs: 100 } } : {}
const monitor = createMonitor({ service: 'bench', logger: false, flushOnExit: false, storage: storageFor(mode), ...system })
/** Spans OpenTelemetry exported, to check it really ran. */
let spans = (): number => 0

if (mode === 'otel') {
  const { discardingTracer } = await import('../otel.js')
  const { registerInstrumentations, InstrumentationNodeModuleDefinition } = await import('@opentelemetry/instrumentation')
  const { HttpInstrumentation } = await import('@opentelemetry/instrumentation-http')
  const { ExpressInstrumentation } = await import('@opentelemetry/instrumentation-express')
  spans = discardingTracer().spans
  // Express 4 is installed under the alias `express4`; the require hook matches the directory name, so the same
  // instrumentation is declared again under that name.
  class Express4Instrumentation extends ExpressInstrumentation {
    override init() {
      return super.init().map((d) => new InstrumentationNodeModuleDefinition('express4', d.supportedVersions, d.patch, d.unpatch, d.files))
    }
  }
  registerInstrumentations({ instrumentations: [new HttpInstrumentation(), framework === 'express4' ? new Express4Instrumentation() : new ExpressInstrumentation()] })
}

const hello = { hello: 'world' }
let port: number
if (framework === 'fastify') {
  const app = (require('fastify') as typeof Fastify)()
  if (metered) await app.register(apimeterFastify, { monitor })
  if (mode === 'empty-hook') app.addHook('onRequest', (_request, _reply, next) => next())
  if (mode === 'minimal-timer') {
    // the least a meter built on Fastify's hooks does: a start time per request, and at the response its method,
    // route, status and duration kept (in plain arrays, emptied now and then)
    const kStarted = Symbol('started')
    app.decorateRequest(kStarted, 0)
    const kept: unknown[] = []
    app.addHook('onRequest', (request, _reply, next) => {
      ;(request as unknown as Record<symbol, number>)[kStarted] = performance.now()
      next()
    })
    app.addHook('onResponse', (request, reply, next) => {
      if (kept.length > 40_000) kept.length = 0
      kept.push(request.method, request.routeOptions.url, reply.statusCode, performance.now() - (request as unknown as Record<symbol, number>)[kStarted]!)
      next()
    })
  }
  if (mode === 'fastify-metrics') await app.register((await import('fastify-metrics')).default, { endpoint: '/metrics' })
  app.get('/', (_request, reply) => {
    reply.send(hello)
  })
  app.get('/hello/:id', (_request, reply) => {
    reply.send(hello)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  port = (app.server.address() as { port: number }).port
} else {
  const express = require(framework === 'express5' ? 'express' : 'express4') as typeof express5
  const app = express()
  if (metered) app.use(apimeter(monitor))
  if (mode === 'empty-hook') app.use((_req, _res, next) => next())
  if (mode === 'minimal-timer') {
    // the least a meter built as a middleware does: a start time, and at the response's 'finish' its method, route,
    // status and duration kept (in plain arrays, emptied now and then)
    const kept: unknown[] = []
    app.use((req, res, next) => {
      const started = performance.now()
      res.once('finish', () => {
        if (kept.length > 40_000) kept.length = 0
        kept.push(req.method, (req.route as { path?: unknown } | undefined)?.path, res.statusCode, performance.now() - started)
      })
      next()
    })
  }
  if (mode === 'response-time') app.use((require('response-time') as () => RequestHandler)())
  if (mode === 'prom-bundle') app.use((require('express-prom-bundle') as (o: object) => RequestHandler)({ includeMethod: true, includePath: true }))
  if (mode === 'swagger-stats') app.use((require('swagger-stats') as { getMiddleware(o: object): RequestHandler }).getMiddleware({}))
  app.get('/', (_req, res) => {
    res.json(hello)
  })
  app.get('/hello/:id', (_req, res) => {
    res.json(hello)
  })
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  port = (server.address() as { port: number }).port
}
console.log(`listening ${port}`)
// Answers the bench over IPC: CPU time used so far (to compute CPU per request, which noise on a shared machine
// disturbs far less than throughput), and how many calls were recorded (to check the middleware really ran).
process.on('message', () => {
  const { user, system } = process.cpuUsage()
  const health = monitor.health()
  process.send?.({ cpuUs: user + system, recorded: health.written + health.queued, spans: spans() })
})
process.on('SIGTERM', () => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  process.exit(0)
})
