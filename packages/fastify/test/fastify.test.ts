import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { type Monitor, UNMATCHED_ROUTE } from '@apimeter/core'
import { hashApiKey } from '@apimeter/core/inbound'
import { seededRandom } from '@apimeter/core/testing'
import { apimeter as apimeterExpress } from '@apimeter/express'
import { apimeterFastify, type ApimeterFastifyOptions } from '@apimeter/fastify'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { testMonitor } from '../../core/test/helpers/monitor.js'
import { expectBoundedRoutes, recordedCalls, summary } from '../../../test/support/calls.js'
import { abortWhen, inBatches, scanPaths, sendChunked, waitFor } from '../../../test/support/http.js'

describe('@apimeter/fastify', () => {
  const apps: FastifyInstance[] = []
  const monitors: Monitor[] = []
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()))
    await Promise.all(monitors.splice(0).map((m) => m.close()))
  })

  /** A fresh Fastify with the plugin registered first; `recorded(n)` waits for n calls in storage. */
  async function start(routes: (app: FastifyInstance) => void, options: Partial<ApimeterFastifyOptions> = {}) {
    const { monitor, storage, errors } = testMonitor()
    monitors.push(monitor)
    const app = Fastify()
    apps.push(app)
    await app.register(apimeterFastify, { monitor, ...options })
    routes(app)
    await app.ready()
    const recorded = recordedCalls(monitor, storage)
    return { app, monitor, storage, errors, recorded }
  }

  it('records the route template from routeOptions.url, with status, outcome, bytes and client', async () => {
    const { app, recorded } = await start((app) => {
      app.get('/users/:id', async (request) => ({ id: (request.params as { id: string }).id }))
      app.post('/users', async (request, reply) => reply.code(201).send(request.body))
    })
    expect(app.hasPlugin('@apimeter/fastify')).toBe(true)
    expect((await app.inject({ method: 'GET', url: '/users/42?expand=1' })).body).toBe('{"id":"42"}')
    await app.inject({ method: 'POST', url: '/users', payload: { name: 'ada' } })
    const calls = await recorded(2)
    expect(calls[0]).toMatchObject({
      direction: 'inbound',
      method: 'GET',
      route: '/users/:id',
      statusCode: 200,
      outcome: 'success',
      requestBytes: 0,
      responseBytes: 11,
      clientIp: '127.0.0.1',
      userAgent: 'lightMyRequest',
    })
    expect(calls[0]!.durationMs).toBeGreaterThan(0)
    expect(calls[1]).toMatchObject({ method: 'POST', route: '/users', statusCode: 201, requestBytes: 14, responseBytes: 14 })
  })

  it('records prefixed plugins, multi-method routes, wildcards and HEAD routes as declared', async () => {
    const { app, recorded } = await start((app) => {
      app.register(
        async (api) => {
          api.register(async (orgs) => orgs.get('/:orgId/projects/:id', async () => 'project'), { prefix: '/orgs' })
          api.route({ method: ['GET', 'PUT'], url: '/books/:isbn', handler: async () => 'book' })
        },
        { prefix: '/api/v1' },
      )
      app.get('/files/*', async () => 'file')
      app.get('/range/:from-:to', async () => 'range')
    })
    for (const [method, url] of [
      ['GET', '/api/v1/orgs/acme/projects/42'],
      ['GET', '/api/v1/books/978-3'],
      ['PUT', '/api/v1/books/978-3'],
      ['GET', '/files/a/b/c.txt'],
      ['GET', '/range/2024-2025'],
      ['HEAD', '/api/v1/books/1'],
    ] as const) {
      expect((await app.inject({ method, url })).statusCode).toBe(200)
    }
    const calls = await recorded(6)
    expect(summary(calls)).toEqual([
      'GET /api/v1/orgs/:orgId/projects/:id 200',
      'GET /api/v1/books/:isbn 200',
      'PUT /api/v1/books/:isbn 200',
      'GET /files/* 200',
      'GET /range/:from-:to 200',
      'HEAD /api/v1/books/:isbn 200',
    ])
    expect(calls[5]!.responseBytes).toBe(0)
  })

  it('sends requests no route matched to the constant route', async () => {
    const { app, recorded } = await start((app) => {
      app.get('/users/:id', async () => 'user')
    })
    expect((await app.inject({ url: '/nothing/here' })).statusCode).toBe(404)
    expect((await app.inject({ method: 'DELETE', url: '/users/1' })).statusCode).toBe(404)
    expect(summary(await recorded(2))).toEqual([`GET ${UNMATCHED_ROUTE} 404`, `DELETE ${UNMATCHED_ROUTE} 404`])
  })

  it('leaves out routes whose config says apimeter: false, and ignored paths', async () => {
    const { app, recorded, storage } = await start(
      (app) => {
        app.get('/health', { config: { apimeter: false } }, async () => 'ok')
        app.get('/metrics', async () => 'm')
        app.get('/kept', async () => 'kept')
      },
      { ignore: ['/metrics'] },
    )
    // sent in order: an opted-out call that was recorded would show up before the kept one
    expect((await app.inject({ url: '/health' })).body).toBe('ok')
    expect((await app.inject({ url: '/metrics' })).body).toBe('m')
    await app.inject({ url: '/kept' })
    await recorded(1)
    expect(summary(storage.calls())).toEqual(['GET /kept 200'])
  })

  it('keeps the error type and message of failures, with the outcome from the status', async () => {
    const { app, recorded } = await start((app) => {
      app.get('/boom/:id', async () => {
        throw new TypeError('cannot read the cart')
      })
      app.get('/teapot', async () => {
        throw Object.assign(new Error('short and stout'), { statusCode: 418 })
      })
      app.post('/orders', { schema: { body: { type: 'object', required: ['sku'] } } }, async () => 'created')
    })
    expect((await app.inject({ url: '/boom/1' })).statusCode).toBe(500)
    expect((await app.inject({ url: '/teapot' })).statusCode).toBe(418)
    expect((await app.inject({ method: 'POST', url: '/orders', payload: {} })).statusCode).toBe(400)
    const calls = await recorded(3)
    expect(calls.map((c) => [c.route, c.statusCode, c.outcome, c.errorType, c.errorMessage])).toEqual([
      ['/boom/:id', 500, 'server_error', 'TypeError', 'cannot read the cart'],
      ['/teapot', 418, 'client_error', 'Error', 'short and stout'],
      ['/orders', 400, 'client_error', 'FST_ERR_VALIDATION', "body must have required property 'sku'"],
    ])
  })

  it('records a client that goes away as aborted (real server, real client)', async () => {
    let arrived!: () => void
    const waiting = new Promise<void>((resolve) => (arrived = resolve))
    let streaming!: () => void
    const started = new Promise<void>((resolve) => (streaming = resolve))
    const { app, recorded } = await start((app) => {
      app.get('/jobs/:id/wait', () => {
        arrived()
        return new Promise(() => undefined) // never answers
      })
      app.get('/jobs/:id/stream', (_request, reply) => {
        const body = new Readable({ read() {} })
        body.push('first chunk')
        reply.send(body)
        setImmediate(streaming)
      })
    })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    await abortWhen(`${base}/jobs/1/wait`, waiting)
    await abortWhen(`${base}/jobs/2/stream`, started)
    const byRoute = Object.fromEntries((await recorded(2)).map((c) => [c.route, c]))
    expect(byRoute['/jobs/:id/wait']).toMatchObject({ statusCode: null, outcome: 'aborted', errorType: 'AbortError' })
    expect(byRoute['/jobs/:id/stream']).toMatchObject({ statusCode: 200, outcome: 'aborted', responseBytes: 11 })
  })

  it('counts chunked uploads and streamed responses over a real connection', async () => {
    const { app, recorded } = await start((app) => {
      app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => done(null, body))
      app.post('/upload', async (request) => `got ${Buffer.byteLength(request.body as string)}`)
      app.get('/stream', (_request, reply) => {
        reply.send(Readable.from(['part one, ', Buffer.from('part two, '), 'ünd done']))
      })
    })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    expect(await sendChunked(`${base}/upload`, ['a'.repeat(100), 'é'.repeat(50), 'z'])).toEqual({ status: 200, body: 'got 201' })
    expect(await (await fetch(`${base}/stream`)).text()).toBe('part one, part two, ünd done')
    expect((await recorded(2)).map((c) => [c.route, c.requestBytes, c.responseBytes, c.userAgent])).toEqual([
      ['/upload', 201, 7, null],
      ['/stream', 0, 29, 'node'],
    ])
  })

  it('watches a real server\'s responses without a listener, hook or wrapper per request; keep-alive and Connection: close alike', async () => {
    // What a response carries in its handler, bare and metered: the metered one must carry nothing more.
    const seen: Record<string, unknown>[] = []
    const inspect = (request: { raw: IncomingMessage }, reply: { raw: ServerResponse }) => {
      seen.push({
        finish: reply.raw.listenerCount('finish'),
        close: reply.raw.listenerCount('close'),
        error: reply.raw.listenerCount('error'),
        requestClose: request.raw.listenerCount('close'),
        ownWrite: Object.hasOwn(reply.raw, 'write') || Object.hasOwn(reply.raw, 'end'),
      })
      return { ok: true }
    }
    const bare = Fastify()
    apps.push(bare)
    bare.get('/look/:id', inspect)
    const bareBase = await bare.listen({ port: 0, host: '127.0.0.1' })
    const { app, recorded } = await start((app) => app.get('/look/:id', inspect))
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    for (const url of [`${bareBase}/look/1`, `${base}/look/1`, `${base}/look/2`]) expect((await fetch(url)).status).toBe(200)
    expect(await (await fetch(`${base}/look/3`, { headers: { connection: 'close' } })).json()).toEqual({ ok: true })
    expect(seen[1]).toEqual(seen[0])
    expect(seen[2]).toEqual(seen[0])
    expect(seen[0]).toMatchObject({ ownWrite: false })
    const calls = await recorded(3)
    expect(calls.map((c) => [c.route, c.statusCode, c.outcome, c.responseBytes])).toEqual([
      ['/look/:id', 200, 'success', 11],
      ['/look/:id', 200, 'success', 11],
      ['/look/:id', 200, 'success', 11],
    ])
  })

  it('counts bytes once when an Express app and a Fastify app are metered in one process', async () => {
    const { monitor, storage } = testMonitor()
    monitors.push(monitor)
    const express = (await import('express')).default
    const expressApp = express()
    expressApp.use(apimeterExpress(monitor))
    expressApp.get('/e/:id', (_req, res) => {
      res.write('twelve bytes')
      res.end('!')
    })
    const server = expressApp.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const { app, recorded: fastifyRecorded } = await start((app) => app.get('/f/:id', () => 'fastify'))
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      expect(await (await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/e/1`)).text()).toBe('twelve bytes!')
      expect(await (await fetch(`${base}/f/1`)).text()).toBe('fastify')
      expect((await fastifyRecorded(1)).map((c) => [c.route, c.responseBytes])).toEqual([['/f/:id', 7]])
      expect((await recordedCalls(monitor, storage)(1)).map((c) => [c.route, c.responseBytes])).toEqual([['/e/:id', 13]])
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it('reads tenant, user and API key when the response is done, storing only a key hash; a throwing callback is reported', async () => {
    const { app, recorded, errors } = await start(
      (app) => {
        app.addHook('preHandler', async (request) => {
          ;(request as { user?: { id: string; org: string } }).user = { id: 'u_42', org: 'acme' }
        })
        app.get('/me', async () => 'me')
      },
      {
        tenant: (request) => (request as { user?: { org: string } }).user?.org,
        user: () => {
          throw new Error('session store unreachable')
        },
        apiKey: (request) => request.headers['x-api-key'],
        clientIp: false,
      },
    )
    const response = await app.inject({ url: '/me', headers: { 'x-api-key': 'sk_live_0123456789' } })
    expect(response.body).toBe('me')
    const [call] = await recorded(1)
    expect(call).toMatchObject({ tenantId: 'acme', userId: null, apiKeyId: hashApiKey('sk_live_0123456789'), clientIp: null })
    expect(JSON.stringify(call)).not.toContain('sk_live_0123456789')
    await waitFor(() => errors.length === 1, 'the reported error')
    expect(errors[0]).toMatchObject({
      code: 'CALLBACK_FAILED',
      message: '@apimeter/fastify: options.user(req) threw: session store unreachable; the call was recorded without it',
    })
  })

  it('meters routes of encapsulated child plugins too (fastify-plugin skips encapsulation)', async () => {
    const { app, recorded } = await start((app) => {
      app.register(async (child) => {
        child.addHook('onRequest', async () => undefined) // a context of its own
        child.get('/inside/:id', async () => 'inside')
      })
    })
    await app.inject({ url: '/inside/1' })
    expect(summary(await recorded(1))).toEqual(['GET /inside/:id 200'])
  })

  it('records on every monitor when registered twice, each with its own per-request state', async () => {
    const second = testMonitor()
    monitors.push(second.monitor)
    const { app, recorded } = await start((app) => {
      app.register(apimeterFastify, { monitor: second.monitor, tenant: () => 'second' })
      app.get('/items/:id', async () => 'item')
    })
    await app.inject({ url: '/items/1' })
    expect(await recorded(1)).toMatchObject([{ route: '/items/:id', responseBytes: 4, tenantId: null }])
    expect(await recordedCalls(second.monitor, second.storage)(1)).toMatchObject([{ route: '/items/:id', responseBytes: 4, tenantId: 'second' }])
  })

  it('pipelined requests on one connection, metered by two monitors: each finished one recorded once, the open ones aborted when the client goes', async () => {
    const second = testMonitor()
    monitors.push(second.monitor)
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let reached!: () => void
    const allStarted = new Promise<void>((resolve) => (reached = resolve))
    const { app, recorded } = await start((app) => {
      app.register(apimeterFastify, { monitor: second.monitor })
      app.get('/slow/:id', async () => {
        await held
        return 'slow'
      })
      app.get('/fast/:id', async () => 'fast')
      app.get('/never/:id', () => {
        reached()
        return new Promise(() => undefined)
      })
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const socket = connect(port, '127.0.0.1')
    let received = ''
    socket.on('data', (data) => (received += String(data)))
    await new Promise((resolve) => socket.once('connect', resolve))
    const get = (path: string) => `GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`
    // three requests in one write: the second waits behind the first (held), the third never answers
    socket.write(get('/slow/1') + get('/fast/2') + get('/never/3'))
    await allStarted // Node hands pipelined requests to the app at once; their responses queue behind the first
    release()
    await waitFor(() => (received.match(/HTTP\/1\.1 200/g) ?? []).length === 2, 'both answers')
    socket.destroy()
    for (const calls of [await recorded(3), await recordedCalls(second.monitor, second.storage)(3)]) {
      const byRoute = Object.fromEntries(calls.map((c) => [c.route, c]))
      expect(calls).toHaveLength(3)
      expect(byRoute['/slow/:id']).toMatchObject({ statusCode: 200, outcome: 'success', responseBytes: 4 })
      expect(byRoute['/fast/:id']).toMatchObject({ statusCode: 200, outcome: 'success', responseBytes: 4 })
      expect(byRoute['/never/:id']).toMatchObject({ statusCode: null, outcome: 'aborted' })
    }
  })

  it('closes the monitor with the app only when closeMonitor is set', async () => {
    const kept = testMonitor()
    monitors.push(kept.monitor)
    const first = Fastify()
    await first.register(apimeterFastify, { monitor: kept.monitor })
    first.get('/x', async () => 'x')
    await first.inject({ url: '/x' })
    await first.close()
    kept.monitor.record({ direction: 'inbound', method: 'GET', route: '/after', statusCode: 200, durationMs: 1 })
    await kept.monitor.flush()
    expect(kept.storage.calls().map((c) => c.route)).toEqual(['/x', '/after'])

    const closed = testMonitor()
    const second = Fastify()
    await second.register(apimeterFastify, { monitor: closed.monitor, closeMonitor: true })
    second.get('/y', async () => 'y')
    await second.inject({ url: '/y' })
    await second.close() // flushes and closes the monitor
    expect(closed.monitor.health()).toMatchObject({ queued: 0, written: 1 })
    closed.monitor.record({ direction: 'inbound', method: 'GET', route: '/after', statusCode: 200, durationMs: 1 })
    expect(closed.monitor.health().dropped).toBe(1) // recorded after close(): dropped and counted
  })

  it('validates its options at register time', async () => {
    const { monitor } = testMonitor()
    monitors.push(monitor)
    const cases: [unknown, string][] = [
      [{ monitor, tenant: 'acme' }, '@apimeter/fastify: options.tenant must be a function (req) => string | undefined, got "acme"'],
      [{}, '@apimeter/fastify: options.monitor must be a monitor from createMonitor(), got undefined'],
      [{ monitor, closeMonitor: 'yes' }, '@apimeter/fastify: options.closeMonitor must be true or false, got "yes"'],
      [{ monitor, ignore: ['health'] }, `@apimeter/fastify: options.ignore[0] must be a path starting with '/' or a RegExp, got "health"`],
      [{ monitor, tennant: () => 'x' }, '@apimeter/fastify: options.tennant is not a known option (did you mean tenant?)'],
    ]
    for (const [options, message] of cases) {
      const app = Fastify()
      app.register(apimeterFastify, options as ApimeterFastifyOptions)
      await expect(app.ready()).rejects.toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', message }))
      await app.close()
    }
    // the options Fastify reads from every plugin's options are not ours to refuse
    const app = Fastify()
    apps.push(app)
    await app.register(apimeterFastify, { monitor, logLevel: 'warn' } as ApimeterFastifyOptions)
    await expect(app.ready()).resolves.toBe(app)
  })

  it('keeps the number of routes bounded under a scan of 10,000 random paths', async () => {
    const declared = ['/users/:id', '/orgs/:orgId/projects', '/orgs/:orgId/projects/:id', '/files/*', '/health']
    const { app, recorded, storage } = await start((app) => {
      app.get('/users/:id', async () => 'u')
      app.get('/orgs/:orgId/projects', async () => 'ps')
      app.get('/orgs/:orgId/projects/:id', async () => 'p')
      app.get('/files/*', async () => 'f')
      app.get('/health', async () => 'ok')
    })
    const word = (r: () => number) => Math.floor(r() * 36 ** 5).toString(36)
    const paths = scanPaths(10_000, seededRandom(20_261_123), [
      (r) => `/users/${word(r)}`,
      (r) => `/orgs/${word(r)}/projects/${Math.floor(r() * 1e6)}`,
      (r) => `/orgs/${word(r)}/projects`,
      (r) => `/files/${word(r)}/${word(r)}.txt`,
    ])
    await inBatches(paths, 16, (url) => app.inject({ url }))
    await recorded(10_000)
    expectBoundedRoutes(storage.calls(), declared, '/orgs/:orgId/projects/:id')
  }, 240_000) // 10,000 real requests: generous on a loaded machine (a limit, not an assertion)
})
