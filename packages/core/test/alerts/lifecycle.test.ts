import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { type AlertRule, type CallRecord, createMonitor, memoryStorage, type StorageAdapter } from '@apimeter/core'
import { waitFor } from '../../../../test/support/http.js'
import { runFixture } from '../../../../test/support/run-fixture.js'
import { brief, fakeClock, harness, type Harness, makeStorage, MINUTE, removeTempFiles, webhookReceiver } from './harness.js'

afterAll(removeTempFiles)

describe('alerts across restarts and monitors', () => {
  const cleanup: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })

  const rules = (hook: string): AlertRule[] => [
    { name: 'errors', kind: 'error_rate', window: '10m', threshold: 0.2, for: '2m', groupBy: 'api', notify: [`webhook:${hook}`] },
  ]

  it('SQLite: a restarted monitor does not re-fire a firing alert, keeps a pending one pending, and resolves once', async () => {
    const hook = await webhookReceiver()
    cleanup.push(hook.close)
    const clock = fakeClock()
    const first = makeStorage('sqlite', clock.now)
    const a = harness({ storage: first.storage, alerts: rules(hook.url) }, clock)
    a.record(5, { statusCode: 500 })
    await a.evaluate() // openai pending since t
    clock.advance(MINUTE)
    a.record(5, { api: 'stripe', statusCode: 500 })
    await a.evaluate() // stripe pending since t + 1m
    clock.advance(MINUTE)
    expect(brief(await a.evaluate())).toEqual(['openai firing critical 1'])
    await a.monitor.close()

    // the process restarts on the same file
    const b = harness({ storage: makeStorage('sqlite', clock.now, first.file).storage, alerts: rules(hook.url) }, clock)
    cleanup.push(() => b.monitor.close())
    expect((await b.monitor.alerts.active()).map((x) => `${x.group} ${x.state} ${x.since.getTime() - clock.t}`)).toEqual([
      `openai firing 0`,
      `stripe pending ${-MINUTE}`,
    ])
    clock.advance(30_000)
    expect(await b.evaluate()).toEqual([]) // openai keeps firing: not notified again
    clock.advance(30_000)
    // stripe has now held for 2 minutes, counted from before the restart
    expect(brief(await b.evaluate())).toEqual(['stripe firing critical 1'])
    clock.advance(MINUTE)
    expect(await b.evaluate()).toEqual([])
    clock.advance(11 * MINUTE)
    b.record(10)
    b.record(10, { api: 'stripe' })
    expect(brief(await b.evaluate()).sort()).toEqual(['openai resolved critical 0', 'stripe resolved critical 0'])
    expect(await b.evaluate()).toEqual([])
    expect(hook.received.map((r) => `${r.body.group} ${r.body.state}`).sort()).toEqual(['openai firing', 'openai resolved', 'stripe firing', 'stripe resolved'])
    const history = await b.monitor.alerts.history({ from: 0 })
    expect(history.map((e) => `${e.group} ${e.state}`)).toEqual(['openai pending', 'stripe pending', 'openai firing', 'stripe firing', 'openai resolved', 'stripe resolved'])
    await b.monitor.close()

    // and a third start after everything resolved notifies nothing
    const c = harness({ storage: makeStorage('sqlite', clock.now, first.file).storage, alerts: rules(hook.url) }, clock)
    cleanup.push(() => c.monitor.close())
    clock.advance(MINUTE)
    expect(await c.evaluate()).toEqual([])
    expect(hook.received).toHaveLength(4)
  })

  it('memory: two monitors sharing one storage notify each transition once', async () => {
    const hook = await webhookReceiver()
    cleanup.push(hook.close)
    const clock = fakeClock()
    const storage = memoryStorage()
    const rule: AlertRule[] = [{ name: 'volume', kind: 'requests', window: '5m', threshold: 3, notify: [`webhook:${hook.url}`] }]
    const a = harness({ storage, alerts: rule }, clock)
    const b = harness({ storage, alerts: rule }, clock)
    cleanup.push(() => b.monitor.close(), () => a.monitor.close())
    a.record(2)
    b.record(2)
    const first = await Promise.all([a.evaluate(), b.evaluate()])
    expect(first.flat().map((e) => e.state)).toEqual(['firing'])
    await Promise.all([a.evaluate(), b.evaluate()])
    clock.advance(6 * MINUTE)
    const second = await Promise.all([b.evaluate(), a.evaluate()])
    expect(second.flat().map((e) => e.state)).toEqual(['resolved'])
    expect(hook.received.map((r) => r.body.state)).toEqual(['firing', 'resolved'])
    expect(a.alerts.length + b.alerts.length).toBe(2)
  })
})

/** A real memory storage whose reads can be made to fail or hang (the database, not the SDK, misbehaving). */
function flakyReads(inner = memoryStorage()): StorageAdapter & { mode: 'ok' | 'fail' | 'hang'; release(): void } {
  let release: () => void = () => undefined
  const wrapper = {
    name: 'flaky',
    capabilities: inner.capabilities,
    alerts: inner.alerts,
    mode: 'ok' as 'ok' | 'fail' | 'hang',
    release: () => release(),
    init: () => inner.init!(),
    writeCalls: (calls: readonly CallRecord[]) => inner.writeCalls(calls),
    async aggregate(query: Parameters<StorageAdapter['aggregate']>[0]) {
      if (wrapper.mode === 'fail') throw new Error('connection reset by peer')
      if (wrapper.mode === 'hang') await new Promise<void>((resolve) => (release = resolve))
      return inner.aggregate(query)
    },
    close: () => inner.close(),
  }
  return wrapper
}

describe('the evaluator', () => {
  const open: Harness[] = []
  afterEach(async () => {
    for (const h of open.splice(0)) await h.monitor.close()
  })

  it('reports evaluation errors through health() and the error event, and recovers', async () => {
    const storage = flakyReads()
    const h = harness({ storage, alerts: [{ name: 'volume', kind: 'requests', window: '5m', threshold: 3 }] })
    open.push(h)
    storage.mode = 'fail'
    h.record(5)
    expect(await h.evaluate()).toEqual([])
    expect(h.monitor.health().alerts).toMatchObject({ rules: 1, evaluations: 1, failedEvaluations: 1 })
    expect(h.monitor.health().alerts.lastError).toMatchObject({ code: 'ALERT_EVALUATION_FAILED' })
    expect(h.monitor.health().alerts.lastError!.message).toMatch(/^@apimeter\/core: alert rule 'volume' could not be evaluated: connection reset by peer$/)
    expect(h.errors.map((e) => e.code)).toEqual(['ALERT_EVALUATION_FAILED'])
    expect(h.monitor.health()).toMatchObject({ written: 5, dropped: 0 }) // recording was not affected
    storage.mode = 'ok'
    expect(brief(await h.evaluate())).toEqual(['firing critical 5'])
    expect(h.monitor.health().alerts).toMatchObject({ evaluations: 2, failedEvaluations: 1 })
  })

  it('never blocks recording: while an evaluation hangs on the database, calls keep being recorded and written', async () => {
    const storage = flakyReads()
    const h = harness({ storage, closeTimeoutMs: 200, alerts: [{ name: 'volume', kind: 'requests', window: '5m', threshold: 3 }] })
    open.push(h)
    storage.mode = 'hang'
    let settled = false
    const evaluation = h.monitor.alerts.evaluate().then(() => (settled = true))
    for (let i = 0; i < 1000; i++) h.record(1)
    await h.monitor.flush()
    expect(h.monitor.health()).toMatchObject({ written: 1000, dropped: 0 })
    expect(settled).toBe(false)
    storage.mode = 'ok'
    storage.release()
    await evaluation
    expect(h.alerts).toHaveLength(1)
  })

  it('runs on its own interval with the real clock', async () => {
    const events: string[] = []
    const monitor = createMonitor({
      logger: false,
      flushOnExit: false,
      flushIntervalMs: 10,
      alertIntervalMs: 20,
      alerts: [{ name: 'volume', kind: 'requests', window: '1h', threshold: 2 }],
    })
    monitor.on('alert', (e) => events.push(`${e.rule} ${e.state}`))
    monitor.record({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 })
    monitor.record({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 })
    await waitFor(() => events.length > 0, 'the interval to fire the alert')
    await waitFor(() => monitor.health().alerts.evaluations >= 3, 'more evaluations')
    expect(events).toEqual(['volume firing'])
    await monitor.close()
  })

  it('a script with alert rules exits by itself (the alert timer is unref\'d)', async () => {
    const result = await runFixture(fileURLToPath(new URL('./fixtures/exit-with-alerts.ts', import.meta.url)), [], 20_000)
    expect(result.stderr).toBe('')
    expect(result.stdout).toBe('evaluated 1\n')
    expect(result.code).toBe(0)
  })
})
