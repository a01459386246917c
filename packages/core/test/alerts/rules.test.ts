import { describe, expect, it } from 'vitest'
import { type AlertRule, createMonitor, isApimeterError } from '@apimeter/core'

/** The message `createMonitor` throws for these rules. */
function problem(alerts: unknown): string {
  try {
    createMonitor({ logger: false, flushOnExit: false, alerts: alerts as AlertRule[] })
  } catch (error) {
    expect(isApimeterError(error, 'INVALID_OPTIONS')).toBe(true)
    return (error as Error).message
  }
  throw new Error('expected createMonitor to throw')
}

describe('alert rule validation', () => {
  it('names the rule and field, what was expected and what came', () => {
    expect(problem([{ name: 'x', kind: 'error_rate', threshold: 5 }])).toBe(
      '@apimeter/core: options.alerts[0].threshold must be a fraction from 0 to 1 (0.05 = 5% of calls failing), got 5',
    )
    expect(problem([{ name: 'x', kind: 'cost' }])).toBe(`@apimeter/core: options.alerts[0].threshold must be a finite number (required for 'cost' rules), got undefined`)
    expect(problem([{ name: 'x', kind: 'errors', threshold: 1 }])).toBe(
      '@apimeter/core: options.alerts[0].kind must be one of error_rate, latency, requests, cost, rate_limit, status, got "errors"',
    )
    expect(problem([{ name: 'a', kind: 'requests', threshold: 1 }, { name: 'b', kind: 'latency', threshold: 100, window: 'soon' }])).toBe(
      `@apimeter/core: options.alerts[1].window must be a duration such as '5m' or '1d', or 'day' / 'month' (calendar, UTC), got "soon"`,
    )
    expect(problem([{ name: 'x', kind: 'requests', threshold: 1, for: '-2m' }])).toBe(
      `@apimeter/core: options.alerts[0].for must be a duration such as '30s', '5m', '2h', '1d', or milliseconds, got "-2m"`,
    )
  })

  it('rejects fields of other kinds, missing kind-specific fields, unknown fields with a hint, and duplicate names', () => {
    expect(problem([{ name: 'x', kind: 'error_rate', threshold: 0.1, percentile: 'p95' }])).toBe(
      `@apimeter/core: options.alerts[0].percentile must be set only on 'latency' rules (this rule's kind is 'error_rate'), got "p95"`,
    )
    expect(problem([{ name: 'x', kind: 'status', threshold: 3 }])).toMatch(/options\.alerts\[0\]\.codes must be a list of status codes or classes such as \[500, 503\] or \['5xx'\] \(required for 'status' rules\)/)
    expect(problem([{ name: 'x', kind: 'status', threshold: 3, codes: ['6xx'] }])).toMatch(/options\.alerts\[0\]\.codes\[0\] must be a status code from 100 to 999 or a class such as '5xx', got "6xx"/)
    expect(problem([{ name: 'x', kind: 'rate_limit', limit: { requests: 0, per: '1m' } }])).toMatch(/options\.alerts\[0\]\.limit\.requests must be a whole number >= 1, got 0/)
    expect(problem([{ name: 'x', kind: 'cost', threshold: 5, warn: 1.2 }])).toMatch(/options\.alerts\[0\]\.warn must be a fraction greater than 0 and less than 1/)
    expect(problem([{ name: 'x', kind: 'cost', threshold: 5, treshold: 4 }])).toMatch(/options\.alerts\[0\]\.treshold is not a known option \(did you mean threshold\?\)/)
    expect(problem([{ name: 'x', kind: 'cost', threshold: 5 }, { name: 'x', kind: 'requests', threshold: 1 }])).toBe(
      '@apimeter/core: options.alerts[1].name must be a name no other rule has, got "x"',
    )
    expect(problem([{ name: 'x', kind: 'requests', threshold: 1, groupBy: 'planet' }])).toMatch(/options\.alerts\[0\]\.groupBy must be a dimension \(service, direction, api, route, method, status, outcome, tenant, user, model\) or a list of them, got "planet"/)
    // a scheme shaped like a plugin notifier is refused once no plugin registers it; other strings by the schema
    expect(problem([{ name: 'x', kind: 'requests', threshold: 1, notify: ['email:ops@example.com'] }])).toMatch(/options\.alerts\[0\]\.notify\[0\] names the notifier scheme 'email', which no plugin registers/)
    expect(problem([{ name: 'x', kind: 'requests', threshold: 1, notify: ['webhook:ftp://x'] }])).toMatch(/options\.alerts\[0\]\.notify\[0\] must be 'log', 'webhook:https:\/\/…', a plugin notifier such as 'slack'/)
    expect(problem([{ name: 'x', kind: 'requests', threshold: 1, tenantId: 42 }])).toMatch(/options\.alerts\[0\]\.tenantId must be a tenant id, null, or a list of them, got 42/)
    expect(problem([{ name: 'x', kind: 'requests', threshold: 1 }, 'oops'])).toMatch(/options\.alerts\[1\] must be an object/)
    expect(problem({ name: 'x' })).toMatch(/options\.alerts must be a list of alert rules/)
    expect(() => createMonitor({ logger: false, flushOnExit: false, alertIntervalMs: 5 })).toThrow(/options\.alertIntervalMs must be a whole number of milliseconds from 10 to 86,400,000, got 5/)
    expect(() => createMonitor({ logger: false, flushOnExit: false, onAlert: 'pager' as never })).toThrow(/options\.onAlert must be a function, got "pager"/)
  })

  it('accepts every documented form', async () => {
    const monitor = createMonitor({
      logger: false,
      flushOnExit: false,
      alerts: [
        { name: 'budget', kind: 'cost', api: 'openai', window: 'day', threshold: 50, warn: 0.8, notify: ['log', 'webhook:https://hooks.example.com/x'] },
        { name: 'errors', kind: 'error_rate', window: '5m', threshold: 0.05, for: '2m', keepFiringFor: 60_000, cooldown: '1h', groupBy: ['tenant', 'api'] },
        { name: 'p95', kind: 'latency', percentile: 'p95', threshold: 800, direction: 'inbound', route: ['/checkout', '/cart'], minRequests: 20 },
        { name: 'quiet', kind: 'requests', when: 'below', threshold: 1, window: '15m', noData: 'alert' },
        { name: 'quota', kind: 'rate_limit', api: 'finnhub', limit: { requests: 60, per: '1m' } },
        { name: 'headroom', kind: 'rate_limit', groupBy: 'api', notify: [{ webhook: 'https://hooks.example.com/y', secret: 's', timeoutMs: 2000, retries: 1, backoffMs: 100, headers: { 'x-k': 'v' } }] },
        { name: '5xx', kind: 'status', codes: ['5xx', 429], threshold: 10, window: '5m', enabled: false },
      ],
    })
    expect(monitor.alerts.rules).toEqual(['budget', 'errors', 'p95', 'quiet', 'quota', 'headroom', '5xx'])
    expect(monitor.health().alerts.rules).toBe(6)
    await monitor.close()
  })
})
