import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type CallInput, createStats, type StatsFilter } from '@apimeter/core'
import { aggregateCalls } from '@apimeter/core/sql'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { type Figure, ingestRate, median, type SuiteResult, timeMedian } from '../lib.js'

const TOTAL = Number(process.env.APIMETER_BENCH_CALLS ?? 10_000_000)
const DAYS = 30
const INGEST_SAMPLE = 300_000
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
    const summary = await timeMedian(() => stats.summary({ from: '-30d' }), 21)
    const summaryApi = await timeMedian(() => stats.summary({ api: 'openai', from: '-30d' }), 21)
    const hourly = await timeMedian(() => stats.timeseries({ interval: 'hour', from: '-7d', groupBy: 'route' }), 11)
    const tenants = await timeMedian(() => stats.breakdown({ by: 'tenant', orderBy: 'cost', limit: 10, from: '-30d' }), 11)
    const rawSummary = await timeMedian(() => raw({}), 3)
    const rawApi = await timeMedian(() => raw({ api: 'openai' }), 3)
    if (rawSummary.value !== summary.value.requests || rawApi.value !== summaryApi.value.requests) {
      throw new Error(`rollups and raw scan disagree: ${summary.value.requests} vs ${rawSummary.value}, ${summaryApi.value.requests} vs ${rawApi.value}`)
    }
    const hourlyRaw = await timeMedian(async () => aggregateCalls(storage.db, 'sqlite', { filter: { from: end - 7 * DAY }, groupBy: ['route'], interval: 'hour' }), 3)
    const size = statSync(file).size
    await storage.close()

    const figures: Figure[] = [
      { name: `summary over 30 days (${(TOTAL / 1e6).toFixed(0)}M calls), via rollups`, value: summary.ms, unit: 'ms', target: '≤ 20 ms', met: summary.ms <= 20 },
      { name: 'same summary, raw scan', value: rawSummary.ms, unit: 'ms', note: `same request count: ${summary.value.requests.toLocaleString('en-US')}` },
      { name: "summary({ api: 'openai' }) over 30 days, via rollups", value: summaryApi.ms, unit: 'ms', target: '≤ 20 ms', met: summaryApi.ms <= 20 },
      { name: 'same, raw scan', value: rawApi.ms, unit: 'ms' },
      { name: 'hourly timeseries, 7 days, grouped by route, via rollups', value: hourly.ms, unit: 'ms', note: `${hourly.value.length} points` },
      { name: 'same timeseries, raw scan', value: hourlyRaw.ms, unit: 'ms' },
      { name: 'top 10 tenants by cost over 30 days, via rollups', value: tenants.ms, unit: 'ms' },
      { name: 'live ingest with rollups', value: median(withRates), unit: 'events/s' },
      { name: 'live ingest without rollups', value: median(withoutRates), unit: 'events/s' },
      { name: 'live ingest with / without rollups', value: median(withRates.map((w, i) => w / withoutRates[i]!)), unit: 'ratio' },
      { name: `backfill of ${DAYS} days of history, rollups included`, value: backfillRate, unit: 'events/s', note: 'every rollup run touches ~30 hours of every key: the worst case' },
      { name: 'database size', value: size / 2 ** 20, unit: 'MiB' },
    ]
    return {
      id: 'rollups',
      title: 'Rollups: stats over 30 days of calls (SQLite)',
      method: `${TOTAL.toLocaleString('en-US')} calls over ${DAYS} days (5 APIs, 20 routes, 50 tenants, 12 status mixes) ingested through a monitor into one SQLite file, rollups maintained as in production, then queried; query times are medians of repeated runs (21 for summaries), raw scans read apimeter_calls directly through the same SQL layer. Live ingest with and without rollups: ${INGEST_SAMPLE.toLocaleString('en-US')} calls stamped within 20 minutes (live traffic), 3 rounds alternating, median.`,
      figures,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
