// npm run demo — a real Express shop metered by apimeter into a SQLite file. It starts the shop and a fake LLM
// provider on loopback, drives real HTTP traffic at the shop (some routes call the provider through monitor.fetch),
// closes the monitor,
// then reopens the file as a separate reader would and prints the stats read back from it, and the URL of the
// dashboard over that file. With `--serve` (npm run demo -- --serve) it keeps serving the dashboard until Ctrl-C.
import { rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { costs, createMonitor, createStats, type StatsSummary } from '@apimeter/core'
import { serveDashboard } from '@apimeter/dashboard'
import { apimeter } from '@apimeter/express'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import express from 'express'

const filename = process.env.APIMETER_DEMO_DB ?? fileURLToPath(new URL('./demo.db', import.meta.url))
for (const suffix of ['', '-wal', '-shm']) rmSync(`${filename}${suffix}`, { force: true }) // a fresh run each time
const REQUESTS = Number(process.env.APIMETER_DEMO_REQUESTS ?? 3000)
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// ---- a fake LLM provider (stands in for api.openai.com) -------------------------------------------------------------
const provider = createServer((req, res) => {
  let body = ''
  req.on('data', (chunk: Buffer) => (body += chunk.toString()))
  req.on('end', () => {
    const prompt = (JSON.parse(body || '{}') as { prompt?: string }).prompt ?? ''
    const slow = 20 + Math.random() * 60
    setTimeout(() => {
      if (Math.random() < 0.04) {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":"rate limited"}')
        return
      }
      const usage = { prompt_tokens: 50 + prompt.length * 3, completion_tokens: 20 + Math.floor(Math.random() * 200) }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ model: 'gpt-4o-mini', usage, text: 'A lovely teapot.' }))
    }, slow)
  })
})
provider.listen(0, '127.0.0.1')
await new Promise((resolve) => provider.once('listening', resolve))
const providerUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/v1/chat/completions`

// ---- the shop: one line of apimeter middleware -------------------------------------------------------------------
const monitor = createMonitor({
  service: 'demo-shop',
  storage: sqliteStorage({ filename }),
  // The outbound API registry: calls to the provider are named 'openai' and priced with OpenAI's price list.
  apis: [{ name: 'openai', match: providerUrl.replace('/v1/chat/completions', ''), cost: costs.openai() }],
})
const app = express()
app.use(apimeter(monitor, { tenant: (req) => req.get('x-tenant'), ignore: ['/health'] }))
app.use(express.json())

/** The shop's LLM client: plain fetch calls through `monitor.fetch`, priced from the usage in each response. */
async function describe(product: string, tenantId: string | undefined): Promise<string> {
  const res = await monitor.fetch(providerUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: `Describe ${product}` }),
    apimeter: { tenantId },
  })
  if (!res.ok) throw new Error(`provider answered ${res.status}`)
  return ((await res.json()) as { text?: string }).text ?? ''
}

const products = express.Router()
products.get('/', async (_req, res) => {
  await sleep(Math.random() * 5)
  res.json([{ id: 1, name: 'Teapot' }])
})
products.get('/:id', (req, res) => {
  if (Number(req.params.id) > 900) return res.status(404).json({ error: 'no such product' })
  res.json({ id: req.params.id, name: 'Teapot', price: 18 })
})
products.get('/:id/description', async (req, res, next) => {
  try {
    res.json({ id: req.params.id, text: await describe(`product ${req.params.id}`, req.get('x-tenant')) })
  } catch (error) {
    next(error)
  }
})
app.use('/products', products)
app.post('/cart/:cartId/items', (req, res) => {
  res.status(201).json({ cart: req.params.cartId, added: req.body as unknown })
})
app.post('/checkout', async (_req, res) => {
  await sleep(10 + Math.random() * 40)
  if (Math.random() < 0.03) throw new Error('payment declined by the bank')
  res.status(201).json({ ok: true })
})
app.get('/health', (_req, res) => {
  res.send('ok')
})
app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
  res.status(502).json({ error: err.message })
})
const server = app.listen(0, '127.0.0.1')
await new Promise((resolve) => server.once('listening', resolve))
const shop = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

// ---- real HTTP traffic: 16 clients of 5 tenants browsing, describing, buying -----------------------------------
const tenants = ['acme', 'globex', 'initech', 'umbrella', 'hooli']
let sent = 0
async function client(n: number): Promise<void> {
  while (sent < REQUESTS) {
    const i = sent++
    const headers = { 'x-tenant': tenants[(n + i) % tenants.length]!, 'content-type': 'application/json' }
    const roll = Math.random()
    const [path, init]: [string, RequestInit] =
      roll < 0.3 ? ['/products', {}]
      : roll < 0.65 ? [`/products/${Math.floor(Math.random() * 1000)}`, {}]
      : roll < 0.75 ? [`/products/${i % 50}/description`, {}]
      : roll < 0.88 ? [`/cart/${n}/items`, { method: 'POST', body: JSON.stringify({ sku: 'tea-1', qty: 1 }) }]
      : roll < 0.96 ? ['/checkout', { method: 'POST', body: '{}' }]
      : roll < 0.98 ? ['/health', {}]
      : ['/wp-login.php', {}] // a scanner: no route matches
    await (await fetch(`${shop}${path}`, { ...init, headers })).text()
  }
}
const started = performance.now()
await Promise.all(Array.from({ length: 16 }, (_, n) => client(n)))
const seconds = (performance.now() - started) / 1000
server.close()
provider.close()
await monitor.close() // everything is written; the file is closed
const health = monitor.health()

// ---- read it back from the file, as a separate reader would (a dashboard, a script, the CLI) ----------------------
const storage = sqliteStorage({ filename })
const stats = createStats(storage)

const ms = (n: number | undefined): string => (n === undefined ? '—' : n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(1)} ms`)
const usd = (n: number): string => `$${n.toFixed(6)}`
const pct = (n: number): string => `${(n * 100).toFixed(1)}%`

function table(title: string, head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  console.log(`\n${title}\n${line(head)}\n${widths.map((w) => '─'.repeat(w)).join('  ')}`)
  for (const row of rows) console.log(line(row))
}
const summaryRow = (key: string, s: StatsSummary): string[] => [key, String(s.requests), pct(s.errorRate), ms(s.latency?.p50), ms(s.latency?.p95), ms(s.latency?.p99), usd(s.cost)]
const HEAD = ['', 'requests', 'errors', 'p50', 'p95', 'p99', 'cost']

const total = await stats.summary({ from: '-1h' })
console.log(`apimeter demo — an Express shop served ${REQUESTS.toLocaleString('en-US')} real requests in ${seconds.toFixed(1)} s; ${total.requests.toLocaleString('en-US')} calls metered into ${filename}`)
table('By direction', HEAD, (await stats.breakdown({ by: 'direction', from: '-1h' })).map((r) => summaryRow(r.key, r)))
table('Inbound routes (as declared), slowest p95 first', HEAD.slice(0, -1), (await stats.breakdown({ by: 'route', direction: 'inbound', orderBy: 'p95', from: '-1h' })).map((r) => summaryRow(r.key, r).slice(0, -1)))
table('Outbound: the LLM provider', [...HEAD, 'tokens in', 'tokens out'], (await stats.breakdown({ by: 'api', direction: 'outbound', from: '-1h' })).map((r) => [...summaryRow(r.key, r), String(r.tokens.input), String(r.tokens.output)]))
table('Tenants by LLM spend', ['tenant', 'requests', 'errors', 'cost'], (await stats.breakdown({ by: 'tenant', orderBy: 'cost', from: '-1h' })).map((r) => [r.key, String(r.requests), pct(r.errorRate), usd(r.cost)]))
const minutes = await stats.timeseries({ interval: 'minute', from: '-3m', direction: 'inbound' })
table('Inbound per minute (UTC)', ['minute', 'requests', 'errors', 'p95'], minutes.filter((m) => m.requests > 0).map((m) => [m.start.toISOString().slice(11, 16), String(m.requests), pct(m.errorRate), ms(m.latency?.p95)]))
console.log(`\nwrite path health: ${JSON.stringify(health)}`)
console.log(`inspect it: npx apimeter migrate status --db ${filename}`)
await storage.close()

// ---- the dashboard over the same file (loopback only: no token needed on this machine) ---------------------------
const serve = process.argv.includes('--serve')
const reader = createMonitor({ service: 'demo-dashboard', storage: sqliteStorage({ filename }), logger: false })
const dashboard = await serveDashboard(reader, { port: serve ? Number(process.env.APIMETER_DEMO_PORT ?? 4318) : 0 })
if (serve) {
  console.log(`dashboard: ${dashboard.url} (Ctrl-C stops it)`)
  await new Promise((resolve) => process.once('SIGINT', resolve))
} else {
  console.log(`dashboard: ${dashboard.url} (closed now; run npm run demo -- --serve to keep it open)`)
}
await dashboard.close()
await reader.close()
