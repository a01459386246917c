import { type ApimeterError, costs, createMonitor, OTHER_HOSTS, OVERFLOW_ROUTE } from '@apimeter/core'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { OutboundMeter } from '../../src/outbound/meter.js'
import { EMPTY_HEADERS } from '../../src/outbound/headers.js'
import { recordedCalls } from '../../../../test/support/calls.js'
import { testMonitor } from '../helpers/monitor.js'
import { type FakeProvider, startFakeProvider } from './fake-provider.js'

let provider: FakeProvider
let host: string
let port: string
beforeAll(async () => {
  provider = await startFakeProvider()
  host = new URL(provider.url).host
  port = new URL(provider.url).port
})
afterAll(() => provider.close())

describe('the apis registry', () => {
  it('matches by URL prefix, host and RegExp, applies route templates and folds the rest', async () => {
    const { monitor, storage } = testMonitor({
      apis: [
        { name: 'billing', match: `${provider.url}/billing`, routes: ['/billing/v1/invoices/{invoice}', '/billing/v1/files/*'] },
        { name: 'users', match: host, routes: ['/v1/users/:id', '/v1/users/:id/orders/:orderId'] },
        { name: 'local', match: /^localhost$/ },
      ],
    })
    const paths = [
      `${provider.url}/billing/v1/invoices/in_2024_A`,
      `${provider.url}/billing/v1/files/a/b/c.pdf`,
      `${provider.url}/billing/v1/customers/42`,
      `${provider.url}/billingx/v1/other`,
      `${provider.url}/v1/users/alice`,
      `${provider.url}/v1/users/alice/orders/17`,
      `${provider.url}/v1/things/9f1c2d3e-0000-4000-8000-00000000abcd/parts/12345?sort=asc`,
      `http://localhost:${port}/v1/accounts/5d41402abc4b2a76b9719d911017c592`,
    ]
    for (const url of paths) await (await monitor.fetch(url)).text()
    const calls = await recordedCalls(monitor, storage)(paths.length)
    expect(calls.map((c) => `${c.api} ${c.route}`)).toEqual([
      'billing /billing/v1/invoices/{invoice}',
      'billing /billing/v1/files/*',
      'billing /billing/v1/customers/:id',
      'users /billingx/v1/other',
      'users /v1/users/:id',
      'users /v1/users/:id/orders/:orderId',
      'users /v1/things/:id/parts/:id',
      'local /v1/accounts/:id',
    ])
    // the stored URL keeps the query, the route never does
    expect(calls[6]!.url).toBe(paths[6])
    await monitor.close()
  })

  it('groups unregistered hosts by host, then into (other) beyond maxHosts', async () => {
    const { monitor, storage } = testMonitor({ outbound: { maxHosts: 1, ignore: [`${provider.url}/ignored`] } })
    await (await monitor.fetch(`${provider.url}/a`)).text()
    await (await monitor.fetch(`http://localhost:${port}/b`)).text()
    await (await monitor.fetch(`${provider.url}/ignored/c`)).text()
    await (await monitor.fetch(`${provider.url}/d`)).text()
    const calls = await recordedCalls(monitor, storage)(3)
    expect(calls.map((c) => [c.api, c.host, c.route])).toEqual([
      [host, host, '/a'],
      [OTHER_HOSTS, `localhost:${port}`, '/b'],
      [host, host, '/d'],
    ])
    await monitor.close()
  })

  it('keeps routes bounded under 100,000 random URLs', async () => {
    const maxRoutes = 100
    const maxHosts = 20
    const { monitor, storage, errors } = testMonitor({ maxRoutes, maxBufferSize: 200_000, batchSize: 10_000 })
    const report = (error: ApimeterError) => errors.push(error)
    const meter = new OutboundMeter(monitor, report, [{ name: 'known', match: 'api.known.test', routes: ['/v1/items/:id'] }], { maxHosts })
    const segment = fc.oneof(
      fc.integer({ min: 0, max: 1e9 }).map(String),
      fc.uuid(),
      fc.stringMatching(/^[a-z]{1,12}$/),
      fc.stringMatching(/^[0-9a-f]{32}$/),
      fc.string({ minLength: 1, maxLength: 80 }).map(encodeURIComponent),
    )
    const url = fc.record({
      host: fc.oneof(fc.constant('api.known.test'), fc.stringMatching(/^[a-z]{3,10}\.example$/)),
      segments: fc.array(segment, { minLength: 0, maxLength: 20 }),
      query: fc.option(fc.stringMatching(/^[a-z]{1,5}=[a-z0-9]{1,8}$/)),
    })
    const urls = fc.sample(url, { numRuns: 100_000, seed: 42 })
    for (const [i, u] of urls.entries()) {
      const target = i % 10 === 0 ? `https://api.known.test/v1/items/${i}` : `https://${u.host}/${u.segments.join('/')}${u.query ? `?${u.query}` : ''}`
      const call = meter.start({ method: 'GET', url: target, headers: EMPTY_HEADERS, requestBytes: 0, requestBody: null, options: undefined })
      call!.response(200, EMPTY_HEADERS)
      call!.end()
    }
    await monitor.flush()
    const calls = storage.calls()
    expect(calls).toHaveLength(100_000)
    const apis = new Set(calls.map((c) => c.api))
    expect(apis.size).toBeLessThanOrEqual(maxHosts + 2) // the hosts kept, (other), and the registered API
    expect(apis.has(OTHER_HOSTS)).toBe(true)
    const routes = new Set(calls.map((c) => `${c.api} ${c.route}`))
    expect(routes.size).toBeLessThanOrEqual(apis.size * (maxRoutes + 1))
    expect(calls.some((c) => c.route === OVERFLOW_ROUTE)).toBe(true)
    expect(calls.filter((c) => c.api === 'known' && c.route === '/v1/items/:id').length).toBeGreaterThanOrEqual(10_000)
    expect(errors).toEqual([])
    await monitor.close()
  })

  it('validates the apis and outbound options', () => {
    expect(() => createMonitor({ apis: [{ name: '', match: 'x' }] })).toThrow('@apimeter/core: options.apis[0].name must be a non-empty API name, got ""')
    expect(() => createMonitor({ apis: [{ name: 'a', match: 'https://' }] })).toThrow('options.apis[0].match must be a valid URL prefix')
    expect(() => createMonitor({ apis: [{ name: 'a', match: 'x', cost: costs.perRequest(1) }, { name: 'a', match: 'y' }] })).toThrow('options.apis[1].name must be a name not used by another API')
    expect(() => createMonitor({ outbound: { bodyTimeoutMs: 5 } })).toThrow('@apimeter/core: options.outbound.bodyTimeoutMs must be a whole number of milliseconds from 100 to 3,600,000, got 5')
    expect(() => createMonitor({ outbound: { capture: { maxBodyBytes: 1e6 } } })).toThrow('options.outbound.capture.maxBodyBytes must be a whole number of bytes from 64 to 1,536')
    expect(() => createMonitor({ outbound: { captur: {} } as never })).toThrow('options.outbound.captur is not a known option (did you mean capture?)')
  })
})
