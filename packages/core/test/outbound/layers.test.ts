import { get as httpGet } from 'node:http'
import type { CallRecord } from '@apimeter/core'
import axios from 'axios'
import got from 'got'
import nodeFetch from 'node-fetch'
import { Agent, fetch as undiciFetch, interceptors, request as undiciRequest } from 'undici'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { openMarkedCalls } from '../../src/outbound/marker.js'
import { recordedCalls } from '../../../../test/support/calls.js'
import { testMonitor } from '../helpers/monitor.js'
import { type FakeProvider, freePort, startFakeProvider } from './fake-provider.js'

let provider: FakeProvider
beforeAll(async () => {
  provider = await startFakeProvider()
})
afterAll(() => provider.close())
afterEach(() => {
  expect(openMarkedCalls()).toBe(0)
})

const markerSent = (): boolean => provider.requests.some((r) => r.headers['x-apimeter-call'] !== undefined)
const brief = (calls: readonly CallRecord[]) => calls.map((c) => `${c.method} ${c.route} ${c.statusCode} ${c.responseBytes}`)
/** Size of the fake provider's default JSON answer for a path. */
const answer = (path: string): number => JSON.stringify({ ok: true, path }).length

function httpGetText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet(url, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve(body))
    }).on('error', reject)
  })
}

describe('monitor.interceptor()', () => {
  it('meters undici.request and undici.fetch through a composed dispatcher, forwarding every callback', async () => {
    const { monitor, storage } = testMonitor()
    const agent = new Agent().compose(monitor.interceptor())
    const { statusCode, body, headers } = await undiciRequest(`${provider.url}/bytes?n=4`, { dispatcher: agent })
    expect(statusCode).toBe(200)
    expect(headers['content-type']).toBe('application/octet-stream')
    expect((await body.arrayBuffer()).byteLength).toBe(4000)
    const res = await undiciFetch(`${provider.url}/v1/items/7`, { dispatcher: agent, method: 'POST', body: 'abc' })
    expect(await res.json()).toEqual({ ok: true, path: '/v1/items/7' })
    const calls = await recordedCalls(monitor, storage)(2)
    expect(brief(calls)).toEqual(['GET /bytes 200 4000', `POST /v1/items/:id 200 ${answer('/v1/items/7')}`])
    expect(calls[1]!.requestBytes).toBe(3)
    expect(calls.every((c) => c.ttfbMs !== null && c.ttfbMs <= c.durationMs)).toBe(true)
    await agent.close()
    await monitor.close()
  })

  it('records connection errors', async () => {
    const { monitor, storage } = testMonitor()
    const agent = new Agent().compose(monitor.interceptor())
    const error = await undiciRequest('http://127.0.0.1:1/x', { dispatcher: agent }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(call).toMatchObject({ statusCode: null, outcome: 'network_error', errorType: 'ECONNREFUSED' })
    await agent.close()
    await monitor.close()
  })

  it("sees undici's cache interceptor answer (composed inside it)", async () => {
    const { monitor, storage } = testMonitor()
    const agent = new Agent().compose(interceptors.cache(), monitor.interceptor())
    const before = provider.requests.length
    for (let i = 0; i < 2; i++) {
      const { body } = await undiciRequest(`${provider.url}/cacheable`, { dispatcher: agent })
      expect(await body.text()).toBe('cached body')
    }
    expect(provider.requests.length - before).toBe(1)
    const calls = await recordedCalls(monitor, storage)(2)
    expect(calls.map((c) => [c.cached, c.cacheSignal, c.responseBytes])).toEqual([
      [false, null, 11],
      [true, 'undici-cache', 11],
    ])
    await agent.close()
    await monitor.close()
  })
})

describe('monitor.instrument()', () => {
  it('meters global fetch, undici, axios, got, node-fetch and node:http, until uninstrument()', async () => {
    const { monitor, storage } = testMonitor()
    monitor.instrument().instrument() // idempotent
    expect(await (await fetch(`${provider.url}/bytes?n=2`)).arrayBuffer()).toHaveProperty('byteLength', 2000)
    const { body } = await undiciRequest(`${provider.url}/v1/a/1`)
    await body.text()
    expect((await axios.get(`${provider.url}/v1/b/2`)).data).toEqual({ ok: true, path: '/v1/b/2' })
    expect(await got(`${provider.url}/v1/c/3`).json()).toEqual({ ok: true, path: '/v1/c/3' })
    expect(await (await nodeFetch(`${provider.url}/v1/d/4`)).json()).toEqual({ ok: true, path: '/v1/d/4' })
    expect(JSON.parse(await httpGetText(`${provider.url}/v1/e/5`))).toEqual({ ok: true, path: '/v1/e/5' })
    const calls = await recordedCalls(monitor, storage)(6)
    expect(brief(calls)).toEqual([
      'GET /bytes 200 2000',
      `GET /v1/a/:id 200 ${answer('/v1/a/1')}`,
      `GET /v1/b/:id 200 ${answer('/v1/b/2')}`,
      `GET /v1/c/:id 200 ${answer('/v1/c/3')}`,
      `GET /v1/d/:id 200 ${answer('/v1/d/4')}`,
      `GET /v1/e/:id 200 ${answer('/v1/e/5')}`,
    ])
    expect(calls.every((c) => c.api === new URL(provider.url).host && c.outcome === 'success')).toBe(true)
    monitor.uninstrument()
    await (await fetch(`${provider.url}/v1/after`)).text()
    await httpGetText(`${provider.url}/v1/after`)
    await monitor.flush()
    expect(storage.calls()).toHaveLength(6)
    await monitor.close()
  })

  it('classifies failures of instrumented clients', async () => {
    const { monitor, storage } = testMonitor()
    monitor.instrument()
    const port = await freePort()
    await fetch(`http://127.0.0.1:${port}/refused`).catch(() => undefined)
    await axios.get(`http://127.0.0.1:${port}/refused-axios`).catch(() => undefined)
    await axios.get(`${provider.url}/hang`, { timeout: 50 }).catch(() => undefined)
    const calls = await recordedCalls(monitor, storage)(3)
    expect(calls.map((c) => [c.route, c.statusCode, c.outcome, c.errorType])).toEqual([
      ['/refused', null, 'network_error', 'ECONNREFUSED'],
      ['/refused-axios', null, 'network_error', 'ECONNREFUSED'],
      ['/hang', null, 'timeout', 'ECONNABORTED'],
    ])
    await monitor.close()
  })
})

describe('one call, counted once', () => {
  it('monitor.fetch + instrument(): once, the marker never sent, redirects included', async () => {
    const { monitor, storage } = testMonitor()
    monitor.instrument()
    const before = provider.requests.length
    await (await monitor.fetch(`${provider.url}/v1/items/1`)).text()
    const redirected = await monitor.fetch(`${provider.url}/redirect`)
    expect(redirected.redirected).toBe(true)
    expect(redirected.url).toBe(`${provider.url}/v1/items/1`)
    await redirected.text()
    const calls = await recordedCalls(monitor, storage)(2)
    await monitor.flush()
    expect(brief(storage.calls())).toEqual([`GET /v1/items/:id 200 ${answer('/v1/items/1')}`, `GET /redirect 200 ${answer('/v1/items/1')}`])
    expect(provider.requests.length - before).toBe(3)
    expect(markerSent()).toBe(false)
    expect(calls).toHaveLength(2)
    await monitor.close()
  })

  it('monitor.fetch + interceptor + instrument(), and interceptor + instrument(): once each', async () => {
    const { monitor, storage } = testMonitor()
    const agent = new Agent().compose(monitor.interceptor())
    monitor.instrument()
    const viaUndici = monitor.wrapFetch(undiciFetch, { api: 'outer' })
    await (await viaUndici(`${provider.url}/v1/x/1`, { dispatcher: agent })).text()
    const { body } = await undiciRequest(`${provider.url}/v1/y/2`, { dispatcher: agent })
    await body.text()
    await (await monitor.fetch(`${provider.url}/v1/z/3`, { dispatcher: agent } as unknown as RequestInit)).text()
    await monitor.flush()
    const calls = await recordedCalls(monitor, storage)(3)
    await new Promise((resolve) => setTimeout(resolve, 20))
    await monitor.flush()
    expect(storage.calls().map((c) => `${c.api === 'outer' ? 'outer' : 'host'} ${c.route}`)).toEqual(['outer /v1/x/:id', 'host /v1/y/:id', 'host /v1/z/:id'])
    expect(calls.map((c) => c.responseBytes)).toEqual([answer('/v1/x/1'), answer('/v1/y/2'), answer('/v1/z/3')])
    expect(markerSent()).toBe(false)
    await agent.close()
    await monitor.close()
  })

  it('monitor.wrapFetch(node-fetch) + instrument(): once (node:http sends the marker, which is then ignored)', async () => {
    const { monitor, storage } = testMonitor()
    monitor.instrument()
    const metered = monitor.wrapFetch(nodeFetch, { api: 'outer' })
    await (await metered(`${provider.url}/v1/n/1`)).text()
    await recordedCalls(monitor, storage)(1)
    await new Promise((resolve) => setTimeout(resolve, 20))
    await monitor.flush()
    expect(storage.calls().map((c) => c.api)).toEqual(['outer'])
    await monitor.close()
  })
})
