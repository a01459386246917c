// npm run example:fastify — a Fastify app metered by apimeter: it starts, sends itself a few requests (prefixed
// routes, a validation error, a thrown error, an opted-out route, a 404), prints what was recorded, and exits.
import { createMonitor } from '@apimeter/core'
import { apimeterFastify } from '@apimeter/fastify'
import Fastify from 'fastify'

const monitor = createMonitor({ service: 'catalog' })
const app = Fastify()

// closeMonitor: app.close() also flushes and closes the monitor.
await app.register(apimeterFastify, { monitor, user: (request) => request.headers['x-user-id'] as string | undefined, closeMonitor: true })

app.get('/health', { config: { apimeter: false } }, async () => 'ok')
await app.register(
  async (api) => {
    api.get('/books/:isbn', async (request) => ({ isbn: (request.params as { isbn: string }).isbn, title: 'Dune' }))
    api.post('/books', { schema: { body: { type: 'object', required: ['isbn'] } } }, async (request, reply) => reply.code(201).send(request.body))
    api.get('/authors/:id/books', async () => {
      throw new Error('search index offline')
    })
  },
  { prefix: '/api/v1' },
)
const base = await app.listen({ port: 0, host: '127.0.0.1' })

// ---- traffic ------------------------------------------------------------------------------------------------------
for (let i = 0; i < 20; i++) {
  const headers = { 'x-user-id': `u_${i % 4}`, 'content-type': 'application/json' }
  await (await fetch(`${base}/api/v1/books/978-${i}`, { headers })).text()
  if (i % 4 === 0) await (await fetch(`${base}/api/v1/books`, { method: 'POST', headers, body: JSON.stringify(i % 8 === 0 ? { isbn: `978-${i}` } : {}) })).text()
  if (i % 5 === 0) await (await fetch(`${base}/api/v1/authors/${i}/books`, { headers })).text()
  await (await fetch(`${base}/health`)).text()
}
await (await fetch(`${base}/.env`)).text()
await monitor.flush()

// ---- what was recorded --------------------------------------------------------------------------------------------
const summary = await monitor.stats.summary({ direction: 'inbound' })
console.log(`apimeter × Fastify: ${summary.requests} requests (health checks opted out), ${summary.errors} errors, p95 ${summary.latency?.p95.toFixed(2)} ms\n`)
for (const row of await monitor.stats.breakdown({ by: 'route', direction: 'inbound' })) {
  const statuses = await monitor.stats.breakdown({ by: 'status', route: row.key, direction: 'inbound' })
  console.log(`  ${row.key.padEnd(28)} ${String(row.requests).padStart(3)} requests   statuses ${statuses.map((s) => `${s.key}×${s.requests}`).join(' ')}`)
}
console.log(`\nusers: ${(await monitor.stats.breakdown({ by: 'user', direction: 'inbound' })).map((r) => `${r.key} ${r.requests}`).join(', ')}`)

await app.close() // closes the monitor too (closeMonitor: true)
