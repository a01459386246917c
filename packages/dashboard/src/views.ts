import { type BreakdownRow, type Dimension, type Monitor, NO_VALUE_KEY, type StatsFilter, type StatsSummary, type StoredReader, type TimeseriesPoint } from '@apimeter/core'
import { bucketStart, nextBucket } from '@apimeter/core/sql'
import { statsFilter, type ViewQuery } from './query.js'

/** The page's views, each one JSON document (`GET <base>/api/<view>`, and the live stream's events). */
export const VIEWS = ['overview', 'traffic', 'llm', 'reliability', 'health'] as const
/** One of {@link VIEWS}. */
export type ViewName = (typeof VIEWS)[number]

/** Charted series: `t` bucket starts (epoch ms), then one array per measure, aligned with `t`. */
export type Series = { t: number[] } & Record<string, (number | null)[]>

/** A table row: the key and the numbers of its summary the page shows, and its requests per bucket. */
export interface TableRow {
  key: string
  requests: number
  errorRate: number
  p50: number | null
  p95: number | null
  p99: number | null
  cost: number
  tokens: number
  cacheHitRate: number
  spark: number[]
}

const ROWS = 50

/**
 * Reads one view's data for a query, through `monitor.stats` and the monitor's alerts, probes, SLOs and health.
 * Alert rules, probes and SLOs the monitor does not define itself but the storage holds (written by other instances,
 * or by the app when the CLI serves the page) come from `stored`, marked `source: 'stored'`.
 */
export async function viewData(monitor: Monitor, view: ViewName, q: ViewQuery, stored: StoredReader): Promise<Record<string, unknown>> {
  const filter = statsFilter(q)
  const query = { range: q.range, from: q.from, to: q.to, interval: q.interval, service: q.service ?? null, tenant: q.tenant ?? null, route: q.route ?? null, api: q.api ?? null }
  switch (view) {
    case 'overview':
      return { view, query, ...(await overview(monitor, filter, q)) }
    case 'traffic':
      return { view, query, ...(await traffic(monitor, filter, q)) }
    case 'llm':
      return { view, query, ...(await llm(monitor, filter, stored)) }
    case 'reliability':
      return { view, query, ...(await reliability(monitor, q, stored)) }
    case 'health':
      return { view, query, ...(await health(monitor, q)) }
  }
}

async function overview(monitor: Monitor, filter: StatsFilter, q: ViewQuery) {
  // the filter choices come from the same range, without the filter they choose
  const unfiltered = { from: q.from, to: q.to }
  const [summary, points, tenants, services] = await Promise.all([
    monitor.stats.summary(filter),
    monitor.stats.timeseries({ ...filter, interval: q.interval }),
    monitor.stats.breakdown({ ...unfiltered, ...(q.service ? { service: q.service } : {}), by: 'tenant', limit: 200, orderBy: 'requests' }),
    monitor.stats.breakdown({ ...unfiltered, by: 'service', limit: 200, orderBy: 'key' }),
  ])
  return {
    summary,
    series: series(points, {
      requests: (p) => p.requests,
      errors: (p) => p.errors,
      errorRate: (p) => (p.requests === 0 ? null : p.errorRate),
      p50: (p) => p.latency?.p50 ?? null,
      p95: (p) => p.latency?.p95 ?? null,
      p99: (p) => p.latency?.p99 ?? null,
      cost: (p) => p.cost,
      tokens: (p) => tokenCount(p),
      cacheHitRate: (p) => (p.requests === 0 ? null : p.cacheHitRate),
    }),
    tenants: keys(tenants),
    services: keys(services),
  }
}

async function traffic(monitor: Monitor, filter: StatsFilter, q: ViewQuery) {
  const [routes, apis] = await Promise.all([table(monitor, { ...filter, direction: 'inbound' }, 'route', q), table(monitor, { ...filter, direction: 'outbound' }, 'api', q)])
  return { routes, apis }
}

async function llm(monitor: Monitor, filter: StatsFilter, stored: StoredReader) {
  // one breakdown by model: its top rows are the table, all of its keys scope the per-tenant spend to LLM calls
  const ownRules = { except: monitor.alerts.rules }
  const [byModel, own, others] = await Promise.all([monitor.stats.breakdown({ ...filter, by: 'model', orderBy: 'cost', limit: 1000 }), monitor.alerts.budgets(), stored.alerts.budgets(ownRules)])
  const models = byModel.filter((r) => r.key !== NO_VALUE_KEY).slice(0, ROWS)
  const tenants = await monitor.stats.breakdown({ ...filter, model: modelsOnly(byModel), by: 'tenant', orderBy: 'cost', limit: ROWS })
  const spend = (rows: BreakdownRow[]) =>
    rows.map((r) => ({ key: r.key, requests: r.requests, cost: r.cost, input: r.tokens.input, output: r.tokens.output, cachedInput: r.tokens.cachedInput, cacheHitRate: r.cacheHitRate }))
  // budgets: every cost rule, whatever its state, with its spend in its own window (not the page's range)
  const budgets = merge(own, others)
  return { models: spend(models), tenants: spend(tenants), budgets }
}

async function reliability(monitor: Monitor, q: ViewQuery, stored: StoredReader) {
  const range = { from: q.from, to: q.to }
  // the stored definitions the monitor has itself are read through the monitor only
  const slos = await monitor.slos.status()
  const [active, storedActive, history, probes, storedProbes, storedSlos, problems] = await Promise.all([
    monitor.alerts.active(),
    stored.alerts.active({ except: monitor.alerts.rules }),
    monitor.alerts.history(range),
    monitor.probes.status(),
    stored.probes.status({ except: monitor.probes.names }),
    stored.slos.status({ except: slos.map((s) => s.name) }),
    stored.problems(),
  ])
  const configured = new Set(monitor.probes.names)
  const probeRows = await Promise.all(
    merge(probes, storedProbes).map(async (p) => {
      const [checks, incidents, uptime] = await Promise.all([
        monitor.probes.checks({ name: p.name, ...range }),
        monitor.probes.incidents({ name: p.name, ...range }),
        configured.has(p.name) ? monitor.probes.uptime({ name: p.name, ...range }) : stored.probes.uptime({ name: p.name, ...range }),
      ])
      // the bar: the newest checks, oldest first
      const bar = checks.slice(-90).map((c) => ({ at: c.at, ok: c.ok }))
      return { ...p, uptime, incidents, bar }
    }),
  )
  return {
    active: merge(active, storedActive),
    history: history.slice(-200).reverse(),
    probes: probeRows,
    slos: merge(slos, storedSlos),
    problems,
  }
}

/**
 * The monitor's own rows (`source: 'configured'`), then the stored ones of definitions it does not have
 * (`source: 'stored'`, read without the monitor's own names): what other instances of the fleet, or the app behind the CLI's database, defined.
 */
function merge<T extends object>(own: readonly T[], stored: readonly T[]): (T & { source: 'configured' | 'stored' })[] {
  return [...own.map((r) => ({ ...r, source: 'configured' as const })), ...stored.map((r) => ({ ...r, source: 'stored' as const }))]
}

async function health(monitor: Monitor, q: ViewQuery) {
  const [system, routes] = await Promise.all([monitor.stats.system({ from: q.from, to: q.to, interval: q.interval, ...(q.service ? { service: q.service } : {}) }), monitor.stats.health({ by: 'route', from: q.from, to: q.to })])
  const h = monitor.health()
  return {
    writePath: { queued: h.queued, written: h.written, dropped: h.dropped, invalid: h.invalid, rejected: h.rejected, failedWrites: h.failedWrites, lastError: h.lastError },
    alerts: h.alerts,
    probes: h.probes,
    plugins: h.plugins,
    system: {
      latest: system.at(-1) ?? null,
      series: {
        t: system.map((b) => b.start.getTime()),
        cpu: system.map((b) => b.cpu.percent),
        rss: system.map((b) => b.rssBytes.max),
        heap: system.map((b) => b.heapUsedBytes.max),
        loopP99: system.map((b) => b.eventLoopDelayUs.p99 / 1000),
      },
    },
    routes: routes.filter((r) => r.status !== 'healthy'),
  }
}

/** One breakdown row per key and the same rows' requests per bucket (the sparkline), both from `monitor.stats`. */
async function table(monitor: Monitor, filter: StatsFilter, by: Dimension, q: ViewQuery): Promise<TableRow[]> {
  const [rows, points] = await Promise.all([monitor.stats.breakdown({ ...filter, by, limit: ROWS }), monitor.stats.timeseries({ ...filter, interval: q.interval, groupBy: by })])
  const buckets = bucketStarts(q)
  const index = new Map(buckets.map((t, i) => [t, i]))
  const sparks = new Map<string, number[]>()
  for (const p of points) {
    const key = p.group ?? NO_VALUE_KEY
    let spark = sparks.get(key)
    if (!spark) sparks.set(key, (spark = new Array<number>(buckets.length).fill(0)))
    const i = index.get(p.start.getTime())
    if (i !== undefined) spark[i] = p.requests
  }
  return rows.map((r) => ({
    key: r.key,
    requests: r.requests,
    errorRate: r.errorRate,
    p50: r.latency?.p50 ?? null,
    p95: r.latency?.p95 ?? null,
    p99: r.latency?.p99 ?? null,
    cost: r.cost,
    tokens: tokenCount(r),
    cacheHitRate: r.cacheHitRate,
    spark: sparks.get(r.key) ?? new Array<number>(buckets.length).fill(0),
  }))
}

/** The bucket starts a filled timeseries of this query returns (UTC-aligned, from the bucket holding `from`). */
function bucketStarts(q: ViewQuery): number[] {
  const out: number[] = []
  for (let t = bucketStart(q.from, q.interval); t < q.to && out.length < 2000; t = nextBucket(t, q.interval)) out.push(t)
  return out
}

function series(points: TimeseriesPoint[], measures: Record<string, (p: TimeseriesPoint) => number | null>): Series {
  const out: Series = { t: points.map((p) => p.start.getTime()) }
  for (const [name, read] of Object.entries(measures)) out[name] = points.map(read)
  return out
}

function tokenCount(s: StatsSummary): number {
  return s.tokens.input + s.tokens.output
}

function keys(rows: BreakdownRow[]): string[] {
  return rows.map((r) => r.key).filter((k) => k !== NO_VALUE_KEY)
}

/** The models seen in the range, so the per-tenant spend counts LLM calls only (a stats filter has no "not null"). */
function modelsOnly(rows: BreakdownRow[]): string[] {
  const models = keys(rows)
  return models.length === 0 ? ['\u0000no model'] : models
}
