// npm run example:express — an Express app metered by apimeter: it starts, sends itself a few requests (nested
// routes, a 404, a failure, an impatient client), prints what was recorded, and exits.
// Storage: a SQLite file next to this script (APIMETER_EXAMPLE_DB to put it elsewhere); each run adds to it, so the
// totals grow across runs.
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createMonitor } from '@apimeter/core'
import { apimeter } from '@apimeter/express'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import express from 'express'

const filename = process.env.APIMETER_EXAMPLE_DB ?? fileURLToPath(new URL('./apimeter.db', import.meta.url))
const monitor = createMonitor({ service: 'shop', storage: sqliteStorage({ filename }) })
const app = express()

app.use(apimeter(monitor, { tenant: (req) => req.get('x-tenant-id'), apiKey: (req) => req.get('x-api-key'), ignore: ['/health'] }))
app.use(express.json())

app.get('/health', (_req, res) => {
  res.send('ok')
})
app.get('/products/:id', (req, res) => {
  res.json({ id: req.params.id, name: 'Teapot', price: 18 })
})
const projects = express.Router({ mergeParams: true })
projects.get('/:projectId', (req, res) => {
  res.json({ org: (req.params as Record<string, string>).orgId, project: req.params.projectId })
})
app.use('/orgs/:orgId/projects', projects)
app.post('/cart/:id/items', (req, res) => {
  res.status(201).json({ cart: req.params.id, added: req.body as unknown })
})
app.get('/checkout/:id', (_req, _res, next) => next(new Error('payment provider unavailable')))
app.get('/slow', () => undefined) // never answers: the client gives up
app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
  res.status(502).json({ error: err.message })
})

const server = app.listen(0, '127.0.0.1')
await new Promise((resolve) => server.once('listening', resolve))
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

// ---- traffic ------------------------------------------------------------------------------------------------------
const tenants = ['acme', 'globex', 'initech']
for (let i = 0; i < 30; i++) {
  const headers = { 'x-tenant-id': tenants[i % 3]!, 'x-api-key': `sk_demo_${i % 2}` }
  await (await fetch(`${base}/products/${100 + i}`, { headers })).text()
  await (await fetch(`${base}/orgs/${tenants[i % 3]}/projects/${i}`, { headers })).text()
  if (i % 3 === 0) await (await fetch(`${base}/cart/${i}/items`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ sku: 'tea-1', qty: 2 }) })).text()
}
await (await fetch(`${base}/checkout/9`)).text()
await (await fetch(`${base}/wp-login.php`)).text() // a scanner: no route matches
await (await fetch(`${base}/health`)).text() // ignored
await fetch(`${base}/slow`, { signal: AbortSignal.timeout(50) }).catch(() => undefined) // an impatient client
await new Promise((resolve) => setTimeout(resolve, 50)) // the server sees the connection close on a later turn
await monitor.flush()

// ---- what was recorded --------------------------------------------------------------------------------------------
const summary = await monitor.stats.summary({ direction: 'inbound' })
console.log(`${filename} now holds every run's requests`)
console.log(`apimeter × Express: ${summary.requests} requests, ${(summary.errorRate * 100).toFixed(1)}% errors, p95 ${summary.latency?.p95.toFixed(2)} ms, ${summary.responseBytes} bytes sent\n`)
console.log('requests by route')
for (const row of await monitor.stats.breakdown({ by: 'route', direction: 'inbound' })) {
  console.log(`  ${row.key.padEnd(34)} ${String(row.requests).padStart(4)}   errors ${row.errors}   p50 ${row.latency?.p50.toFixed(2)} ms`)
}
console.log('\nrequests by outcome')
for (const [outcome, count] of Object.entries(summary.outcomes)) if (count > 0) console.log(`  ${outcome.padEnd(14)} ${count}`)
console.log('\nrequests by tenant')
for (const row of await monitor.stats.breakdown({ by: 'tenant', direction: 'inbound' })) console.log(`  ${row.key.padEnd(14)} ${row.requests}`)

server.close()
await monitor.close()
