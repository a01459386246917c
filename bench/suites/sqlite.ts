import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type CallInput, createMonitor } from '@apimeter/core'
import { CALL_COLUMNS, callToRow, TABLES } from '@apimeter/core/sql'
import { recordFactory } from '@apimeter/core/testing'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import Database from 'better-sqlite3'
import { type Figure, ingestRate, median, type SuiteResult, yieldToLoop } from '../lib.js'
import { call as historyCall } from './rollups.js'

const EVENTS = 200_000
const ROUNDS = 5
const BATCH = 500
/** Calls of the random-order backfill (30 days of history) and of the memory runs; env vars shrink them. */
const BACKFILL = Number(process.env.APIMETER_BENCH_BACKFILL_CALLS ?? 300_000)
const RSS_CALLS = Number(process.env.APIMETER_BENCH_RSS_CALLS ?? 1_000_000)
const DAYS = 30
/** Calls of one synchronous burst in the memory run with bursts (held under the default buffer with 20,000 waiting). */
const BURST_CALLS = 25_000

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

/**
 * apimeter end to end: record() → batches → validation → prepared multi-row inserts, until flush() resolves; on the
 * storage's own thread (the default with a spare core) or on the host's. Returns events/s and the process's CPU per call.
 */
async function apimeterRate(calls: CallInput[], thread: 'worker' | 'main'): Promise<{ rate: number; cpuUs: number }> {
  const tmp = tempFile()
  const storage = sqliteStorage({ filename: tmp.file, thread })
  await storage.init!()
  const monitor = createMonitor({ storage, logger: false, flushOnExit: false, batchSize: BATCH, maxBufferSize: 1_000_000 })
  const cpu = process.cpuUsage()
  const t = performance.now()
  for (let i = 0; i < calls.length; i++) {
    monitor.record(calls[i]!)
    if (i % 5000 === 4999) await yieldToLoop()
  }
  await monitor.flush()
  const ms = performance.now() - t
  const used = process.cpuUsage(cpu)
  if (monitor.health().written !== calls.length) throw new Error(`lost calls: ${JSON.stringify(monitor.health())}`)
  await monitor.close()
  tmp.remove()
  return { rate: (calls.length / ms) * 1000, cpuUs: (used.user + used.system) / calls.length }
}

/**
 * 30 days of history written in random order (a backfill, an import, a fleet's late uploads) or in time order, rollups
 * maintained as in production. Returns events/s, and the file's pages by table once every call is rolled up.
 */
async function backfillRate(order: 'random' | 'time'): Promise<{ rate: number; rawBytes: number; rollupBytes: number }> {
  const tmp = tempFile()
  const end = Date.UTC(2026, 10, 20, 13, 17)
  // a fixed permutation of 0…n-1 (the multiplier is a prime that does not divide n, and i × 48,271 stays exact in a
  // double for any n a run could use), so every round writes the same calls
  if (BACKFILL % 48_271 === 0) throw new Error('APIMETER_BENCH_BACKFILL_CALLS must not be a multiple of 48,271')
  const at = order === 'random' ? (i: number) => (i * 48_271) % BACKFILL : (i: number) => i
  const forever = { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' } as const
  const storage = sqliteStorage({ filename: tmp.file, retention: forever })
  const rate = await ingestRate(storage, BACKFILL, (i) => historyCall(at(i), BACKFILL, end, DAYS), 5000)
  await storage.maintain()
  await storage.close()
  const db = new Database(tmp.file, { readonly: true })
  const pages = db.prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name').all() as { name: string; bytes: number }[]
  db.close()
  tmp.remove()
  const bytesOf = (test: (name: string) => boolean) => pages.filter((p) => test(p.name)).reduce((n, p) => n + p.bytes, 0)
  return { rate, rawBytes: bytesOf((name) => name.startsWith(TABLES.calls)), rollupBytes: bytesOf((name) => name.startsWith('apimeter_rollups')) }
}

/** What grew in the child's resident memory between its baseline and steady state, in MiB (see rss-child.mjs). */
interface MemoryParts {
  jsHeap: number
  arrayBuffers: number
  v8Pages: number
  /** glibc's brk heap and mmapped arenas, and V8's large objects (see rss-child.mjs). */
  native: number
  files: number
}

/** The parts of a memory figure, for its note. */
function partsNote(parts: MemoryParts): string {
  const f = (v: number) => v.toFixed(0)
  return `grown: V8 heap pages of both threads ${f(parts.v8Pages)} (host JS heap in use ${f(parts.jsHeap)}, its array buffers ${f(parts.arrayBuffers)}), malloc and other native memory ${f(parts.native)}, code paged in ${f(parts.files)} MiB`
}

/**
 * The host's resident memory metering live traffic into a storage, in a fresh process (servers/rss-child.mjs; run
 * `npm run build` first): `calls` calls in synchronous bursts of `burst`.
 */
function residentMemory(kind: 'memory' | 'sqlite' | 'sqlite-main' | 'control', calls = RSS_CALLS, burst = 1000): { baseline: number; peak: number; steady: number; parts: MemoryParts } {
  const dir = mkdtempSync(join(tmpdir(), 'apimeter-bench-rss-'))
  try {
    // plain JavaScript on the built packages: a TypeScript loader would add its own memory, in both threads
    const child = new URL('../servers/rss-child.mjs', import.meta.url)
    const out = execFileSync(process.execPath, ['--expose-gc', child.pathname, kind, String(calls), dir, String(burst)], { encoding: 'utf8', maxBuffer: 1 << 20 })
    return JSON.parse(out.trim().split('\n').at(-1)!) as { baseline: number; peak: number; steady: number; parts: MemoryParts }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
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
  await apimeterRate(calls.slice(0, 20_000), 'worker') // warm-up
  await apimeterRate(calls.slice(0, 20_000), 'main')
  await plainRate(calls.slice(0, 20_000))
  const worker: { rate: number; cpuUs: number }[] = []
  const main: { rate: number; cpuUs: number }[] = []
  const plain: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    worker.push(await apimeterRate(calls, 'worker'))
    main.push(await apimeterRate(calls, 'main'))
    plain.push(await plainRate(calls))
  }
  const random: Awaited<ReturnType<typeof backfillRate>>[] = []
  const timeOrder: Awaited<ReturnType<typeof backfillRate>>[] = []
  for (let r = 0; r < 2; r++) {
    random.push(await backfillRate('random'))
    timeOrder.push(await backfillRate('time'))
  }
  // The default's figure is the median of three fresh processes: one process's steady state swung from 68 to 151 MiB
  // between runs of the same code (malloc's arenas and V8's young generations keep what they grew to by chance).
  const sqliteRuns = [residentMemory('sqlite'), residentMemory('sqlite'), residentMemory('sqlite')].sort((a, b) => a.steady - a.baseline - (b.steady - b.baseline))
  const memory = {
    sqlite: sqliteRuns[1]!,
    control: residentMemory('control'),
    idle: residentMemory('sqlite', 1000),
    bursts: residentMemory('sqlite', RSS_CALLS, BURST_CALLS),
    'sqlite-main': residentMemory('sqlite-main'),
    memory: residentMemory('memory'),
  }

  const rate = median(worker.map((w) => w.rate))
  const backfill = median(random.map((b) => b.rate))
  const perMillion = (bytes: number) => (bytes / BACKFILL) * 1e6 / 2 ** 20
  const above = (m: { baseline: number; steady: number }) => m.steady - m.baseline
  const sqliteAbove = above(memory.sqlite)
  const figures: Figure[] = [
    { name: 'apimeter → SQLite, end to end (storage on its worker thread, the default with a spare core)', value: rate, unit: 'events/s', target: '≥ 150,000 events/s', met: rate >= 150_000, note: `process CPU ${median(worker.map((w) => w.cpuUs)).toFixed(1)} µs per call, both threads` },
    { name: "same, `thread: 'main'`", value: median(main.map((m) => m.rate)), unit: 'events/s', note: `process CPU ${median(main.map((m) => m.cpuUs)).toFixed(1)} µs per call` },
    { name: 'reference: plain better-sqlite3 batched insert of the same rows', value: median(plain), unit: 'rows/s' },
    { name: 'apimeter / reference', value: median(worker.map((o, i) => o.rate / plain[i]!)), unit: 'ratio', note: 'ours includes record(), validation, the hand-over to the worker and the rollups; the reference inserts pre-built rows' },
    { name: `backfill: ${DAYS} days of history in random order, rollups included`, value: backfill, unit: 'events/s', target: '≥ 50,000 events/s', met: backfill >= 50_000, note: `${BACKFILL.toLocaleString('en-US')} calls; each call lands in its own hour at most levels, so nearly every call updates ~3 hourly rollup rows` },
    { name: 'reference: the same calls in time order', value: median(timeOrder.map((b) => b.rate)), unit: 'events/s' },
    { name: 'storage per million calls: raw calls (table and index)', value: perMillion(random[0]!.rawBytes), unit: 'MiB' },
    { name: 'storage per million calls: rollups (hour, day, month; 30 days spread)', value: perMillion(random[0]!.rollupBytes), unit: 'MiB', note: 'grows with distinct (hour, key) pairs, not with calls: denser traffic costs less per call' },
    { name: 'host RSS above its baseline, metering into SQLite (default)', value: sqliteAbove, unit: 'MiB', target: '≤ 64 MiB', met: sqliteAbove <= 64, note: `steady state after ${RSS_CALLS.toLocaleString('en-US')} live calls, median of 3 processes (per process: ${sqliteRuns.map((m) => above(m).toFixed(0)).join(', ')} MiB); baseline ${memory.sqlite.baseline.toFixed(0)} MiB, peak ${memory.sqlite.peak.toFixed(0)} MiB; ${partsNote(memory.sqlite.parts)}` },
    { name: 'reference: the same host making the same calls at the same pace, none recorded (its own allocation)', value: above(memory.control), unit: 'MiB', note: `what the host's own work grows by, apimeter imported but not recording: its young generation's pages, touched once it allocates; ${partsNote(memory.control.parts)}` },
    { name: 'reference: the same, once its worker thread has started and written 1,000 calls', value: above(memory.idle), unit: 'MiB', note: `the worker thread's fixed cost (a V8 isolate with the storage's modules loaded, SQLite opened); ${partsNote(memory.idle.parts)}` },
    { name: `same as the default, calls recorded in synchronous bursts of ${BURST_CALLS.toLocaleString('en-US')}`, value: above(memory.bursts), unit: 'MiB', note: `bursts that outrun the drain; peak ${memory.bursts.peak.toFixed(0)} MiB; ${partsNote(memory.bursts.parts)}` },
    { name: "same, `thread: 'main'`", value: above(memory['sqlite-main']), unit: 'MiB', note: `peak ${memory['sqlite-main'].peak.toFixed(0)} MiB; ${partsNote(memory['sqlite-main'].parts)}` },
    { name: 'same, in-memory storage', value: above(memory.memory), unit: 'MiB', note: `peak ${memory.memory.peak.toFixed(0)} MiB; holds every call's aggregates in the process by design` },
  ]
  return {
    id: 'sqlite',
    title: 'SQLite ingest, backfill and memory',
    method: `Live ingest: ${EVENTS.toLocaleString('en-US')} calls (5 APIs, 6 routes, 40 tenants, errors, costs) into a fresh WAL-mode file with apimeter's schema and indexes, batches of ${BATCH}; ${ROUNDS} rounds alternating apimeter on the storage's worker thread, on the host's thread, and the reference, median reported. The apimeter figures run from the first record() until flush() resolves, with hour/day/month rollups maintained as in production. Backfill: ${BACKFILL.toLocaleString('en-US')} calls of the rollups suite's workload spread over ${DAYS} days, written once in random order and once in time order, 2 rounds each (\`APIMETER_BENCH_BACKFILL_CALLS\` changes the size); storage sizes are SQLite's page counts per table once every call is rolled up. Memory: a fresh process per storage (three for the default, median reported; plain JavaScript on the built packages) meters ${RSS_CALLS.toLocaleString('en-US')} calls in bursts of 1,000 every 10 ms (one run in bursts of ${BURST_CALLS.toLocaleString('en-US')}), held while 20,000 wait in its buffer (\`APIMETER_BENCH_RSS_CALLS\`); its RSS after import (baseline) is compared with its RSS once everything is written, two flush intervals have passed and garbage is collected, and what grew is split by kind from /proc/self/smaps (V8's heap pages of both threads, malloc's heaps, mapped code).`,
    figures,
  }
}
