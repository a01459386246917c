// npm run example:postgres — a fleet of two Fastify instances metered into one PostgreSQL database.
// With DATABASE_URL set it uses that database (in a schema of its own, `apimeter_example`, dropped at the end);
// without it, it starts a throwaway PostgreSQL cluster on loopback (the server binaries must be installed:
// Debian/Ubuntu `apt-get install -y postgresql`) and deletes it afterwards.
import { createMonitor, createStats } from '@apimeter/core'
import { apimeterFastify } from '@apimeter/fastify'
import { postgresStorage } from '@apimeter/storage-postgres'
import Fastify from 'fastify'
import { startPgCluster } from '../../scripts/pg-cluster.js'

const cluster = process.env.DATABASE_URL ? undefined : await startPgCluster()
const connectionString = process.env.DATABASE_URL ?? cluster!.url
const schema = 'apimeter_example'
if (!process.env.DATABASE_URL) console.log(`started a throwaway PostgreSQL at ${connectionString}\n`)

/** One instance of the app: its own monitor and pool, the shared database. */
async function instance(name: string): Promise<{ base: string; close: () => Promise<void> }> {
  const monitor = createMonitor({ service: 'orders', storage: postgresStorage({ connectionString, schema }) })
  const app = Fastify()
  await app.register(apimeterFastify, { monitor, tenant: (request) => request.headers['x-tenant'] as string | undefined, closeMonitor: true })
  app.get('/orders/:id', async (request) => ({ id: (request.params as { id: string }).id, instance: name }))
  app.post('/orders', async (_request, reply) => reply.code(201).send({ created: true }))
  app.get('/orders/:id/invoice', async (request, reply) => {
    if (Number((request.params as { id: string }).id) % 7 === 0) throw new Error('invoice service down')
    return reply.send({ pdf: 'JVBERi0xLjQK' })
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  return { base, close: () => app.close() }
}

const fleet = [await instance('a'), await instance('b')]
try {
  // ---- traffic, spread over both instances ------------------------------------------------------------------------
  const tenants = ['acme', 'globex', 'initech']
  const requests: Promise<unknown>[] = []
  for (let i = 0; i < 300; i++) {
    const { base } = fleet[i % 2]!
    const headers = { 'x-tenant': tenants[i % 3]!, 'content-type': 'application/json' }
    requests.push(fetch(`${base}/orders/${i}`, { headers }).then((r) => r.text()))
    if (i % 3 === 0) requests.push(fetch(`${base}/orders`, { method: 'POST', headers, body: '{}' }).then((r) => r.text()))
    if (i % 2 === 0) requests.push(fetch(`${base}/orders/${i}/invoice`, { headers }).then((r) => r.text()))
  }
  await Promise.all(requests)
} finally {
  for (const app of fleet) await app.close() // flushes and closes each monitor
}

// ---- fleet-wide stats, read back from PostgreSQL by a reader with no monitor --------------------------------------
const reader = postgresStorage({ connectionString, schema })
const stats = createStats(reader)
const summary = await stats.summary({ from: '-1h' })
console.log(`apimeter × Fastify × PostgreSQL: ${summary.requests} requests from 2 instances, ${summary.errors} errors, p95 ${summary.latency?.p95.toFixed(2)} ms\n`)
for (const row of await stats.breakdown({ by: 'route', from: '-1h' })) {
  console.log(`  ${row.key.padEnd(22)} ${String(row.requests).padStart(4)} requests   errors ${row.errors}`)
}
console.log(`\nby tenant: ${(await stats.breakdown({ by: 'tenant', from: '-1h' })).map((r) => `${r.key} ${r.requests}`).join(', ')}`)
await reader.close()

if (cluster) cluster.destroy()
else {
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString })
  await client.connect()
  await client.query(`DROP SCHEMA ${schema} CASCADE`)
  await client.end()
}
