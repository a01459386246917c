import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import { type RawBuilder, sql } from 'kysely'
import { postgresDialect } from '@apimeter/core/sql'
import { type ApimeterError, type CallInput, createMonitor, type Monitor } from '@apimeter/core'
import { postgresStorage } from '@apimeter/storage-postgres'
import { freshSchema, query, testUrl } from '../../packages/storage-postgres/test/helpers.js'
import { runFixture } from '../support/run-fixture.js'

/**
 * Faults of the write path on a real PostgreSQL server (docs/reliability.md): data the server refuses, a statement
 * that hangs, connections killed under load, a transaction left open elsewhere in the cluster, a process that never
 * calls close(). Each test fails without the fix it covers.
 */

const call = (i: number, extra: Partial<CallInput> = {}): CallInput => ({
  direction: 'outbound', api: 'x', method: 'GET', route: `/r/${i % 5}`, statusCode: 200, durationMs: 1 + (i % 7), cost: 0.000001, tenantId: `t${i % 3}`, ...extra,
})

describe('PostgreSQL write faults', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>
  let monitor: Monitor | undefined
  let errors: ApimeterError[]
  const clients: pg.Client[] = []

  beforeEach(async () => {
    schema = await freshSchema('fault')
    errors = []
  })
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.end().catch(() => undefined)
    await monitor?.close()
    monitor = undefined
    await schema.drop()
  })

  const start = (options: Parameters<typeof createMonitor>[0] = {}, storageOptions: Partial<Parameters<typeof postgresStorage>[0]> = {}): Monitor => {
    monitor = createMonitor({ logger: false, flushOnExit: false, retry: { initialDelayMs: 20, maxDelayMs: 200, jitter: 0 }, ...options, storage: postgresStorage({ connectionString: testUrl(), schema: schema.schema, ...storageOptions }) })
    monitor.on('error', (e) => errors.push(e))
    return monitor
  }
  const session = async (): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: testUrl(), options: `-c search_path="${schema.schema}"` })
    await client.connect()
    client.on('error', () => undefined)
    clients.push(client)
    return client
  }
  const count = async (where = 'true'): Promise<number> => Number((await query<{ n: string }>(`SELECT COUNT(*) AS n FROM apimeter_calls WHERE ${where}`, schema.schema))[0]!.n)

  it('stores calls whose strings hold NUL bytes or lone surrogates, and every call behind them (one bad string used to stall every write)', async () => {
    const m = start()
    m.record(call(0, { route: '/bad\u0000route', tenantId: 'acme\u0000', metadata: { note: 'nul \u0000 here', half: '\ud800' }, userAgent: 'ua\udc00' }))
    for (let i = 1; i <= 50; i++) m.record(call(i))
    await m.flush({ timeoutMs: 10_000 })
    expect(m.health()).toMatchObject({ written: 51, rejected: 0, dropped: 0, queued: 0 })
    const [row] = await query<{ route: string; tenant_id: string; metadata: { note: string; half: string }; user_agent: string }>(`SELECT route, tenant_id, metadata, user_agent FROM apimeter_calls WHERE route LIKE '/bad%'`, schema.schema)
    expect(row).toEqual({ route: '/bad\ufffdroute', tenant_id: 'acme\ufffd', metadata: { note: 'nul \ufffd here', half: '\ufffd' }, user_agent: 'ua\ufffd' })
    expect((await m.stats.summary()).requests).toBe(51)
  })

  it('isolates the calls the server refuses for good: counts them as rejected, names the field, writes all the others', async () => {
    const m = start({ batchSize: 200 })
    await m.stats.summary() // creates the schema
    // the server's own rule: a tenant it will never accept (a real check_violation, raised by a trigger)
    const admin = await session()
    await admin.query(`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.tenant_id = 'poison' THEN
          RAISE EXCEPTION 'tenant % is not accepted', NEW.tenant_id USING ERRCODE = '23514', COLUMN = 'tenant_id';
        END IF;
        RETURN NEW;
      END $$`)
    await admin.query(`CREATE TRIGGER refuse_poison BEFORE INSERT ON apimeter_calls_default FOR EACH ROW EXECUTE FUNCTION refuse_poison()`)
    for (const p of (await admin.query<{ name: string }>(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass('apimeter_calls')`)).rows) {
      if (p.name !== 'apimeter_calls_default') await admin.query(`CREATE TRIGGER refuse_poison BEFORE INSERT ON ${p.name} FOR EACH ROW EXECUTE FUNCTION refuse_poison()`)
    }
    for (let i = 0; i < 600; i++) m.record(call(i, i % 97 === 0 ? { tenantId: 'poison' } : {}))
    await m.flush({ timeoutMs: 20_000 })
    const poisoned = Math.ceil(600 / 97)
    expect(m.health()).toMatchObject({ written: 600 - poisoned, rejected: poisoned, dropped: 0, queued: 0 })
    expect(await count()).toBe(600 - poisoned)
    expect(await count(`tenant_id = 'poison'`)).toBe(0)
    const rejected = errors.filter((e) => e.code === 'REJECTED')
    expect(rejected).toHaveLength(1) // reported once per reason, every one counted
    expect(rejected[0]!.message).toMatch(/call\.tenantId: .*tenant poison is not accepted/)
  })

  it('times out a write the server holds, retries it, and writes each call exactly once', async () => {
    const m = start({ storageTimeoutMs: 300 })
    await m.stats.summary()
    const blocker = await session()
    await blocker.query('BEGIN')
    await blocker.query('LOCK TABLE apimeter_calls IN ACCESS EXCLUSIVE MODE')
    for (let i = 0; i < 20; i++) m.record(call(i))
    m.flush().catch(() => undefined)
    // the writes time out while the lock is held (each attempt counted), then land once it is released
    await waitFor(() => m.health().failedWrites >= 2, 10_000)
    expect(m.health().lastError?.message).toMatch(/took longer than storageTimeoutMs \(300 ms\)/)
    await blocker.query('COMMIT')
    await m.flush({ timeoutMs: 15_000 })
    expect(m.health()).toMatchObject({ written: 20, dropped: 0, queued: 0 })
    expect(await count()).toBe(20) // a timed-out insert that completed later is not written twice
  })

  it('survives its connections being killed under load (pg_terminate_backend), losing and duplicating nothing', async () => {
    const m = start({ batchSize: 100 })
    await m.stats.summary()
    const admin = await session()
    let killed = 0
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 400; i++) m.record(call(round * 400 + i))
      const r = await admin.query<{ n: string }>(`SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = '' AND backend_type = 'client backend'`)
      killed += Number(r.rows[0]!.n)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    await m.flush({ timeoutMs: 30_000 })
    expect(killed).toBeGreaterThan(0)
    expect(m.health()).toMatchObject({ written: 2000, dropped: 0, rejected: 0, queued: 0 })
    expect(await count()).toBe(2000)
    expect((await m.stats.summary()).requests).toBe(2000)
  })

  it('keeps rolling up while a transaction elsewhere in the cluster stays open, so stats stay exact and read little raw data', async () => {
    const m = start({ batchSize: 1000 })
    await m.stats.summary()
    // an idle-in-transaction session of another application, holding an xid the whole time
    const other = await session()
    await other.query('BEGIN')
    await other.query('SELECT pg_current_xact_id()')
    for (let i = 0; i < 20_000; i++) m.record(call(i))
    await m.flush({ timeoutMs: 30_000 })
    const storage = m.storage as ReturnType<typeof postgresStorage>
    await storage.maintain()
    // What the next query reads from raw calls: nothing is left above the cursor. When the cursor was the cluster's
    // oldest running transaction, all 20,000 stayed there (and retention could not drop them) while it was open.
    const state = await query<{ name: string; value: string }>(`SELECT name, value FROM apimeter_rollup_state WHERE name = 'cursor' OR name LIKE 'pending:%'`, schema.schema)
    const upto = Number(state.find((s) => s.name === 'cursor')!.value)
    const pending = state.filter((s) => s.name.startsWith('pending:')).map((s) => s.value)
    expect(pending.length).toBeGreaterThan(0) // the open transaction is remembered, not waited for
    expect(await count(`tx >= '${upto}'::xid8${pending.length ? ` OR tx = ANY(ARRAY[${pending.map((p) => `'${p}'`).join(',')}]::xid8[])` : ''}`)).toBe(0)
    expect((await m.stats.summary()).requests).toBe(20_000)
    // a write of the open transaction itself is rolled up once it commits, not lost and not counted twice
    await other.query(`INSERT INTO apimeter_calls (call_id, ts, direction, service, method, route, outcome, duration_us, latency_bucket, cached, attempt, status_code)
      VALUES ('late-1', ${Date.now()}, 'outbound', 'default', 'GET', '/late', 'success', 1000, 0, 0, 1, 200)`)
    await other.query('COMMIT')
    expect((await storage.maintain()).rolledUp).toBe(1)
    expect((await m.stats.summary()).requests).toBe(20_001)
  })

  it('rolls a large backlog up in bounded runs, never one statement over the whole backlog (which statement_timeout cut short forever)', async () => {
    const never = { rollupEveryCalls: Number.MAX_SAFE_INTEGER, rollupIntervalMs: 2_147_483_647 }
    const m = start({ batchSize: 1000, concurrency: 1 }, { schedule: never })
    for (let i = 0; i < 5000; i++) m.record(call(i))
    await m.flush({ timeoutMs: 30_000 })
    const storage = m.storage as ReturnType<typeof postgresStorage>
    const big = createMonitor({ logger: false, flushOnExit: false, batchSize: 3000, storage: postgresStorage({ connectionString: testUrl(), schema: schema.schema, schedule: never }) })
    for (let i = 0; i < 3000; i++) big.record(call(i))
    await big.flush({ timeoutMs: 30_000 })
    const rowsIn = async (batch: RawBuilder<boolean>): Promise<number> => Number((await sql<{ n: string }>`SELECT COUNT(*) AS n FROM apimeter_calls WHERE ${batch}`.execute(storage.db)).rows[0]!.n)
    const from = { upto: 0, pending: [] }
    // five transactions of 1,000 calls, then one of 3,000: a run stops before the transaction that would pass maxRows
    const first = (await postgresDialect.cursor.next(storage.db, from, 2500))!
    expect(await rowsIn(first.batch)).toBe(2000)
    // a transaction is never split: a bound inside the first transaction takes that transaction whole
    expect(await rowsIn((await postgresDialect.cursor.next(storage.db, from, 10))!.batch)).toBe(1000)
    const last = (await postgresDialect.cursor.next(storage.db, { upto: (await postgresDialect.cursor.next(storage.db, from, 5000))!.to.upto, pending: [] }, 10))!
    expect(await rowsIn(last.batch)).toBe(3000)
    // unbounded, it is one batch of everything
    expect(await rowsIn((await postgresDialect.cursor.next(storage.db, from, Infinity))!.batch)).toBe(8000)
    // maintenance walks the backlog in such runs and stays exact
    expect((await storage.maintain()).rolledUp).toBe(8000)
    expect((await m.stats.summary()).requests).toBe(8000)
    expect(await count(`tx >= (SELECT value::text FROM apimeter_rollup_state WHERE name = 'cursor')::xid8`)).toBe(0)
    await big.close()
  })

  it('ends close() within closeTimeoutMs even when its final rollup run is blocked', async () => {
    const m = start({ closeTimeoutMs: 1000 })
    for (let i = 0; i < 100; i++) m.record(call(i))
    await m.flush()
    const blocker = await session()
    await blocker.query('BEGIN')
    await blocker.query('LOCK TABLE apimeter_rollups_hour IN ACCESS EXCLUSIVE MODE')
    const started = Date.now()
    await m.close()
    monitor = undefined
    expect(Date.now() - started).toBeLessThan(4000) // unbounded (the lock is never released here) before the fix
    expect(m.health()).toMatchObject({ written: 100, dropped: 0 })
    await blocker.query('ROLLBACK')
  })

  it('lets a script that never calls close() exit as soon as its work is done', async () => {
    const result = await runFixture(new URL('./fixtures/pg-no-close.ts', import.meta.url), [schema.schema], 60_000, { APIMETER_TEST_PG_URL: testUrl() })
    expect(result.code, result.stderr).toBe(0)
    const exitedAt = Date.now()
    const { written, doneAt } = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { written: number; doneAt: number }
    const exitedAfterMs = exitedAt - doneAt
    expect(written).toBe(10)
    // the pool's idle connections kept such a script alive for ~10 s (idleTimeoutMillis)
    expect(exitedAfterMs).toBeLessThan(3000)
  })
})

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
