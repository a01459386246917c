// npm run demo — meters a realistic synthetic day of API traffic into a SQLite file, then reopens the file and
// prints the stats read back from it.
import { rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type CallInput, createMonitor, createStats, type StatsSummary } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'

const random = Math.random
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
const HOUR = 3_600_000

const filename = process.env.APIMETER_DEMO_DB ?? fileURLToPath(new URL('./demo.db', import.meta.url))
for (const suffix of ['', '-wal', '-shm']) rmSync(`${filename}${suffix}`, { force: true }) // a fresh day each run
const monitor = createMonitor({ service: 'demo-shop', storage: sqliteStorage({ filename }) })

/** What the shop calls, with realistic latency, error, cache and price profiles. */
const outbound = [
  { api: 'openai', method: 'POST', route: '/v1/chat/completions', latency: [300, 2500], errorRate: 0.03, cacheRate: 0, llm: { model: 'gpt-4o-mini', inPerM: 0.15, outPerM: 0.6 } },
  { api: 'anthropic', method: 'POST', route: '/v1/messages', latency: [400, 3000], errorRate: 0.02, cacheRate: 0, llm: { model: 'claude-haiku', inPerM: 0.8, outPerM: 4 } },
  { api: 'finnhub', method: 'GET', route: '/api/v1/quote', latency: [20, 180], errorRate: 0.05, cacheRate: 0.4, flat: 0.0001 },
  { api: 'stripe', method: 'POST', route: '/v1/payment_intents', latency: [150, 600], errorRate: 0.01, cacheRate: 0, flat: 0 },
] as const
const inboundRoutes = [
  { method: 'GET', route: '/products', latency: [2, 30] },
  { method: 'GET', route: '/products/:id', latency: [1, 15] },
  { method: 'POST', route: '/cart/:id/items', latency: [5, 60] },
  { method: 'POST', route: '/checkout', latency: [200, 1500] },
] as const
const tenants = ['acme', 'globex', 'initech', 'umbrella', 'hooli']

const now = Date.now()
const calls: CallInput[] = []
for (let i = 0; i < 20_000; i++) {
  const timestamp = now - Math.floor(random() * 23.9 * HOUR)
  const tenantId = pick(tenants)
  if (random() < 0.6) {
    const r = pick(inboundRoutes)
    const roll = random()
    const statusCode = roll < 0.02 ? 500 : roll < 0.07 ? 404 : r.method === 'POST' ? 201 : 200
    const durationMs = r.latency[0] + random() ** 2 * (r.latency[1] - r.latency[0])
    calls.push({ direction: 'inbound', method: r.method, route: r.route, statusCode, durationMs, tenantId, timestamp, responseBytes: 200 + Math.floor(random() * 4000) })
    continue
  }
  const api = pick(outbound)
  const durationMs = api.latency[0] + random() ** 3 * (api.latency[1] - api.latency[0])
  const roll = random()
  if (roll < api.errorRate / 3) {
    calls.push({ direction: 'outbound', api: api.api, method: api.method, route: api.route, outcome: 'timeout', durationMs: 10_000, tenantId, timestamp })
    continue
  }
  const statusCode = roll < api.errorRate * 0.6 ? 429 : roll < api.errorRate ? 503 : 200
  const call: CallInput = { direction: 'outbound', api: api.api, method: api.method, route: api.route, statusCode, durationMs, tenantId, timestamp }
  if (statusCode === 200 && 'llm' in api) {
    const inputTokens = 200 + Math.floor(random() * 3000)
    const outputTokens = 20 + Math.floor(random() * 600)
    call.model = api.llm.model
    call.inputTokens = inputTokens
    call.outputTokens = outputTokens
    call.cost = (inputTokens * api.llm.inPerM + outputTokens * api.llm.outPerM) / 1e6
  } else if ('flat' in api) {
    call.cost = api.flat
  }
  if (statusCode === 200 && random() < api.cacheRate) {
    call.cached = true
    call.cacheSignal = 'cf-cache-status'
    call.durationMs = 3 + random() * 10
    call.cost = 0
  }
  calls.push(call)
}
for (const call of calls) monitor.record(call)
await monitor.close() // everything is written; the file is closed

// ---- read it back from the file, as a separate reader would (a dashboard, a script, the CLI) --------------------
const storage = sqliteStorage({ filename })
const stats = createStats(storage)

const ms = (n: number | undefined): string => (n === undefined ? '—' : n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(1)} ms`)
const usd = (n: number): string => `$${n.toFixed(4)}`
const pct = (n: number): string => `${(n * 100).toFixed(1)}%`

function table(title: string, head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  console.log(`\n${title}\n${line(head)}\n${widths.map((w) => '─'.repeat(w)).join('  ')}`)
  for (const row of rows) console.log(line(row))
}
const summaryRow = (key: string, s: StatsSummary): string[] => [
  key, String(s.requests), pct(s.errorRate), pct(s.cacheHitRate), ms(s.latency?.p50), ms(s.latency?.p95), ms(s.latency?.p99), usd(s.cost),
]
const HEAD = ['', 'requests', 'errors', 'cached', 'p50', 'p95', 'p99', 'cost']

const total = await stats.summary({ from: '-24h' })
console.log(`apimeter demo — service "demo-shop", ${total.requests.toLocaleString('en-US')} calls metered over the last 24 h into ${filename}`)
table('Last 24 h by direction', HEAD, [summaryRow('all', total), ...(await stats.breakdown({ by: 'direction', from: '-24h' })).map((r) => summaryRow(r.key, r))])
table('Outbound APIs, by cost', HEAD, (await stats.breakdown({ by: 'api', direction: 'outbound', orderBy: 'cost', from: '-24h' })).map((r) => summaryRow(r.key, r)))
table('Inbound routes, slowest p95 first', HEAD, (await stats.breakdown({ by: 'route', direction: 'inbound', orderBy: 'p95', from: '-24h' })).map((r) => summaryRow(r.key, r)))
const tenantsByCost = await stats.breakdown({ by: 'tenant', orderBy: 'cost', limit: 3, from: '-24h' })
table('Top 3 tenants by spend', ['tenant', 'requests', 'tokens in', 'tokens out', 'cost'], tenantsByCost.map((r) => [r.key, String(r.requests), String(r.tokens.input), String(r.tokens.output), usd(r.cost)]))
const hours = await stats.timeseries({ interval: 'hour', from: '-6h', direction: 'outbound' })
table('Outbound, last 6 hours (UTC buckets)', ['hour', 'requests', 'errors', 'rate-limited', 'p95', 'cost'], hours.map((h) => [h.start.toISOString().slice(11, 16), String(h.requests), pct(h.errorRate), String(h.outcomes.rate_limited), ms(h.latency?.p95), usd(h.cost)]))
console.log(`\nwrite path health: ${JSON.stringify(monitor.health())}`)
console.log(`inspect it: npx apimeter migrate status --db ${filename}`)
await storage.close()
