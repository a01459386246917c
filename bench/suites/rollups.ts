import { mkdtempSync, rmSync, statSync } from 'node:fs'
import Database from 'better-sqlite3'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type CallInput, createMonitor, createStats, type SqlStorage, type Stats, type StatsFilter } from '@apimeter/core'
import { aggregateCalls } from '@apimeter/core/sql'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { type Figure, ingestRate, median, type SuiteResult, timeMedian, yieldToLoop } from '../lib.js'

const TOTAL = Number(process.env.APIMETER_BENCH_CALLS ?? 10_000_000)
const DAYS = 30
const INGEST_SAMPLE = 300_000
/** Calls written just before each query of the after-a-burst rows. */
export const BURST = 50_000
/**
 * Untimed runs of each steady-state query before its timed runs: the first queries after the 10M-call ingest read up
 * to twice as slow for several runs while its after-effects settle (the runs' times are in the notes).
 */
export const WARMUP = 3
const DAY = 86_400_000

const apis = ['openai', 'anthropic', 'finnhub', 'stripe', 'twilio'] as const
const routes = Array.from({ length: 20 }, (_, i) => `/v1/resource${i % 10}/${i < 10 ? ':id' : 'list'}`)
const statuses = [200, 200, 200, 200, 200, 200, 200, 201, 404, 429, 500, 503]

/**
 * A deterministic, realistic call: i-th of n spread evenly over `days` days ending at `end` (a backfill of history
 * when days is large; live traffic when it is a fraction of an hour).
 */
export function call(i: number, n: number, end: number, days = DAYS): CallInput {
  const api = apis[i % apis.length]!
  const status = statuses[(i * 7) % statuses.length]!
  return {
    direction: i % 4 === 0 ? 'inbound' : 'outbound',
    api: i % 4 === 0 ? null : api,
    method: i % 3 === 0 ? 'POST' : 'GET',
    route: routes[(i * 13) % routes.length]!,
    statusCode: status,
    durationMs: 2 + ((i * 7919) % 50_000) / 25,
    cost: i % 4 === 0 ? undefined : ((i % 97) + 1) / 1e6,
    inputTokens: api === 'openai' ? 200 + (i % 1000) : undefined,
    outputTokens: api === 'openai' ? 20 + (i % 300) : undefined,
    tenantId: `tenant-${(i * 31) % 50}`,
    responseBytes: 100 + (i % 4000),
    timestamp: end - days * DAY + Math.floor((i / n) * days * DAY),
  }
}

/**
 * Queries right after a burst of writes: `rounds` times, `burst` live calls (stamped in the last minutes before
 * `end`) are recorded and flushed, and each query runs once at once — before background rollups have caught up, so it
 * waits for a run in progress or reads the not-yet-rolled tail. Medians over the rounds, in ms.
 */
export async function queriesAfterBurst(storage: SqlStorage, stats: Stats, end: number, burst: number, rounds: number): Promise<{ summary: number; timeseries: number; top: number; rounds: { summary: number[]; timeseries: number[]; top: number[] } }> {
  const times = { summary: [] as number[], timeseries: [] as number[], top: [] as number[] }
  const monitor = createMonitor({ storage, logger: false, flushOnExit: false, batchSize: 5000, maxBufferSize: 1_000_000 })
  const queries = {
    summary: () => stats.summary({ from: '-30d' }),
    timeseries: () => stats.timeseries({ interval: 'hour', from: '-7d', groupBy: 'route' }),
    top: () => stats.breakdown({ by: 'tenant', orderBy: 'cost', limit: 10, from: '-30d' }),
  }
  for (let r = 0; r < rounds; r++) {
    for (const name of ['summary', 'timeseries', 'top'] as const) {
      for (let i = 0; i < burst; i++) {
        // live traffic: the last 10 minutes before `end`
        monitor.record({ ...call(i, burst, end - 60_000, 10 / (24 * 60)), tenantId: `tenant-${(i * 31 + r) % 50}` })
        if (i % 10_000 === 9_999) await yieldToLoop()
      }
      await monitor.flush()
      const t = performance.now()
      await queries[name]()
      times[name].push(performance.now() - t)
    }
  }
  return { summary: median(times.summary), timeseries: median(times.timeseries), top: median(times.top), rounds: times }
}

/** Times of each round, in the order they ran, in whole ms. */
const perRound = (times: readonly number[]): string => times.map((t) => Math.round(t)).join(', ')

/** The timeseries, top-10 and after-a-burst rows both database suites report, each beside its reference. */
export function queryFigures(m: {
  hourly: { ms: number; points: number; times: readonly number[] }
  hourlyRaw: number
  tenants: number
  tenantsRaw: number
  burst: { summary: number; timeseries: number; top: number; rounds: { summary: number[]; timeseries: number[]; top: number[] } }
  afterBurstCalls: number
}): Figure[] {
  return [
    { name: 'hourly timeseries, 7 days, grouped by route, via rollups', value: m.hourly.ms, unit: 'ms', target: '≤ 50 ms', met: m.hourly.ms <= 50, note: `${m.hourly.points} points; median of ${m.hourly.times.length} runs: ${perRound(m.hourly.times)}` },
    { name: 'same timeseries, raw scan', value: m.hourlyRaw, unit: 'ms' },
    { name: 'top 10 tenants by cost over 30 days, via rollups', value: m.tenants, unit: 'ms', target: '≤ 50 ms', met: m.tenants <= 50 },
    { name: 'same top 10, raw scan (every tenant aggregated, then ranked)', value: m.tenantsRaw, unit: 'ms', note: 'same tenants in the same order' },
    { name: `summary over 30 days right after a burst of ${BURST.toLocaleString('en-US')} calls`, value: m.burst.summary, unit: 'ms', target: '≤ 20 ms', met: m.burst.summary <= 20, note: `first query after flush(), median of ${m.burst.rounds.summary.length} bursts; per burst: ${perRound(m.burst.rounds.summary)}` },
    { name: 'hourly timeseries by route right after a burst', value: m.burst.timeseries, unit: 'ms', target: '≤ 50 ms', met: m.burst.timeseries <= 50, note: `per burst: ${perRound(m.burst.rounds.timeseries)}` },
    { name: 'top 10 tenants by cost right after a burst', value: m.burst.top, unit: 'ms', target: '≤ 50 ms', met: m.burst.top <= 50, note: `per burst: ${perRound(m.burst.rounds.top)}; then equal to a raw scan: ${m.afterBurstCalls.toLocaleString('en-US')} calls` },
  ]
}

async function ingest(file: string, n: number, end: number, rollups: boolean, days = DAYS): Promise<{ rate: number; storage: ReturnType<typeof sqliteStorage> }> {
  const forever = { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' }
  const storage = sqliteStorage({ filename: file, retention: forever, schedule: rollups ? {} : { rollupEveryCalls: Number.MAX_SAFE_INTEGER, rollupIntervalMs: Number.MAX_SAFE_INTEGER } })
  return { rate: await ingestRate(storage, n, (i) => call(i, n, end, days), 5000), storage }
}

export async function runRollupsSuite(): Promise<SuiteResult> {
  const dir = mkdtempSync(join(tmpdir(), 'apimeter-bench-rollups-'))
  const end = Date.UTC(2026, 10, 20, 13, 17)
  const clock = { now: () => end }
  try {
    // ingest with vs without rollups, side by side on the same sample of live traffic (timestamps within 20 minutes)
    const live = 20 / (24 * 60)
    const withRates: number[] = []
    const withoutRates: number[] = []
    for (let r = 0; r < 3; r++) {
      const a = await ingest(join(dir, `with-${r}.db`), INGEST_SAMPLE, end, true, live)
      await a.storage.close()
      withRates.push(a.rate)
      const b = await ingest(join(dir, `without-${r}.db`), INGEST_SAMPLE, end, false, live)
      await b.storage.close()
      withoutRates.push(b.rate)
    }

    // the big database
    const file = join(dir, 'big.db')
    const bigStarted = performance.now()
    const big = await ingest(file, TOTAL, end, true)
    const backfillRate = (TOTAL / (performance.now() - bigStarted)) * 1000
    await big.storage.maintain()
    const storage = big.storage
    const stats = createStats(storage, { clock })
    const raw = async (filter: StatsFilter) => {
      const rows = await aggregateCalls(storage.db, 'sqlite', { filter: { from: end - 30 * DAY, to: filter.to as number | undefined, api: filter.api ? [filter.api as string] : undefined }, groupBy: [] })
      return rows.reduce((n, r) => n + r.state.requests, 0)
    }
    const summary = await timeMedian(() => stats.summary({ from: '-30d' }), 21, WARMUP)
    const summaryApi = await timeMedian(() => stats.summary({ api: 'openai', from: '-30d' }), 21, WARMUP)
    const hourly = await timeMedian(() => stats.timeseries({ interval: 'hour', from: '-7d', groupBy: 'route' }), 11, WARMUP)
    // what the hourly series is made of, measured beside it: the storage's part as the series asks for it (rows read,
    // grouped with the edges and the tail, each group's percentiles read on the worker thread, handed over), and the
    // stored rows alone
    const hourlyRange = { from: end - 7 * DAY, to: end }
    const hourlyStorage = await timeMedian(() => storage.aggregate({ filter: hourlyRange, groupBy: ['route'], interval: 'hour', summariesOnly: true }), 11, WARMUP)
    const reader = new Database(file, { readonly: true })
    const storedRows = reader.prepare('SELECT * FROM apimeter_rollups_route_hour WHERE bucket_start >= ? AND bucket_start < ?')
    const hourlyRows = await timeMedian(async () => storedRows.all(Math.ceil(hourlyRange.from / 3_600_000) * 3_600_000, Math.floor(end / 3_600_000) * 3_600_000).length, 11, WARMUP)
    reader.close()
    const tenants = await timeMedian(() => stats.breakdown({ by: 'tenant', orderBy: 'cost', limit: 10, from: '-30d' }), 11, WARMUP)
    const rawSummary = await timeMedian(() => raw({}), 3)
    const rawApi = await timeMedian(() => raw({ api: 'openai' }), 3)
    if (rawSummary.value !== summary.value.requests || rawApi.value !== summaryApi.value.requests) {
      throw new Error(`rollups and raw scan disagree: ${summary.value.requests} vs ${rawSummary.value}, ${summaryApi.value.requests} vs ${rawApi.value}`)
    }
    const hourlyRaw = await timeMedian(async () => aggregateCalls(storage.db, 'sqlite', { filter: { from: end - 7 * DAY, to: end }, groupBy: ['route'], interval: 'hour' }), 3)
    const tenantsRaw = await timeMedian(async () => {
      const rows = await aggregateCalls(storage.db, 'sqlite', { filter: { from: end - 30 * DAY, to: end }, groupBy: ['tenant'] })
      return rows.sort((a, b) => b.state.costNanos - a.state.costNanos || (String(a.keys[0]) < String(b.keys[0]) ? -1 : 1)).slice(0, 10)
    }, 3)
    if (tenantsRaw.value.map((r) => r.keys[0]).join() !== tenants.value.map((r) => r.key).join()) {
      throw new Error(`rollups and raw scan rank tenants differently: ${tenants.value.map((r) => r.key).join()} vs ${tenantsRaw.value.map((r) => r.keys[0]).join()}`)
    }
    const size = statSync(file).size
    const burst = await queriesAfterBurst(storage, stats, end, BURST, 5)
    const afterBurst = await stats.summary({ from: '-30d' })
    const afterBurstRaw = await raw({})
    if (afterBurst.requests !== afterBurstRaw) throw new Error(`after the bursts, rollups and raw scan disagree: ${afterBurst.requests} vs ${afterBurstRaw}`)
    await storage.close()

    const figures: Figure[] = [
      { name: `summary over 30 days (${(TOTAL / 1e6).toFixed(0)}M calls), via rollups`, value: summary.ms, unit: 'ms', target: '≤ 20 ms', met: summary.ms <= 20 },
      { name: 'same summary, raw scan', value: rawSummary.ms, unit: 'ms', note: `same request count: ${summary.value.requests.toLocaleString('en-US')}` },
      { name: "summary({ api: 'openai' }) over 30 days, via rollups", value: summaryApi.ms, unit: 'ms', target: '≤ 20 ms', met: summaryApi.ms <= 20 },
      { name: 'same, raw scan', value: rawApi.ms, unit: 'ms' },
      ...queryFigures({ hourly: { ms: hourly.ms, points: hourly.value.length, times: hourly.times }, hourlyRaw: hourlyRaw.ms, tenants: tenants.ms, tenantsRaw: tenantsRaw.ms, burst, afterBurstCalls: afterBurst.requests }),
      { name: 'the hourly timeseries by route: its storage part, `storage.aggregate()` alone', value: hourlyStorage.ms, unit: 'ms', note: `${hourlyStorage.value.length} groups, as the timeseries asks for them (summariesOnly): SQL, raw edges, tail, each group's percentiles (read on the worker thread), the hand-over; the rest of the timeseries is the result objects` },
      { name: 'the hourly timeseries by route: its stored rows alone, read by better-sqlite3 on a second connection', value: hourlyRows.ms, unit: 'ms', note: `${hourlyRows.value} rows of apimeter_rollups_route_hour, every column, nothing computed` },
      { name: 'live ingest with rollups', value: median(withRates), unit: 'events/s' },
      { name: 'live ingest without rollups', value: median(withoutRates), unit: 'events/s' },
      { name: 'live ingest with / without rollups', value: median(withRates.map((w, i) => w / withoutRates[i]!)), unit: 'ratio' },
      { name: `backfill of ${DAYS} days of history, rollups included`, value: backfillRate, unit: 'events/s', note: 'every rollup run touches ~30 hours of every key: the worst case' },
      { name: 'database size', value: size / 2 ** 20, unit: 'MiB' },
    ]
    return {
      id: 'rollups',
      title: 'Rollups: stats over 30 days of calls (SQLite)',
      method: `${TOTAL.toLocaleString('en-US')} calls over ${DAYS} days (5 APIs, 20 routes, 50 tenants, 12 status mixes) ingested through a monitor into one SQLite file, rollups maintained as in production, then queried; query times are medians of repeated runs (21 for summaries), each query run ${WARMUP} times untimed first, raw scans read apimeter_calls directly through the same SQL layer. Live ingest with and without rollups: ${INGEST_SAMPLE.toLocaleString('en-US')} calls stamped within 20 minutes (live traffic), 3 rounds alternating, median.`,
      figures,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
