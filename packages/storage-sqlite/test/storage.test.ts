import Database from 'better-sqlite3'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createMonitor, createStats, isApimeterError } from '@apimeter/core'
import { recordFactory } from '@apimeter/core/testing'
import { apimeterMigrations } from '@apimeter/core/sql'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { runFixture as run } from '../../../test/support/run-fixture.js'

const runFixture = (fixture: string, args: string[]) => run(new URL(`./fixtures/${fixture}`, import.meta.url), args)
import { tempDir } from './helpers.js'

const NAMES = apimeterMigrations('sqlite').map((m) => m.name)

const make = recordFactory({ service: 'sqlite-test' })
const call = () => make({ direction: 'inbound', method: 'GET', route: '/x', statusCode: 200, durationMs: 1.5 })

describe('sqliteStorage()', () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir()
  })
  afterEach(() => tmp.remove())

  it('two processes writing one file at once lose nothing', async () => {
    const file = tmp.file()
    const [a, b] = await Promise.all([
      runFixture('writer-child.ts', [file, 'writer-a', '20000']),
      runFixture('writer-child.ts', [file, 'writer-b', '20000']),
    ])
    for (const r of [a, b]) {
      expect(r.code, r.stderr).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ written: 20000, dropped: 0, invalid: 0, queued: 0 })
    }
    const storage = sqliteStorage({ filename: file })
    const stats = createStats(storage)
    const summary = await stats.summary()
    expect(summary.requests).toBe(40000)
    expect(summary.cost).toBe(0.04)
    expect((await stats.breakdown({ by: 'service', orderBy: 'key' })).map((r) => [r.key, r.requests])).toEqual([
      ['writer-a', 20000],
      ['writer-b', 20000],
    ])
    await storage.close()
  }, 120_000)

  it('sets WAL, synchronous NORMAL and the busy timeout', async () => {
    const file = tmp.file()
    const storage = sqliteStorage({ filename: file, busyTimeoutMs: 1234 })
    await storage.init!()
    const pragma = async (name: string) => (await sql.raw<Record<string, unknown>>(`PRAGMA ${name}`).execute(storage.db)).rows[0]
    expect(await pragma('journal_mode')).toEqual({ journal_mode: 'wal' })
    expect(await pragma('synchronous')).toEqual({ synchronous: 1 })
    expect(await pragma('busy_timeout')).toEqual({ timeout: 1234 })
    await storage.close()
  })

  it('with migrate: false refuses an unmigrated database and names the command to run', async () => {
    const file = tmp.file()
    const storage = sqliteStorage({ filename: file, migrate: false })
    const error = await storage.writeCalls([call()]).then(() => undefined, (e: unknown) => e)
    expect(isApimeterError(error, 'MIGRATION_REQUIRED')).toBe(true)
    expect((error as Error).message).toContain(`is at migration (none) but this version of apimeter needs ${NAMES.at(-1)} (pending: ${NAMES.join(', ')})`)
    expect((error as Error).message).toContain(`apimeter migrate latest --db ${file}`)
    expect((await storage.migrate()).current).toBe(NAMES.at(-1))
    await storage.writeCalls([call()])
    expect((await createStats(storage).summary()).requests).toBe(1)
    await storage.close()
  })

  it('uses a database you pass without closing it', async () => {
    const database = new Database(tmp.file())
    const storage = sqliteStorage({ database })
    await storage.writeCalls([call(), call()])
    await storage.close()
    expect(database.open).toBe(true)
    expect(database.prepare('SELECT COUNT(*) AS n FROM apimeter_calls').get()).toEqual({ n: 2 })
    database.close()
  })

  it('stores the documented row: microsecond durations, cost in nano-USD, the sketch bucket, masked URL', async () => {
    const file = tmp.file()
    const storage = sqliteStorage({ filename: file })
    await storage.writeCalls([
      make({ direction: 'outbound', api: 'openai', method: 'POST', url: 'https://api.openai.com/v1/chat/completions?api_key=sk-1', statusCode: 200, durationMs: 812.4567, ttfbMs: 100.25, cost: 0.0021, model: 'gpt-4o-mini', cached: true, metadata: { plan: 'pro' }, timestamp: Date.UTC(2026, 0, 1) }),
    ])
    await storage.close()
    const db = new Database(file, { readonly: true })
    const row = db.prepare('SELECT * FROM apimeter_calls').get() as Record<string, unknown>
    db.close()
    expect(row).toMatchObject({
      ts: Date.UTC(2026, 0, 1),
      direction: 'outbound',
      api: 'openai',
      method: 'POST',
      route: '/v1/chat/completions',
      host: 'api.openai.com',
      url: 'https://api.openai.com/v1/chat/completions?api_key=***',
      status_code: 200,
      outcome: 'success',
      duration_us: 812457,
      ttfb_us: 100250,
      cached: 1,
      cost_nanos: 2_100_000,
      cost_source: 'computed',
      model: 'gpt-4o-mini',
      metadata: '{"plan":"pro"}',
      attempt: 1,
    })
    expect(typeof row.latency_bucket).toBe('number')
    expect(typeof row.call_id).toBe('string')
  })

  it('rejects bad options with package-prefixed errors', () => {
    expect(() => sqliteStorage({})).toThrow('@apimeter/storage-sqlite: options must be exactly one of filename or database, got an empty object')
    expect(() => sqliteStorage({ filename: 'a.db', database: new Database(':memory:') })).toThrow(/exactly one of filename or database/)
    expect(() => sqliteStorage({ filename: 'a.db', busyTimeoutMs: -1 })).toThrow('@apimeter/storage-sqlite: options.busyTimeoutMs must be a whole number of milliseconds from 0 to 600,000, got -1')
    expect(() => sqliteStorage({ filename: 'a.db', cacheSizeMiB: 0.5 })).toThrow('@apimeter/storage-sqlite: options.cacheSizeMiB must be a whole number of MiB from 1 to 65,536, got 0.5')
    expect(() => sqliteStorage({ filename: 'a.db', migrate: 'yes' } as never)).toThrow('@apimeter/storage-sqlite: options.migrate must be true or false, got "yes"')
    expect(() => sqliteStorage({ file: 'a.db' } as never)).toThrow(/options\.file is not a known option \(did you mean filename\?\)/)
  })

  it('a monitor on an unopenable path keeps the app running, buffers, and reports why', async () => {
    const storage = sqliteStorage({ filename: '/no/such/dir/apimeter.db' })
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false, closeTimeoutMs: 100, retry: { initialDelayMs: 5, maxDelayMs: 20 } })
    const errors: string[] = []
    monitor.on('error', (e) => errors.push(`${e.code}: ${e.message}`))
    monitor.record({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 })
    await expect(monitor.flush({ timeoutMs: 200 })).rejects.toMatchObject({ code: 'FLUSH_TIMEOUT' })
    expect(monitor.health().queued).toBe(1)
    await vi.waitFor(() => expect(errors.join('\n')).toMatch(/cannot open \/no\/such\/dir\/apimeter\.db: directory \/no\/such\/dir does not exist/))
    await monitor.close()
    expect(monitor.health()).toMatchObject({ dropped: 1, queued: 0 })
  })

  it('sizes the page cache of its connections as asked (cacheSizeMiB), 8 MiB by default', async () => {
    const cacheOf = async (storage: ReturnType<typeof sqliteStorage>) => (await sql<{ cache_size: number }>`PRAGMA cache_size`.execute(storage.db)).rows[0]!.cache_size
    const large = sqliteStorage({ filename: tmp.file('large.db'), thread: 'main', cacheSizeMiB: 64 })
    await large.init!()
    expect(await cacheOf(large)).toBe(-64 * 1024) // negative: KiB
    await large.close()
    const plain = sqliteStorage({ filename: tmp.file('plain.db'), thread: 'main' })
    await plain.init!()
    expect(await cacheOf(plain)).toBe(-8 * 1024)
    await plain.close()
    // in the worker mode the option travels with the settings; storage.db, the host's own connection, shows it too
    const worker = sqliteStorage({ filename: tmp.file('worker.db'), thread: 'worker', cacheSizeMiB: 4 })
    await worker.init!()
    expect(await cacheOf(worker)).toBe(-4 * 1024)
    await worker.close()
  })
})
