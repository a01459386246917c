import { describe, expect, it } from 'vitest'
import { createMonitor, createStats, memoryStorage } from '@apimeter/core'
import { LatencySketch } from '@apimeter/core/sql'

describe('SLO definitions', () => {
  const make = (slos: unknown, extra: object = {}) => () => createMonitor({ logger: false, flushOnExit: false, slos: slos as never, ...extra })

  it('are validated with messages naming the field, what was expected and what came', () => {
    const ok = { name: 'a', objective: 0.99, window: '30d', indicator: { kind: 'availability' } }
    expect(make([{ ...ok, objective: 1 }])).toThrow(/^@apimeter\/core: options\.slos\[0\]\.objective must be a number greater than 0 and less than 1 \(0\.999 = 99\.9%\), got 1$/)
    expect(make([{ ...ok, window: '2w' }])).toThrow(/options\.slos\[0\]\.window must be '7d', '28d', '30d' \(any whole number of days from 1 to 365\) or \{ calendar: 'month' \}, got "2w"/)
    expect(make([{ ...ok, window: { calendar: 'week' } }])).toThrow(/options\.slos\[0\]\.window must be '7d'/)
    expect(make([{ ...ok, indicator: { kind: 'latency' } }])).toThrow(/options\.slos\[0\]\.indicator\.thresholdMs must be a number of milliseconds greater than 0/)
    expect(make([{ ...ok, indicator: { kind: 'latency', thresholdMs: 0 } }])).toThrow(/thresholdMs must be a number of milliseconds greater than 0, got 0/)
    expect(make([{ ...ok, indicator: { kind: 'availability', goodOutcomes: ['fine'] } }])).toThrow(/options\.slos\[0\]\.indicator\.goodOutcomes\[0\] must be one of success, client_error, server_error, rate_limited, timeout, network_error, aborted, got "fine"/)
    expect(make([{ ...ok, indicator: { kind: 'availability', filter: { from: '-1d' } } }])).toThrow(/options\.slos\[0\]\.indicator\.filter\.from is not a known option/)
    expect(make([{ ...ok, indicator: { kind: 'errors' } }])).toThrow(/options\.slos\[0\]\.indicator/)
    expect(make([{ ...ok, name: 'has space' }])).toThrow(/options\.slos\[0\]\.name must be a non-empty name of at most 100 letters, digits/)
    expect(make([ok, ok])).toThrow(/options\.slos\[1\]\.name must be a name no other SLO has, got "a"/)
    expect(make([{ ...ok, budget: 3 }])).toThrow(/options\.slos\[0\]\.budget is not a known option/)
    expect(make([ok], { alerts: [{ name: 'slo:a:page', kind: 'requests', threshold: 1 }] })).toThrow(/options\.alerts\[0\]\.name must be a name other than those of the SLO burn alerts/)
    expect(() => createStats(memoryStorage(), { slos: [{ ...ok, objective: 0 }] as never })).toThrow(/createStats\.options\.slos\[0\]\.objective must be/)
  })

  it('add a page and a ticket rule per SLO to the alert rules (none with alerts: false)', async () => {
    const monitor = createMonitor({ logger: false, flushOnExit: false, slos: [
      { name: 'a', objective: 0.99, window: '30d', indicator: { kind: 'availability' } },
      { name: 'b', objective: 0.99, window: '7d', alerts: false, indicator: { kind: 'availability' } },
    ], alerts: [{ name: 'errors', kind: 'error_rate', threshold: 0.1 }] })
    expect(monitor.alerts.rules).toEqual(['errors', 'slo:a:page', 'slo:a:ticket'])
    expect(monitor.slos.names).toEqual(['a', 'b'])
    await monitor.close()
  })

  it('are stored when the monitor starts, also by a script that closes right away', async () => {
    const storage = memoryStorage()
    const monitor = createMonitor({ storage, logger: false, flushOnExit: false, slos: [{ name: 'a', objective: 0.99, window: '30d', indicator: { kind: 'availability' }, notify: [{ webhook: 'https://h.example/x', secret: 'no' }] }] })
    await monitor.close()
    const stored = await storage.slos!.list()
    expect(stored.map((s) => [s.name, JSON.parse(s.definition)])).toEqual([['a', { name: 'a', objective: 0.99, window: '30d', indicator: { kind: 'availability' }, notify: ['webhook:https://h.example/x'] }]])
  })
})

describe('the latency bound of a sketch count', () => {
  it('every duration at or under the threshold is counted; the exact count lies in [atOrBelow − edge, atOrBelow]', () => {
    let seed = 42
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647)
    for (let round = 0; round < 200; round++) {
      const sketch = new LatencySketch()
      const durations = Array.from({ length: 200 }, () => Math.round(random() * 2000 * 100) / 100)
      for (const d of durations) sketch.add(d)
      const threshold = 1 + random() * 1500
      const exact = durations.filter((d) => d <= threshold).length
      const { atOrBelow, edge, edgeMs } = sketch.countAtOrBelow(threshold)
      expect(atOrBelow - edge).toBeLessThanOrEqual(exact)
      expect(exact).toBeLessThanOrEqual(atOrBelow)
      // what is over-counted took at most edgeMs, within 1.005% of the threshold
      expect(durations.filter((d) => d > threshold && d <= edgeMs).length).toBe(atOrBelow - exact)
      expect(edgeMs).toBeGreaterThanOrEqual(threshold)
      expect(edgeMs).toBeLessThan(threshold * 1.0101)
    }
  })
})
