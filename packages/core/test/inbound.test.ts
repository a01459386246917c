import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, ServerResponse } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { type Monitor, UNMATCHED_ROUTE } from '@apimeter/core'
import { createInboundMeter, hashApiKey, joinRoute, templateFromMatch } from '@apimeter/core/inbound'
import { abortWhen, close, listen, sendChunked, waitFor } from '../../../test/support/http.js'
import { testMonitor } from './helpers/monitor.js'

describe('templateFromMatch()', () => {
  it.each([
    ['/orgs/acme/projects/42', { orgId: 'acme', id: '42' }, '/orgs/:orgId/projects/:id'],
    ['/orgs/acme', { orgId: 'acme' }, '/orgs/:orgId'],
    ['/v1', {}, '/v1'],
    ['/files/a/b.txt', { path: ['a', 'b.txt'] }, '/files/*path'],
    ['/files/a/b.txt', { 0: 'a/b.txt' }, '/files/*'],
    ['/range/2024-2025', { from: '2024', to: '2025' }, '/range/:to'],
    ['/users/users', { id: 'users' }, '/users/:id'],
    ['/caf%C3%A9/menu', { place: 'café' }, '/:place/menu'],
    ['/items/9f1c2d3e-0000-4000-8000-00000000abcd', {}, '/items/:id'],
    ['/items/123/', { id: '123' }, '/items/:id'],
    ['/', {}, '/'],
    ['', {}, '/'],
  ])('%s with %o gives %s', (path, params, template) => {
    expect(templateFromMatch(path, params)).toBe(template)
  })

  it('skips parameters already placed by a parent mount, and marks the ones it places', () => {
    const used = new Set<string>()
    expect(templateFromMatch('/orgs/acme', { orgId: 'acme' }, used)).toBe('/orgs/:orgId')
    // a mergeParams router sees its parent's orgId again: it must not be placed twice
    expect(templateFromMatch('/projects/acme', { orgId: 'acme', id: 'acme' }, used)).toBe('/projects/:id')
    expect([...used]).toEqual(['orgId', 'id'])
  })
})

describe('joinRoute()', () => {
  it.each([
    ['', '/users/:id', '/users/:id'],
    ['', '/', '/'],
    ['/users', '/', '/users'],
    ['/users', '', '/users'],
    ['/orgs/:orgId', '/projects/:id', '/orgs/:orgId/projects/:id'],
    ['/api/', '/x', '/api/x'],
    ['/api', '*', '/api/*'],
  ])('%s + %s = %s', (mount, route, joined) => {
    expect(joinRoute(mount, route)).toBe(joined)
  })
})

describe('hashApiKey()', () => {
  it('stores 16 hex digits of the SHA-256, the same for the same key, never the key', () => {
    const id = hashApiKey('sk_live_abcdef123456')
    expect(id).toBe(createHash('sha256').update('sk_live_abcdef123456').digest('hex').slice(0, 16))
    expect(id).toMatch(/^[0-9a-f]{16}$/)
    expect(hashApiKey('sk_live_abcdef123456')).toBe(id)
    expect(hashApiKey('sk_live_other')).not.toBe(id)
    expect(hashApiKey('')).toBeNull()
  })
})

describe('createInboundMeter()', () => {
  const config = { prefix: '@apimeter/test', monitorPath: 'monitor', clientIp: () => '10.0.0.1', switches: ['closeMonitor'] }

  it.each([
    [undefined, {}, '@apimeter/test: monitor must be a monitor from createMonitor(), got undefined'],
    ['monitor', {}, '@apimeter/test: monitor must be a monitor from createMonitor(), got "monitor"'],
    [null, { tenant: 'acme' }, '@apimeter/test: options.tenant must be a function (req) => string | undefined, got "acme"'],
    [null, { user: 42 }, '@apimeter/test: options.user must be a function (req) => string | undefined, got 42'],
    [null, { apiKey: 'x-api-key' }, '@apimeter/test: options.apiKey must be a function (req) => string | undefined, got "x-api-key"'],
    [null, { ignore: '/health' }, "@apimeter/test: options.ignore must be a list of paths starting with '/' and regular expressions, or a function (req) => boolean, got \"/health\""],
    [null, { ignore: ['/health', 'metrics'] }, "@apimeter/test: options.ignore[1] must be a path starting with '/' or a RegExp, got \"metrics\""],
    [null, { clientIp: 'no' }, '@apimeter/test: options.clientIp must be true or false, got "no"'],
    [null, { closeMonitor: 1 }, '@apimeter/test: options.closeMonitor must be true or false, got 1'],
    [null, { tenantId: () => 'x' }, '@apimeter/test: options.tenantId is not a known option (did you mean tenant?)'],
    [null, 'tenant', '@apimeter/test: options must be an object, got "tenant"'],
  ])('rejects monitor %o with options %o', (badMonitor, options, message) => {
    const { monitor } = testMonitor()
    expect(() => createInboundMeter(badMonitor === null ? monitor : badMonitor, options, config)).toThrow(
      expect.objectContaining({ name: 'ApimeterError', code: 'INVALID_OPTIONS', message }),
    )
  })

  it('accepts no options, and reports adapter switches', () => {
    const { monitor } = testMonitor()
    expect(createInboundMeter(monitor, undefined, config).switches).toEqual({ closeMonitor: undefined })
    expect(createInboundMeter(monitor, { closeMonitor: true }, config).switches).toEqual({ closeMonitor: true })
  })
})

/** A plain node:http server metered by the core meter alone: what every adapter builds on. */
describe('metering a node:http server', () => {
  const servers: ReturnType<typeof createServer>[] = []
  const monitors: Monitor[] = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(close))
    await Promise.all(monitors.splice(0).map((m) => m.close()))
  })

  async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void, options: object = {}, before?: (res: ServerResponse) => void) {
    const { monitor, storage, errors } = testMonitor()
    monitors.push(monitor)
    const meter = createInboundMeter<IncomingMessage>(monitor, options, { prefix: '@apimeter/test', monitorPath: 'monitor', clientIp: (req) => req.socket.remoteAddress })
    const server = createServer((req, res) => {
      before?.(res)
      const call = meter.start(req, req, res)
      if (call) {
        call.route = req.url?.startsWith('/known') ? '/known' : UNMATCHED_ROUTE
        res.on('close', () => (res.writableFinished ? call.finish(res.statusCode) : call.abort()))
      }
      handler(req, res)
    })
    servers.push(server)
    const base = await listen(server)
    const calls = async () => {
      await monitor.flush()
      return storage.calls()
    }
    return { base, calls, errors, monitor }
  }

  it('counts response bytes of fixed-length and chunked bodies, and request bytes of chunked uploads', async () => {
    const { base, calls } = await serve((req, res) => {
      if (req.method === 'POST') {
        let body = ''
        req.setEncoding('utf8')
        req.on('data', (chunk: string) => (body += chunk))
        req.on('end', () => res.end(`got ${Buffer.byteLength(body)}`))
        return
      }
      if (req.url === '/known/chunked') {
        res.write('héllo ') // 7 bytes
        res.write(Buffer.from('wörld')) // 6 bytes
        res.end('!', 'utf8')
        return
      }
      res.setHeader('content-type', 'text/plain')
      res.end('hello')
    })
    await (await fetch(`${base}/known/fixed`)).text()
    await (await fetch(`${base}/known/chunked`)).text()
    await (await fetch(`${base}/known/post`, { method: 'POST', body: 'x'.repeat(1000) })).text()
    expect(await sendChunked(`${base}/known/upload`, ['abc', 'défg', 'h'.repeat(500)])).toEqual({ status: 200, body: 'got 508' })
    await (await fetch(`${base}/known/fixed`, { method: 'HEAD' })).text()
    await waitFor(async () => (await calls()).length === 5, 'five calls')
    const recorded = await calls()
    expect(recorded.map((c) => [c.method, c.requestBytes, c.responseBytes])).toEqual([
      ['GET', 0, 5],
      ['GET', 0, 14],
      ['POST', 1000, 8],
      ['POST', 508, 7],
      ['HEAD', 0, 0],
    ])
    expect(recorded[0]).toMatchObject({ direction: 'inbound', route: '/known', statusCode: 200, outcome: 'success', clientIp: '127.0.0.1' })
    expect(recorded[0]!.ttfbMs).not.toBeNull()
  })

  it('counts a body once when the end() underneath writes it through this.write() (as light-my-request does)', async () => {
    const { base, calls } = await serve((_req, res) => res.end('twelve bytes'), {}, (res) => {
      res.end = function (this: ServerResponse, chunk?: unknown) {
        if (typeof chunk === 'string') this.write(chunk)
        return Reflect.apply(ServerResponse.prototype.end, this, []) as ServerResponse
      } as typeof res.end
    })
    await (await fetch(`${base}/known`)).text()
    await waitFor(async () => (await calls()).length === 1, 'one call')
    expect((await calls())[0]!.responseBytes).toBe(12)
  })

  it('records a client that goes away before the response as aborted, without a status', async () => {
    let arrived!: () => void
    const received = new Promise<void>((resolve) => (arrived = resolve))
    const { base, calls } = await serve(() => arrived()) // never answers
    await abortWhen(`${base}/known/slow`, received)
    await waitFor(async () => (await calls()).length === 1, 'the aborted call')
    expect((await calls())[0]).toMatchObject({ route: '/known', statusCode: null, outcome: 'aborted', errorType: 'AbortError' })
  })

  it('ignores paths, prefixes and patterns before starting a call', async () => {
    const { base, calls } = await serve((_req, res) => res.end('ok'), { ignore: ['/health', '/static/*', /^\/internal\//] })
    for (const path of ['/health', '/health?probe=1', '/static', '/static/app.js', '/internal/x', '/known/kept', '/healthz']) {
      await (await fetch(base + path)).text()
    }
    await waitFor(async () => (await calls()).length === 2, 'the two kept calls')
    expect((await calls()).map((c) => c.route)).toEqual(['/known', UNMATCHED_ROUTE])
  })

  it('reports a throwing or wrongly typed callback through the monitor and records the call without that field', async () => {
    const { base, calls, errors } = await serve((_req, res) => res.end('ok'), {
      tenant: () => {
        throw new Error('no session')
      },
      user: () => ({ id: 1 }),
      apiKey: (req: IncomingMessage) => req.headers['x-api-key'],
      ignore: (req: IncomingMessage) => {
        if (req.url === '/known/odd') throw new Error('bad predicate')
        return false
      },
    })
    const response = await fetch(`${base}/known/odd`, { headers: { 'x-api-key': 'secret-key-1' } })
    expect(await response.text()).toBe('ok')
    await waitFor(async () => (await calls()).length === 1, 'the call')
    const [call] = await calls()
    expect(call).toMatchObject({ tenantId: null, userId: null, apiKeyId: hashApiKey('secret-key-1'), statusCode: 200 })
    expect(JSON.stringify(call)).not.toContain('secret-key-1')
    await waitFor(() => errors.length === 3, 'three reported errors')
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ['CALLBACK_FAILED', '@apimeter/test: options.ignore(req) threw: bad predicate; the call was recorded without it'],
      ['CALLBACK_FAILED', '@apimeter/test: options.tenant(req) threw: no session; the call was recorded without it'],
      ['CALLBACK_FAILED', '@apimeter/test: options.user(req) returned an object with keys { id }, expected a string, a number or undefined; the call was recorded without it'],
    ])
  })
})
