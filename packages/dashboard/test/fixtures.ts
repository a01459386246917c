import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:http'
import type { CallInput, Monitor, SystemSample } from '@apimeter/core'
import { dashboard, type DashboardOptions } from '@apimeter/dashboard'
import type express from 'express'
import type { Express } from 'express'
import { runCli } from '../../core/src/cli/main.js'
import { close, listen } from '../../../test/support/http.js'

/** A temporary directory for SQLite files, and its removal. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'apimeter-dashboard-'))
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

const HOUR = 3_600_000

/**
 * A known mix of calls relative to `now`: inbound routes for two tenants, outbound LLM calls with cost and tokens,
 * errors, a cache hit, and calls 3 h and 2 days old (so the 1h, 24h and 7d ranges each count different numbers).
 */
export function sampleCalls(now: number): CallInput[] {
  const calls: CallInput[] = []
  const at = (msAgo: number) => now - msAgo
  // The LLM calls 10 minutes apart, closer together early in a UTC day: all six stay in the current UTC day, which the
  // daily cost budgets sum (at 00:20 UTC calls 55 minutes old belonged to the day before, and the budgets' expected
  // states were wrong for the first hour of every day).
  const llmStep = Math.min(10 * 60_000, Math.floor((now % 86_400_000) / 7))
  for (let i = 0; i < 12; i++) {
    calls.push({ direction: 'inbound', method: 'GET', route: '/orders/:id', statusCode: i % 4 === 0 ? 500 : 200, durationMs: 5 + i, timestamp: at(60_000 * (i + 1)), tenantId: i % 3 === 0 ? 'globex' : 'acme' })
  }
  for (let i = 0; i < 5; i++) {
    calls.push({ direction: 'inbound', method: 'POST', route: '/checkout', statusCode: i === 0 ? 429 : 201, durationMs: 40 + i * 3, timestamp: at(3 * HOUR + 60_000 * i), tenantId: 'acme' })
  }
  for (let i = 0; i < 6; i++) {
    calls.push({
      direction: 'outbound', api: 'openai', method: 'POST', route: '/v1/chat/completions', statusCode: 200, durationMs: 300 + i * 10, timestamp: at(llmStep * (i + 1) - llmStep / 2),
      tenantId: i % 2 === 0 ? 'acme' : 'globex', model: i < 4 ? 'gpt-4o-mini' : 'gpt-4o', inputTokens: 1000 + i, outputTokens: 100, cost: 0.000125 * (i + 1), cached: i === 5,
    })
  }
  calls.push({ direction: 'outbound', api: 'finnhub', method: 'GET', route: '/api/v1/quote', statusCode: 200, durationMs: 80, timestamp: at(2 * 86_400_000), cost: 0.0001 })
  return calls
}

/** Records the calls and waits until they are stored. */
export async function seed(monitor: Monitor, calls: readonly CallInput[]): Promise<void> {
  for (const call of calls) monitor.record(call)
  await monitor.flush()
}

/**
 * The dashboard mounted at /apimeter on an Express app (`lib`: Express 4 or 5), after the app's own middleware
 * (`setup`), listening on a free loopback port. `stop()` ends its streams and the server.
 */
export async function mountOnExpress(lib: typeof express, monitor: Monitor, options: DashboardOptions, setup: (app: Express) => void = () => undefined): Promise<{ base: string; stop: () => Promise<void> }> {
  const app = lib()
  setup(app)
  const handle = dashboard(monitor, options)
  app.use('/apimeter', handle)
  const server = createServer(app)
  const base = await listen(server)
  return {
    base,
    stop: async () => {
      handle.close()
      await close(server)
    },
  }
}

/** Starts `apimeter dashboard …` in this process; `stop()` ends it like Ctrl-C and resolves its exit code. */
export function startDashboardCli(...argv: string[]) {
  let out = ''
  let err = ''
  let stop!: () => void
  const stopped = new Promise<void>((resolve) => (stop = resolve))
  const code = runCli(['dashboard', ...argv], { out: (t) => (out += t), err: (t) => (err += t), stopped })
  return { code, stop: () => (stop(), code), out: () => out, err: () => err }
}

/**
 * Process samples as the sampler stores them (`system: true`), one every 10 minutes over the 6 hours before `now`,
 * with RSS and CPU varying so their charts have a shape.
 */
export function systemSamples(now: number): SystemSample[] {
  const samples: SystemSample[] = []
  for (let t = now - 6 * HOUR; t < now; t += 10 * 60_000) {
    samples.push({
      at: t,
      service: 'shop',
      instance: 'web-1:42',
      intervalMs: 10_000,
      eventLoopDelayP50Us: 300,
      eventLoopDelayP99Us: 4000 + ((t / 60_000) % 7) * 500,
      eventLoopDelayMaxUs: 9000,
      eventLoopUtilization: 0.3,
      cpuUserUs: 1_000_000 + ((t / 1000) % 3_000_000),
      cpuSystemUs: 500_000,
      rssBytes: (150 + ((t / 60_000) % 40)) * 1048576,
      heapUsedBytes: 60 * 1048576,
      heapTotalBytes: 90 * 1048576,
      handles: 12,
    })
  }
  return samples
}
