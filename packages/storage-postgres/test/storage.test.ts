import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type CallRecord, createMonitor, createStats, memoryStorage } from '@apimeter/core'
import { recordFactory } from '@apimeter/core/testing'
import { postgresStorage } from '@apimeter/storage-postgres'
import pg from 'pg'
import { freshSchema, query, testUrl } from './helpers.js'
import { expectStoredPercentiles } from '../../../test/support/stored-percentiles.js'

const DAY = 86_400_000
const NOW = Date.UTC(2026, 5, 15, 12)
const FOREVER = { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' }

function calls(n: number, from: number, span: number): CallRecord[] {
  const make = recordFactory({ service: 'pg' })
  return Array.from({ length: n }, (_, i) =>
    make({ direction: 'outbound', api: i % 2 ? 'a' : 'b', method: 'GET', route: '/r', statusCode: 200, durationMs: 1 + (i % 300), cost: 0.000001, tenantId: `t${i % 3}`, userId: `u${i % 4}`, timestamp: from + Math.floor((i / n) * span) }),
  )
}

/** `n` calls from `from` over `span` ms: three APIs, five routes, four statuses, eleven tenants (`seed` shifts them). */
function varied(n: number, from: number, span: number, seed: number): CallRecord[] {
  const make = recordFactory({ service: 'pg' })
  return Array.from({ length: n }, (_, i) =>
    make({ direction: 'outbound', api: `api${(i + seed) % 3}`, method: 'GET', route: `/r${(i * 7 + seed) % 5}`, statusCode: [200, 200, 404, 500][(i + seed) % 4], durationMs: 1 + ((i * 7919 + seed) % 20_000) / 10, cost: ((i % 13) + 1) / 1e6, tenantId: `t${(i * 31 + seed) % 11}`, timestamp: from + Math.floor((i / n) * span) }),
  )
}

describe('postgresStorage()', () => {
  let schema: string
  let drop: () => Promise<void>
  beforeEach(async () => {
    ;({ schema, drop } = await freshSchema('s'))
  })
  afterEach(async () => drop())

  const partitions = async () =>
    (await query<{ name: string }>(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '"${schema}".apimeter_calls'::regclass ORDER BY 1`)).map((r) => r.name)

  it('partitions raw calls by month, created ahead; rows of a month without one wait in the default partition and move', async () => {
    let now = NOW
    const storage = postgresStorage({ connectionString: testUrl(), schema, retention: FOREVER, now: () => now })
    await storage.init!()
    expect(await partitions()).toEqual(['apimeter_calls_default', 'apimeter_calls_p2026_05', 'apimeter_calls_p2026_06', 'apimeter_calls_p2026_07', 'apimeter_calls_p2026_08'])
    await storage.writeCalls([...calls(10, Date.UTC(2026, 5, 2), DAY), ...calls(5, Date.UTC(2026, 9, 2), DAY)]) // June, and October
    const placed = await query<{ part: string; n: number }>(`SELECT tableoid::regclass::text AS part, COUNT(*)::int AS n FROM "${schema}".apimeter_calls GROUP BY 1 ORDER BY 1`)
    expect(placed).toEqual([
      { part: `${schema}.apimeter_calls_default`, n: 5 },
      { part: `${schema}.apimeter_calls_p2026_06`, n: 10 },
    ])
    // time passes: housekeeping creates October's partition and moves its rows out of the default one
    now = Date.UTC(2026, 8, 15)
    await storage.maintain()
    expect(await partitions()).toContain('apimeter_calls_p2026_10')
    const moved = await query<{ part: string; n: number }>(`SELECT tableoid::regclass::text AS part, COUNT(*)::int AS n FROM "${schema}".apimeter_calls GROUP BY 1 ORDER BY 1`)
    expect(moved).toEqual([
      { part: `${schema}.apimeter_calls_p2026_06`, n: 10 },
      { part: `${schema}.apimeter_calls_p2026_10`, n: 5 },
    ])
    expect((await createStats(storage).summary()).requests).toBe(15)
    await storage.close()
  })

  it('retention drops whole expired partitions (once rolled up) and old ranges answer from rollups', async () => {
    const storage = postgresStorage({ connectionString: testUrl(), schema, retention: { raw: '30d', hour: '60d' }, now: () => NOW })
    await storage.init!()
    const old = calls(3000, Date.UTC(2026, 1, 1), 120 * DAY) // February … May
    for (let i = 0; i < old.length; i += 1000) await storage.writeCalls(old.slice(i, i + 1000))
    const reference = memoryStorage({ maxCalls: Infinity })
    await reference.writeCalls(old)
    expect((await query(`SELECT 1 FROM "${schema}".apimeter_calls_default LIMIT 1`)).length).toBe(1) // Feb–Apr had no partition
    await storage.maintain()
    // raw cut: 2026-05-16T12:00; whole months before it are gone: Feb–Apr sat in the default partition (trimmed),
    // May's partition ends after the cut and stays
    expect(await partitions()).toEqual(['apimeter_calls_default', 'apimeter_calls_p2026_05', 'apimeter_calls_p2026_06', 'apimeter_calls_p2026_07', 'apimeter_calls_p2026_08'])
    const left = await query<{ oldest: string }>(`SELECT MIN(ts)::text AS oldest FROM "${schema}".apimeter_calls`)
    expect(Number(left[0]!.oldest)).toBeGreaterThanOrEqual(Date.UTC(2026, 4, 1))
    const clock = { now: () => NOW }
    expect(await createStats(storage, { clock }).summary()).toEqual(await createStats(reference, { clock }).summary())
    expect(await createStats(storage, { clock }).breakdown({ by: 'tenant' })).toEqual(await createStats(reference, { clock }).breakdown({ by: 'tenant' }))
    // a partition whose month expired entirely is dropped, not emptied row by row
    const later = postgresStorage({ connectionString: testUrl(), schema, retention: { raw: '30d', hour: '60d' }, now: () => Date.UTC(2026, 7, 10) })
    await later.maintain()
    expect(await partitions()).not.toContain('apimeter_calls_p2026_05')
    expect(await partitions()).not.toContain('apimeter_calls_p2026_06')
    expect((await createStats(later, { clock }).summary()).requests).toBe(3000)
    await later.close()
    await storage.close()
  })

  it('answers exactly with a backlog of 120,000 not-yet-rolled calls', async () => {
    const never = { rollupEveryCalls: Number.MAX_SAFE_INTEGER, rollupIntervalMs: Number.MAX_SAFE_INTEGER }
    const storage = postgresStorage({ connectionString: testUrl(), schema, retention: FOREVER, now: () => NOW, schedule: never })
    await storage.init!()
    const reference = memoryStorage({ maxCalls: Infinity })
    const rolled = varied(3000, NOW - 10 * DAY, 8 * DAY, 0)
    await storage.writeCalls(rolled)
    await reference.writeCalls(rolled)
    await storage.maintain()
    // the tail: twelve transactions of 10,000 calls, the last two days and some late into rolled-up hours, read raw
    // (grouped by hashing, see the dialect's readSnapshot)
    for (let t = 0; t < 12; t++) {
      const batch = varied(10_000, t % 4 === 3 ? NOW - 9 * DAY : NOW - 2 * DAY, 2 * DAY, t + 1)
      await storage.writeCalls(batch)
      await reference.writeCalls(batch)
    }
    const [tail] = await query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM apimeter_calls WHERE tx >= (SELECT value FROM apimeter_rollup_state WHERE name = 'cursor')::text::xid8`, schema)
    expect(tail!.n).toBe(120_000)
    const clock = { now: () => NOW }
    const [db, truth] = [createStats(storage, { clock }), createStats(reference, { clock })]
    expect(await db.summary({ from: '-30d' })).toEqual(await truth.summary({ from: '-30d' }))
    expect(await db.breakdown({ by: 'tenant', orderBy: 'cost', limit: 5, from: '-30d' })).toEqual(await truth.breakdown({ by: 'tenant', orderBy: 'cost', limit: 5, from: '-30d' }))
    expect(await db.timeseries({ interval: 'hour', from: '-10d', groupBy: 'route' })).toEqual(await truth.timeseries({ interval: 'hour', from: '-10d', groupBy: 'route' }))
    await storage.close()
  })

  it("keeps each route-by-hour row's percentiles beside its sketch, and an hourly series by route reads them in its place only where they stand for the point", async () => {
    const never = { rollupEveryCalls: Number.MAX_SAFE_INTEGER, rollupIntervalMs: Number.MAX_SAFE_INTEGER }
    const storage = postgresStorage({ connectionString: testUrl(), schema, retention: FOREVER, now: () => NOW, schedule: never })
    await storage.init!()
    const reference = memoryStorage({ maxCalls: Infinity })
    // written and rolled up twice: the second run merges into the first one's rows (read, added, written back)
    for (const seed of [1, 2]) {
      const part = varied(600, NOW - 2 * DAY, 2 * DAY, seed)
      await storage.writeCalls(part)
      await reference.writeCalls(part)
      await storage.maintain()
    }
    const clock = { now: () => NOW }
    const [stats, truth] = [createStats(storage, { clock }), createStats(reference, { clock })]
    const stored = await query<{ bucket_start: string; route: string; requests: string; duration_min_us: string; duration_max_us: string; latency_sketch: Buffer; latency_percentiles: Buffer }>(
      'SELECT bucket_start, route, requests, duration_min_us, duration_max_us, latency_sketch, latency_percentiles FROM apimeter_rollups_route_hour', schema)
    expect(stored.length).toBeGreaterThan(50)
    await expectStoredPercentiles(stored.slice(0, 12), truth)
    const hourly = { interval: 'hour', from: '-2d', groupBy: 'route' } as const
    expect(await stats.timeseries(hourly)).toEqual(await truth.timeseries(hourly))
    // read in place of the sketch: a value written here shows in its point
    const [row] = await query<{ bucket_start: string; route: string; requests: string }>('SELECT bucket_start, route, requests FROM apimeter_rollups_route_hour ORDER BY bucket_start DESC, route LIMIT 1', schema)
    const at = { start: Number(row!.bucket_start), route: row!.route }
    const plant = async (requests: number) => {
      const planted = Buffer.alloc(40)
      for (const [i, v] of [requests, 1234.5, 2345.5, 3456.5, 4567.5].entries()) planted.writeDoubleLE(v, 8 * i)
      await query(`UPDATE apimeter_rollups_route_hour SET latency_percentiles = decode('${planted.toString('hex')}', 'hex') WHERE bucket_start = ${at.start} AND route = '${at.route}'`, schema)
    }
    await plant(Number(row!.requests))
    const point = async () => (await stats.timeseries(hourly)).find((p) => p.start.getTime() === at.start && p.group === at.route)!
    const expected = (await truth.timeseries(hourly)).find((p) => p.start.getTime() === at.start && p.group === at.route)!
    expect((await point()).latency).toEqual({ ...expected.latency, p50: 1234.5, p90: 2345.5, p95: 3456.5, p99: 4567.5 })
    // not where the point holds more than the row: a late call of that hour and route, written and not rolled up yet
    const late = varied(1, at.start + 1000, 1, 3).map((c) => ({ ...c, route: at.route }))
    await storage.writeCalls(late)
    await reference.writeCalls(late)
    const withLate = (await truth.timeseries(hourly)).find((p) => p.start.getTime() === at.start && p.group === at.route)!
    expect(await point()).toEqual(withLate)
    expect(await stats.timeseries(hourly)).toEqual(await truth.timeseries(hourly))
    // nor where they were computed for another count (a writer that merged into the sketch and left them as they were)
    await storage.maintain()
    await plant(Number(row!.requests))
    expect(await point()).toEqual(withLate)
    await storage.close()
  })

  it('answers the not-yet-rolled tail of its own batches from memory, by transaction, exactly — with another writer, another instance rolling up, and rows deleted by hand', async () => {
    const never = { rollupEveryCalls: Number.MAX_SAFE_INTEGER, rollupIntervalMs: Number.MAX_SAFE_INTEGER }
    // the calls every raw read of the tail (a statement naming transaction ids, other than a ranking's) returns,
    // counted on this pool
    const pool = new pg.Pool({ connectionString: testUrl(), max: 4 })
    let tailRows = 0
    // the raw reads of a rollup run (grouped at the full grain, by hour)
    let runReads = 0
    pool.on('connect', (client) => {
      const original = client.query.bind(client) as (...args: unknown[]) => unknown
      ;(client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        const result = original(...args)
        const text = typeof args[0] === 'string' ? args[0] : ''
        if (/GROUP BY "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "b"/.test(text)) runReads++
        if (/FROM "apimeter_calls"/.test(text) && /::xid8/.test(text) && !/UNION ALL/.test(text) && result instanceof Promise) {
          const counted = (r: { rows?: { requests?: unknown }[] }) => {
            for (const row of r.rows ?? []) tailRows += Number(row.requests ?? 0)
          }
          void result.then(counted, () => undefined)
        }
        return result
      }
    })
    const mine = postgresStorage({ pool, schema, retention: FOREVER, now: () => NOW, schedule: never })
    const other = postgresStorage({ connectionString: testUrl(), schema, retention: FOREVER, now: () => NOW, schedule: never })
    await mine.init!()
    const make = recordFactory({ service: 'pg' })
    const written: CallRecord[] = []
    const batch = (n: number, seed: number, from = NOW - 3 * 3_600_000): CallRecord[] =>
      Array.from({ length: n }, (_, i) =>
        make({ direction: 'outbound', api: `api${(i + seed) % 3}`, method: 'GET', route: `/r${(i * 7 + seed) % 5}`, statusCode: [200, 200, 404, 500][(i + seed) % 4], durationMs: 1 + ((i * 7919 + seed) % 20_000) / 10, cost: ((i % 13) + 1) / 1e6, tenantId: `t${(i * 31 + seed) % 11}`, timestamp: from + Math.floor((i / n) * 3 * 3_600_000) }),
      )
    const write = async (storage: typeof mine, calls: CallRecord[]) => {
      await storage.writeCalls(calls)
      written.push(...calls)
    }
    const clock = { now: () => NOW }
    const db = createStats(mine, { clock })
    const expectExact = async () => {
      const reference = memoryStorage({ maxCalls: Infinity })
      await reference.writeCalls(written)
      const truth = createStats(reference, { clock })
      expect(await db.summary({ from: '-7d' })).toEqual(await truth.summary({ from: '-7d' }))
      expect(await db.timeseries({ interval: 'hour', from: '-1d', groupBy: 'route' })).toEqual(await truth.timeseries({ interval: 'hour', from: '-1d', groupBy: 'route' }))
      expect(await db.breakdown({ by: 'tenant', orderBy: 'cost', limit: 3, from: '-7d' })).toEqual(await truth.breakdown({ by: 'tenant', orderBy: 'cost', limit: 3, from: '-7d' }))
      expect(await db.breakdown({ by: 'status', orderBy: 'requests', limit: 2, from: '-7d' })).toEqual(await truth.breakdown({ by: 'status', orderBy: 'requests', limit: 2, from: '-7d' }))
    }

    await write(mine, batch(2000, 0, NOW - 5 * DAY))
    await mine.maintain()
    // three batches of this process above the cursor: the queries read none of their rows from the database
    for (let t = 1; t <= 3; t++) await write(mine, batch(1500, t))
    tailRows = 0
    await expectExact()
    expect(tailRows).toBe(0)

    // a batch of another process joins the tail: it is read raw, beside this process's batches from memory
    await write(other, batch(700, 4))
    await write(mine, batch(900, 5))
    await expectExact()
    expect(tailRows).toBeGreaterThan(0)

    // calls of the tail deleted by hand (rolled-up ones stay in the rollups): the memory is forgotten, the database
    // answers
    const deleted = (c: CallRecord) => c.route === '/r2' && c.statusCode === 404 && c.timestamp >= NOW - 3 * 3_600_000
    await query(`DELETE FROM apimeter_calls WHERE route = '/r2' AND status_code = 404 AND ts >= ${NOW - 3 * 3_600_000}`, schema)
    expect(written.filter(deleted).length).toBeGreaterThan(100)
    written.splice(0, written.length, ...written.filter((c) => !deleted(c)))
    await expectExact()

    // another instance rolls up what there is; this process writes on, and its new batches come from memory again
    await other.maintain()
    await write(mine, batch(1200, 6))
    await write(mine, batch(800, 7))
    await expectExact() // the deletion seen above is the baseline now
    tailRows = 0
    await expectExact()
    expect(tailRows).toBe(0)
    // a rollup run of this process takes its own batches from memory and reads only another writer's raw
    await write(other, batch(300, 8))
    runReads = 0
    await mine.maintain()
    expect(runReads).toBe(1)
    await expectExact()
    await write(mine, batch(600, 9))
    runReads = 0
    await mine.maintain()
    expect(runReads).toBe(0)
    await expectExact()
    await other.close()
    await mine.close()
    await pool.end()
  })

  it('a background rollup run steps aside, between its statements, while a query of this process is in flight', async () => {
    const pool = new pg.Pool({ connectionString: testUrl(), max: 4 })
    // when each statement of a rollup run's merges started; when the query started, and when its last statement ended
    const merges: number[] = []
    let from = 0
    let to = 0
    let asked: Promise<unknown> | undefined
    // connections open on first use: the storage and its stats exist before any
    const storage = postgresStorage({ pool, schema, retention: FOREVER, now: () => NOW, schedule: { rollupEveryCalls: 1 } })
    const stats = createStats(storage, { clock: { now: () => NOW } })
    pool.on('connect', (client) => {
      const original = client.query.bind(client) as (...args: unknown[]) => unknown
      let querying = false
      ;(client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        const text = typeof args[0] === 'string' ? args[0] : ''
        if (/^(SELECT \* FROM|INSERT INTO) "?apimeter_rollups_/.test(text)) {
          merges.push(performance.now())
          // a few statements into the run's merges, a query begins
          if (merges.length === 5) {
            from = performance.now()
            asked = stats.summary({ from: '-7d' })
          }
        }
        // the query's statements: its snapshot's transaction, on a connection of its own
        if (asked && /^start transaction isolation level repeatable read/i.test(text)) querying = true
        const result = original(...args)
        if (querying && result instanceof Promise) {
          void result.then(() => (to = performance.now()), () => undefined)
          if (/^commit/i.test(text)) querying = false
        }
        return result
      }
    })
    const make = recordFactory({ service: 'pg' })
    // many groups (tenants by route by hour): the run merges thousands of rows, in many statements
    const written = Array.from({ length: 8000 }, (_, i) =>
      make({ direction: 'outbound', api: 'a', method: 'GET', route: `/r${i % 20}`, statusCode: 200, durationMs: 1 + (i % 500), tenantId: `t${i % 400}`, timestamp: NOW - 2 * DAY + Math.floor((i / 8000) * 2 * DAY) }),
    )
    await storage.writeCalls(written) // starts a run in the background
    await vi.waitFor(() => expect(asked).toBeDefined(), { timeout: 30_000 })
    await asked
    const window = { from, to }
    await storage.maintain()
    expect(merges.length).toBeGreaterThan(40)
    // the run's statement in flight when the query began ends; the run then starts no other until the query is done
    // (its last statement answered), or until a pause of 100 ms runs out
    expect(window.to).toBeGreaterThan(window.from)
    const during = merges.filter((t) => t > window.from && t < window.to).length
    expect(during).toBeLessThanOrEqual(Math.floor((window.to - window.from) / 100))
    // and nothing of the run was lost
    expect((await stats.summary({ from: '-7d' })).requests).toBe(8000)
    const [rolled] = await query<{ n: number }>(`SELECT SUM(requests)::int AS n FROM apimeter_rollups_hour WHERE level = 0`, schema)
    expect(rolled!.n).toBe(8000)
    await storage.close()
    await pool.end()
  })

  it('writes a retried batch once (a commit whose acknowledgement was lost)', async () => {
    const storage = postgresStorage({ connectionString: testUrl(), schema, retention: FOREVER })
    const batch = calls(100, NOW - DAY, DAY)
    await storage.writeCalls(batch)
    await storage.writeCalls(batch)
    expect((await createStats(storage).summary()).requests).toBe(100)
    await storage.close()
  })

  it('stores text with tabs, newlines, carriage returns and backslashes as it was (COPY escapes them)', async () => {
    const storage = postgresStorage({ connectionString: testUrl(), schema, retention: FOREVER })
    const make = recordFactory({ service: 'pg' })
    const tricky = 'a\tb\nc\rd\\e\\N\\.'
    const call = make({ direction: 'outbound', api: 'x', method: 'GET', route: `/r/${tricky}`, statusCode: 200, durationMs: 1.25, tenantId: tricky, errorMessage: `line 1\nline 2\t\\`, metadata: { note: tricky } })
    await storage.writeCalls([call, ...calls(3, NOW - DAY, DAY)])
    const [row] = await query<{ route: string; tenant_id: string; error_message: string; metadata: { note: string }; duration_us: string }>(`SELECT route, tenant_id, error_message, metadata, duration_us::text FROM "${schema}".apimeter_calls WHERE call_id = '${call.id}'`)
    expect(row).toEqual({ route: `/r/${tricky}`, tenant_id: tricky, error_message: `line 1\nline 2\t\\`, metadata: { note: tricky }, duration_us: '1250' })
    expect((await createStats(storage).summary()).requests).toBe(4)
    await storage.close()
  })

  it('uses a pool you pass (search_path set to its schema) without ending it', async () => {
    const pool = new pg.Pool({ connectionString: testUrl(), max: 2 })
    const storage = postgresStorage({ pool, schema, retention: FOREVER })
    await storage.writeCalls(calls(5, NOW - DAY, DAY))
    await storage.close()
    const r = await pool.query(`SELECT COUNT(*)::int AS n FROM "${schema}".apimeter_calls`)
    expect(r.rows[0].n).toBe(5)
    await pool.end()
  })

  it('survives its connections being killed (idle, or checked out by a background rollup run), reporting it instead of crashing', async () => {
    const storage = postgresStorage({ connectionString: `${testUrl()}?application_name=${schema}`, schema, retention: FOREVER })
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false, retry: { initialDelayMs: 10, maxDelayMs: 50 } })
    const errors: string[] = []
    monitor.on('error', (e) => errors.push(e.message))
    monitor.record({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 })
    await monitor.flush()
    const killed = await query<{ n: number }>(`SELECT COUNT(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = '${schema}'`)
    expect(killed[0]!.n).toBeGreaterThan(0)
    await vi.waitFor(() => expect(errors.join('\n')).toMatch(/PostgreSQL connection failed while (idle|in use)/))
    monitor.record({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 })
    await monitor.flush()
    expect(monitor.health()).toMatchObject({ written: 2, dropped: 0 })
    await monitor.close()
  })

  it('a connection killed while checked out (between two statements) is reported, not an uncaught exception', async () => {
    const pool = new pg.Pool({ connectionString: `${testUrl()}?application_name=${schema}_out`, max: 2 })
    const storage = postgresStorage({ pool, schema, retention: FOREVER })
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false, retry: { initialDelayMs: 10, maxDelayMs: 50 } })
    const errors: string[] = []
    monitor.on('error', (e) => errors.push(e.message))
    monitor.record({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 })
    await monitor.flush()
    // Hold a connection the way a transaction does between two statements: checked out, no query running.
    const held = await pool.connect()
    await held.query('SELECT 1')
    const killed = await query<{ n: number }>(`SELECT COUNT(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = '${schema}_out'`)
    expect(killed[0]!.n).toBeGreaterThan(0)
    await vi.waitFor(() => expect(errors.join('\n')).toMatch(/PostgreSQL connection failed while in use/))
    held.release(true)
    monitor.record({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 })
    await monitor.flush()
    expect(monitor.health()).toMatchObject({ written: 2, dropped: 0 })
    await monitor.close()
    await pool.end()
  })

  it('rejects bad options with package-prefixed errors', () => {
    expect(() => postgresStorage({})).toThrow('@apimeter/storage-postgres: options must be exactly one of connectionString or pool, got an empty object')
    expect(() => postgresStorage({ connectionString: 'mysql://x' })).toThrow('@apimeter/storage-postgres: options.connectionString must be a postgres:// connection URL, got "mysql://x"')
    expect(() => postgresStorage({ connectionString: testUrl(), schema: 'bad-name' })).toThrow(/options\.schema must be a schema name/)
    expect(() => postgresStorage({ connectionString: testUrl(), maxConnections: 0 })).toThrow(/options\.maxConnections must be a whole number from 1 to 100, got 0/)
    expect(() => postgresStorage({ connectionString: testUrl(), retention: { raw: '1y', hour: '30d' } })).toThrow(/options\.retention\.hour must be at least as long as raw/)
  })
})
