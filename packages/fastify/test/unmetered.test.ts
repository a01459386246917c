import { createServer, type IncomingMessage, type Server } from 'node:http'
import { type Monitor, skipMetering } from '@apimeter/core'
import { apimeter } from '@apimeter/express'
import { apimeterFastify } from '@apimeter/fastify'
import express, { type NextFunction, type Request, type Response } from 'express'
import Fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { testMonitor } from '../../core/test/helpers/monitor.js'
import { recordedCalls, summary } from '../../../test/support/calls.js'
import { abortWhen, close, listen } from '../../../test/support/http.js'

/**
 * Three handlers that mark their request (one answers, one fails, one never answers and is aborted by the client)
 * and one ordinary route, on a real server of each framework. `reached()` is called when the slow one runs.
 */
type Serve = (monitor: Monitor, reached: () => void) => Promise<{ base: string; stop: () => Promise<void> }>

const express5: Serve = async (monitor, reached) => {
  const app = express()
  app.use(apimeter(monitor))
  app.get('/metrics', (req, res) => {
    skipMetering(req)
    res.type('text/plain').send('# nothing\n')
  })
  app.get('/internal/fail', (req, _res, next: NextFunction) => {
    skipMetering(req)
    next(new Error('boom'))
  })
  app.get('/internal/slow', (req) => {
    skipMetering(req)
    reached()
  })
  app.get('/orders/:id', (req, res) => {
    res.json({ id: req.params.id })
  })
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    res.status(500).send(err.message)
  })
  const server: Server = createServer(app)
  return { base: await listen(server), stop: () => close(server) }
}

const fastify5: Serve = async (monitor, reached) => {
  const app = Fastify({ forceCloseConnections: true })
  await app.register(apimeterFastify, { monitor })
  const mark = (raw: IncomingMessage) => skipMetering(raw)
  app.get('/metrics', async (request, reply) => {
    mark(request.raw)
    return reply.type('text/plain').send('# nothing\n')
  })
  app.get('/internal/fail', async (request) => {
    mark(request.raw)
    throw new Error('boom')
  })
  app.get('/internal/slow', (request) => {
    mark(request.raw)
    reached()
    return new Promise(() => undefined)
  })
  app.get('/orders/:id', async (request) => ({ id: (request.params as { id: string }).id }))
  return { base: await app.listen({ port: 0, host: '127.0.0.1' }), stop: () => app.close() }
}

describe.each([
  ['Express 5', express5],
  ['Fastify', fastify5],
] as const)('skipMetering on %s', (_name, serve) => {
  const cleanup: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const stop of cleanup.splice(0)) await stop()
  })

  it('records nothing for a marked request, whether it finishes, fails or is aborted, and the rest as usual', async () => {
    const { monitor, storage } = testMonitor()
    let reached!: () => void
    const handlerReached = new Promise<void>((resolve) => (reached = resolve))
    const { base, stop } = await serve(monitor, reached)
    cleanup.push(stop, () => monitor.close())

    expect(await (await fetch(`${base}/metrics`)).text()).toBe('# nothing\n')
    expect((await fetch(`${base}/internal/fail`)).status).toBe(500)
    await abortWhen(`${base}/internal/slow`, handlerReached)
    expect((await fetch(`${base}/orders/7`)).status).toBe(200)
    expect((await fetch(`${base}/metrics`)).status).toBe(200)
    expect((await fetch(`${base}/orders/8`)).status).toBe(200)

    await recordedCalls(monitor, storage)(2)
    await monitor.flush()
    expect(summary(storage.calls())).toEqual(['GET /orders/:id 200', 'GET /orders/:id 200'])
  })
})
