import { writeFileSync } from 'node:fs'
import Database from 'better-sqlite3'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type CallRecord, createMonitor, createStats, isApimeterError } from '@apimeter/core'
import { type AggregateRow, toSummary } from '@apimeter/core/sql'
import { recordFactory } from '@apimeter/core/testing'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { runFixture } from '../../../test/support/run-fixture.js'
import { workerSqliteStorage } from '../src/worker-storage.js'
import { tempDir } from './helpers.js'

// The storage in its worker thread (the default for a file when a spare core exists; asked for explicitly here): what runs where, how the thread ends, what the host
// sees when it dies, and that errors keep their meaning across the thread.

const FOREVER = { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' }
const make = recordFactory({ service: 'worker-test' })
const calls = (n: number): CallRecord[] =>
  Array.from({ length: n }, (_, i) => make({ direction: 'outbound', api: 'x', method: 'GET', route: '/r', statusCode: i % 10 ? 200 : 500, durationMs: 1 + (i % 50), cost: 0.000001, timestamp: Date.UTC(2026, 0, 1) + i * 1000 }))
const errorOf = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => undefined, (e: unknown) => e)

/** The storage on a worker that dies on cue (see fixtures/crashing-worker.mjs). */
const crashingStorage = (filename: string) =>
  workerSqliteStorage({ filename, busyTimeoutMs: 5000, migrate: true, retention: FOREVER }, new URL('./fixtures/crashing-worker.mjs', import.meta.url))

/** Blocks this thread (no event loop turn, no microtask) until `done()` or the deadline; returns whether it was done. */
function spinUntil(done: () => boolean, ms = 20_000): boolean {
  const sleeper = new Int32Array(new SharedArrayBuffer(4))
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (done()) return true
    Atomics.wait(sleeper, 0, 0, 2)
  }
  return done()
}

describe('sqliteStorage() in its worker thread', () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir('apimeter-worker-')
  })
  afterEach(() => tmp.remove())

  it('writes and rolls up on its own thread: the work lands while this thread never yields', async () => {
    const file = tmp.file()
    const storage = sqliteStorage({ filename: file, retention: FOREVER, thread: 'worker' })
    await storage.init!()
    const reader = new Database(file, { readonly: true })
    const count = (query: string) => () => (reader.prepare(query).get() as { n: number }).n
    // On the host's thread these would not even start before this thread yields; the worker does them meanwhile.
    const written = storage.writeCalls(calls(5000))
    expect(spinUntil(() => count('SELECT COUNT(*) AS n FROM apimeter_calls')() === 5000)).toBe(true)
    await written
    const maintained = storage.maintain()
    expect(spinUntil(() => count('SELECT COUNT(*) AS n FROM apimeter_rollups_hour')() > 0)).toBe(true)
    expect((await maintained).rolledUp).toBe(5000)
    reader.close()
    expect((await createStats(storage).summary({ from: '2025-12-01' })).requests).toBe(5000)
    await storage.close()
  })

  it('answers with the same types as on the host thread: Dates, sketches, reports', async () => {
    const storage = sqliteStorage({ filename: tmp.file(), retention: FOREVER, thread: 'worker' })
    await storage.writeCalls(calls(200))
    const status = await storage.migrationStatus()
    expect(status.pending).toEqual([])
    expect(status.migrations.every((m) => m.appliedAt instanceof Date)).toBe(true)
    const rebuilt = await storage.rebuildRollups({ from: '2026-01-01', to: '2026-01-02' })
    expect(rebuilt.from).toBeInstanceOf(Date)
    expect(rebuilt.calls).toBe(200)
    const summary = await createStats(storage).summary({ from: '2025-12-01' })
    expect(summary).toMatchObject({ requests: 200, errors: 20, cost: 0.0002 })
    expect(summary.latency!.p50).toBeCloseTo(25, -0.5)
    expect((await storage.migrate('latest')).error).toBeUndefined()
    const failed = await storage.migrate('no-such-migration')
    expect(isApimeterError(failed.error)).toBe(true)
    await storage.close()
  })

  it('hands aggregate rows over exactly; asked for summaries only, with the percentiles the host would read and no sketches', async () => {
    const file = tmp.file()
    const storage = sqliteStorage({ filename: file, retention: FOREVER, thread: 'worker' })
    // every number field differs from call to call; two routes, three tenants, a few hours, some unrolled
    const varied = Array.from({ length: 600 }, (_, i) =>
      make({
        direction: i % 3 ? 'outbound' : 'inbound', api: i % 3 ? 'x' : null, method: 'GET', route: `/r${i % 2}`, statusCode: [200, 404, 500, 429][i % 4]!,
        durationMs: i % 7 === 0 ? 0 : 0.5 + ((i * 7919) % 5000) / 7, cost: i % 5 ? (i % 13) / 1e6 : undefined, cached: i % 6 === 0, tenantId: `t${i % 3}`,
        inputTokens: i, outputTokens: 2 * i, requestBytes: 10 + i, responseBytes: 1000 + i, timestamp: Date.UTC(2026, 0, 1) + i * 37_000,
      }))
    await storage.writeCalls(varied)
    await storage.maintain()
    await storage.writeCalls(calls(30)) // the tail, not rolled up yet
    const host = sqliteStorage({ filename: file, retention: FOREVER, thread: 'main' })
    const filter = { from: Date.UTC(2026, 0, 1, 0, 13), to: Date.UTC(2026, 0, 1, 5, 41) }
    const queries = [
      { filter, groupBy: ['route'] as const, interval: 'hour' as const },
      { filter: {}, groupBy: ['tenant', 'status'] as const },
      { filter, groupBy: [] as const, interval: 'minute' as const },
    ]
    const ordered = (rows: AggregateRow[]) => [...rows].sort((a, b) => (a.start ?? 0) - (b.start ?? 0) || String(a.keys).localeCompare(String(b.keys)))
    for (const query of queries) {
      const here = ordered(await host.aggregate({ ...query, groupBy: [...query.groupBy] }))
      const crossed = ordered(await storage.aggregate({ ...query, groupBy: [...query.groupBy] }))
      const summaries = ordered(await storage.aggregate({ ...query, groupBy: [...query.groupBy], summariesOnly: true }))
      expect(here.length).toBeGreaterThan(0)
      expect(crossed.map((r) => ({ ...r, state: { ...r.state, sketch: r.state.sketch.buckets } }))).toEqual(here.map((r) => ({ ...r, state: { ...r.state, sketch: r.state.sketch.buckets } })))
      expect(summaries.map((r) => toSummary(r.state, r.resolution, r.percentiles))).toEqual(here.map((r) => toSummary(r.state, r.resolution)))
      expect(summaries.every((r) => r.state.sketch.count === 0 && r.percentiles!.length === 4)).toBe(true)
    }
    await host.close()
    await storage.close()
  })

  it('keeps the meaning of errors: busy is transient, a malformed row rejected, a damaged file fatal, closed fatal', async () => {
    const file = tmp.file()
    const storage = sqliteStorage({ filename: file, busyTimeoutMs: 50, thread: 'worker' })
    await storage.init!()
    const other = new Database(file)
    other.exec('BEGIN EXCLUSIVE')
    const busy = await errorOf(storage.writeCalls(calls(1)))
    other.exec('ROLLBACK')
    other.close()
    expect((busy as { code?: string }).code).toMatch(/^SQLITE_BUSY/)
    expect(storage.classifyError!(busy)).toEqual({ kind: 'transient' })

    const malformed = await errorOf(storage.writeCalls([{ ...calls(1)[0]!, statusCode: 'ok' as never }]))
    expect(isApimeterError(malformed, 'INVALID_RECORD')).toBe(true)
    expect((malformed as Error).message).toMatch(/statusCode/)
    expect(storage.classifyError!(malformed)).toEqual({ kind: 'rejected' })
    await storage.close()
    const closed = await errorOf(storage.writeCalls(calls(1)))
    expect(isApimeterError(closed, 'STORAGE_CLOSED')).toBe(true)
    expect(storage.classifyError!(closed)).toEqual({ kind: 'fatal' })

    const damaged = tmp.file('damaged.db')
    writeFileSync(damaged, 'this is not a SQLite database, but it is long enough to look like one might be. '.repeat(20))
    const broken = sqliteStorage({ filename: damaged, thread: 'worker' })
    const notADatabase = await errorOf(broken.init!())
    expect(broken.classifyError!(notADatabase)).toMatchObject({ kind: 'fatal', hint: /damaged or not a SQLite database/ })
    await broken.close()
  })

  it('db is a connection of the host on the same file: it reads what the worker wrote, and the worker sees its writes', async () => {
    const storage = sqliteStorage({ filename: tmp.file(), retention: FOREVER, thread: 'worker' })
    await storage.writeCalls(calls(30))
    const n = async () => Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM apimeter_calls`.execute(storage.db)).rows[0]!.n)
    expect(await n()).toBe(30)
    await sql`DELETE FROM apimeter_calls WHERE status_code = 500`.execute(storage.db)
    expect(await n()).toBe(27)
    expect((await createStats(storage).summary({ from: '2025-12-01' })).requests).toBe(27)
    await storage.close()
  })

  it('a worker that dies fails what was outstanding with a clear error, and the next operation starts a new one', async () => {
    const storage = crashingStorage(tmp.file())
    await storage.writeCalls(calls(10))
    const exited = await errorOf(storage.maintain())
    expect(isApimeterError(exited, 'STORAGE_UNAVAILABLE')).toBe(true)
    expect((exited as Error).message).toMatch(/^@apimeter\/storage-sqlite: the worker thread of the SQLite storage on .* stopped \(exit code 7\)/)
    expect(storage.classifyError!(exited)).toEqual({ kind: 'transient' })
    await storage.writeCalls(calls(5))
    const threw = await errorOf(storage.migrationStatus())
    expect((threw as Error).message).toMatch(/stopped \(boom in the worker\)/)
    expect(((threw as Error).cause as Error).message).toBe('boom in the worker')
    expect((await createStats(storage).summary({ from: '2025-12-01' })).requests).toBe(15)
    await storage.close()
  })

  it('a monitor rides out its worker dying in the middle of a write: retried, every call written once', async () => {
    const file = tmp.file()
    const storage = crashingStorage(file)
    await storage.init!()
    writeFileSync(`${file}.crash`, '')
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false, retry: { initialDelayMs: 10, maxDelayMs: 50, jitter: 0 } })
    for (let i = 0; i < 100; i++) monitor.record({ direction: 'inbound', method: 'GET', route: '/x', statusCode: 200, durationMs: 1 })
    await monitor.flush({ timeoutMs: 20_000 })
    expect(monitor.health()).toMatchObject({ written: 100, dropped: 0, queued: 0 })
    expect(monitor.health().failedWrites).toBeGreaterThanOrEqual(1)
    expect(monitor.health().lastError?.message).toMatch(/stopped \(exit code 9\)/)
    expect((await monitor.stats.summary()).requests).toBe(100)
    await monitor.close()
  })

  it('a worker that cannot start is a fatal error naming the way out, never retried forever', async () => {
    const script = new URL('./fixtures/broken-worker.mjs', import.meta.url)
    const storage = workerSqliteStorage({ filename: tmp.file(), busyTimeoutMs: 5000, migrate: true }, script)
    const error = await errorOf(storage.init!())
    expect((error as Error).message).toMatch(/worker thread of the SQLite storage on .* cannot start \(this worker cannot load\)/)
    expect(storage.classifyError!(error)).toMatchObject({ kind: 'fatal', hint: /thread: 'main'/ })
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false })
    monitor.record({ direction: 'inbound', method: 'GET', route: '/x', statusCode: 200, durationMs: 1 })
    await monitor.flush({ timeoutMs: 10_000 })
    expect(monitor.health()).toMatchObject({ written: 0, dropped: 1, queued: 0 })
    await monitor.close()
  })

  it('close() ends the thread, and an idle worker never keeps a process alive', async () => {
    const file = tmp.file()
    const closed = await runFixture(new URL('./fixtures/worker-child.ts', import.meta.url), [file, 'close'], 60_000)
    expect(closed.code, closed.stderr).toBe(0)
    const threads = JSON.parse(closed.stdout) as { before: number; during: number; after: number }
    expect(threads.during).toBe(threads.before + 1) // the worker
    expect(threads.after).toBe(threads.before)
    // never closed: 50 calls still buffered when the script ends; the exit flush writes them, then the process exits
    const started = Date.now()
    const open = await runFixture(new URL('./fixtures/worker-child.ts', import.meta.url), [file, 'no-close'], 60_000)
    expect(open.code, open.stderr).toBe(0)
    expect(Date.now() - started).toBeLessThan(30_000)
    const db = new Database(file, { readonly: true })
    expect(db.prepare('SELECT COUNT(*) AS n FROM apimeter_calls').get()).toEqual({ n: 250 })
    db.close()
  })

  it('starts in a process run with Node options a worker refuses (V8 and process-wide flags), without them', async () => {
    const file = tmp.file()
    const flagged = await runFixture(new URL('./fixtures/worker-child.ts', import.meta.url), [file, 'close'], 60_000, {}, ['--expose-gc', '--title=apimeter-flags', '--stack-trace-limit=20'])
    expect(flagged.code, flagged.stderr).toBe(0)
    const threads = JSON.parse(flagged.stdout) as { before: number; during: number }
    expect(threads.during).toBe(threads.before + 1) // it did run in a worker
    const db = new Database(file, { readonly: true })
    expect(db.prepare('SELECT COUNT(*) AS n FROM apimeter_calls').get()).toEqual({ n: 100 })
    db.close()
  })

  it('stays on the host thread by default in a process limited to one core (taskset), where a worker only adds copies', async () => {
    const file = tmp.file()
    const pinned = await runFixture(new URL('./fixtures/worker-child.ts', import.meta.url), [file, 'one-core'], 60_000)
    expect(pinned.code, pinned.stderr).toBe(0)
    const threads = JSON.parse(pinned.stdout) as { before: number; during: number; after: number }
    expect(threads.during).toBe(threads.before) // no worker thread
    const db = new Database(file, { readonly: true })
    expect(db.prepare('SELECT COUNT(*) AS n FROM apimeter_calls').get()).toEqual({ n: 100 })
    db.close()
  })

  it('runs on the host thread where it must, and says why thread: worker cannot apply', () => {
    expect(() => sqliteStorage({ filename: 'a.db', thread: 'elsewhere' as never })).toThrow(`@apimeter/storage-sqlite: options.thread must be 'worker' or 'main', got "elsewhere"`)
    expect(() => sqliteStorage({ database: new Database(':memory:'), thread: 'worker' })).toThrow(`@apimeter/storage-sqlite: options.thread must be 'main' when a database connection is given (it cannot move to a worker thread), got "worker"`)
    expect(() => sqliteStorage({ filename: ':memory:', thread: 'worker' })).toThrow(/options\.thread must be 'main' when the database is in memory/)
    expect(() => sqliteStorage({ filename: 'a.db', now: () => 0, thread: 'worker' })).toThrow(/options\.thread must be 'main' when a now function is given/)
  })
})
