import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { testMonitor } from './helpers/monitor.js'

describe('monitor.startCall()', () => {
  it('times a call with the monotonic clock and records it once', async () => {
    let wall = Date.UTC(2026, 0, 1)
    let mono = 1000
    const { monitor, storage } = testMonitor({ clock: { now: () => wall, monotonic: () => mono } })
    const handle = monitor.startCall({ direction: 'outbound', api: 'finnhub', method: 'GET', url: 'https://finnhub.io/api/v1/quote?symbol=AAPL' })
    expect(handle.timestamp).toBe(Date.UTC(2026, 0, 1))
    wall += 999_999 // a wall-clock jump must not distort the duration
    mono += 40.25
    handle.firstByte()
    mono += 10
    handle.firstByte() // first call wins
    handle.addResponseBytes(100).addResponseBytes(23)
    handle.set({ tenantId: 'acme', cached: true, cacheSignal: 'age' })
    mono += 2.5
    expect(handle.elapsedMs()).toBe(52.75)
    expect(handle.finish({ statusCode: 200 })).toBe(true)
    expect(handle.done).toBe(true)
    expect(handle.finish({ statusCode: 500 })).toBe(false)
    expect(handle.fail(new Error('late'))).toBe(false)
    await monitor.flush()
    expect(storage.calls()).toHaveLength(1)
    expect(storage.calls()[0]).toMatchObject({
      timestamp: Date.UTC(2026, 0, 1),
      durationMs: 52.75,
      ttfbMs: 40.25,
      responseBytes: 123,
      statusCode: 200,
      outcome: 'success',
      route: '/api/v1/quote',
      host: 'finnhub.io',
      tenantId: 'acme',
      cached: true,
    })
    await monitor.close()
  })

  it('fail() classifies a real connection error and keeps a status code already seen', async () => {
    const { monitor, storage } = testMonitor()
    // a port nobody listens on: bind, note the port, close
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const { port } = probe.address() as AddressInfo
    await new Promise<void>((resolve) => probe.close(() => resolve()))

    const refused = monitor.startCall({ direction: 'outbound', method: 'GET', url: `http://127.0.0.1:${port}/x` })
    try {
      await fetch(`http://127.0.0.1:${port}/x`)
    } catch (error) {
      refused.fail(error)
    }

    const timedOut = monitor.startCall({ direction: 'outbound', method: 'GET', route: '/slow' })
    const slow = createServer(() => undefined) // never answers
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve))
    try {
      await fetch(`http://127.0.0.1:${(slow.address() as AddressInfo).port}/slow`, { signal: AbortSignal.timeout(50) })
    } catch (error) {
      timedOut.fail(error)
    }
    slow.closeAllConnections()
    slow.close()

    const aborted = monitor.startCall({ direction: 'inbound', method: 'GET', route: '/stream' })
    aborted.set({ statusCode: 200 })
    aborted.fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }), { outcome: 'aborted' })

    await monitor.flush()
    expect(storage.calls().map((c) => [c.outcome, c.errorType, c.statusCode])).toEqual([
      ['network_error', 'ECONNREFUSED', null],
      ['timeout', 'TimeoutError', null],
      ['aborted', 'ECONNRESET', 200],
    ])
    await monitor.close()
  })

  it('counts an invalid handle as invalid instead of throwing', async () => {
    const { monitor } = testMonitor()
    const handle = monitor.startCall(null as never)
    expect(() => handle.finish({ statusCode: 200 })).not.toThrow()
    await monitor.flush()
    expect(monitor.health()).toMatchObject({ invalid: 1, written: 0 })
    await monitor.close()
  })
})
