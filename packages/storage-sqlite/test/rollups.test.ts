import Database from 'better-sqlite3'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type CallRecord, createMonitor, createStats, memoryStorage, type StatsFilter } from '@apimeter/core'
import { storedPercentiles } from '@apimeter/core/sql'
import { recordFactory, seededRandom } from '@apimeter/core/testing'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { runCli } from '../../core/src/cli/main.js'
import { tempDir } from './helpers.js'
import { expectStoredPercentiles } from '../../../test/support/stored-percentiles.js'

const HOUR = 3_600_000
const DAY = 86_400_000
const NOW = Date.UTC(2026, 5, 15, 12) // 2026-06-15T12:00Z
const FOREVER = { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' }

/** Calls spread over `days` days before NOW, several APIs, tenants and users. */
function workload(days: number, perDay: number, seed = 1): CallRecord[] {
  const random = seededRandom(seed)
  const make = recordFactory({ service: 'shop' })
  const out: CallRecord[] = []
  for (let i = 0; i < days * perDay; i++) {
    const api = ['openai', 'finnhub', null][i % 3] ?? null
    out.push(
      make({
        direction: api ? 'outbound' : 'inbound',
        api,
        method: i % 4 === 0 ? 'POST' : 'GET',
        route: ['/a', '/b/:id'][i % 2]!,
        statusCode: i % 17 === 0 ? 503 : 200,
        durationMs: Math.round(1 + random() * 3000),
        cost: api ? 0.000123 : undefined,
        tenantId: ['acme', 'globex', null][i % 3 === 1 ? 2 : i % 2] ?? null,
        userId: `u${i % 5}`,
        timestamp: NOW - Math.floor(random() * days * DAY),
      }),
    )
  }
  return out
}

async function rows(storage: ReturnType<typeof sqliteStorage>, query: string): Promise<Record<string, unknown>[]> {
  return (await sql.raw<Record<string, unknown>>(query).execute(storage.db)).rows
}

/** `calls` written to a SQLite storage on `file` and rolled up, and to an in-memory storage (the truth). */
async function rolledUp(file: string, calls: CallRecord[]) {
  const storage = sqliteStorage({ filename: file, retention: FOREVER, now: () => NOW })
  const reference = memoryStorage({ maxCalls: Infinity })
  await reference.writeCalls(calls)
  await storage.writeCalls(calls)
  await storage.maintain()
  return { storage, reference }
}

/**
 * A database whose calls were rolled up before a rollup table existed: three days of calls written and rolled up,
 * migrated back to `before` and forward again (the table is empty, its horizon the hour after the newest call), then
 * a day of calls after the horizon rolled up into the table too. Returns the storage and the stats of it and of the
 * same calls in memory.
 */
async function rolledUpBefore(file: string, before: string, horizonRow: string, table: string) {
  const calls = workload(3, 400)
  const { storage, reference } = await rolledUp(file, calls)
  expect((await storage.migrate(before)).error).toBeUndefined()
  expect((await storage.migrate('latest')).error).toBeUndefined()
  const newest = Math.max(...calls.map((c) => c.timestamp))
  const [horizon] = await rows(storage, `SELECT value FROM apimeter_rollup_state WHERE name = '${horizonRow}'`)
  expect(Number(horizon!.value)).toBe(newest - (newest % HOUR) + HOUR)
  expect(await rows(storage, `SELECT * FROM ${table}`)).toEqual([])
  const later = workload(1, 300, 7).map((c) => ({ ...c, timestamp: c.timestamp + DAY + 2 * HOUR }))
  await reference.writeCalls(later)
  await storage.writeCalls(later)
  await storage.maintain()
  const [filled] = await rows(storage, `SELECT COUNT(*) AS n FROM ${table}`)
  expect(Number(filled!.n)).toBeGreaterThan(0)
  return { storage, stats: createStats(storage, { clock: { now: () => NOW } }), truth: createStats(reference, { clock: { now: () => NOW } }) }
}

/**
 * Windows whose edges fall off the 5-minute grid before a horizon `rolledUpBefore` left, across it, and after it; the
 * last one narrowed by `last` (a filter).
 */
const acrossTheHorizon = (last: StatsFilter): StatsFilter[] => [
  { from: NOW - 2 * DAY - 7 * 60_000 - 13_000, to: NOW - 5 * HOUR + 11 * 60_000 + 1 },
  { from: NOW - 20 * HOUR + 3 * 60_000, to: NOW + 20 * HOUR + 27 * 60_000 + 5 },
  { from: NOW + 3 * HOUR + 17 * 60_000, to: NOW + 14 * HOUR + 2 * 60_000, ...last },
]

describe('rollups and retention on SQLite', () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir('apimeter-rollups-')
  })
  afterEach(() => tmp.remove())

  it('are maintained in the background of writes and answer exactly like a raw scan', async () => {
    const storage = sqliteStorage({ filename: tmp.file(), retention: FOREVER, schedule: { rollupEveryCalls: 500 } })
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false, batchSize: 250 })
    const calls = workload(10, 300)
    const reference = memoryStorage({ maxCalls: Infinity })
    await reference.writeCalls(calls)
    for (const c of calls) {
      monitor.record({
        direction: c.direction, api: c.api, method: c.method, route: c.route, statusCode: c.statusCode, durationMs: c.durationMs,
        cost: c.costNanos === null ? null : c.costNanos / 1e9, tenantId: c.tenantId, userId: c.userId, timestamp: c.timestamp, service: c.service,
      })
    }
    await monitor.flush()
    // rolled up in the background of the writes, without anyone asking
    await vi.waitFor(async () => {
      const [state] = await rows(storage, `SELECT value FROM apimeter_rollup_state WHERE name = 'cursor'`)
      expect(Number(state!.value)).toBeGreaterThanOrEqual(2500)
    })
    const clock = { now: () => NOW }
    const a = createStats(storage, { clock })
    const b = createStats(reference, { clock })
    const queries: StatsFilter[] = [{}, { from: '-3d' }, { api: 'openai', from: '-7d', to: '-1d' }, { tenantId: 'acme' }, { userId: 'u1', from: '-2d' }]
    for (const q of queries) expect(await a.summary(q)).toEqual(await b.summary(q))
    expect(await a.breakdown({ by: 'route', orderBy: 'p95' })).toEqual(await b.breakdown({ by: 'route', orderBy: 'p95' }))
    expect(await a.timeseries({ interval: 'day', from: '-10d', groupBy: 'tenant' })).toEqual(await b.timeseries({ interval: 'day', from: '-10d', groupBy: 'tenant' }))
    await monitor.close()
  })

  it('wait for more calls before the next run while writes land all over history, answering exactly meanwhile, and go back to the schedule after', async () => {
    // on its worker thread, where a write returns once the rollup run it made due has committed
    const storage = sqliteStorage({ filename: tmp.file(), retention: FOREVER, schedule: { rollupEveryCalls: 1000, rollupIntervalMs: Number.MAX_SAFE_INTEGER } })
    const reference = memoryStorage({ maxCalls: Infinity })
    const cursor = async () => Number((await rows(storage, `SELECT value FROM apimeter_rollup_state WHERE name = 'cursor'`))[0]?.value ?? 0)
    let seed = 0
    /** Writes each step's calls (`days` × `perDay`, over the last `days` days) and expects the cursor after it. */
    const writes = async (steps: (readonly [readonly [number, number], number])[]): Promise<void> => {
      for (const [[days, perDay], expected] of steps) {
        const calls = workload(days, perDay, ++seed)
        await reference.writeCalls(calls)
        await storage.writeCalls(calls)
        expect(await cursor()).toBe(expected)
      }
    }
    const LIVE = [1, 1000] as const // a day at most
    const SPREAD = [30, 40] as const // 1,200 calls over 30 days: ~700 distinct hours
    // live traffic: a run every 1,000 calls; then spread calls: a run, and the next waits for 4 × 1,000 calls
    await writes([[LIVE, 1000], [LIVE, 2000], [SPREAD, 3200], [SPREAD, 3200], [SPREAD, 3200], [SPREAD, 3200]])
    // 3,600 calls above the cursor: the tail (from memory or raw) keeps every answer exact
    const clock = { now: () => NOW }
    const a = createStats(storage, { clock })
    const b = createStats(reference, { clock })
    for (const q of [{}, { from: '-3d' }, { api: 'openai', from: '-7d', to: '-1d' }, { tenantId: 'acme' }] satisfies StatsFilter[]) expect(await a.summary(q)).toEqual(await b.summary(q))
    expect(await a.timeseries({ interval: 'hour', from: '-2d', groupBy: 'route' })).toEqual(await b.timeseries({ interval: 'hour', from: '-2d', groupBy: 'route' }))
    // the spaced run; live again: the run after it still waits (it cannot know), and falls in a day: back to 1,000
    await writes([[SPREAD, 8000], [LIVE, 8000], [LIVE, 8000], [LIVE, 8000], [LIVE, 12_000], [LIVE, 13_000]])
    expect(await a.summary({})).toEqual(await b.summary({}))
    await storage.close()
  })

  it('count late and out-of-order calls in buckets already rolled up', async () => {
    const storage = sqliteStorage({ filename: tmp.file(), retention: FOREVER })
    const make = recordFactory()
    const base = { direction: 'outbound', api: 'x', method: 'GET', route: '/r', statusCode: 200 } as const
    await storage.writeCalls([make({ ...base, durationMs: 10, timestamp: NOW - 2 * DAY }), make({ ...base, durationMs: 20, timestamp: NOW - HOUR })])
    await storage.maintain()
    // late: into a day and an hour already rolled up
    await storage.writeCalls([make({ ...base, durationMs: 30, timestamp: NOW - 2 * DAY + 5 }), make({ ...base, durationMs: 40, timestamp: NOW - 40 * DAY })])
    const stats = createStats(storage, { clock: { now: () => NOW } })
    const check = async () => {
      const s = await stats.summary({ from: '-3d' })
      expect(s.requests).toBe(3)
      expect(s.latency).toMatchObject({ min: 10, max: 30, avg: 20 })
      expect((await stats.summary()).requests).toBe(4)
      const daily = await stats.timeseries({ interval: 'day', from: new Date(NOW - 3 * DAY), fill: false })
      expect(daily.map((p) => p.requests)).toEqual([2, 1])
    }
    await check() // tail: late calls not rolled up yet
    const before = await rows(storage, `SELECT SUM(requests) AS n FROM apimeter_rollups_month WHERE level = 0`)
    expect(Number(before[0]!.n)).toBe(2)
    await storage.maintain()
    const after = await rows(storage, `SELECT SUM(requests) AS n FROM apimeter_rollups_month WHERE level = 0`)
    expect(Number(after[0]!.n)).toBe(4)
    await check() // from rollups
    await storage.close()
  })

  it('retention deletes expired raw calls and rollups, and old ranges still answer from rollups with their resolution', async () => {
    let now = NOW
    const storage = sqliteStorage({ filename: tmp.file(), retention: { raw: '30d', hour: '60d', day: '2y' }, now: () => now })
    const calls = workload(100, 200, 7)
    for (let i = 0; i < calls.length; i += 2000) await storage.writeCalls(calls.slice(i, i + 2000))
    const everything = memoryStorage({ maxCalls: Infinity })
    await everything.writeCalls(calls)
    await storage.maintain()
    const rawLeft = await rows(storage, `SELECT COUNT(*) AS n, MIN(ts) AS oldest FROM apimeter_calls`)
    const rawCut = Math.floor((NOW - 30 * DAY) / HOUR) * HOUR
    expect(Number(rawLeft[0]!.oldest)).toBeGreaterThanOrEqual(rawCut)
    expect(Number(rawLeft[0]!.n)).toBeLessThan(calls.length * 0.35)
    const hourLeft = await rows(storage, `SELECT MIN(bucket_start) AS oldest FROM apimeter_rollups_hour`)
    expect(Number(hourLeft[0]!.oldest)).toBeGreaterThanOrEqual(Math.floor((NOW - 60 * DAY) / DAY) * DAY)
    const routeHourLeft = await rows(storage, `SELECT MIN(bucket_start) AS oldest FROM apimeter_rollups_route_hour`)
    expect(Number(routeHourLeft[0]!.oldest)).toBe(Number(hourLeft[0]!.oldest))
    // the 5-minute rows (level 0, and by route) go with the raw calls
    const fineLeft = await rows(storage, `SELECT COUNT(*) AS n, MIN(bucket_start) AS oldest FROM apimeter_rollups_5m`)
    expect(Number(fineLeft[0]!.n)).toBeGreaterThan(0)
    expect(Number(fineLeft[0]!.oldest)).toBeGreaterThanOrEqual(rawCut)
    const route5mLeft = await rows(storage, `SELECT COUNT(*) AS n, MIN(bucket_start) AS oldest FROM apimeter_rollups_route_5m`)
    expect(Number(route5mLeft[0]!.n)).toBeGreaterThan(0)
    expect(Number(route5mLeft[0]!.oldest)).toBeGreaterThanOrEqual(rawCut)

    const clock = { now: () => NOW }
    const stats = createStats(storage, { clock })
    const reference = createStats(everything, { clock })
    // whole range and aligned ranges: exact, from rollups
    expect(await stats.summary()).toEqual(await reference.summary())
    const aligned = { from: new Date(Date.UTC(2026, 2, 10)), to: new Date(Date.UTC(2026, 4, 1)) }
    expect(await stats.summary(aligned)).toEqual(await reference.summary(aligned))
    expect(await stats.breakdown({ by: 'tenant', orderBy: 'cost' })).toEqual(await reference.breakdown({ by: 'tenant', orderBy: 'cost' }))
    // an unaligned edge where raw calls expired: widened to its hour, and said so
    const unaligned = await stats.summary({ from: new Date(NOW - 45 * DAY + 30 * 60_000), to: new Date(NOW - DAY) })
    expect(unaligned.resolution).toBe('hour')
    expect(unaligned.requests).toBe((await reference.summary({ from: new Date(NOW - 45 * DAY), to: new Date(NOW - DAY) })).requests)
    // where hour rollups expired too: widened to the day
    expect((await stats.summary({ from: new Date(NOW - 80 * DAY + 90 * 60_000) })).resolution).toBe('day')
    // an hourly timeseries over a range with only days left: whole days, marked
    const ts = await stats.timeseries({ interval: 'hour', from: new Date(Date.UTC(2026, 2, 20)), to: new Date(Date.UTC(2026, 2, 22)) })
    expect(ts.map((p) => [p.start.toISOString(), p.resolution])).toEqual([
      ['2026-03-20T00:00:00.000Z', 'day'],
      ['2026-03-21T00:00:00.000Z', 'day'],
    ])
    // users are in no rollup: over expired raw calls the answer is partial
    expect((await stats.summary({ userId: 'u1' })).resolution).toBe('partial')
    expect((await stats.summary({ userId: 'u1', from: '-7d' })).resolution).toBe('raw')
    await storage.close()
    now = NOW
  })

  it('applies retention in small batches after writes, without failing them', async () => {
    const storage = sqliteStorage({ filename: tmp.file(), retention: { raw: '1d' }, now: () => NOW, schedule: { retentionIntervalMs: 0, rollupEveryCalls: 1 } })
    const make = recordFactory()
    const old = Array.from({ length: 45_000 }, (_, i) => make({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1, timestamp: NOW - 10 * DAY - i }))
    await storage.writeCalls(old) // rolled up; the first retention pass may delete up to 20,000 of them
    await storage.writeCalls([make({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1, timestamp: NOW })])
    const [left] = await rows(storage, 'SELECT COUNT(*) AS n FROM apimeter_calls')
    expect(Number(left!.n)).toBeGreaterThan(1) // not everything in one go
    expect(Number(left!.n)).toBeLessThan(45_001)
    await storage.maintain()
    const [after] = await rows(storage, 'SELECT COUNT(*) AS n FROM apimeter_calls')
    expect(Number(after!.n)).toBe(1)
    expect((await createStats(storage, { clock: { now: () => NOW } }).summary()).requests).toBe(45_001)
    await storage.close()
  })

  it('rebuildRollups() recomputes damaged rollups from raw calls, and refuses where raw calls expired', async () => {
    const file = tmp.file()
    const storage = sqliteStorage({ filename: file, retention: { raw: '30d' }, now: () => NOW })
    await storage.writeCalls(workload(50, 100, 3))
    await storage.maintain()
    const stats = createStats(storage, { clock: { now: () => NOW } })
    const before = await stats.summary({ from: '-20d' })
    await sql`UPDATE apimeter_rollups_day SET requests = requests + 1000`.execute(storage.db)
    await sql`DELETE FROM apimeter_rollups_hour WHERE level = 1`.execute(storage.db)
    expect((await stats.summary({ from: '-20d' })).requests).not.toBe(before.requests)
    // a rebuild covering the damaged rows: hours from raw calls, the days and months they touch from those hours
    const rebuilt = await storage.rebuildRollups({ from: new Date(NOW - 20 * DAY - 30 * 60_000), to: new Date(NOW + 90 * 60_000) })
    expect(rebuilt.from.toISOString()).toBe('2026-05-26T11:00:00.000Z')
    expect(rebuilt.to.toISOString()).toBe('2026-06-15T14:00:00.000Z')
    expect(await stats.summary({ from: '-20d' })).toEqual(before)
    expect((await stats.breakdown({ by: 'route', from: '-20d' })).reduce((n, r) => n + r.requests, 0)).toBe(before.requests)
    await expect(storage.rebuildRollups({ from: new Date(NOW - 45 * DAY), to: new Date(NOW) })).rejects.toThrow(/retention deleted raw calls before/)
    await storage.close()

    let out = ''
    let err = ''
    const io = { out: (t: string) => (out += t), err: (t: string) => (err += t) }
    expect(await runCli(['rollups', 'rebuild', '--db', file, '--from', '2026-06-01', '--to', '2026-06-10'], io)).toBe(0)
    expect(out).toMatch(/rebuilt the rollups of 2026-06-01T00:00:00.000Z … 2026-06-10T00:00:00.000Z from \d+ calls/)
    expect(await runCli(['rollups', 'rebuild', '--db', file, '--from', '2026-01-01', '--to', '2026-06-10'], io)).toBe(1)
    expect(err).toMatch(/retention deleted raw calls/)
    expect(await runCli(['rollups', 'rebuild', '--db', file, '--from', '2026-06-01'], io)).toBe(2)
    expect(await runCli(['rollups', 'rebuild', '--db', file, '--from', 'yesterday', '--to', 'now'], io)).toBe(2)
    expect(await runCli(['rollups', '--help'], io)).toBe(0)
  })

  it('reads sub-hour edges raw where calls were rolled up before the 5-minute level existed (migration 0005), exactly', async () => {
    const { storage, stats, truth } = await rolledUpBefore(tmp.file(), '0004_cost_estimated', 'fine_horizon', 'apimeter_rollups_5m')
    for (const window of acrossTheHorizon({ api: 'openai' })) {
      expect(await stats.summary(window)).toEqual(await truth.summary(window))
      expect(await stats.timeseries({ ...window, interval: 'hour', groupBy: 'route' })).toEqual(await truth.timeseries({ ...window, interval: 'hour', groupBy: 'route' }))
      expect(await stats.breakdown({ ...window, by: 'tenant', orderBy: 'cost', limit: 2 })).toEqual(await truth.breakdown({ ...window, by: 'tenant', orderBy: 'cost', limit: 2 }))
    }
    await storage.close()
  })

  it('reads an hourly series by route as one packed row whatever the routes hold (separators, quotes, JSON, non-ASCII)', async () => {
    const storage = sqliteStorage({ filename: tmp.file(), retention: FOREVER, now: () => NOW })
    const reference = memoryStorage({ maxCalls: Infinity })
    const odd = ['/a;b,c', '/"quoted"\\', '/ünï/😀', '/tab\there', '/[1,2]', "/it's"]
    const calls = workload(2, 300, 3).map((c, i) => ({ ...c, route: odd[i % odd.length]! }))
    await reference.writeCalls(calls)
    await storage.writeCalls(calls)
    await storage.maintain()
    const stats = createStats(storage, { clock: { now: () => NOW } })
    const truth = createStats(reference, { clock: { now: () => NOW } })
    for (const window of [{ from: '-2d' }, { from: NOW - DAY - 17 * 60_000, to: NOW - 3 * HOUR + 1 }] as StatsFilter[]) {
      const series = await stats.timeseries({ ...window, interval: 'hour', groupBy: 'route' })
      expect(new Set(series.map((p) => p.group))).toEqual(new Set(odd))
      expect(series).toEqual(await truth.timeseries({ ...window, interval: 'hour', groupBy: 'route' }))
    }
    await storage.close()
  })

  it('reads an hourly series by route over more than 50,000 stored route-by-hour rows row by row, exactly as the packed read would', async () => {
    // one call per (route, hour): 300 routes over 7 days are 50,400 stored rows, past the packed read's bound
    const storage = sqliteStorage({ filename: tmp.file(), retention: FOREVER, now: () => NOW })
    const reference = memoryStorage({ maxCalls: Infinity })
    const make = recordFactory({ service: 'shop' })
    const calls: CallRecord[] = []
    for (let hour = 1; hour <= 7 * 24; hour++) {
      for (let r = 0; r < 300; r++) {
        calls.push(make({ direction: 'inbound', method: 'GET', route: `/r${r}`, statusCode: r % 13 === 0 ? 500 : 200, durationMs: 1 + ((hour * 7 + r) % 900), timestamp: NOW - hour * HOUR + (r % 60) * 1000 }))
      }
    }
    await reference.writeCalls(calls)
    await storage.writeCalls(calls)
    await storage.maintain()
    const [stored] = await rows(storage, `SELECT COUNT(*) AS n FROM apimeter_rollups_route_hour WHERE bucket_start >= ${NOW - 7 * DAY}`)
    expect(Number(stored!.n)).toBeGreaterThan(50_000)
    const stats = createStats(storage, { clock: { now: () => NOW } })
    const truth = createStats(reference, { clock: { now: () => NOW } })
    const series = await stats.timeseries({ from: '-7d', interval: 'hour', groupBy: 'route' })
    expect(series).toHaveLength(50_400)
    expect(series).toEqual(await truth.timeseries({ from: '-7d', interval: 'hour', groupBy: 'route' }))
    await storage.close()
  }, 60_000)

  it('keeps one route-by-hour row per (hour, route) with its outcomes as columns, and answers hourly route series from it exactly', async () => {
    const calls = workload(3, 400, 5)
    const { storage, reference } = await rolledUp(tmp.file(), calls)
    const stored = await rows(storage, 'SELECT * FROM apimeter_rollups_route_hour ORDER BY bucket_start, route')
    const hours = new Set(calls.map((c) => `${c.timestamp - (c.timestamp % HOUR)}|${c.route}`))
    expect(stored.map((r) => `${Number(r.bucket_start)}|${String(r.route)}`)).toEqual([...hours].sort((a, b) => (a < b ? -1 : 1)))
    for (const r of stored) {
      const inRow = calls.filter((c) => c.route === r.route && c.timestamp - (c.timestamp % HOUR) === r.bucket_start)
      expect(Number(r.requests)).toBe(inRow.length)
      expect(Number(r.outcome_success)).toBe(inRow.filter((c) => c.outcome === 'success').length)
      expect(Number(r.outcome_server_error)).toBe(inRow.filter((c) => c.outcome === 'server_error').length)
    }
    // late calls merge into the stored rows
    const late = workload(1, 200, 9).map((c) => ({ ...c, timestamp: c.timestamp - DAY }))
    await reference.writeCalls(late)
    await storage.writeCalls(late)
    await storage.maintain()
    const stats = createStats(storage, { clock: { now: () => NOW } })
    const truth = createStats(reference, { clock: { now: () => NOW } })
    const windows: StatsFilter[] = [{ from: '-3d' }, { from: NOW - 2 * DAY - 7 * 60_000 - 13_000, to: NOW - 5 * HOUR + 11 * 60_000 + 1 }, { from: '-2d', route: '/a' }]
    for (const window of windows) {
      expect(await stats.timeseries({ ...window, interval: 'hour', groupBy: 'route' })).toEqual(await truth.timeseries({ ...window, interval: 'hour', groupBy: 'route' }))
      expect(await stats.timeseries({ ...window, interval: 'day', groupBy: 'route' })).toEqual(await truth.timeseries({ ...window, interval: 'day', groupBy: 'route' }))
      expect(await stats.summary(window)).toEqual(await truth.summary(window))
    }
    // rebuilt with the hour rollups
    const merged = await rows(storage, 'SELECT * FROM apimeter_rollups_route_hour ORDER BY bucket_start, route')
    await sql`DELETE FROM apimeter_rollups_route_hour`.execute(storage.db)
    await storage.rebuildRollups({ from: new Date(NOW - 5 * DAY), to: new Date(NOW + DAY) })
    expect(await rows(storage, 'SELECT * FROM apimeter_rollups_route_hour ORDER BY bucket_start, route')).toEqual(merged)
    // the hourly series by route is read from these rows (one more success in each shows in each point)
    await sql`UPDATE apimeter_rollups_route_hour SET requests = requests + 1, outcome_success = outcome_success + 1`.execute(storage.db)
    const hourly = { interval: 'hour', from: '-2d', to: new Date(NOW - DAY), groupBy: 'route' } as const
    const expected = await truth.timeseries(hourly)
    expect((await stats.timeseries(hourly)).map((p) => p.requests)).toEqual(expected.map((p) => p.requests + 1))
    await storage.close()
  })

  it("keeps each route-by-hour row's percentiles beside its sketch, and an hourly series by route reads them in its place only where they stand for the point", async () => {
    const idle = { rollupEveryCalls: Number.MAX_SAFE_INTEGER, rollupIntervalMs: Number.MAX_SAFE_INTEGER }
    const storage = sqliteStorage({ filename: tmp.file(), retention: FOREVER, now: () => NOW, schedule: idle })
    const reference = memoryStorage({ maxCalls: Infinity })
    const calls = workload(2, 400, 11)
    // half of them written and rolled up, the other half merged into the same rows by a second run (in the database)
    for (const part of [calls.slice(0, 400), calls.slice(400)]) {
      await reference.writeCalls(part)
      await storage.writeCalls(part)
      await storage.maintain()
    }
    const stats = createStats(storage, { clock: { now: () => NOW } })
    const truth = createStats(reference, { clock: { now: () => NOW } })
    const stored = await rows(storage, 'SELECT bucket_start, route, requests, duration_min_us, duration_max_us, latency_sketch, latency_percentiles FROM apimeter_rollups_route_hour')
    expect(stored.length).toBeGreaterThan(50)
    await expectStoredPercentiles(stored.slice(0, 12), truth)
    const hourly = { interval: 'hour', from: '-2d', groupBy: 'route' } as const
    expect(await stats.timeseries(hourly)).toEqual(await truth.timeseries(hourly))
    // read in place of the sketch: a value written here shows in its point
    const [row] = await rows(storage, 'SELECT bucket_start, route, requests FROM apimeter_rollups_route_hour ORDER BY bucket_start DESC, route LIMIT 1')
    const at = { start: Number(row!.bucket_start), route: String(row!.route) }
    const planted = Buffer.alloc(40)
    for (const [i, v] of [Number(row!.requests), 1234.5, 2345.5, 3456.5, 4567.5].entries()) planted.writeDoubleLE(v, 8 * i)
    await sql`UPDATE apimeter_rollups_route_hour SET latency_percentiles = ${planted} WHERE bucket_start = ${at.start} AND route = ${at.route}`.execute(storage.db)
    const point = async () => (await stats.timeseries(hourly)).find((p) => p.start.getTime() === at.start && p.group === at.route)!
    const expected = (await truth.timeseries(hourly)).find((p) => p.start.getTime() === at.start && p.group === at.route)!
    expect((await point()).latency).toEqual({ ...expected.latency, p50: 1234.5, p90: 2345.5, p95: 3456.5, p99: 4567.5 })
    // not where the point holds more than the row: a late call of that hour and route, written and not rolled up yet
    const late = workload(1, 1, 3).map((c) => ({ ...c, route: at.route, timestamp: at.start + 1000 }))
    await reference.writeCalls(late)
    await storage.writeCalls(late)
    const withLate = (await truth.timeseries(hourly)).find((p) => p.start.getTime() === at.start && p.group === at.route)!
    expect(await point()).toEqual(withLate)
    expect(await stats.timeseries(hourly)).toEqual(await truth.timeseries(hourly))
    // nor where they were computed for another count (a writer that merged into the sketch and left them as they were)
    await storage.maintain()
    await sql`UPDATE apimeter_rollups_route_hour SET latency_percentiles = ${planted} WHERE bucket_start = ${at.start} AND route = ${at.route}`.execute(storage.db)
    expect(await point()).toEqual(withLate)
    // and a run merging into the row in the database writes them again from the merged sketch
    const later = workload(1, 1, 4).map((c) => ({ ...c, route: at.route, timestamp: at.start + 2000 }))
    await reference.writeCalls(later)
    await storage.writeCalls(later)
    await storage.maintain()
    const [merged] = await rows(storage, `SELECT requests, duration_min_us, duration_max_us, latency_sketch, latency_percentiles FROM apimeter_rollups_route_hour WHERE bucket_start = ${at.start} AND route = '${at.route}'`)
    expect(merged!.latency_percentiles).toEqual(storedPercentiles(merged!.latency_sketch as Uint8Array, Number(merged!.requests), Number(merged!.duration_min_us), Number(merged!.duration_max_us)))
    expect(await stats.timeseries(hourly)).toEqual(await truth.timeseries(hourly))
    await storage.close()
  })

  it('keeps one route-by-5-minutes row per (5 minutes, route) and reads the sub-hour edges of a series by route from it, exactly', async () => {
    const calls = workload(2, 600, 11)
    const { storage, reference } = await rolledUp(tmp.file(), calls)
    const FIVE = 300_000
    const stored = await rows(storage, 'SELECT * FROM apimeter_rollups_route_5m ORDER BY bucket_start, route')
    const buckets = new Set(calls.map((c) => `${c.timestamp - (c.timestamp % FIVE)}|${c.route}`))
    expect(stored.map((r) => `${Number(r.bucket_start)}|${String(r.route)}`)).toEqual([...buckets].sort((a, b) => (a < b ? -1 : 1)))
    for (const r of stored) {
      const inRow = calls.filter((c) => c.route === r.route && c.timestamp - (c.timestamp % FIVE) === r.bucket_start)
      expect(Number(r.requests)).toBe(inRow.length)
      expect(Number(r.outcome_server_error)).toBe(inRow.filter((c) => c.outcome === 'server_error').length)
    }
    const stats = createStats(storage, { clock: { now: () => NOW } })
    const truth = createStats(reference, { clock: { now: () => NOW } })
    // edges on and off the 5-minute grid, of a series by route and of one route
    const windows: StatsFilter[] = [
      { from: NOW - DAY - 17 * 60_000, to: NOW - 3 * HOUR + 22 * 60_000 + 7_000 },
      { from: NOW - 30 * HOUR + 35 * 60_000, to: NOW - 29 * HOUR + 5 * 60_000 },
      { from: NOW - 40 * HOUR - 3 * 60_000, to: NOW - 2 * HOUR, route: '/a' },
    ]
    for (const window of windows) {
      expect(await stats.timeseries({ ...window, interval: 'hour', groupBy: 'route' })).toEqual(await truth.timeseries({ ...window, interval: 'hour', groupBy: 'route' }))
      expect(await stats.timeseries({ ...window, interval: 'hour' })).toEqual(await truth.timeseries({ ...window, interval: 'hour' }))
      expect(await stats.breakdown({ ...window, by: 'route' })).toEqual(await truth.breakdown({ ...window, by: 'route' }))
    }
    // rebuilt with the other rollups
    await sql`DELETE FROM apimeter_rollups_route_5m`.execute(storage.db)
    await storage.rebuildRollups({ from: new Date(NOW - 3 * DAY), to: new Date(NOW + DAY) })
    expect(await rows(storage, 'SELECT * FROM apimeter_rollups_route_5m ORDER BY bucket_start, route')).toEqual(stored)
    // the first point's 15 minutes on the 5-minute grid are read from these rows: one more call in each row shows there
    await sql`UPDATE apimeter_rollups_route_5m SET requests = requests + 1, outcome_success = outcome_success + 1`.execute(storage.db)
    const edge = { interval: 'hour', from: NOW - DAY - 15 * 60_000, to: NOW - DAY + HOUR, groupBy: 'route' } as const
    const expected = await truth.timeseries(edge)
    const inEdge = (route: string): number => stored.filter((r) => r.route === route && Number(r.bucket_start) >= edge.from && Number(r.bucket_start) < NOW - DAY).length
    expect((await stats.timeseries(edge)).map((p) => p.requests)).toEqual(expected.map((p) => (p.start.getTime() < NOW - DAY ? p.requests + inEdge(p.group!) : p.requests)))
    expect(inEdge('/a') + inEdge('/b/:id')).toBeGreaterThan(0)
    await storage.close()
  })

  it('reads sub-hour edges by route raw where calls were rolled up before the route-by-5-minutes table existed (migration 0011), exactly', async () => {
    const { storage, stats, truth } = await rolledUpBefore(tmp.file(), '0010_raw_deletions', 'route_5m_horizon', 'apimeter_rollups_route_5m')
    for (const window of acrossTheHorizon({ route: '/b/:id' })) {
      expect(await stats.timeseries({ ...window, interval: 'hour', groupBy: 'route' })).toEqual(await truth.timeseries({ ...window, interval: 'hour', groupBy: 'route' }))
      expect(await stats.breakdown({ ...window, by: 'route' })).toEqual(await truth.breakdown({ ...window, by: 'route' }))
    }
    await storage.close()
  })

  it('counts a sub-hour edge before reading it with its latency buckets listed, never a whole range no rollup level keeps, and answers both exactly', async () => {
    const database = new Database(tmp.file())
    const statements: string[] = []
    const prepare = database.prepare.bind(database)
    database.prepare = ((source: string) => {
      statements.push(source)
      return prepare(source)
    })
    const storage = sqliteStorage({ database, retention: FOREVER, now: () => NOW })
    const reference = memoryStorage({ maxCalls: Infinity })
    // and, inside the edge, calls of 0 ms and under a millisecond: their latency buckets are negative in the list
    const make = recordFactory({ service: 'shop' })
    const quick = Array.from({ length: 40 }, (_, i) =>
      make({ direction: 'inbound', method: 'GET', route: '/a', statusCode: 200, durationMs: i % 2 === 0 ? 0 : 0.3, timestamp: NOW - 2 * DAY - 10 * 60_000 + i * 1000 }),
    )
    const calls = [...workload(3, 400, 7), ...quick]
    await reference.writeCalls(calls)
    await storage.writeCalls(calls)
    await storage.maintain()
    const stats = createStats(storage, { clock: { now: () => NOW } })
    const truth = createStats(reference, { clock: { now: () => NOW } })
    // the edge's count, over raw calls (the packed route-by-hour read counts its own table up to the same bound)
    const counts = (): string[] => statements.filter((text) => text.includes('LIMIT 50001') && text.includes('"apimeter_calls"'))
    // 17 minutes before an hour: an edge, whose first 2 minutes (up to the 5-minute grid) are read raw; the rest comes
    // from the route-by-5-minutes rows
    const window = { from: NOW - 2 * DAY - 17 * 60_000, to: NOW - HOUR, interval: 'hour', groupBy: 'route' } as const
    statements.length = 0
    expect(await stats.timeseries(window)).toEqual(await truth.timeseries(window))
    expect(counts()).toHaveLength(1)
    expect(statements.some((text) => text.includes('group_concat(latency_bucket'))).toBe(true)
    // by user: no rollup level keeps it, so the whole range is read raw, grouped by latency bucket, without the count
    statements.length = 0
    expect(await stats.breakdown({ from: '-3d', by: 'user' })).toEqual(await truth.breakdown({ from: '-3d', by: 'user' }))
    expect(statements.length).toBeGreaterThan(0)
    expect(counts()).toEqual([])
    await storage.close()
    database.close()
  })

  it('reads hours by route from the route level where calls were rolled up before the route-by-hour table existed (migration 0009), exactly', async () => {
    const { storage, stats, truth } = await rolledUpBefore(tmp.file(), '0008_plugins_audit_system', 'route_hour_horizon', 'apimeter_rollups_route_hour')
    // before the horizon, across it, after it
    const windows: StatsFilter[] = [
      { from: NOW - 2 * DAY - 7 * 60_000, to: NOW - 5 * HOUR + 11 * 60_000 },
      { from: NOW - 20 * HOUR + 3 * 60_000, to: NOW + 20 * HOUR + 27 * 60_000 },
      { from: NOW + 3 * HOUR + 17 * 60_000, to: NOW + 14 * HOUR + 2 * 60_000, route: '/b/:id' },
    ]
    for (const window of windows) {
      expect(await stats.timeseries({ ...window, interval: 'hour', groupBy: 'route' })).toEqual(await truth.timeseries({ ...window, interval: 'hour', groupBy: 'route' }))
      expect(await stats.summary(window)).toEqual(await truth.summary(window))
      expect(await stats.breakdown({ ...window, by: 'route', orderBy: 'requests', limit: 1 })).toEqual(await truth.breakdown({ ...window, by: 'route', orderBy: 'requests', limit: 1 }))
    }
    await storage.close()
  })

  it('a failing rollup run is reported through the monitor and never fails the write', async () => {
    const storage = sqliteStorage({ filename: tmp.file(), retention: FOREVER, schedule: { rollupEveryCalls: 1 } })
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false })
    const errors: string[] = []
    monitor.on('error', (e) => errors.push(e.message))
    await storage.init!()
    await sql`DROP TABLE apimeter_rollups_day`.execute(storage.db)
    monitor.record({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 })
    await monitor.flush()
    expect(monitor.health()).toMatchObject({ written: 1, dropped: 0, failedWrites: 0 })
    await new Promise((r) => setImmediate(r))
    expect(errors.join('\n')).toMatch(/maintenance failed .*no such table: apimeter_rollups_day/)
    const raw = new Database(storage.name === 'sqlite' ? (tmp.file()) : '', { readonly: true })
    expect(raw.prepare('SELECT COUNT(*) AS n FROM apimeter_calls').get()).toEqual({ n: 1 })
    raw.close()
    await monitor.close()
  })
})
