import diagnostics from 'node:diagnostics_channel'
import { createServer, type Server } from 'node:http'
import { type Monitor, UNMATCHED_ROUTE } from '@apimeter/core'
import { hashApiKey } from '@apimeter/core/inbound'
import { seededRandom } from '@apimeter/core/testing'
import { apimeter, type ApimeterExpressOptions } from '@apimeter/express'
import express5, { type Express, type NextFunction, type Request, type Response } from 'express'
import express4 from 'express4'
import { afterEach, describe, expect, it } from 'vitest'
import { testMonitor } from '../../core/test/helpers/monitor.js'
import type * as middleware from '../src/middleware.js'
import { expectBoundedRoutes, recordedCalls, summary } from '../../../test/support/calls.js'
import { abortWhen, close, inBatches, listen, scanPaths, sendChunked, waitFor } from '../../../test/support/http.js'

type ExpressFactory = typeof express5
// The same suite runs on both majors; only the wildcard syntax differs (path-to-regexp 8 names its wildcards).
const MAJORS: [string, ExpressFactory, { wildcard: string }][] = [
  ['Express 5', express5, { wildcard: '/files/*path' }],
  ['Express 4', express4, { wildcard: '/files/*' }],
]

const fail = (status: number) => (err: Error, _req: Request, res: Response, _next: NextFunction) => {
  res.status(status).send(`handled: ${err.message}`)
}

describe.each(MAJORS)('@apimeter/express on %s', (_major, express, features) => {
  const servers: Server[] = []
  const monitors: Monitor[] = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(close))
    await Promise.all(monitors.splice(0).map((m) => m.close()))
  })

  /** An app with the middleware first, on a real server; `recorded(n)` waits for n calls in storage. */
  async function start(routes: (app: Express) => void, options?: ApimeterExpressOptions, before?: (app: Express) => void) {
    const { monitor, storage, errors } = testMonitor()
    monitors.push(monitor)
    const app = express()
    before?.(app)
    app.use(apimeter(monitor, options))
    routes(app)
    const server = createServer(app)
    servers.push(server)
    const base = await listen(server)
    const get = async (path: string, init?: RequestInit): Promise<{ status: number; body: string }> => {
      const response = await fetch(base + path, init)
      return { status: response.status, body: await response.text() }
    }
    const recorded = recordedCalls(monitor, storage)
    return { app, base, get, recorded, errors, monitor, storage }
  }

  it('records a route with its status, outcome, timing, bytes and client', async () => {
    const { get, recorded } = await start((app) => {
      app.get('/users/:id', (req, res) => {
        res.json({ id: req.params.id })
      })
      app.post('/users', express.json(), (req, res) => {
        res.status(201).json(req.body)
      })
    })
    expect(await get('/users/42?expand=1')).toEqual({ status: 200, body: '{"id":"42"}' })
    await get('/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"ada"}' })
    const calls = await recorded(2)
    expect(calls[0]).toMatchObject({
      direction: 'inbound',
      method: 'GET',
      route: '/users/:id',
      url: null,
      statusCode: 200,
      outcome: 'success',
      requestBytes: 0,
      responseBytes: 11,
      clientIp: '127.0.0.1',
      userAgent: 'node',
    })
    expect(calls[0]!.durationMs).toBeGreaterThan(0)
    expect(calls[0]!.ttfbMs).toBeLessThanOrEqual(calls[0]!.durationMs)
    expect(calls[1]).toMatchObject({ method: 'POST', route: '/users', statusCode: 201, outcome: 'success', requestBytes: 14, responseBytes: 14 })
  })

  it('records nested routers with parameters in their mount paths as declared, at any depth', async () => {
    const seen: string[] = []
    const { get, recorded } = await start((app) => {
      const projects = express.Router({ mergeParams: true })
      projects.get('/', (_req, res) => {
        res.send('list')
      })
      projects.get('/:id', (req, res) => {
        seen.push(`${req.baseUrl} ${(req.route as { path: string }).path} ${JSON.stringify(req.params)}`)
        res.send('one')
      })
      const tasks = express.Router()
      tasks.get('/:taskId', (_req, res) => {
        res.send('task')
      })
      const orgs = express.Router()
      orgs.use('/:orgId/projects', projects)
      orgs.use('/:orgId/projects/:projectId/tasks', tasks)
      const v1 = express.Router()
      v1.use('/orgs', orgs)
      app.use('/orgs', orgs)
      app.use('/api/v1', v1)
    })
    await get('/orgs/acme/projects/42')
    await get('/orgs/acme/projects')
    await get('/orgs/globex/projects/')
    await get('/orgs/acme/projects/7/tasks/9')
    await get('/api/v1/orgs/4f8e1c22-3a4b-4c5d-8e9f-0a1b2c3d4e5f/projects/42')
    await get('/api/v1/orgs/same/projects/same')
    await get('/API/V1/Orgs/acme/PROJECTS/42') // Express matches case-insensitively; casings must not multiply routes
    expect(summary(await recorded(7))).toEqual([
      'GET /orgs/:orgId/projects/:id 200',
      'GET /orgs/:orgId/projects 200',
      'GET /orgs/:orgId/projects 200',
      'GET /orgs/:orgId/projects/:projectId/tasks/:taskId 200',
      'GET /api/v1/orgs/:orgId/projects/:id 200',
      'GET /api/v1/orgs/:orgId/projects/:id 200',
      'GET /api/v1/orgs/:orgId/projects/:id 200',
    ])
    // the app still sees Express's own values
    expect(seen[0]).toBe('/orgs/acme/projects /:id {"orgId":"acme","id":"42"}')
  })

  it('records app.route() chains, array paths, RegExp and wildcard routes', async () => {
    const { get, recorded } = await start((app) => {
      app
        .route('/books/:isbn')
        .get((_req, res) => {
          res.send('book')
        })
        .put((_req, res) => {
          res.status(204).end()
        })
      app.get(['/about', '/team/:member'], (_req, res) => {
        res.send('page')
      })
      const docs = express.Router()
      docs.get(['/guide/:page', '/ref'], (_req, res) => {
        res.send('doc')
      })
      app.use('/docs/:lang', docs)
      app.get(/^\/v\d+\/status$/, (_req, res) => {
        res.send('up')
      })
      app.get(features.wildcard, (_req, res) => {
        res.send('file')
      })
    })
    for (const path of ['/books/978-3', '/about', '/team/ada', '/docs/en/guide/install', '/docs/fr/ref', '/v1/status', '/v22/status', '/files/a/b/c.txt', '/TEAM/Ada']) {
      await get(path)
    }
    await get('/books/978-3', { method: 'PUT' })
    expect(summary(await recorded(10))).toEqual([
      'GET /books/:isbn 200',
      'GET /about 200',
      'GET /team/:member 200',
      'GET /docs/:lang/guide/:page 200',
      'GET /docs/:lang/ref 200',
      'GET /^\\/v\\d+\\/status$/ 200',
      'GET /^\\/v\\d+\\/status$/ 200',
      `GET ${features.wildcard} 200`,
      'GET /team/:member 200',
      'PUT /books/:isbn 204',
    ])
  })

  it('keeps the template after next(err), when Express has already reset req.baseUrl', async () => {
    let baseUrlInHandler: string | undefined
    const { get, recorded } = await start((app) => {
      const projects = express.Router({ mergeParams: true })
      projects.get('/:id', (_req, _res, next) => next(new Error('db down')))
      projects.get('/:id/report', (_req, _res, next) => {
        setTimeout(() => next(new Error('late failure')), 1)
      })
      const guarded = express.Router()
      guarded.get('/:id', () => {
        throw new Error('sync throw')
      })
      guarded.use(fail(502)) // an error handler inside the router
      app.use('/orgs/:orgId/projects', projects)
      app.use('/guarded', guarded)
      app.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
        baseUrlInHandler = req.baseUrl
        res.status(500).send(err.message)
      })
    })
    expect(await get('/orgs/acme/projects/1')).toEqual({ status: 500, body: 'db down' })
    expect(baseUrlInHandler).toBe('') // the pitfall: the mount path is gone by the time the error handler runs
    await get('/orgs/acme/projects/1/report')
    expect(await get('/guarded/3')).toEqual({ status: 502, body: 'handled: sync throw' })
    expect(summary(await recorded(3))).toEqual([
      'GET /orgs/:orgId/projects/:id 500',
      'GET /orgs/:orgId/projects/:id/report 500',
      'GET /guarded/:id 502',
    ])
    expect((await recorded(3)).map((c) => c.outcome)).toEqual(['server_error', 'server_error', 'server_error'])
  })

  it('shares one constant route for requests no route matched, and names middleware-served mounts', async () => {
    const { get, recorded } = await start((app) => {
      const api = express.Router()
      api.get('/items/:id', (_req, res) => {
        res.send('item')
      })
      app.use('/api/:version', api)
      app.use('/assets', (_req, res) => {
        res.send('static file') // like express.static: middleware, no route
      })
    })
    await get('/nothing/here')
    await get('/api/v2/nothing') // entered a router that had no matching route
    await get('/assets/app.js')
    await get('/assets/img/logo.png')
    expect(summary(await recorded(4))).toEqual([
      `GET ${UNMATCHED_ROUTE} 404`,
      `GET ${UNMATCHED_ROUTE} 404`,
      'GET /assets/* 200',
      'GET /assets/* 200',
    ])
  })

  it('records sub-apps mounted with app.use(path, subApp)', async () => {
    const { get, recorded } = await start((app) => {
      const admin = express()
      admin.get('/users/:id', (_req, res) => {
        res.send('admin user')
      })
      app.use('/admin/:tenant', admin)
    })
    expect((await get('/admin/acme/users/5')).body).toBe('admin user')
    expect(summary(await recorded(1))).toEqual(['GET /admin/:tenant/users/:id 200'])
  })

  it('counts streamed responses, chunked uploads and HEAD responses', async () => {
    const { base, get, recorded } = await start((app) => {
      app.get('/stream', (_req, res) => {
        res.write('part one, ')
        res.write(Buffer.from('part two, '))
        res.end('ünd done') // 9 bytes
      })
      app.post('/upload', express.text({ type: '*/*' }), (req, res) => {
        res.send(`got ${Buffer.byteLength(req.body as string)}`)
      })
    })
    expect((await get('/stream')).body).toBe('part one, part two, ünd done')
    expect(await sendChunked(`${base}/upload`, ['a'.repeat(100), 'é'.repeat(50), 'z'])).toEqual({ status: 200, body: 'got 201' })
    await get('/stream', { method: 'HEAD' })
    expect((await recorded(3)).map((c) => [c.method, c.route, c.requestBytes, c.responseBytes])).toEqual([
      ['GET', '/stream', 0, 29],
      ['POST', '/upload', 201, 7],
      ['HEAD', '/stream', 0, 0],
    ])
  })

  it('counts response bytes through the response prototype: nothing is wrapped on responses after the first', async () => {
    const wrapped: boolean[] = []
    const { get, recorded } = await start((app) => {
      app.get('/stream', (_req, res) => {
        wrapped.push(Object.hasOwn(res, 'write') || Object.hasOwn(res, 'end'))
        res.write('part one, ')
        res.write(Buffer.from('part two, '))
        res.end('ünd done')
      })
    })
    for (let i = 0; i < 3; i++) expect((await get('/stream')).body).toBe('part one, part two, ünd done')
    expect(wrapped.slice(1)).toEqual([false, false])
    expect((await recorded(3)).map((c) => c.responseBytes)).toEqual([29, 29, 29])
  })

  it('learns that a response is done from the server, with no listener added to the response', async () => {
    const listeners = (res: Response) => ({ finish: res.listenerCount('finish'), close: res.listenerCount('close'), error: res.listenerCount('error') })
    const seen: { bare?: object; metered: object[] } = { metered: [] }
    const bare = express()
    bare.get('/look/:id', (_req, res) => {
      seen.bare = listeners(res)
      res.send('ok')
    })
    const bareServer = createServer(bare)
    servers.push(bareServer)
    const bareBase = await listen(bareServer)
    const { get, recorded } = await start((app) => {
      app.get('/look/:id', (_req, res) => {
        seen.metered.push(listeners(res))
        res.send('ok')
      })
    })
    expect((await fetch(`${bareBase}/look/0`)).status).toBe(200)
    for (let i = 1; i <= 3; i++) expect((await get(`/look/${i}`)).body).toBe('ok')
    expect(seen.metered).toEqual([seen.bare, seen.bare, seen.bare])
    expect((await recorded(3)).map((c) => [c.route, c.statusCode, c.outcome, c.responseBytes])).toEqual(Array(3).fill(['/look/:id', 200, 'success', 2]))
  })

  it('records a client that goes away, before the response or in the middle of it, as aborted', async () => {
    let arrived!: () => void
    const waiting = new Promise<void>((resolve) => (arrived = resolve))
    let streaming!: () => void
    const started = new Promise<void>((resolve) => (streaming = resolve))
    const { base, recorded } = await start((app) => {
      const jobs = express.Router()
      jobs.get('/:id/wait', () => arrived()) // never answers
      jobs.get('/:id/stream', (_req, res) => {
        res.write('first chunk')
        streaming()
      })
      app.use('/jobs', jobs)
    })
    await abortWhen(`${base}/jobs/1/wait`, waiting)
    await abortWhen(`${base}/jobs/2/stream`, started)
    const calls = await recorded(2)
    const byRoute = Object.fromEntries(calls.map((c) => [c.route, c]))
    expect(byRoute['/jobs/:id/wait']).toMatchObject({ statusCode: null, outcome: 'aborted', errorType: 'AbortError', responseBytes: 0 })
    expect(byRoute['/jobs/:id/stream']).toMatchObject({ statusCode: 200, outcome: 'aborted', responseBytes: 11 })
  })

  it('reads tenant, user and API key when the response is done (after auth middleware), storing only a key hash', async () => {
    const { get, recorded } = await start(
      (app) => {
        app.use((req, _res, next) => {
          ;(req as Request & { user?: { id: number; org: string } }).user = { id: 7, org: 'acme' }
          next()
        })
        app.get('/me', (_req, res) => {
          res.send('me')
        })
      },
      {
        tenant: (req) => (req as Request & { user?: { org: string } }).user?.org,
        user: (req) => (req as Request & { user?: { id: number } }).user?.id,
        apiKey: (req) => req.get('x-api-key'),
      },
    )
    await get('/me', { headers: { 'x-api-key': 'sk_test_51Habcdef' } })
    await get('/me')
    const calls = await recorded(2)
    expect(calls[0]).toMatchObject({ tenantId: 'acme', userId: '7', apiKeyId: hashApiKey('sk_test_51Habcdef') })
    expect(calls[1]).toMatchObject({ tenantId: 'acme', userId: '7', apiKeyId: null })
    expect(JSON.stringify(calls)).not.toContain('sk_test_51Habcdef')
  })

  it('never lets a throwing callback break the request: recorded without the field, reported on the monitor', async () => {
    const { get, recorded, errors } = await start(
      (app) => {
        app.get('/ok', (_req, res) => {
          res.send('fine')
        })
      },
      {
        tenant: () => {
          throw new TypeError("Cannot read properties of undefined (reading 'org')")
        },
      },
    )
    expect(await get('/ok')).toEqual({ status: 200, body: 'fine' })
    expect(await recorded(1)).toMatchObject([{ route: '/ok', statusCode: 200, tenantId: null }])
    await waitFor(() => errors.length === 1, 'the reported error')
    expect(errors[0]).toMatchObject({
      code: 'CALLBACK_FAILED',
      message: "@apimeter/express: options.tenant(req) threw: Cannot read properties of undefined (reading 'org'); the call was recorded without it",
    })
  })

  it('skips ignored paths and predicates, and stores the client address as Express resolves it', async () => {
    const { get, recorded } = await start(
      (app) => {
        app.get('/health', (_req, res) => {
          res.send('ok')
        })
        app.get('/page', (_req, res) => {
          res.send('page')
        })
      },
      { ignore: (req) => req.path === '/health' || req.get('x-synthetic') === '1' },
      (app) => app.set('trust proxy', true),
    )
    expect((await get('/health')).body).toBe('ok')
    await get('/page', { headers: { 'x-synthetic': '1' } })
    await get('/page', { headers: { 'x-forwarded-for': '203.0.113.9' } })
    expect(await recorded(1)).toMatchObject([{ route: '/page', clientIp: '203.0.113.9' }])

    // requests are sent in order, so an ignored call that was recorded would show up before the kept one
    const quiet = await start((app) => app.get('/x', (_req, res) => res.send('x')), { clientIp: false, ignore: ['/health', '/static/*'] })
    await quiet.get('/health')
    await quiet.get('/static/app.css')
    await quiet.get('/x')
    expect(await quiet.recorded(1)).toMatchObject([{ route: '/x', clientIp: null }])

    // no proxy trusted (the default): a forwarded-for header is the client's claim, not its address
    const direct = await start((app) => app.get('/d', (_req, res) => res.send('d')))
    await direct.get('/d', { headers: { 'x-forwarded-for': '203.0.113.9' } })
    expect(await direct.recorded(1)).toMatchObject([{ route: '/d', clientIp: '127.0.0.1' }])
  })

  it('records on every monitor when the middleware is used twice', async () => {
    const second = testMonitor()
    monitors.push(second.monitor)
    const { get, recorded } = await start(
      (app) => {
        const items = express.Router()
        items.get('/:id', (_req, res) => {
          res.send('item')
        })
        app.use('/shops/:shopId/items', items)
      },
      {},
      (app) => app.use(apimeter(second.monitor)),
    )
    await get('/shops/s1/items/9')
    expect(summary(await recorded(1))).toEqual(['GET /shops/:shopId/items/:id 200'])
    expect(summary(await recordedCalls(second.monitor, second.storage)(1))).toEqual(['GET /shops/:shopId/items/:id 200'])
  })

  it('gives the requests of a metered server their slots when the server hands them over, and no others', async () => {
    // What the slots are found by: the one symbol of this package on a request (see SLOTS in src/middleware.ts).
    const hasSlots = (request: object) => Object.getOwnPropertySymbols(request).some((key) => key.description === 'apimeter.express.slots')
    const early = new Map<string, boolean>()
    // subscribed after the middleware's own subscriber (created by apimeter() in start()), so it sees what that one did
    const onStart = (message: unknown) => {
      const { request } = message as { request: { url?: string } }
      early.set(request.url ?? '', hasSlots(request))
    }
    const { get, recorded } = await start((app) => {
      const users = express.Router({ mergeParams: true })
      users.get('/orders/:orderId', (req, res) => {
        res.send(`${req.baseUrl} ${(req.route as { path: string }).path}`)
      })
      app.use('/users/:userId', users)
    })
    diagnostics.subscribe('http.server.request.start', onStart)
    const plain = createServer((_req, res) => res.end('plain'))
    servers.push(plain)
    const plainBase = await listen(plain)
    try {
      expect((await get('/users/1/orders/9')).body).toBe('/users/1 /orders/:orderId')
      expect((await get('/users/2/orders/9')).body).toBe('/users/2 /orders/:orderId')
      expect((await get('/users/3/orders/9')).body).toBe('/users/3 /orders/:orderId')
      expect(await (await fetch(`${plainBase}/elsewhere`)).text()).toBe('plain')
    } finally {
      diagnostics.unsubscribe('http.server.request.start', onStart)
    }
    expect(summary(await recorded(3))).toEqual(Array(3).fill('GET /users/:userId/orders/:orderId 200'))
    // the server was marked by its first metered request; every later one had its slots before Express saw it
    expect([early.get('/users/2/orders/9'), early.get('/users/3/orders/9')]).toEqual([true, true])
    // a server no apimeter middleware has seen is left alone
    expect(early.get('/elsewhere')).toBe(false)
  })

  it('works alongside another copy of the package (two versions installed), each recording the template', async () => {
    // a second module instance: its own symbols, so it chains to the accessors the first one installed
    const secondCopy = '../src/middleware.ts?second-copy'
    const other = (await import(secondCopy)) as typeof middleware
    expect(other.apimeter).not.toBe(apimeter)
    const second = testMonitor()
    monitors.push(second.monitor)
    const { get, recorded } = await start(
      (app) => {
        const items = express.Router()
        items.get('/:id', (req, res) => {
          res.send(`${req.baseUrl} ${(req.route as { path: string }).path}`)
        })
        app.use('/shops/:shopId/items', items)
      },
      {},
      (app) => app.use(other.apimeter(second.monitor)),
    )
    expect((await get('/shops/s1/items/9')).body).toBe('/shops/s1/items /:id')
    expect(summary(await recorded(1))).toEqual(['GET /shops/:shopId/items/:id 200'])
    expect(summary(await recordedCalls(second.monitor, second.storage)(1))).toEqual(['GET /shops/:shopId/items/:id 200'])
  })

  it('keeps the number of routes bounded under a scan of 10,000 random paths', async () => {
    const declared = ['/users/:id', '/orgs/:orgId/projects', '/orgs/:orgId/projects/:id', features.wildcard, '/assets/*', '/health']
    const { get, recorded, storage } = await start((app) => {
      app.get('/users/:id', (_req, res) => {
        res.send('u')
      })
      const projects = express.Router({ mergeParams: true })
      projects.get('/', (_req, res) => {
        res.send('ps')
      })
      projects.get('/:id', (_req, res) => {
        res.send('p')
      })
      app.use('/orgs/:orgId/projects', projects)
      app.get(features.wildcard, (_req, res) => {
        res.send('f')
      })
      app.use('/assets', (_req, res) => {
        res.send('a')
      })
      app.get('/health', (_req, res) => {
        res.send('ok')
      })
    })
    const word = (r: () => number) => Math.floor(r() * 36 ** 5).toString(36)
    const casing = (r: () => number, text: string) => [...text].map((c) => (r() < 0.5 ? c.toUpperCase() : c)).join('')
    const paths = scanPaths(10_000, seededRandom(20_261_122), [
      (r) => `/${casing(r, 'orgs')}/${word(r)}/${casing(r, 'projects')}/${Math.floor(r() * 1e6)}`,
      (r) => `/users/${word(r)}`,
      (r) => `/orgs/${word(r)}/projects/${Math.floor(r() * 1e6)}`,
      (r) => `/orgs/${word(r)}/projects`,
      (r) => `/files/${word(r)}/${word(r)}.txt`,
      (r) => `/assets/${word(r)}.js`,
    ])
    await inBatches(paths, 16, (path) => get(path))
    await recorded(10_000)
    expectBoundedRoutes(storage.calls(), declared, '/orgs/:orgId/projects/:id')
  }, 240_000) // 10,000 real requests: generous on a loaded machine (a limit, not an assertion)

  it('validates its arguments with messages naming the option, the expectation and the value', async () => {
    const { monitor } = testMonitor()
    monitors.push(monitor)
    expect(() => apimeter(monitor, { tenant: 'acme' } as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: '@apimeter/express: options.tenant must be a function (req) => string | undefined, got "acme"' }),
    )
    expect(() => apimeter(undefined as never)).toThrow('@apimeter/express: monitor must be a monitor from createMonitor(), got undefined')
    expect(() => apimeter(monitor, { ignore: ['health'] })).toThrow(`@apimeter/express: options.ignore[0] must be a path starting with '/' or a RegExp, got "health"`)
    expect(() => apimeter(monitor, { user: () => 1, closeMonitor: true } as never)).toThrow('@apimeter/express: options.closeMonitor is not a known option')
  })
})

describe('@apimeter/express on Express 5 only', () => {
  const servers: Server[] = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(close))
  })

  it('keeps the template when an async handler throws (Express 5 forwards rejected promises to next(err))', async () => {
    const { monitor, storage } = testMonitor()
    const app = express5()
    app.use(apimeter(monitor))
    const projects = express5.Router({ mergeParams: true })
    projects.get('/:id', async () => {
      await new Promise((resolve) => setTimeout(resolve, 1))
      throw new Error('async failure')
    })
    app.use('/orgs/:orgId/projects', projects)
    app.use(fail(500))
    const server = createServer(app)
    servers.push(server)
    const response = await fetch(`${await listen(server)}/orgs/acme/projects/3`)
    expect(await response.text()).toBe('handled: async failure')
    expect(await recordedCalls(monitor, storage)(1)).toMatchObject([{ route: '/orgs/:orgId/projects/:id', statusCode: 500, outcome: 'server_error' }])
    await monitor.close()
  })

  it('watches the router through the request prototype: no accessor defined on the requests after the first', async () => {
    const { monitor, storage } = testMonitor()
    const app = express5()
    app.use(apimeter(monitor))
    const own: string[] = []
    const projects = express5.Router({ mergeParams: true })
    projects.get('/:id', (req, res) => {
      own.push(Object.getOwnPropertyDescriptor(req, 'baseUrl')?.get ? 'accessor' : 'none')
      res.send(`${req.baseUrl} ${(req.route as { path: string }).path}`)
    })
    projects.get('/:id/fail', (_req, _res, next) => next(new Error('boom')))
    const admin = express5()
    admin.get('/users/:id', (_req, res) => {
      res.send('admin')
    })
    app.use('/orgs/:orgId/projects', projects)
    app.use('/admin/:tenant', admin)
    app.use(fail(500))
    const server = createServer(app)
    servers.push(server)
    const base = await listen(server)
    const bodies: string[] = []
    for (let i = 1; i <= 3; i++) bodies.push(await (await fetch(`${base}/orgs/o${i}/projects/${i}`)).text())
    await (await fetch(`${base}/orgs/acme/projects/4/fail`)).text()
    await (await fetch(`${base}/admin/acme/users/5`)).text()
    await (await fetch(`${base}/nowhere`)).text()
    expect(bodies).toEqual(['/orgs/o1/projects /:id', '/orgs/o2/projects /:id', '/orgs/o3/projects /:id'])
    // The first request of an app arrives before the prototype is watched; every later one is watched through it.
    expect(own.slice(1)).toEqual(['none', 'none'])
    expect(summary(await recordedCalls(monitor, storage)(6))).toEqual([
      'GET /orgs/:orgId/projects/:id 200',
      'GET /orgs/:orgId/projects/:id 200',
      'GET /orgs/:orgId/projects/:id 200',
      'GET /orgs/:orgId/projects/:id/fail 500',
      'GET /admin/:tenant/users/:id 200',
      `GET ${UNMATCHED_ROUTE} 404`,
    ])
    await monitor.close()
  })

  it('chains to another copy of the package on the request prototype, request after request', async () => {
    const thirdCopy = '../src/middleware.ts?third-copy'
    const other = (await import(thirdCopy)) as typeof middleware
    const first = testMonitor()
    const second = testMonitor()
    const app = express5()
    app.use(other.apimeter(first.monitor))
    app.use(apimeter(second.monitor))
    const items = express5.Router()
    items.get('/:id', (req, res) => {
      res.send(`${req.baseUrl} ${(req.route as { path: string }).path}`)
    })
    app.use('/shops/:shopId/items', items)
    const server = createServer(app)
    servers.push(server)
    const base = await listen(server)
    for (let i = 1; i <= 3; i++) expect(await (await fetch(`${base}/shops/s${i}/items/${i}`)).text()).toBe(`/shops/s${i}/items /:id`)
    const expected = Array(3).fill('GET /shops/:shopId/items/:id 200')
    expect(summary(await recordedCalls(first.monitor, first.storage)(3))).toEqual(expected)
    expect(summary(await recordedCalls(second.monitor, second.storage)(3))).toEqual(expected)
    await first.monitor.close()
    await second.monitor.close()
  })
})

describe('@apimeter/express on Express 4 only', () => {
  const servers: Server[] = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(close))
  })

  it('watches requests after the first through the prototypes: the router\'s early baseUrl write adds no own property', async () => {
    const { monitor, storage } = testMonitor()
    const app = express4()
    app.use(apimeter(monitor))
    const own: boolean[] = []
    const users = express4.Router({ mergeParams: true })
    users.get('/orders/:orderId', (req, res) => {
      own.push(Object.hasOwn(req, 'baseUrl'))
      res.json({ baseUrl: req.baseUrl })
    })
    app.use('/users/:userId', users)
    const server = createServer(app)
    servers.push(server)
    const base = await listen(server)
    for (let i = 0; i < 3; i++) expect(await (await fetch(`${base}/users/${i}/orders/9`)).json()).toEqual({ baseUrl: `/users/${i}` })
    const calls = await recordedCalls(monitor, storage)(3)
    expect(calls.map((c) => c.route)).toEqual(['/users/:userId/orders/:orderId', '/users/:userId/orders/:orderId', '/users/:userId/orders/:orderId'])
    // Express 4 wrote baseUrl before giving the request its prototype; that write now reaches the accessor
    expect(own.slice(1)).toEqual([false, false])
    await monitor.close()
  })

  it('leaves baseUrl an ordinary property of requests no Express app handles', async () => {
    const server = createServer((req, res) => {
      const before = (req as { baseUrl?: string }).baseUrl
      ;(req as { baseUrl?: string }).baseUrl = '/plain'
      res.end(JSON.stringify({ before: before ?? null, after: (req as { baseUrl?: string }).baseUrl }))
    })
    servers.push(server)
    const base = await listen(server)
    // whether or not an Express 4 app in this process put the accessor on http.IncomingMessage.prototype already
    expect(await (await fetch(`${base}/x`)).json()).toEqual({ before: null, after: '/plain' })
    expect(await (await fetch(`${base}/y`)).json()).toEqual({ before: null, after: '/plain' })
  })
})
