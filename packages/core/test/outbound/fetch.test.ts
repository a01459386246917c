import { costs, type CallRecord, memoryStorage, type StorageAdapter } from '@apimeter/core'
import nodeFetch from 'node-fetch'
import { fetch as undiciFetch } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordedCalls } from '../../../../test/support/calls.js'
import { waitFor } from '../../../../test/support/http.js'
import { testMonitor } from '../helpers/monitor.js'
import { type FakeProvider, freePort, startFakeProvider } from './fake-provider.js'

let provider: FakeProvider
beforeAll(async () => {
  provider = await startFakeProvider()
})
afterAll(() => provider.close())

describe('monitor.fetch', () => {
  it('returns the response fetch returned, unchanged, and records the call once', async () => {
    const { monitor, storage, errors } = testMonitor()
    const recorded = recordedCalls(monitor, storage)
    const body = JSON.stringify({ hello: 'world' })
    const res = await monitor.fetch(`${provider.url}/v1/items/42?expand=1`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
    expect(res).toBeInstanceOf(Response)
    expect(res.status).toBe(200)
    expect(res.ok).toBe(true)
    expect(res.url).toBe(`${provider.url}/v1/items/42?expand=1`)
    expect(res.headers.get('content-type')).toBe('application/json')
    const text = await res.text()
    expect(JSON.parse(text)).toEqual({ ok: true, path: '/v1/items/42' })
    const [call] = await recorded(1)
    expect(call).toMatchObject({
      direction: 'outbound',
      method: 'POST',
      api: new URL(provider.url).host,
      host: new URL(provider.url).host,
      route: '/v1/items/:id',
      statusCode: 200,
      outcome: 'success',
      requestBytes: Buffer.byteLength(body),
      responseBytes: Buffer.byteLength(text),
      attempt: 1,
      metadata: null,
    })
    expect(call!.ttfbMs).not.toBeNull()
    expect(call!.ttfbMs!).toBeLessThanOrEqual(call!.durationMs)
    // the request went out without any marker header (no inner layer is active)
    expect(Object.keys(provider.requests.at(-1)!.headers).filter((h) => h.startsWith('x-apimeter'))).toEqual([])
    expect(errors).toEqual([])
    await monitor.close()
  })

  it('times start → headers → end of body, counting bytes only as the application reads them', async () => {
    const { monitor, storage } = testMonitor()
    const res = await monitor.fetch(`${provider.url}/bytes?n=5&gap=40`)
    const reader = res.body!.getReader()
    let bytes = 0
    const first = await reader.read()
    bytes += first.value!.byteLength
    await monitor.flush()
    expect(storage.calls()).toHaveLength(0) // still open: the body has not ended
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      bytes += value.byteLength
    }
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(bytes).toBe(5000)
    expect(call!.responseBytes).toBe(5000)
    // the body took four gaps of 40 ms after the headers: the duration runs to its end, not to the headers
    expect(call!.durationMs - call!.ttfbMs!).toBeGreaterThanOrEqual(100)
    await monitor.close()
  })

  it("times calls on the monitor's clock, an injected one included (monitor.fetch and instrument())", async () => {
    // a clock far from the system's: a call timed on the system clock at either end would be ~1e9 ms long
    let ticks = 1e9
    const clock = { now: () => Date.UTC(2026, 0, 2, 3, 4, 5), monotonic: () => (ticks += 5) }
    const { monitor, storage } = testMonitor({ clock })
    await (await monitor.fetch(`${provider.url}/v1/items/1`)).text()
    monitor.instrument()
    await (await fetch(`${provider.url}/v1/items/2`)).text()
    const calls = await recordedCalls(monitor, storage)(2)
    for (const call of calls) {
      expect(call.timestamp).toBe(Date.UTC(2026, 0, 2, 3, 4, 5))
      expect(call.durationMs).toBeGreaterThan(0)
      expect(call.durationMs).toBeLessThan(1000)
      expect(call.durationMs % 5).toBe(0)
      expect(call.ttfbMs).toBeGreaterThan(0)
      expect(call.ttfbMs).toBeLessThanOrEqual(call.durationMs)
    }
    await monitor.close()
  })

  it('finishes a body nobody reads after bodyTimeoutMs and marks it', async () => {
    const { monitor, storage } = testMonitor({ outbound: { bodyTimeoutMs: 150 } })
    // a body that has not arrived by the bound (a small body that arrives whole is complete, read or not: see below)
    const res = await monitor.fetch(`${provider.url}/held?n=3000&ms=400`)
    expect(res.status).toBe(200)
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(call).toMatchObject({ statusCode: 200, outcome: 'success', responseBytes: 0, metadata: JSON.stringify({ body: 'unread' }) })
    // recorded with the time to the headers, not the bound
    expect(call!.durationMs).toBe(call!.ttfbMs)
    // the body is still there, whole, for a late reader
    expect((await res.arrayBuffer()).byteLength).toBe(3000)
    await monitor.flush()
    expect(storage.calls()).toHaveLength(1)
    await monitor.close()
  })

  it('among many bodies in flight at once, finishes just the stalled ones at the bound, each once', async () => {
    const { monitor, storage } = testMonitor({ outbound: { bodyTimeoutMs: 150 } })
    // 12 bodies in flight together, so that the watched calls are added and removed in every order: the even ones
    // trickle in (a 1,000-byte chunk every 20 ms: complete), the odd ones are held past the bound (unread)
    const url = (i: number) => (i % 2 === 0 ? `${provider.url}/bytes?n=${4 + i}&gap=20` : `${provider.url}/held?n=${1000 + i}&ms=400`)
    const responses = await Promise.all(Array.from({ length: 12 }, (_, i) => monitor.fetch(url(i))))
    const calls = await recordedCalls(monitor, storage)(12)
    for (let i = 0; i < 12; i++) {
      const call = calls.find((c) => c.url === url(i))!
      if (i % 2 === 0) expect(call).toMatchObject({ responseBytes: (4 + i) * 1000, metadata: null })
      else expect(call).toMatchObject({ responseBytes: 0, metadata: JSON.stringify({ body: 'unread' }) })
    }
    await Promise.all(responses.map((res) => res.arrayBuffer()))
    await monitor.flush()
    expect(storage.calls()).toHaveLength(12)
    await monitor.close()
  })

  it('close() records a call whose body nobody read yet, instead of losing it', async () => {
    const written: CallRecord[] = []
    const inner = memoryStorage()
    const storage: StorageAdapter = { ...inner, writeCalls: async (calls) => void written.push(...calls) } // keeps rows past close()
    const { monitor } = testMonitor({ storage }) // the 60 s default bound: close() comes long before it
    const res = await monitor.fetch(`${provider.url}/held?n=3000&ms=1000`) // a body that has not arrived yet
    expect(res.status).toBe(200)
    await monitor.close()
    expect(monitor.health()).toMatchObject({ written: 1, dropped: 0 })
    expect(written[0]).toMatchObject({ statusCode: 200, responseBytes: 0, metadata: JSON.stringify({ body: 'unread' }) })
  })

  it('marks a body the application cancels', async () => {
    const { monitor, storage } = testMonitor()
    const res = await monitor.fetch(`${provider.url}/bytes?n=10&gap=20`)
    const reader = res.body!.getReader()
    await reader.read()
    await reader.cancel()
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(call).toMatchObject({ statusCode: 200, responseBytes: 1000, metadata: JSON.stringify({ body: 'cancelled' }) })
    await monitor.close()
  })

  it('classifies refused connections, timeouts, aborts, DNS failures and bodies cut mid-way; the app sees the same errors', async () => {
    const { monitor, storage } = testMonitor()
    const port = await freePort()
    const refused = await monitor.fetch(`http://127.0.0.1:${port}/x`).catch((e: unknown) => e)
    const plainRefused = await fetch(`http://127.0.0.1:${port}/x`).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(TypeError)
    expect((refused as Error).message).toBe((plainRefused as Error).message)

    const timedOut = await monitor.fetch(`${provider.url}/hang`, { signal: AbortSignal.timeout(50) }).catch((e: unknown) => e)
    expect((timedOut as Error).name).toBe('TimeoutError')

    const controller = new AbortController()
    const aborting = monitor.fetch(`${provider.url}/hang`, { signal: controller.signal }).catch((e: unknown) => e)
    setTimeout(() => controller.abort(), 20)
    expect((await aborting as Error).name).toBe('AbortError')

    const dns = await monitor.fetch('http://apimeter-test.invalid/x', { signal: AbortSignal.timeout(5000) }).catch((e: unknown) => e)
    expect(dns).toBeInstanceOf(Error)

    const cut = await monitor.fetch(`${provider.url}/cut`)
    expect(cut.status).toBe(200)
    const cutError = await cut.text().catch((e: unknown) => e)
    expect(cutError).toBeInstanceOf(Error)

    const calls = await recordedCalls(monitor, storage)(5)
    const byRoute = (route: string) => calls.filter((c) => c.route === route)
    expect(byRoute('/x').find((c) => c.host === `127.0.0.1:${port}`)).toMatchObject({ statusCode: null, outcome: 'network_error', errorType: 'ECONNREFUSED', responseBytes: null })
    expect(byRoute('/hang').map((c) => [c.statusCode, c.outcome, c.errorType])).toEqual([
      [null, 'timeout', 'TimeoutError'],
      [null, 'aborted', 'AbortError'],
    ])
    const dnsCall = calls.find((c) => c.host === 'apimeter-test.invalid')!
    expect(dnsCall).toMatchObject({ statusCode: null })
    // offline sandboxes answer ENOTFOUND or EAI_AGAIN; a resolver that hangs would be a timeout
    expect(['network_error', 'timeout']).toContain(dnsCall.outcome)
    expect(dnsCall.errorType).toMatch(/^(ENOTFOUND|EAI_AGAIN|TimeoutError)$/)
    expect(byRoute('/cut')[0]).toMatchObject({ statusCode: 200, outcome: 'network_error', responseBytes: 100 })
    await monitor.close()
  })

  it('records explicit attempt numbers and operation ids, and idempotency keys as a shared operation id', async () => {
    const { monitor, storage } = testMonitor()
    for (const attempt of [1, 2, 3]) {
      await (await monitor.fetch(`${provider.url}/v1/jobs`, { method: 'POST', apimeter: { attempt, operationId: 'job-7', tenantId: 'acme' } })).text()
    }
    for (let i = 0; i < 2; i++) {
      await (await monitor.fetch(`${provider.url}/v1/pay`, { method: 'POST', headers: { 'Idempotency-Key': 'key-123' } })).text()
    }
    const calls = await recordedCalls(monitor, storage)(5)
    expect(calls.slice(0, 3).map((c) => [c.attempt, c.operationId, c.tenantId])).toEqual([
      [1, 'job-7', 'acme'],
      [2, 'job-7', 'acme'],
      [3, 'job-7', 'acme'],
    ])
    expect(calls[3]!.operationId).toMatch(/^idem-[0-9a-f]{16}$/)
    expect(calls[4]!.operationId).toBe(calls[3]!.operationId)
    // init.apimeter is not passed on to fetch
    expect(provider.requests.at(-1)!.headers['apimeter']).toBeUndefined()
    await monitor.close()
  })

  it('never lets a metering failure reach the application', async () => {
    const { monitor, storage, errors } = testMonitor({
      apis: [{ name: 'broken', match: new URL(provider.url).host, cost: costs.custom(() => { throw new Error('my bug') }) }],
      outbound: { cacheDetector: () => { throw new Error('detector bug') } },
    })
    const res = await monitor.fetch(`${provider.url}/v1/items`)
    expect(await res.json()).toEqual({ ok: true, path: '/v1/items' })
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(call).toMatchObject({ api: 'broken', statusCode: 200, costNanos: null, costSource: null })
    await waitFor(() => errors.length >= 2, 'two error events')
    expect(errors.map((e) => e.code)).toEqual(['INSTRUMENTATION_FAILED', 'INSTRUMENTATION_FAILED'])
    expect(errors.map((e) => e.message).join(' ')).toMatch(/my bug[\s\S]*detector bug|detector bug[\s\S]*my bug/)
    await monitor.close()
  })

  it('wraps other fetch implementations: undici.fetch and node-fetch (a Node stream body)', async () => {
    const { monitor, storage } = testMonitor()
    const viaUndici = monitor.wrapFetch(undiciFetch, { api: 'via-undici' })
    const viaNodeFetch = monitor.wrapFetch(nodeFetch, { api: 'via-node-fetch', tenantId: 7 })
    const a = await viaUndici(`${provider.url}/bytes?n=2`)
    expect((await a.arrayBuffer()).byteLength).toBe(2000)
    const b = await viaNodeFetch(`${provider.url}/bytes?n=3`)
    expect(b.constructor.name).toBe('Response')
    expect((await b.buffer()).byteLength).toBe(3000)
    const calls: CallRecord[] = await recordedCalls(monitor, storage)(2)
    expect(calls.map((c) => [c.api, c.route, c.statusCode, c.responseBytes, c.tenantId])).toEqual([
      ['via-undici', '/bytes', 200, 2000, null],
      ['via-node-fetch', '/bytes', 200, 3000, '7'],
    ])
    expect(() => monitor.wrapFetch(nodeFetch, { attempt: 0 })).toThrow('@apimeter/core: wrapFetch(fetchImpl, options).attempt must be a whole number from 1 to 1000, got 0')
    await monitor.close()
  })
})
