import { createServer } from 'node:http'
import { type ApimeterError, costs, createMonitor, definePlugin, luhnValid, maskPii, memoryStorage, type Monitor, piiRedactor, slackNotifier } from '@apimeter/core'
import { z } from 'zod'
import { afterEach, describe, expect, it } from 'vitest'
import { close, listen, waitFor } from '../../../test/support/http.js'
import { webhookReceiver } from './alerts/harness.js'

const cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

/** A monitor on memory storage whose warnings land in `logs` and (with `listen`) errors in `errors`. */
function start(options: Parameters<typeof createMonitor>[0], listenErrors = true) {
  const storage = memoryStorage({ maxCalls: Infinity })
  const logs: string[] = []
  const monitor = createMonitor({ flushOnExit: false, alertIntervalMs: 86_400_000, logger: { warn: (m) => logs.push(m) }, ...options, storage })
  const errors: ApimeterError[] = []
  if (listenErrors) monitor.on('error', (e) => errors.push(e))
  cleanup.push(() => monitor.close())
  return { monitor, storage, logs, errors }
}

const call = { direction: 'outbound', api: 'acme', method: 'GET', route: '/v1/items', statusCode: 200, durationMs: 5 } as const

describe('plugin dependencies', () => {
  const named = (name: string, dependsOn: string[], order: string[]) =>
    definePlugin({
      name,
      version: '1.0.0',
      dependsOn,
      setup(ctx) {
        order.push(`setup ${name}`)
        ctx.onCall((c) => {
          c.metadata = { ...c.metadata, seen: [...((c.metadata?.seen as string[] | undefined) ?? []), name] }
        })
      },
    })()

  it('sets plugins up, and runs their hooks, after the plugins they depend on', async () => {
    const order: string[] = []
    const { monitor, storage } = start({ plugins: [named('c', ['b'], order), named('b', ['a'], order), named('a', [], order), named('d', [], order)] })
    expect(order).toEqual(['setup a', 'setup b', 'setup c', 'setup d'])
    monitor.record(call)
    await monitor.flush()
    expect(JSON.parse(storage.calls()[0]!.metadata!)).toEqual({ seen: ['a', 'b', 'c', 'd'] })
    expect(monitor.health().plugins.map((p) => `${p.name}<-${p.dependsOn.join(',')}`)).toEqual(['a<-', 'b<-a', 'c<-b', 'd<-'])
  })

  it('a cycle, a missing dependency and a duplicate name throw, naming the plugins', () => {
    const order: string[] = []
    expect(() => createMonitor({ plugins: [named('a', ['c'], order), named('b', ['a'], order), named('c', ['b'], order)] })).toThrow(
      /plugins depend on each other in a cycle: 'a' → 'c' → 'b' → 'a'/,
    )
    expect(() => createMonitor({ plugins: [named('b', ['ghost'], order)] })).toThrow(/plugin 'b' depends on 'ghost', which is not in options.plugins/)
    expect(() => createMonitor({ plugins: [named('a', [], order), named('a', [], order)] })).toThrow(/options.plugins\[1\] is a second plugin named 'a'/)
    expect(order).toEqual([]) // nothing was set up
    expect(() => definePlugin({ name: 'self', version: '1', dependsOn: ['self'], setup() {} })).toThrow(/must not name the plugin itself/)
  })

  it('a plugin whose setup throws is failed_setup, so are its dependents; its redactions drop their fields', async () => {
    const broken = definePlugin({
      name: 'broken',
      version: '0.1.0',
      setup(ctx) {
        ctx.redact({ fields: ['url'] }, (c) => c)
        throw new Error('cannot start')
      },
    })
    const order: string[] = []
    const { monitor, storage, errors } = start({ plugins: [broken(), named('child', ['broken'], order), named('other', [], order)] })
    expect(order).toEqual(['setup other'])
    expect(monitor.health().plugins.map((p) => `${p.name} ${p.state} ${p.score}`)).toEqual(['broken failed_setup 0', 'child failed_setup 0', 'other active 100'])
    monitor.record({ ...call, url: 'https://api.acme.dev/v1/items?q=1' })
    await monitor.flush()
    expect(storage.calls()[0]!.url).toBeNull()
    expect(errors.filter((e) => e.code === 'PLUGIN_SETUP_FAILED').map((e) => e.message)).toEqual([
      expect.stringContaining(`plugin 'broken' failed to set up: cannot start`),
      expect.stringContaining(`plugin 'child' failed to set up: its dependency 'broken' failed to set up`),
    ])
  })
})

describe('call hooks', () => {
  it('enrich, change and drop calls; dropped calls are counted for the plugin, not stored', async () => {
    const filter = definePlugin({
      name: 'filter',
      version: '2.0.0',
      config: z.object({ skip: z.array(z.string()) }),
      setup(ctx) {
        ctx.onCall((c) => (ctx.config.skip.includes(c.route) ? null : { ...c, tenantId: 'acme', metadata: { region: 'eu' } }))
      },
    })
    const { monitor, storage } = start({ plugins: [filter({ skip: ['/health'] })] })
    monitor.record(call)
    monitor.record({ ...call, route: '/health' })
    await monitor.flush()
    expect(storage.calls().map((c) => [c.route, c.tenantId, c.metadata])).toEqual([['/v1/items', 'acme', '{"region":"eu"}']])
    expect(monitor.health().plugins[0]).toMatchObject({ name: 'filter', version: '2.0.0', state: 'active', calls: 2, errors: 0, droppedCalls: 1, score: 100 })
    expect(monitor.health().written).toBe(1)
  })

  it('a hook that leaves the call invalid counts as a failure and the call is stored as it came', async () => {
    const breaker = definePlugin({
      name: 'breaker',
      version: '1.0.0',
      setup(ctx) {
        ctx.onCall((c) => ({ ...c, durationMs: -1 }))
        ctx.onCall(() => 42 as never)
      },
    })
    const { monitor, storage, errors } = start({ plugins: [breaker()] })
    monitor.record(call)
    await monitor.flush()
    expect(storage.calls()[0]!.durationMs).toBe(5)
    expect(monitor.health().plugins[0]).toMatchObject({ calls: 2, errors: 2 })
    expect(errors[0]!.message).toMatch(/plugin 'breaker' left the call invalid: call.durationMs|record.durationMs/)
  })

  it('a redaction that times out drops its fields; so does one whose result is unusable', async () => {
    const slowRedactor = definePlugin({
      name: 'slow-redactor',
      version: '1.0.0',
      timeoutMs: 20,
      setup(ctx) {
        ctx.redact({ fields: ['url', 'metadata.requestBody'] }, () => new Promise(() => {}))
      },
    })
    const oddRedactor = definePlugin({
      name: 'odd-redactor',
      version: '1.0.0',
      setup(ctx) {
        ctx.redact({ fields: ['userAgent'] }, () => 'not a call' as never)
      },
    })
    const { monitor, storage } = start({ plugins: [slowRedactor(), oddRedactor()] })
    monitor.record({ ...call, url: 'https://api.acme.dev/v1/items?email=a@b.co', userAgent: 'ua', metadata: { requestBody: 'a@b.co', other: 1 } })
    await monitor.flush()
    const [stored] = storage.calls()
    expect([stored!.url, stored!.userAgent, stored!.metadata]).toEqual([null, null, '{"other":1}'])
    expect(monitor.health().plugins.map((p) => `${p.name} ${p.errors} ${p.timeouts}`)).toEqual(['slow-redactor 1 1', 'odd-redactor 1 0'])
  })

  it('a hook registered after setup returned throws', async () => {
    let late: (() => void) | undefined
    const lazy = definePlugin({
      name: 'lazy',
      version: '1.0.0',
      setup(ctx) {
        late = () => ctx.onCall((c) => c)
      },
    })
    start({ plugins: [lazy()] })
    expect(() => late!()).toThrow(/called ctx.onCall\(\) after setup returned/)
  })
})

describe('secrets', () => {
  const SECRET = 'tok-SUPER-SECRET-42'
  const leaky = definePlugin({
    name: 'leaky',
    version: '1.0.0',
    config: z.object({ token: z.string(), region: z.string() }),
    secrets: ['token'],
    maxConsecutiveErrors: 2,
    setup(ctx) {
      ctx.log(`connecting with ${ctx.config.token}`)
      ctx.onCall((c) => {
        c.metadata = { region: ctx.config.region }
        throw new Error(`upstream refused token ${ctx.config.token}`)
      })
    },
  })

  it('a secret config value never appears in storage, logs, errors, health or the audit log', async () => {
    // no error listener: warnings (the first failure, the disable) go to the logger
    const { monitor, storage, logs } = start({ plugins: [leaky({ token: SECRET, region: 'eu' })] }, false)
    const errors: ApimeterError[] = []
    const second = start({ plugins: [leaky({ token: SECRET, region: 'eu' })] })
    for (let i = 0; i < 3; i++) {
      monitor.record(call)
      second.monitor.record(call)
    }
    await monitor.flush()
    await second.monitor.flush()
    await waitFor(() => second.errors.some((e) => e.code === 'PLUGIN_DISABLED'), 'the disable report')
    errors.push(...second.errors)
    await waitFor(() => logs.some((l) => l.includes('was disabled')), 'the disable warning')
    const audit = await monitor.audit.list({})
    expect(audit.map((r) => r.kind).sort()).toEqual(['plugin.added', 'plugin.disabled'])

    const everything = JSON.stringify({
      stored: [...storage.calls(), ...second.storage.calls()],
      logs: [...logs, ...second.logs],
      errors: errors.map((e) => [e.message, e.details, String(e.cause)]),
      health: [monitor.health(), second.monitor.health()],
      audit: [...audit, ...(await second.monitor.audit.list({}))],
    })
    expect(everything).not.toContain(SECRET)
    expect(logs.join('\n')).toContain('[plugin leaky] connecting with ***')
    expect(errors.find((e) => e.code === 'PLUGIN_FAILED')!.message).toContain('upstream refused token ***')
    expect(monitor.health().plugins[0]!.config).toEqual({ token: '***', region: 'eu' })
    expect(audit.find((r) => r.kind === 'plugin.added')!.after).toEqual({ version: '1.0.0', config: { token: '***', region: 'eu' }, dependsOn: [] })
  })

  it('an invalid config is refused without echoing a secret value', () => {
    expect(() => slackNotifier({ webhookUrl: `ftp://${SECRET}` })).toThrow(/plugin 'slack-notifier' config.webhookUrl: \(a secret value, not shown\) an http:\/\/ or https:\/\/ URL/)
    try {
      slackNotifier({ webhookUrl: `ftp://${SECRET}` })
    } catch (error) {
      expect(String((error as Error).message)).not.toContain(SECRET)
    }
  })
})

describe('shipped plugins', () => {
  it('piiRedactor masks emails and Luhn-valid card numbers in URLs, routes, error messages and captured bodies', async () => {
    expect(luhnValid('4111111111111111')).toBe(true)
    expect(luhnValid('4111111111111112')).toBe(false)
    expect(maskPii('mail jane.doe+x@example.co.uk, card 4111 1111 1111 1111, order 4111111111111112')).toBe('mail [email], card [card], order 4111111111111112')

    const { monitor, storage } = start({ plugins: [piiRedactor()] })
    monitor.record({
      ...call,
      url: 'https://api.acme.dev/v1/users?email=jane%40example.com&card=5555555555554444&ref=1234567812345678',
      errorMessage: 'no account for bob@example.org',
      metadata: { requestBody: '{"email":"jane@example.com","card":"4012-8888-8888-1881"}', responseBody: 'ok 378282246310005', keep: 'x@y.zz stays (not a covered key)' },
    })
    await monitor.flush()
    const [stored] = storage.calls()
    expect(stored!.url).toBe('https://api.acme.dev/v1/users?email=[email]&card=[card]&ref=1234567812345678')
    expect(stored!.errorMessage).toBe('no account for [email]')
    expect(JSON.parse(stored!.metadata!)).toEqual({ requestBody: '{"email":"[email]","card":"[card]"}', responseBody: 'ok [card]', keep: 'x@y.zz stays (not a covered key)' })
  })

  it('slackNotifier posts incoming-webhook JSON to a loopback receiver; its URL stays secret and unmetered', async () => {
    const hook = await webhookReceiver()
    cleanup.push(hook.close)
    const webhookUrl = `${hook.url}/services/T000/B000/XOXB-SECRET-PATH`
    const { monitor, storage, logs, errors } = start({
      plugins: [slackNotifier({ webhookUrl, username: 'apimeter' })],
      alerts: [{ name: 'busy', kind: 'requests', window: '5m', threshold: 2, notify: ['slack', 'slack:#ops'] }],
    })
    monitor.instrument()
    for (let i = 0; i < 3; i++) monitor.record(call)
    await monitor.flush()
    const [event] = await monitor.alerts.evaluate()
    expect(event!.state).toBe('firing')
    expect(hook.received).toHaveLength(2)
    const bodies = hook.received.map((r) => r.body as unknown as Record<string, unknown>)
    expect(bodies.map((b) => b.channel ?? null).sort()).toEqual(['#ops', null])
    expect(bodies[0]).toMatchObject({ text: expect.stringContaining('FIRING [critical] busy'), username: 'apimeter', attachments: [expect.objectContaining({ color: 'danger' })] })
    expect(hook.received[0]!.headers['content-type']).toBe('application/json')
    const attempts = await monitor.alerts.notifications(event!.id!)
    expect(attempts.filter((a) => a.notifier !== 'callback').map((a) => `${a.notifier.replace(/#[0-9a-f]{8}$/, '#hash')} ${a.status}`).sort()).toEqual(['slack sent', 'slack:#hash sent'])
    await monitor.flush()
    expect(storage.calls()).toHaveLength(3) // the notifications themselves were not metered
    expect(monitor.health().plugins[0]).toMatchObject({ name: 'slack-notifier', calls: 2, errors: 0, config: { webhookUrl: '***', username: 'apimeter' } })
    expect(JSON.stringify([storage.calls(), attempts, logs, errors.map((e) => e.message), monitor.health(), await monitor.audit.list({})])).not.toContain('XOXB-SECRET-PATH')
  })

  it('a failing Slack webhook is a failed notification attempt, counted for the plugin', async () => {
    const hook = await webhookReceiver(() => 500)
    cleanup.push(hook.close)
    const { monitor, errors } = start({
      plugins: [slackNotifier({ webhookUrl: hook.url })],
      alerts: [{ name: 'busy', kind: 'requests', window: '5m', threshold: 1, notify: ['slack'] }],
    })
    monitor.record(call)
    await monitor.flush()
    const [event] = await monitor.alerts.evaluate()
    const attempts = await monitor.alerts.notifications(event!.id!)
    expect(attempts.filter((a) => a.notifier === 'slack').map((a) => `${a.status} ${a.error}`)).toEqual([`failed plugin 'slack-notifier' notifier 'slack' failed: Slack answered HTTP 500: ok`])
    expect(monitor.health().plugins[0]).toMatchObject({ calls: 1, errors: 1 })
    expect(errors.map((e) => e.code)).toContain('ALERT_NOTIFICATION_FAILED')
  })

  it('a notifier scheme no plugin registers is refused when the monitor is created', () => {
    expect(() => createMonitor({ alerts: [{ name: 'x', kind: 'requests', threshold: 1, notify: ['pagerduty:KEY'] }] })).toThrow(
      /options.alerts\[0\].notify\[0\] names the notifier scheme 'pagerduty', which no plugin registers/,
    )
  })
})

describe('probes from plugins', () => {
  it('a probe a plugin adds runs, is stored and checked like a configured one; a duplicate name fails its setup', async () => {
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'))
    const base = await listen(server)
    cleanup.push(() => close(server))
    const probing = definePlugin({
      name: 'probing',
      version: '1.0.0',
      setup(ctx) {
        ctx.addProbe({ name: 'upstream', url: `${base}/health`, intervalMs: 60_000, expect: { jsonPath: 'status', equals: 'ok' } })
        ctx.addProbe({ name: 'cron', heartbeat: { everyMs: 3_600_000, graceMs: 60_000 } })
      },
    })
    const { monitor } = start({ plugins: [probing()], probes: [{ name: 'own', heartbeat: { everyMs: 3_600_000 } }], runProbes: false })
    const [round] = await monitor.probes.runOnce('upstream')
    expect(round).toMatchObject({ probe: 'upstream', ran: true, checks: [expect.objectContaining({ ok: true, statusCode: 200 })] })
    expect(await monitor.probes.heartbeat('cron')).toBe(true)
    expect((await monitor.probes.status()).map((p) => [p.name, p.state]).sort()).toEqual([['cron', 'up'], ['own', 'unknown'], ['upstream', 'up']])
    expect(monitor.health().plugins).toEqual([expect.objectContaining({ name: 'probing', state: 'active' })])

    const clashing = definePlugin({ name: 'clashing', version: '1.0.0', setup: (ctx) => ctx.addProbe({ name: 'own', heartbeat: { everyMs: 60_000 } }) })
    const bad = definePlugin({ name: 'bad', version: '1.0.0', setup: (ctx) => ctx.addProbe({ name: 'x', url: 'ftp://example.com' }) })
    const other = start({ plugins: [clashing(), bad()], probes: [{ name: 'own', heartbeat: { everyMs: 3_600_000 } }], runProbes: false })
    await waitFor(() => other.errors.length >= 2, 'both setup failures reported')
    expect(other.monitor.health().plugins.map((p) => [p.name, p.state])).toEqual([['clashing', 'failed_setup'], ['bad', 'failed_setup']])
    expect(other.errors.map((e) => e.message).join('\n')).toMatch(/a probe named 'own' is already configured/)
    expect(other.errors.map((e) => e.message).join('\n')).toMatch(/ctx\.addProbe\(probe\)\.url/)
    expect((await other.monitor.probes.status()).map((p) => p.name)).toEqual(['own'])
  })
})

describe('cost models from plugins', () => {
  it('prices calls of the API a plugin adds; a throwing cost model is counted for the plugin and the call is stored unpriced', async () => {
    const server = createServer((req, res) => res.writeHead(req.url === '/cheap' ? 200 : 201, { 'content-type': 'text/plain' }).end('ok'))
    const base = await listen(server)
    cleanup.push(() => close(server))
    const pricing = definePlugin({
      name: 'pricing',
      version: '1.0.0',
      setup(ctx) {
        ctx.addApi({
          name: 'local',
          match: base,
          cost: costs.custom((c) => {
            if (c.statusCode === 201) throw new Error('no price for 201')
            return 0.25
          }),
        })
      },
    })
    const { monitor, storage } = start({ plugins: [pricing()] })
    await (await monitor.fetch(`${base}/cheap`)).text()
    await (await monitor.fetch(`${base}/other`)).text()
    await monitor.flush()
    const byRoute = Object.fromEntries(storage.calls().map((c) => [c.route, c]))
    expect(byRoute['/cheap']).toMatchObject({ api: 'local', costNanos: 250_000_000 })
    expect(byRoute['/other']).toMatchObject({ api: 'local', costNanos: null })
    expect(monitor.health().plugins[0]).toMatchObject({ calls: 2, errors: 1 })
  })
})

describe('without plugins', () => {
  it('health lists none and nothing runs between record() and storage', async () => {
    const { monitor, storage } = start({})
    monitor.record(call)
    await monitor.flush()
    expect(monitor.health().plugins).toEqual([])
    expect(storage.calls()).toHaveLength(1)
    expect((monitor as unknown as { pipeline: { stage: unknown } }).pipeline.stage).toBeUndefined()
  })
})

export type { Monitor }
