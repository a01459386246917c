import diagnostics from 'node:diagnostics_channel'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { memoryStorage } from '@apimeter/core'
import { fetch as undiciFetch } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordedCalls } from '../../../../test/support/calls.js'
import { testMonitor } from '../helpers/monitor.js'
import { type FakeProvider, startFakeProvider } from './fake-provider.js'

// monitor.fetch for a call that needs nothing from its body: watched through undici's diagnostics channels, the
// Response given back as undici made it. Calls that need the body (a usage reader, body capture) keep the tap.

let provider: FakeProvider
beforeAll(async () => {
  provider = await startFakeProvider()
})
afterAll(() => provider.close())

const undiciChannelsHeard = () => ['create', 'headers', 'trailers', 'error'].some((name) => diagnostics.channel(`undici:request:${name}`).hasSubscribers)

describe('monitor.fetch through the diagnostics channels', () => {
  it('gives back the very Response fetch made (global fetch and undici.fetch), its body not wrapped', async () => {
    const { monitor, storage, errors } = testMonitor()
    const made: unknown[] = []
    const original = globalThis.fetch
    globalThis.fetch = (input: Parameters<typeof fetch>[0], init?: RequestInit) =>
      original(input, init).then((response) => {
        made.push(response)
        return response
      })
    let res: Response
    try {
      res = await monitor.fetch(`${provider.url}/v1/items/42`) // monitor.fetch calls the global fetch of the moment
    } finally {
      globalThis.fetch = original
    }
    expect(res).toBe(made[0])
    expect(Object.getOwnPropertyNames(res)).toEqual([])
    const viaUndici = monitor.wrapFetch((input: string, init?: Parameters<typeof undiciFetch>[1]) =>
      undiciFetch(input, init).then((response) => {
        made.push(response)
        return response
      }),
    )
    const res2 = (await viaUndici(`${provider.url}/bytes?n=2`)) as Response
    expect(res2).toBe(made[1])
    const text = await res.text()
    expect((await res2.arrayBuffer()).byteLength).toBe(2000)
    const calls = await recordedCalls(monitor, storage)(2)
    expect(calls.map((c) => [c.route, c.statusCode, c.outcome, c.responseBytes, c.metadata])).toEqual([
      ['/v1/items/:id', 200, 'success', Buffer.byteLength(text), null], // content-length
      ['/bytes', 200, 'success', 2000, null], // chunked: counted as undici receives it
    ])
    expect(calls.every((c) => c.ttfbMs !== null && c.ttfbMs <= c.durationMs)).toBe(true)
    expect(errors).toEqual([])
    await monitor.close()
  })

  it('times a slow streamed body to its last byte and counts it exactly, read or not', async () => {
    const { monitor, storage } = testMonitor({ outbound: { bodyTimeoutMs: 150 } })
    const res = await monitor.fetch(`${provider.url}/bytes?n=4&gap=60`) // chunked, 3 gaps of 60 ms after the first
    // recorded once the body has arrived, though the application has not read a byte of it
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(call).toMatchObject({ statusCode: 200, outcome: 'success', responseBytes: 4000, metadata: null })
    expect(call!.durationMs - call!.ttfbMs!).toBeGreaterThanOrEqual(150) // to the end of the body, gaps longer than the bound included
    expect((await res.arrayBuffer()).byteLength).toBe(4000) // still whole for a late reader
    // a small body nobody reads that arrives whole is a complete call, not an unread one
    // (held until the call is recorded: a Response garbage-collected before its body ended is an unread call)
    const smallResponse = await monitor.fetch(`${provider.url}/bytes?n=3`)
    const [, small] = await recordedCalls(monitor, storage)(2)
    expect(small).toMatchObject({ statusCode: 200, outcome: 'success', responseBytes: 3000, metadata: null })
    expect(smallResponse.bodyUsed).toBe(false)
    await monitor.close()
  })

  it('meters a redirected fetch by its final response, once', async () => {
    const { monitor, storage } = testMonitor()
    const res = await monitor.fetch(`${provider.url}/redirect`)
    expect(res.redirected).toBe(true)
    expect(res.url).toBe(`${provider.url}/v1/items/1`)
    const text = await res.text()
    const calls = await recordedCalls(monitor, storage)(1)
    await new Promise((resolve) => setTimeout(resolve, 20))
    await monitor.flush()
    expect(storage.calls()).toHaveLength(1)
    expect(calls[0]).toMatchObject({ route: '/redirect', statusCode: 200, responseBytes: Buffer.byteLength(text) })
    await monitor.close()
  })

  it('keeps the body tap for calls that need the body (response capture): counted as read, unread bodies marked', async () => {
    const { monitor, storage } = testMonitor({ outbound: { bodyTimeoutMs: 150, capture: { responseBody: true } } })
    const made: Response[] = []
    const viaFetch = monitor.wrapFetch((input: string, init?: RequestInit) =>
      fetch(input, init).then((response) => {
        made.push(response)
        return response
      }),
    )
    const res = (await viaFetch(`${provider.url}/bytes?n=3`)) as Response
    expect(res).not.toBe(made[0]) // a Response around the metered body
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(call).toMatchObject({ statusCode: 200, responseBytes: 0 })
    expect(JSON.parse(call!.metadata!)).toMatchObject({ body: 'unread' })
    expect((await res.arrayBuffer()).byteLength).toBe(3000)
    await monitor.close()
  })

  it('listens to the channels only while a monitor that used monitor.fetch is open', async () => {
    expect(undiciChannelsHeard()).toBe(false)
    const { monitor, storage } = testMonitor()
    expect(undiciChannelsHeard()).toBe(false) // nothing until the first call
    await (await monitor.fetch(`${provider.url}/v1/items/1`)).text()
    expect(undiciChannelsHeard()).toBe(true)
    await recordedCalls(monitor, storage)(1)
    await monitor.close()
    expect(undiciChannelsHeard()).toBe(false)
  })

  it("lets go of a request's metering state once undici ends it (instrument() and monitor.fetch, ended or failed)", async () => {
    // undici keeps a finished request object alive for a while: state left on it would be kept (and promoted to the
    // old generation) with it. Heard after apimeter's own handlers, which subscribed first.
    const held = (request: object) =>
      Object.getOwnPropertySymbols(request)
        .filter((key) => key.description?.startsWith('apimeter.'))
        .map((key) => [key.description, (request as Record<symbol, unknown>)[key]])
    const seen: { at: string; state: unknown[] }[] = []
    const onEnd = (at: string) => (message: unknown) => seen.push({ at, state: held((message as { request: object }).request) })
    const trailers = onEnd('trailers')
    const failed = onEnd('error')
    const { monitor, storage } = testMonitor()
    monitor.instrument()
    await (await monitor.fetch(`${provider.url}/v1/items/7`)).text() // subscribes the channels for monitor.fetch too
    diagnostics.subscribe('undici:request:trailers', trailers)
    diagnostics.subscribe('undici:request:error', failed)
    try {
      await (await fetch(`${provider.url}/v1/items/8`)).text() // instrument()
      await (await monitor.fetch(`${provider.url}/v1/items/9`)).text() // monitor.fetch
      const controller = new AbortController()
      const res = await fetch(`${provider.url}/bytes?n=4&gap=200`, { signal: controller.signal })
      controller.abort() // fails mid-body
      await res.arrayBuffer().catch(() => undefined)
      await new Promise((resolve) => setTimeout(resolve, 50))
    } finally {
      diagnostics.unsubscribe('undici:request:trailers', trailers)
      diagnostics.unsubscribe('undici:request:error', failed)
    }
    expect(seen.map((s) => s.at)).toEqual(['trailers', 'trailers', 'error'])
    // the requests were metered (the state existed), and none still holds a call or a watcher
    for (const { state } of seen) for (const [, value] of state as [string, unknown][]) expect(value).toBeUndefined()
    expect(seen.flatMap((s) => (s.state as [string][]).map(([name]) => name))).toEqual(expect.arrayContaining(['apimeter.calls', 'apimeter.watcher']))
    expect((await recordedCalls(monitor, storage)(4)).map((c) => c.outcome)).toEqual(['success', 'success', 'success', expect.stringMatching(/.+/)])
    await monitor.close()
  })

  it('records a call whose Response the application dropped unread (garbage-collected mid-body) as unread, not as a failure', async () => {
    // undici's fetch cancels the body of a Response that is garbage-collected before its body ended, with the reason
    // "Response object has been garbage collected": a fire-and-forget call, not a network error
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const { monitor, storage, errors } = testMonitor()
    monitor.instrument()
    const collect = setInterval(gc, 2)
    try {
      await monitor.fetch(`${provider.url}/bytes?n=4&gap=40`) // monitor.fetch, the Response dropped at once
      await fetch(`${provider.url}/bytes?n=4&gap=40`) // instrument()
      await new Promise((resolve) => setTimeout(resolve, 300))
    } finally {
      clearInterval(collect)
    }
    const calls = await recordedCalls(monitor, storage)(2)
    expect(calls.map((c) => [c.route, c.statusCode, c.outcome, c.errorType, c.metadata])).toEqual([
      ['/bytes', 200, 'success', null, '{"body":"unread"}'],
      ['/bytes', 200, 'success', null, '{"body":"unread"}'],
    ])
    expect(calls.every((c) => c.responseBytes! >= 1000 && c.responseBytes! < 4000)).toBe(true)
    expect(errors).toEqual([])
    await monitor.close()
  })

  it('records a monitor.fetch call whose body arrived before fetch resolved when flush() or close() follows at once, counted in health().queued until then', async () => {
    // A small body has usually arrived whole before fetch resolves: such a call is recorded at the end of the turn in
    // which fetch resolved, and a flush() or close() right after the fetch must not miss it.
    for (const finish of ['flush', 'close'] as const) {
      // memory storage that keeps its rows through close() (its own close empties them)
      const { monitor, storage } = testMonitor({ storage: { ...memoryStorage({ maxCalls: Infinity }), close: async () => {} } })
      const res = await monitor.fetch(`${provider.url}/headers?content-length=2`)
      const queued = monitor.health().queued
      await (finish === 'flush' ? monitor.flush() : monitor.close())
      expect(queued, finish).toBe(1)
      expect(storage.calls().map((c) => [c.route, c.statusCode, c.outcome, c.responseBytes, c.metadata]), finish).toEqual([['/headers', 200, 'success', 2, null]])
      expect(await res.text()).toBe('ok')
      if (finish === 'flush') await monitor.close()
    }
  })

  it('records a call that ended this turn when flush() or close() is called before the turn is over, counted in health().queued until then', async () => {
    // A call ends in undici's trailers callback and is recorded at the end of the turn; flush() and close() called
    // right then (here from a subscriber heard after apimeter's handlers) must not miss it.
    for (const finish of ['flush', 'close'] as const) {
      // memory storage that keeps its rows through close() (its own close empties them)
      const { monitor, storage } = testMonitor({ storage: { ...memoryStorage({ maxCalls: Infinity }), close: async () => {} } })
      monitor.instrument()
      let queuedAtEnd = -1
      let done: Promise<void> | undefined
      const onTrailers = () => {
        if (done !== undefined) return
        queuedAtEnd = monitor.health().queued
        done = finish === 'flush' ? monitor.flush() : monitor.close()
      }
      diagnostics.subscribe('undici:request:trailers', onTrailers)
      try {
        await (await fetch(`${provider.url}/v1/items/5`)).text()
      } finally {
        diagnostics.unsubscribe('undici:request:trailers', onTrailers)
      }
      await done
      expect(queuedAtEnd, finish).toBe(1)
      expect(storage.calls().map((c) => [c.route, c.statusCode, c.outcome]), finish).toEqual([['/v1/items/:id', 200, 'success']])
      if (finish === 'flush') await monitor.close()
    }
  })
})
