import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type CallInput, createMonitor } from '@apimeter/core'
import { CALL_COLUMNS, callToRow, TABLES } from '@apimeter/core/sql'
import { recordFactory } from '@apimeter/core/testing'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import Database from 'better-sqlite3'
import { type Figure, median, type SuiteResult, yieldToLoop } from '../lib.js'

const EVENTS = 200_000
const ROUNDS = 5
const BATCH = 500

/** A realistic mix: several APIs, routes, tenants, outcomes, costs. */
function workload(n: number): CallInput[] {
  const apis = ['openai', 'anthropic', 'finnhub', 'stripe', null] as const
  const routes = ['/v1/chat/completions', '/v1/messages', '/api/v1/quote', '/v1/payment_intents', '/users/:id', '/orders']
  const out: CallInput[] = []
  const start = Date.now() - 3_600_000
  for (let i = 0; i < n; i++) {
    const api = apis[i % apis.length]!
    out.push({
      direction: api ? 'outbound' : 'inbound',
      api,
      method: i % 3 === 0 ? 'POST' : 'GET',
      route: routes[i % routes.length]!,
      statusCode: i % 50 === 0 ? 500 : i % 41 === 0 ? 429 : 200,
      durationMs: 1 + ((i * 7919) % 2000) / 3,
      cost: api ? ((i % 13) + 1) / 1e5 : undefined,
      tenantId: `tenant-${i % 40}`,
      responseBytes: 200 + (i % 5000),
      timestamp: start + Math.floor(i / 50),
    })
  }
  return out
}

function tempFile(): { file: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'apimeter-bench-'))
  return { file: join(dir, 'bench.db'), remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** apimeter end to end: record() → batches → validation → prepared multi-row inserts, until flush() resolves. */
async function apimeterRate(calls: CallInput[]): Promise<number> {
  const tmp = tempFile()
  const storage = sqliteStorage({ filename: tmp.file })
  await storage.init!()
  const monitor = createMonitor({ storage, logger: false, flushOnExit: false, batchSize: BATCH, maxBufferSize: 1_000_000 })
  const t = performance.now()
  for (let i = 0; i < calls.length; i++) {
    monitor.record(calls[i]!)
    if (i % 5000 === 4999) await yieldToLoop()
  }
  await monitor.flush()
  const ms = performance.now() - t
  if (monitor.health().written !== calls.length) throw new Error(`lost calls: ${JSON.stringify(monitor.health())}`)
  await monitor.close()
  tmp.remove()
  return (calls.length / ms) * 1000
}

/**
 * The physical reference: plain better-sqlite3 inserting the same rows (already converted) into the same table,
 * one prepared single-row INSERT per row, one transaction per batch of the same size.
 */
async function plainRate(calls: CallInput[]): Promise<number> {
  const tmp = tempFile()
  const storage = sqliteStorage({ filename: tmp.file })
  await storage.init!() // same schema and indexes
  await storage.close()
  const make = recordFactory()
  const rows = calls.map((c) => callToRow(make(c)))
  const db = new Database(tmp.file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  const insert = db.prepare(`INSERT INTO ${TABLES.calls} (${CALL_COLUMNS.join(', ')}) VALUES (${CALL_COLUMNS.map(() => '?').join(', ')})`)
  const batch = db.transaction((chunk: unknown[][]) => {
    for (const row of chunk) insert.run(row)
  })
  const t = performance.now()
  for (let i = 0; i < rows.length; i += BATCH) {
    batch(rows.slice(i, i + BATCH))
    if (i % 5000 === 0) await yieldToLoop()
  }
  const ms = performance.now() - t
  db.close()
  tmp.remove()
  return (rows.length / ms) * 1000
}

export async function runSqliteSuite(): Promise<SuiteResult> {
  const calls = workload(EVENTS)
  await apimeterRate(calls.slice(0, 20_000)) // warm-up
  await plainRate(calls.slice(0, 20_000))
  const ours: number[] = []
  const plain: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    ours.push(await apimeterRate(calls))
    plain.push(await plainRate(calls))
  }
  const rate = median(ours)
  const figures: Figure[] = [
    { name: 'apimeter → SQLite, end to end', value: rate, unit: 'events/s', target: '≥ 150,000 events/s', met: rate >= 150_000 },
    { name: 'reference: plain better-sqlite3 batched insert of the same rows', value: median(plain), unit: 'rows/s' },
    { name: 'apimeter / reference', value: median(ours.map((o, i) => o / plain[i]!)), unit: 'ratio', note: 'ours includes record(), validation and row conversion; the reference inserts pre-built rows' },
  ]
  return {
    id: 'sqlite',
    title: 'SQLite ingest',
    method: `${EVENTS.toLocaleString('en-US')} calls (5 APIs, 6 routes, 40 tenants, errors, costs) into a fresh WAL-mode file with apimeter's schema and indexes, batches of ${BATCH}; ${ROUNDS} rounds alternating apimeter and the reference, median reported. The apimeter figure runs from the first record() until flush() resolves, with hour/day/month rollups maintained as in production (the reference writes raw rows only; the rollups suite measures ingest with and without them).`,
    figures,
  }
}
