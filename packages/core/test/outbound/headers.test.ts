import Anthropic from '@anthropic-ai/sdk'
import { costs } from '@apimeter/core'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordedCalls } from '../../../../test/support/calls.js'
import { testMonitor } from '../helpers/monitor.js'
import { type FakeProvider, startFakeProvider } from './fake-provider.js'

let provider: FakeProvider
beforeAll(async () => {
  provider = await startFakeProvider()
})
afterAll(() => provider.close())

/** A URL of the fake provider's `/headers` route, which answers with the given headers (and `status`). */
const withHeaders = (headers: Record<string, string>): string => `${provider.url}/headers?${new URLSearchParams(headers).toString()}`

describe('cache hits', () => {
  it('reads Cache-Status, CF-Cache-Status, X-Cache, X-Vercel-Cache, Age and 304, hits and misses', async () => {
    const { monitor, storage } = testMonitor()
    const cases: [Record<string, string>, boolean, string | null][] = [
      [{ 'cache-status': 'ExampleCache; hit; ttl=30' }, true, 'cache-status'],
      [{ 'cache-status': 'ExampleCache; fwd=uri-miss; stored' }, false, null],
      [{ 'cf-cache-status': 'HIT' }, true, 'cf-cache-status'],
      [{ 'cf-cache-status': 'DYNAMIC' }, false, null],
      [{ 'x-cache': 'Hit from cloudfront' }, true, 'x-cache'],
      [{ 'x-cache': 'MISS' }, false, null],
      [{ 'x-vercel-cache': 'HIT' }, true, 'x-vercel-cache'],
      [{ 'x-vercel-cache': 'MISS' }, false, null],
      [{ age: '120' }, true, 'age'],
      [{ age: '0' }, false, null],
      [{ status: '304' }, true, '304'],
      [{}, false, null],
    ]
    for (const [headers] of cases) await (await monitor.fetch(withHeaders(headers))).text()
    const calls = await recordedCalls(monitor, storage)(cases.length)
    expect(calls.map((c) => [c.cached, c.cacheSignal])).toEqual(cases.map(([, cached, signal]) => [cached, signal]))
    const summary = await monitor.stats.summary({ from: '-1h' })
    expect(summary.cached).toBe(6)
    await monitor.close()
  })

  it('asks a custom detector first', async () => {
    const { monitor, storage } = testMonitor({
      outbound: { cacheDetector: (res) => (res.headers.get('x-served-by')?.includes('cache') ? 'x-served-by' : res.headers.get('x-never') !== null ? false : undefined) },
    })
    await (await monitor.fetch(withHeaders({ 'x-served-by': 'cache-fra-1' }))).text()
    await (await monitor.fetch(withHeaders({ 'x-never': '1', 'cf-cache-status': 'HIT' }))).text()
    await (await monitor.fetch(withHeaders({ 'cf-cache-status': 'HIT' }))).text()
    const calls = await recordedCalls(monitor, storage)(3)
    expect(calls.map((c) => [c.cached, c.cacheSignal])).toEqual([
      [true, 'x-served-by'],
      [false, null],
      [true, 'cf-cache-status'],
    ])
    await monitor.close()
  })
})

describe('rate-limit headroom', () => {
  it('keeps the tightest window of OpenAI and Anthropic headers seen by their real clients', async () => {
    const host = new URL(provider.url).host
    const { monitor, storage } = testMonitor({ apis: [{ name: 'openai', match: `${provider.url}/v1/chat`, cost: costs.openai() }, { name: 'anthropic', match: host, cost: costs.anthropic() }] })
    await new OpenAI({ apiKey: 'sk-test', baseURL: `${provider.url}/v1`, fetch: monitor.fetch }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
    await new Anthropic({ apiKey: 'sk-ant-test', baseURL: provider.url, fetch: monitor.fetch }).messages.create({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
    const [openai, anthropic] = await recordedCalls(monitor, storage)(2)
    // tokens: 1,500 of 30,000 left (5%) is tighter than requests: 499 of 500
    expect(openai).toMatchObject({ api: 'openai', rateLimitLimit: 30_000, rateLimitRemaining: 1500, rateLimitResetMs: 360_000, rateLimitScope: 'tokens' })
    // requests: 10 of 50 left (20%) is tighter than tokens: 90,000 of 100,000
    expect(anthropic).toMatchObject({ api: 'anthropic', rateLimitLimit: 50, rateLimitRemaining: 10, rateLimitScope: 'requests' })
    expect(anthropic!.rateLimitResetMs).toBeGreaterThan(25_000)
    expect(anthropic!.rateLimitResetMs).toBeLessThanOrEqual(30_000)
    await monitor.close()
  })

  it('reads IETF RateLimit/RateLimit-Policy, X-RateLimit-* and Retry-After', async () => {
    const { monitor, storage } = testMonitor()
    await (await monitor.fetch(withHeaders({ ratelimit: '"default";r=5;t=30', 'ratelimit-policy': '"default";q=100;w=60' }))).text()
    await (await monitor.fetch(withHeaders({ ratelimit: 'limit=100, remaining=50, reset=10' }))).text()
    await (await monitor.fetch(withHeaders({ 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '30' }))).text()
    await (await monitor.fetch(withHeaders({ status: '429', 'retry-after': '2' }))).text()
    await (await monitor.fetch(withHeaders({}))).text()
    const calls = await recordedCalls(monitor, storage)(5)
    expect(calls.map((c) => [c.rateLimitLimit, c.rateLimitRemaining, c.rateLimitResetMs, c.rateLimitScope])).toEqual([
      [100, 5, 30_000, 'default'],
      [100, 50, 10_000, 'requests'],
      [60, 0, 30_000, 'requests'],
      [null, 0, 2000, 'retry-after'],
      [null, null, null, null],
    ])
    expect(calls[3]!.outcome).toBe('rate_limited')
    await monitor.close()
  })

  it('finds cache and rate-limit headers whatever the letter case of their names, through monitor.fetch and instrument()', async () => {
    const { monitor, storage } = testMonitor()
    const urls = [
      withHeaders({ 'X-RateLimit-Limit': '60', 'X-RateLimit-Remaining': '3', 'X-RATELIMIT-RESET': '30' }),
      withHeaders({ status: '429', 'Retry-After': '2' }),
      withHeaders({ AGE: '40' }),
      withHeaders({ 'X-Cache': 'HIT' }),
      // near misses: names that only look like the signals
      withHeaders({ Ages: '40', 'X-Cach': 'HIT', 'Rate-Limit': '5', 'Retry-Afterwards': '2' }),
    ]
    const expected = [
      [false, 60, 3, 'requests'],
      [false, null, 0, 'retry-after'],
      [true, null, null, null],
      [true, null, null, null],
      [false, null, null, null],
    ]
    for (const url of urls) await (await monitor.fetch(url)).text()
    monitor.instrument()
    for (const url of urls) await (await fetch(url)).text()
    const calls = await recordedCalls(monitor, storage)(urls.length * 2)
    expect(calls.map((c) => [c.cached, c.rateLimitLimit, c.rateLimitRemaining, c.rateLimitScope])).toEqual([...expected, ...expected])
    await monitor.close()
  })
})

describe('privacy', () => {
  const secretUrl = () => `${provider.url}/echo?symbol=AAPL&api_key=sk-live-abcdef0123456789&token=t0k3n`
  const init = () => ({
    method: 'POST',
    headers: { authorization: 'Bearer sk-proj-abcdefghijklmnop', 'x-api-key': 'key-123456', cookie: 'sid=abc', 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ user: 'ann', password: 'hunter2', nested: { client_secret: 's3cr3t', note: 'uses sk-live-abcdefghijklmnop0' } }),
  })

  it('stores no headers or bodies by default, and masks secrets in the stored URL', async () => {
    const { monitor, storage } = testMonitor()
    await (await monitor.fetch(secretUrl(), init())).text()
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(call!.metadata).toBeNull()
    expect(call!.url).toBe(`${provider.url}/echo?symbol=AAPL&api_key=***&token=***`)
    expect(JSON.stringify(call)).not.toMatch(/hunter2|sk-proj|sk-live|key-123456|t0k3n/)
    await monitor.close()
  })

  it('with capture on, masks authorization, cookies, API keys, tokens, secrets and passwords, and caps sizes', async () => {
    const { monitor, storage } = testMonitor({ outbound: { capture: { requestHeaders: true, responseHeaders: true, requestBody: true, responseBody: true, maxBodyBytes: 256, mask: ['user'] } } })
    await (await monitor.fetch(secretUrl(), init())).text()
    const big = 'x'.repeat(5000)
    await (await monitor.fetch(`${provider.url}/echo`, { method: 'POST', body: big })).text()
    const [call, bigCall] = await recordedCalls(monitor, storage)(2)
    const metadata = JSON.parse(call!.metadata!) as Record<string, Record<string, string> | string>
    expect(metadata.requestHeaders).toMatchObject({ authorization: '***', 'x-api-key': '***', cookie: '***', accept: 'application/json' })
    expect(metadata.responseHeaders).toMatchObject({ 'set-cookie': '***', 'content-type': 'application/json' })
    expect(JSON.parse(metadata.requestBody as string)).toEqual({ user: '***', password: '***', nested: { client_secret: '***', note: 'uses ***' } })
    expect(JSON.parse(metadata.responseBody as string)).toMatchObject({ ok: true, token: '***' })
    expect(call!.metadata).not.toMatch(/hunter2|sk-proj|sk-live|key-123456|t0k3n|tok-very-secret|secret-session/)
    const bigMetadata = JSON.parse(bigCall!.metadata!) as Record<string, string>
    expect(bigMetadata.requestBody).toBe(`${'x'.repeat(256)}…`)
    expect(bigMetadata.responseBody!.endsWith('…')).toBe(true)
    expect(bigMetadata.responseBody!.length).toBeLessThanOrEqual(257)
    expect(bigMetadata.responseBody).toContain('"token":"***"')
    expect(Buffer.byteLength(bigCall!.metadata!)).toBeLessThan(8192)
    await monitor.close()
  })
})
