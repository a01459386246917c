import { describe, expect, it } from 'vitest'
import { type CallInput, createMonitor, memoryStorage, OVERFLOW_ROUTE } from '@apimeter/core'
import { testMonitor, tick } from './helpers/monitor.js'

const valid: CallInput = { direction: 'outbound', api: 'openai', method: 'post', route: '/v1/chat/completions', statusCode: 200, durationMs: 12.3456789 }

describe('monitor.record()', () => {
  it('normalises a call: upper-case method, microsecond duration, default timestamp, service, outcome and id', async () => {
    const now = Date.UTC(2026, 5, 1, 12)
    const { monitor, storage } = testMonitor({ service: 'checkout', clock: { now: () => now } })
    monitor.record(valid)
    monitor.record({ ...valid, cost: 0.0021, costSource: 'provider' })
    await monitor.flush()
    const [a, b] = storage.calls()
    expect(a).toMatchObject({
      direction: 'outbound',
      service: 'checkout',
      api: 'openai',
      method: 'POST',
      route: '/v1/chat/completions',
      statusCode: 200,
      outcome: 'success',
      durationMs: 12.346,
      timestamp: now,
      attempt: 1,
      costNanos: null,
      costSource: null,
      cached: false,
    })
    expect(b!.costNanos).toBe(2_100_000)
    expect(b!.costSource).toBe('provider')
    expect(a!.id).not.toBe(b!.id)
    await monitor.close()
  })

  it('copies the call: mutating the input object after record() changes nothing', async () => {
    const { monitor, storage } = testMonitor()
    const reused: CallInput = { ...valid, tenantId: 'first' }
    monitor.record(reused)
    reused.tenantId = 'second'
    reused.statusCode = 500
    monitor.record(reused)
    await monitor.flush()
    expect(storage.calls().map((c) => [c.tenantId, c.statusCode])).toEqual([
      ['first', 200],
      ['second', 500],
    ])
    await monitor.close()
  })

  it('classifies outcomes from status codes in one place', async () => {
    const { monitor, storage } = testMonitor()
    for (const statusCode of [101, 200, 204, 304, 400, 404, 408, 429, 500, 503, 599]) monitor.record({ ...valid, statusCode })
    await monitor.flush()
    expect(storage.calls().map((c) => `${c.statusCode}:${c.outcome}`)).toEqual([
      '101:success', '200:success', '204:success', '304:success', '400:client_error', '404:client_error',
      '408:client_error', '429:rate_limited', '500:server_error', '503:server_error', '599:server_error',
    ])
    await monitor.close()
  })

  it('derives outcome, error type and message from an error when no response arrived', async () => {
    const { monitor, storage } = testMonitor()
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
    monitor.record({ ...valid, statusCode: null, error: new TypeError('fetch failed', { cause: refused }) })
    monitor.record({ ...valid, statusCode: undefined, error: new DOMException('The operation was aborted due to timeout', 'TimeoutError') })
    monitor.record({ ...valid, statusCode: undefined, error: new DOMException('This operation was aborted', 'AbortError') })
    monitor.record({ ...valid, statusCode: undefined, outcome: 'network_error', errorType: 'EPIPE' })
    // a status code plus an explicit outcome: a response that started but was cut
    monitor.record({ ...valid, statusCode: 200, outcome: 'aborted' })
    await monitor.flush()
    expect(storage.calls().map((c) => [c.outcome, c.errorType, c.statusCode])).toEqual([
      ['network_error', 'ECONNREFUSED', null],
      ['timeout', 'TimeoutError', null],
      ['aborted', 'AbortError', null],
      ['network_error', 'EPIPE', null],
      ['aborted', null, 200],
    ])
    expect(storage.calls()[0]!.errorMessage).toBe('connect ECONNREFUSED 127.0.0.1:1')
    await monitor.close()
  })

  it('folds URLs into routes, keeps the host and masks secrets in the stored URL', async () => {
    const { monitor, storage } = testMonitor()
    monitor.record({ direction: 'outbound', method: 'GET', url: 'https://user:pw@API.example.com/v1/users/42/orders/9f1c2d3e-0000-4000-8000-00000000abcd?expand=1&api_key=sk-123', statusCode: 200, durationMs: 1 })
    monitor.record({ direction: 'inbound', method: 'GET', url: '/files/5f2b8c9d0e1a2b3c4d5e6f70/raw?token=abc', statusCode: 200, durationMs: 1 })
    await monitor.flush()
    const [outbound, inbound] = storage.calls()
    expect(outbound).toMatchObject({
      route: '/v1/users/:id/orders/:id',
      host: 'api.example.com',
      url: 'https://api.example.com/v1/users/42/orders/9f1c2d3e-0000-4000-8000-00000000abcd?expand=1&api_key=***',
    })
    expect(inbound).toMatchObject({ route: '/files/:id/raw', host: null, url: '/files/5f2b8c9d0e1a2b3c4d5e6f70/raw?token=***' })
    await monitor.close()
  })

  it('resolves a repeated URL the same every time: masked, folded, and folded again when another host is given', async () => {
    const { monitor, storage } = testMonitor({ redact: { paths: [/\/acct-(\w+)\//] } })
    const url = 'https://hooks.slack.com/services/T0123ABCD/B0456EFGH/aBcDeFgHiJkLmNoPqRsTuVwX?token=abc'
    const scoped = 'https://api.example.com/v1/acct-7731/items/42?expand=1'
    for (let i = 0; i < 3; i++) {
      monitor.record({ direction: 'outbound', method: 'POST', url, statusCode: 200, durationMs: 1 })
      monitor.record({ direction: 'outbound', method: 'GET', url: scoped, statusCode: 200, durationMs: 1 })
    }
    monitor.record({ direction: 'outbound', method: 'POST', url, host: 'relay.internal', statusCode: 200, durationMs: 1 })
    await monitor.flush()
    const calls = storage.calls()
    const first = calls[0]!
    const second = calls[1]!
    expect(first).toMatchObject({ host: 'hooks.slack.com', route: '/services/:secret/:secret/:secret', url: 'https://hooks.slack.com/services/:secret/:secret/:secret?token=***' })
    expect(second).toMatchObject({ host: 'api.example.com', route: '/v1/acct-:secret/items/:id', url: 'https://api.example.com/v1/acct-:secret/items/42?expand=1' })
    for (let i = 0; i < 3; i++) {
      expect(calls[2 * i]).toMatchObject({ host: first.host, route: first.route, url: first.url })
      expect(calls[2 * i + 1]).toMatchObject({ host: second.host, route: second.route, url: second.url })
    }
    // the host given wins, and the path is folded for it (no Slack rule applies to another host)
    expect(calls[6]).toMatchObject({ host: 'relay.internal', url: first.url, route: '/services/T0123ABCD/B0456EFGH/aBcDeFgHiJkLmNoPqRsTuVwX' })
    await monitor.close()
  })

  it('keeps route cardinality bounded under a URL scan', async () => {
    const { monitor, storage } = testMonitor({ maxRoutes: 50, batchSize: 5000, maxBufferSize: 200_000 })
    for (let i = 0; i < 100_000; i++) {
      // digits mapped to letters (not all to one letter: six digits in a row would make one word that repeats, a real
      // route that now earns its place)
      const word = Math.random().toString(36).slice(2, 8).replace(/\d/g, (d) => 'klmnopqrst'[Number(d)]!)
      monitor.record({ direction: 'inbound', method: 'GET', url: `/scan/${word}/${i}`, statusCode: 404, durationMs: 1 })
    }
    await monitor.flush()
    const routes = new Set(storage.calls().map((c) => c.route))
    expect(storage.size).toBe(100_000)
    expect(routes.size).toBeLessThanOrEqual(51)
    expect(routes.has(OVERFLOW_ROUTE)).toBe(true)
    const byRoute = await monitor.stats.breakdown({ by: 'route' })
    expect(byRoute.reduce((n, r) => n + r.requests, 0)).toBe(100_000)
    await monitor.close()
  })

  it.each<[string, unknown, RegExp]>([
    ['not an object', 'GET /', /call must be an object, got "GET \/"/],
    ['bad direction', { ...valid, direction: 'sideways' }, /call\.direction must be 'inbound' or 'outbound', got "sideways"/],
    ['missing method', { ...valid, method: undefined }, /call\.method must be an HTTP method string/],
    ['negative duration', { ...valid, durationMs: -1 }, /call\.durationMs must be a finite number of milliseconds >= 0, got -1/],
    ['NaN duration', { ...valid, durationMs: Number.NaN }, /call\.durationMs must be .* got NaN/],
    ['no route or url', { ...valid, route: undefined }, /call\.route must be a route template string \(or give call\.url\)/],
    ['status out of range', { ...valid, statusCode: 42 }, /call\.statusCode must be an HTTP status code \(100-999\) or null, got 42/],
    ['no status and no reason', { ...valid, statusCode: null }, /call\.statusCode must be an HTTP status code, or call\.outcome/],
    ['success without status', { ...valid, statusCode: null, outcome: 'success' }, /call\.outcome must be 'timeout', 'network_error' or 'aborted' when no statusCode/],
    ['unknown outcome', { ...valid, outcome: 'meh' }, /call\.outcome must be one of/],
    ['negative cost', { ...valid, cost: -0.01 }, /call\.cost must be a USD amount/],
    ['cost as string', { ...valid, cost: '0.01' }, /call\.cost must be a USD amount between 0 and 9,000,000 or null, got "0\.01"/],
    ['fractional tokens', { ...valid, inputTokens: 1.5 }, /call\.inputTokens must be a whole number >= 0 or null, got 1\.5/],
    ['bad timestamp', { ...valid, timestamp: new Date('nope') }, /call\.timestamp must be epoch milliseconds or a valid Date, got an invalid Date/],
    ['typo in a field name', { ...valid, statuscode: 200 }, /call\.statuscode is not a known field \(did you mean statusCode\?\)/],
    ['unknown cost source', { ...valid, costSource: 'guess' }, /call\.costSource must be one of provider, computed, estimated, unknown/],
    ['cost with unknown source', { ...valid, cost: 1, costSource: 'unknown' }, /call\.costSource must be not 'unknown' when call\.cost is given/],
    ['bad attempt', { ...valid, attempt: 0 }, /call\.attempt must be a whole number from 1 to 1000, got 0/],
    ['bad tenant', { ...valid, tenantId: { id: 1 } }, /call\.tenantId must be a string, a number or null/],
    ['bad rate limit', { ...valid, rateLimit: { remaining: -1 } }, /call\.rateLimit\.remaining must be a finite number >= 0 or null, got -1/],
  ])('never throws on bad input (%s): counts it and emits an error naming the field', async (_label, call, message) => {
    const { monitor, errors, storage } = testMonitor()
    expect(() => monitor.record(call as CallInput)).not.toThrow()
    monitor.record(valid)
    await monitor.flush()
    await tick()
    expect(monitor.health()).toMatchObject({ invalid: 1, written: 1, dropped: 0 })
    expect(storage.size).toBe(1)
    expect(errors).toHaveLength(1)
    expect(errors[0]!.code).toBe('INVALID_CALL')
    expect(errors[0]!.message).toMatch(/^@apimeter\/core: /)
    expect(errors[0]!.message).toMatch(message)
    expect(monitor.health().lastError?.code).toBe('INVALID_CALL')
    await monitor.close()
  })

  it('caps long strings and keeps a call whose metadata cannot be stored', async () => {
    const { monitor, errors, storage } = testMonitor()
    const circular: Record<string, unknown> = {}
    circular.self = circular
    monitor.record({ ...valid, errorMessage: 'x'.repeat(5000), metadata: circular })
    monitor.record({ ...valid, metadata: { big: 'y'.repeat(10_000) } })
    monitor.record({ ...valid, metadata: { plan: 'pro' } })
    await monitor.flush()
    await tick()
    const [a, b, c] = storage.calls()
    expect(a!.errorMessage!.length).toBe(1024)
    expect(a!.metadata).toBeNull()
    expect(b!.metadata).toBeNull()
    expect(c!.metadata).toBe('{"plan":"pro"}')
    expect(errors.map((e) => e.code)).toEqual(['METADATA_DROPPED', 'METADATA_DROPPED'])
    expect(monitor.health().invalid).toBe(0)
    await monitor.close()
  })

  it('survives an error listener that throws or records another invalid call', async () => {
    const warnings: string[] = []
    const monitor = createMonitor({ storage: memoryStorage(), flushOnExit: false, logger: { warn: (m) => warnings.push(m) } })
    let calls = 0
    monitor.on('error', () => {
      calls++
      if (calls === 1) monitor.record({ bad: true } as never) // re-entrant, must not recurse synchronously
      throw new Error('listener bug')
    })
    expect(() => monitor.record({} as CallInput)).not.toThrow()
    await tick()
    await tick()
    expect(calls).toBe(2)
    expect(monitor.health().invalid).toBe(2)
    expect(warnings.some((w) => w.includes("'error' listener threw: listener bug"))).toBe(true)
    await monitor.close()
  })

  it('warns once per kind of problem when nobody listens for errors', async () => {
    const warnings: string[] = []
    const monitor = createMonitor({ flushOnExit: false, logger: { warn: (m) => warnings.push(m) } })
    for (let i = 0; i < 5; i++) monitor.record({ ...valid, durationMs: -1 })
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/call\.durationMs must be/)
    expect(warnings[0]).toMatch(/further 'INVALID_CALL' warnings are counted in monitor\.health\(\)/)
    expect(monitor.health().invalid).toBe(5)
    await monitor.close()
  })
})
