import { describe, expect, it } from 'vitest'
import { createMonitor, memoryStorage, OVERFLOW_ROUTE } from '@apimeter/core'

/**
 * Route cardinality stays bounded under a URL scan, yet a scan cannot lock legitimate routes out: once a group is
 * full, a route seen often enough takes the place of the least used one.
 */
describe('route cardinality', () => {
  it('lets a real route earn its place back after a URL scan filled its group, without letting the scan churn', async () => {
    const storage = memoryStorage({ maxCalls: Infinity })
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false, maxRoutes: 50, maxBufferSize: 100_000, batchSize: 5000 })
    const word = (i: number) => i.toString(36).replace(/\d/g, (d) => 'klmnopqrst'[Number(d)]!)
    for (let i = 0; i < 10_000; i++) monitor.record({ direction: 'inbound', method: 'GET', url: `/scan/${word(i)}/x`, statusCode: 404, durationMs: 1 })
    // a new endpoint goes live after the scan
    for (let i = 0; i < 40; i++) monitor.record({ direction: 'inbound', method: 'POST', url: `/v2/orders/${1000 + i}`, statusCode: 201, durationMs: 3 })
    // and the scan goes on
    for (let i = 10_000; i < 20_000; i++) monitor.record({ direction: 'inbound', method: 'GET', url: `/scan/${word(i)}/x`, statusCode: 404, durationMs: 1 })
    for (let i = 0; i < 10; i++) monitor.record({ direction: 'inbound', method: 'POST', url: `/v2/orders/${2000 + i}`, statusCode: 201, durationMs: 3 })
    await monitor.flush()
    const orders = storage.calls().filter((c) => c.method === 'POST')
    // first-come-first-kept stored every one of these as (other), forever
    expect(orders.filter((c) => c.route === '/v2/orders/:id').length).toBeGreaterThanOrEqual(40)
    expect(orders.slice(-10).every((c) => c.route === '/v2/orders/:id')).toBe(true)
    // the scan earned nothing: no scan path was promoted, so the stored routes are the first 50 plus (other) and the real one
    const routes = new Set(storage.calls().map((c) => c.route))
    expect(routes.size).toBeLessThanOrEqual(52)
    expect(routes.has(OVERFLOW_ROUTE)).toBe(true)
    expect((await monitor.stats.summary()).requests).toBe(20_050)
    await monitor.close()
  })
})
