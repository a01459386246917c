// A hello-world server for the throughput benches, run in a child process so the load generator's CPU is not
// measured with it: node --import tsx bench/servers/hello.ts <express5|express4|fastify> <without|with|with-memory>
// Prints `listening <port>` when ready. "with" registers apimeter first on a monitor whose storage accepts and
// discards every batch: the cost measured is the middleware, record() and the write pipeline's batching, not a
// storage engine (those have their own suites). "with-memory" writes to in-memory storage (capped at 10,000 calls).
import { createMonitor, memoryStorage } from '@apimeter/core'
import { discardStorage } from '../lib.js'
import { apimeter } from '@apimeter/express'
import { apimeterFastify } from '@apimeter/fastify'
import express5 from 'express'
import express4 from 'express4'
import Fastify from 'fastify'

const [framework, mode] = process.argv.slice(2)
if (!['express5', 'express4', 'fastify'].includes(framework ?? '') || !['without', 'with', 'with-memory'].includes(mode ?? '')) {
  console.error('usage: hello.ts <express5|express4|fastify> <without|with|with-memory>')
  process.exit(2)
}
const storage = mode === 'with-memory' ? memoryStorage({ maxCalls: 10_000 }) : discardStorage
const monitor = createMonitor({ service: 'bench', logger: false, flushOnExit: false, storage })
const metered = mode !== 'without'

let port: number
if (framework === 'fastify') {
  const app = Fastify()
  if (metered) await app.register(apimeterFastify, { monitor })
  app.get('/', (_request, reply) => {
    reply.send({ hello: 'world' })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  port = (app.server.address() as { port: number }).port
} else {
  const app = (framework === 'express5' ? express5 : express4)()
  if (metered) app.use(apimeter(monitor))
  app.get('/', (_req, res) => {
    res.json({ hello: 'world' })
  })
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  port = (server.address() as { port: number }).port
}
console.log(`listening ${port}`)
// Answers the bench over IPC: CPU time used so far (to compute CPU per request, which noise on a shared machine
// disturbs far less than throughput), and how many calls were recorded (to check the middleware really ran).
process.on('message', () => {
  const { user, system } = process.cpuUsage()
  const health = monitor.health()
  process.send?.({ cpuUs: user + system, recorded: health.written + health.queued })
})
