import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { type CallInput, createStats, type SqlStorage, type StorageAdapter } from '@apimeter/core'
import { TABLES } from '@apimeter/core/sql'
import { postgresStorage } from '@apimeter/storage-postgres'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { sql } from 'kysely'
import { startPgCluster } from '../../scripts/pg-cluster.js'
import { type Figure, ingestRate, type SuiteResult, timeMedian } from '../lib.js'
import { call } from './rollups.js'

/**
 * 100,000 distinct tenants (issue: tenants are the application's business keys and are not capped). The same
 * workload with 50 tenants and with 100,000, side by side: ingest rate, rollup rows, and the top-10 breakdown by
 * cost — its time, how many groups the storage built, and the heap those groups hold — ranked in SQL versus built
 * in full (every group with its latency sketch, then sorted and cut: what a breakdown did before).
 */

const N = Number(process.env.APIMETER_BENCH_TENANT_CALLS ?? 1_000_000)
const TENANTS = 100_000
const DAYS = 30
const forever = { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' } as const

const withTenants = (tenants: number) => (i: number, n: number, end: number): CallInput => ({ ...call(i, n, end, DAYS), tenantId: `tenant-${(i * 7919) % tenants}` })

/** A garbage collection on demand (to read the heap a result holds). */
const gc = ((): (() => void) => {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
})()

/** How many groups the storage built for `fn`, and the heap (MiB) what `fn` got from it holds. */
async function held(storage: StorageAdapter, fn: (s: StorageAdapter) => Promise<unknown>): Promise<{ mib: number; groups: number }> {
  let groups = 0
  let kept: unknown[] = []
  const counting: StorageAdapter = {
    ...storage,
    aggregate: async (q) => {
      const rows = await storage.aggregate(q)
      groups += rows.length
      kept = rows // held until measured, as the breakdown holds them while it orders them
      return rows
    },
  }
  gc()
  const before = process.memoryUsage().heapUsed
  await fn(counting)
  gc()
  const after = process.memoryUsage().heapUsed
  const reachable = kept.length // the rows stay reachable up to here, so `after` counts them
  return { mib: Math.max(0, after - before) / 2 ** 20, groups: Math.max(groups, reachable) }
}

async function measure(label: string, open: (name: string) => Promise<SqlStorage>, end: number): Promise<Figure[]> {
  const figures: Figure[] = []
  const rates: Record<string, number> = {}
  const rows: Record<string, number> = {}
  let big!: SqlStorage
  for (const [name, tenants] of [['50', 50], ['100k', TENANTS]] as const) {
    const storage = await open(`t${name}`)
    rates[name] = await ingestRate(storage, N, (i) => withTenants(tenants)(i, N, end), 5000)
    await storage.maintain()
    let total = 0
    for (const table of [TABLES.rollup5m, TABLES.rollupHour, TABLES.rollupDay, TABLES.rollupMonth]) {
      total += Number((await sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM ${sql.table(table)}`.execute(storage.db)).rows[0]!.n)
    }
    rows[name] = total
    if (name === '100k') big = storage
    else await storage.close()
  }
  figures.push({ name: `${label}: ingest, 50 tenants`, value: rates['50']!, unit: 'events/s' })
  figures.push({ name: `${label}: ingest, 100,000 tenants`, value: rates['100k']!, unit: 'events/s' })
  figures.push({ name: `${label}: ingest ratio, 100,000 / 50 tenants`, value: rates['100k']! / rates['50']!, unit: 'ratio' })
  figures.push({ name: `${label}: rollup rows (5 minutes + hour + day + month), 50 tenants`, value: rows['50']!, unit: 'rows' })
  figures.push({ name: `${label}: rollup rows, 100,000 tenants`, value: rows['100k']!, unit: 'rows' })

  const stats = createStats(big, { clock: { now: () => end } })
  const ranked = await timeMedian(() => stats.breakdown({ by: 'tenant', orderBy: 'cost', limit: 10, from: '-30d' }), 7)
  const full = await timeMedian(async () => (await stats.breakdown({ by: 'tenant', orderBy: 'cost', from: '-30d' })).slice(0, 10), 3)
  if (JSON.stringify(ranked.value) !== JSON.stringify(full.value)) throw new Error(`${label}: the ranked breakdown differs from the full one`)
  const rankedHeld = await held(big, (s) => createStats(s, { clock: { now: () => end } }).breakdown({ by: 'tenant', orderBy: 'cost', limit: 10, from: '-30d' }))
  const fullHeld = await held(big, (s) => createStats(s, { clock: { now: () => end } }).breakdown({ by: 'tenant', orderBy: 'cost', from: '-30d' }))
  figures.push({ name: `${label}: top-10 tenants by cost, ranked in SQL`, value: ranked.ms, unit: 'ms', note: `${rankedHeld.groups} groups built` })
  figures.push({ name: `${label}: the same, every group built then cut (before)`, value: full.ms, unit: 'ms', note: `${fullHeld.groups} groups built` })
  figures.push({ name: `${label}: heap held by the breakdown's groups, ranked / full`, value: rankedHeld.mib, unit: 'MiB', note: `full: ${fullHeld.mib.toFixed(1)} MiB` })
  await big.close()
  return figures
}

export async function runTenantsSuite(): Promise<SuiteResult> {
  const end = Date.UTC(2026, 10, 20, 13, 17)
  const dir = mkdtempSync(join(tmpdir(), 'apimeter-bench-tenants-'))
  const cluster = await startPgCluster({ durable: true, sharedBuffers: '512MB' })
  try {
    const figures = [
      ...(await measure('SQLite', async (name) => sqliteStorage({ filename: join(dir, `${name}.db`), retention: forever, now: () => end }), end)),
      ...(await measure('PostgreSQL', async (name) => postgresStorage({ connectionString: cluster.url, schema: `bench_${name}`, retention: forever, now: () => end }), end)),
    ]
    return {
      id: 'tenants',
      title: '100,000 tenants',
      method: `${N.toLocaleString('en-US')} calls over ${DAYS} days, once spread over 50 tenants and once over 100,000 (the rollups suite's workload otherwise), on SQLite and on a local PostgreSQL 15 (durable settings), side by side. The breakdown is \`breakdown({ by: 'tenant', orderBy: 'cost', limit: 10, from: '-30d' })\`; "groups built" counts the groups the storage returned (each with its latency sketch), "heap held" the heap they occupy after a GC. \`APIMETER_BENCH_TENANT_CALLS\` shrinks the run.`,
      figures,
    }
  } finally {
    cluster.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}
