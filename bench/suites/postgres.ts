import { createStats, type SqlStorage, type StatsFilter } from '@apimeter/core'
import { aggregateCalls } from '@apimeter/core/sql'
import { postgresStorage } from '@apimeter/storage-postgres'
import pg from 'pg'
import { startPgCluster } from '../../scripts/pg-cluster.js'
import { type Figure, ingestRate, median, type SuiteResult, timeMedian } from '../lib.js'
import { BURST, call, queriesAfterBurst, queryFigures, WARMUP } from './rollups.js'

const TOTAL = Number(process.env.APIMETER_BENCH_CALLS ?? 10_000_000)
const DAYS = 30
const SAMPLE = 200_000
const ROUNDS = 3
const BATCH = 2_000
const DAY = 86_400_000
const forever = { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' } as const

/**
 * record() → batches → one COPY each (rollups maintained as in production, unless `rollups` is false: then no run is
 * due before close), until flush() resolves.
 */
async function ingest(url: string, schema: string, n: number, end: number, days: number, rollups = true): Promise<{ rate: number; storage: SqlStorage }> {
  const never = { rollupEveryCalls: Number.MAX_SAFE_INTEGER, rollupIntervalMs: Number.MAX_SAFE_INTEGER }
  const storage = postgresStorage({ connectionString: url, schema, retention: forever, now: () => end, ...(rollups ? {} : { schedule: never }) })
  return { rate: await ingestRate(storage, n, (i) => call(i, n, end, days), BATCH), storage }
}

export async function runPostgresSuite(): Promise<SuiteResult> {
  const external = process.env.APIMETER_BENCH_PG_URL
  const cluster = external ? undefined : await startPgCluster({ durable: true, sharedBuffers: '1GB' })
  const url = external ?? cluster!.url
  const admin = new pg.Pool({ connectionString: url, max: 1 })
  const end = Date.UTC(2026, 10, 20, 13, 17)
  try {
    // live ingest: calls stamped within 20 minutes, a fresh schema per round; alternating with the reference (the same
    // calls, no rollup run until close), so both see the same machine
    const rates: number[] = []
    const bare: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      for (const rollups of r % 2 === 0 ? [true, false] : [false, true]) {
        const schema = `bench_ingest_${r}_${rollups ? 'rollups' : 'bare'}`
        const { rate, storage } = await ingest(url, schema, SAMPLE, end, 20 / (24 * 60), rollups)
        await storage.close()
        ;(rollups ? rates : bare).push(rate)
        await admin.query(`DROP SCHEMA ${schema} CASCADE`)
      }
    }

    // the big database: TOTAL calls over 30 days
    const started = performance.now()
    const big = await ingest(url, 'bench_big', TOTAL, end, DAYS)
    const backfillRate = (TOTAL / (performance.now() - started)) * 1000
    const storage = big.storage
    await storage.maintain()
    await admin.query('VACUUM ANALYZE')
    // the load's dirty pages written out now, not by the checkpointer while the queries are timed
    await admin.query('CHECKPOINT')
    const stats = createStats(storage, { clock: { now: () => end } })
    const raw = async (filter: StatsFilter) => {
      const rows = await aggregateCalls(storage.db, 'postgres', { filter: { from: end - 30 * DAY, api: filter.api ? [filter.api as string] : undefined }, groupBy: [] })
      return rows.reduce((n, row) => n + row.state.requests, 0)
    }
    const summary = await timeMedian(() => stats.summary({ from: '-30d' }), 21, WARMUP)
    const summaryApi = await timeMedian(() => stats.summary({ api: 'openai', from: '-30d' }), 21, WARMUP)
    const hourly = await timeMedian(() => stats.timeseries({ interval: 'hour', from: '-7d', groupBy: 'route' }), 11, WARMUP)
    const tenants = await timeMedian(() => stats.breakdown({ by: 'tenant', orderBy: 'cost', limit: 10, from: '-30d' }), 11, WARMUP)
    const rawSummary = await timeMedian(() => raw({}), 3)
    if (rawSummary.value !== summary.value.requests) throw new Error(`rollups and raw scan disagree: ${summary.value.requests} vs ${rawSummary.value}`)
    const hourlyRaw = await timeMedian(async () => aggregateCalls(storage.db, 'postgres', { filter: { from: end - 7 * DAY, to: end }, groupBy: ['route'], interval: 'hour' }), 3)
    const tenantsRaw = await timeMedian(async () => {
      const rows = await aggregateCalls(storage.db, 'postgres', { filter: { from: end - 30 * DAY, to: end }, groupBy: ['tenant'] })
      return rows.sort((a, b) => b.state.costNanos - a.state.costNanos || (String(a.keys[0]) < String(b.keys[0]) ? -1 : 1)).slice(0, 10)
    }, 3)
    if (tenantsRaw.value.map((r) => r.keys[0]).join() !== tenants.value.map((r) => r.key).join()) throw new Error('rollups and raw scan rank tenants differently')
    const burst = await queriesAfterBurst(storage, stats, end, BURST, 5)
    const afterBurst = await stats.summary({ from: '-30d' })
    const afterBurstRaw = await raw({})
    if (afterBurst.requests !== afterBurstRaw) throw new Error(`after the bursts, rollups and raw scan disagree: ${afterBurst.requests} vs ${afterBurstRaw}`)
    const size = await admin.query<{ bytes: string }>(`SELECT sum(pg_total_relation_size(c.oid))::text AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'bench_big' AND c.relkind IN ('r', 'p')`)
    const partitions = await admin.query(`SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'bench_big'`)
    await storage.close()
    await admin.query('DROP SCHEMA bench_big CASCADE')

    const rate = median(rates)
    const bareRate = median(bare)
    const millions = `${(TOTAL / 1e6).toFixed(TOTAL < 1e6 ? 1 : 0)}M`
    const figures: Figure[] = [
      { name: 'apimeter → PostgreSQL, live ingest end to end', value: rate, unit: 'events/s', target: '≥ 50,000 events/s', met: rate >= 50_000, note: `per round: ${rates.map((x) => Math.round(x).toLocaleString('en-US')).join(', ')}` },
      { name: 'reference: the same, no rollup run until close (the write path alone)', value: bareRate, unit: 'events/s', note: `per round: ${bare.map((x) => Math.round(x).toLocaleString('en-US')).join(', ')}; with rollups ${(rate / bareRate).toFixed(2)} of it` },
      { name: `backfill of ${DAYS} days (${millions} calls), rollups included`, value: backfillRate, unit: 'events/s' },
      { name: `summary over 30 days (${millions} calls), via rollups`, value: summary.ms, unit: 'ms', target: '≤ 20 ms', met: summary.ms <= 20 },
      { name: 'same summary, raw scan', value: rawSummary.ms, unit: 'ms', note: `same request count: ${summary.value.requests.toLocaleString('en-US')}` },
      { name: "summary({ api: 'openai' }) over 30 days, via rollups", value: summaryApi.ms, unit: 'ms', target: '≤ 20 ms', met: summaryApi.ms <= 20 },
      ...queryFigures({ hourly: { ms: hourly.ms, points: hourly.value.length, times: hourly.times }, hourlyRaw: hourlyRaw.ms, tenants: tenants.ms, tenantsRaw: tenantsRaw.ms, burst, afterBurstCalls: afterBurst.requests }),
      { name: 'database size (tables and indexes)', value: Number(size.rows[0]?.bytes ?? 0) / 2 ** 20, unit: 'MiB', note: `${partitions.rowCount} partitions of apimeter_calls` },
    ]
    return {
      id: 'postgres',
      title: 'PostgreSQL: ingest and stats over 30 days of calls',
      method: `A throwaway PostgreSQL ${external ? '(APIMETER_BENCH_PG_URL)' : '15 cluster on loopback with durable defaults (fsync on, synchronous_commit on), shared_buffers 1GB'}, on the same machine as the benchmark. Live ingest: ${SAMPLE.toLocaleString('en-US')} calls stamped within 20 minutes through a monitor (batches of ${BATCH}, each one COPY, the pool's 4 connections, rollups maintained as in production), ${ROUNDS} rounds, median; measured from the first record() until flush() resolves. The reference rounds alternate with them: the same calls with no rollup run due before close(). Then ${TOTAL.toLocaleString('en-US')} calls over ${DAYS} days (5 APIs, 20 routes, 50 tenants) ingested the same way into monthly partitions, then \`VACUUM ANALYZE\` and \`CHECKPOINT\` (the load's dirty pages written before the queries are timed, not by the checkpointer during them), and queried; query times are medians of repeated runs (21 for summaries), each query run ${WARMUP} times untimed first, the raw scan reads apimeter_calls through the same SQL layer.`,
      figures,
    }
  } finally {
    await admin.end()
    cluster?.destroy()
  }
}
