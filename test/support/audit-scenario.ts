import { type AuditRecord, createMonitor, definePlugin, type Monitor, type MonitorOptions, type SqlStorage } from '@apimeter/core'
import { expect } from 'vitest'
import { z } from 'zod'

/**
 * One scenario for the audit log on a SQL storage (SQLite and PostgreSQL run it alike): every kind of change apimeter
 * records — a migration on start, plugins added, changed and disabled, alert rules, probes and SLOs added, changed and
 * removed, a rollup rebuild, retention runs — lands once in `apimeter_audit_log`, read back through
 * `monitor.audit.list()`.
 */

const JULY_15 = Date.UTC(2026, 6, 15, 12)
const SEPTEMBER_10 = Date.UTC(2026, 8, 10, 12)

const tagger = definePlugin({
  name: 'tagger',
  version: '1.0.0',
  config: z.object({ label: z.string(), apiKey: z.string() }),
  secrets: ['apiKey'],
  setup(ctx) {
    ctx.onCall((call) => {
      call.metadata = { label: ctx.config.label }
    })
  },
})
const failing = definePlugin({
  name: 'failing',
  version: '0.1.0',
  maxConsecutiveErrors: 1,
  setup(ctx) {
    ctx.onCall(() => {
      throw new Error('nope')
    })
  },
})

const nightly = (everyMs: number) => ({ name: 'nightly', heartbeat: { everyMs, graceMs: 3_600_000 } })
const availability = (objective: number) => ({ name: 'avail', objective, window: '30d', indicator: { kind: 'availability' } }) as const
const latency = { name: 'fast', objective: 0.99, window: '7d', indicator: { kind: 'latency', thresholdMs: 300 } } as const

const call = (timestamp: number) => ({ direction: 'outbound', api: 'acme', method: 'GET', route: '/v1/items', statusCode: 200, durationMs: 4, timestamp }) as const

/** Runs the scenario; `open(now)` opens a storage on the same database (migrate: true, raw retention 30 days). */
export async function auditScenario(open: (now: () => number) => SqlStorage, dialect: 'sqlite' | 'postgres'): Promise<AuditRecord[]> {
  let now = JULY_15
  const clock = () => now
  const start = (storage: SqlStorage, options: MonitorOptions): Monitor =>
    createMonitor({ logger: false, flushOnExit: false, alertIntervalMs: 86_400_000, clock: { now: clock }, storage, ...options })

  // 1. first start: migrations run, two plugins added (one fails at once and is disabled), two rules added
  const first = open(clock)
  const m1 = start(first, {
    plugins: [tagger({ label: 'a', apiKey: 'key-SECRET-1' }), failing()],
    alerts: [
      { name: 'busy', kind: 'requests', window: '5m', threshold: 5 },
      { name: 'errors', kind: 'error_rate', window: '5m', threshold: 0.5 },
    ],
    probes: [nightly(86_400_000)],
    runProbes: false,
    slos: [availability(0.99), latency],
  })
  await m1.probes.heartbeat('nightly') // probes are stored (and their changes found) with their first round or beat
  for (let i = 0; i < 5; i++) m1.record(call(now - 60_000))
  for (let i = 0; i < 5; i++) m1.record(call(Date.UTC(2026, 1, 10)))
  await m1.flush()
  await m1.alerts.evaluate()
  await first.system!.write([{ at: Date.UTC(2026, 1, 10), service: 'x', instance: 'h:1', intervalMs: 1000, eventLoopDelayP50Us: 1, eventLoopDelayP99Us: 2, eventLoopDelayMaxUs: 3, eventLoopUtilization: 0.1, cpuUserUs: 1, cpuSystemUs: 1, rssBytes: 1, heapUsedBytes: 1, heapTotalBytes: 1, handles: 1 }])
  // retention: February's calls and sample are past 30 days
  expect(await first.maintain()).toMatchObject({ deleted: expect.any(Number) })
  const rebuilt = await first.rebuildRollups({ from: '2026-07-01', to: '2026-07-31' })
  await m1.close()

  // 2. second start, other config: a rule changed, one removed, a plugin's config changed; later, July expires
  const second = open(clock)
  const m2 = start(second, {
    plugins: [tagger({ label: 'b', apiKey: 'key-SECRET-2' })],
    alerts: [{ name: 'busy', kind: 'requests', window: '5m', threshold: 6 }],
    probes: [nightly(43_200_000)],
    runProbes: false,
    slos: [availability(0.995)],
  })
  await m2.alerts.evaluate()
  await m2.probes.heartbeat('nightly')
  now = SEPTEMBER_10
  await second.maintain()
  await m2.close()

  // 3. third start with the same config: nothing new is recorded (a removed rule is not removed again)
  const third = open(clock)
  const m3 = start(third, {
    plugins: [tagger({ label: 'b', apiKey: 'key-SECRET-2' })],
    alerts: [{ name: 'busy', kind: 'requests', window: '5m', threshold: 6 }],
    probes: [nightly(43_200_000)],
    runProbes: false,
    slos: [availability(0.995)],
  })
  await m3.alerts.evaluate()
  await m3.probes.heartbeat('nightly')
  await m3.slos.status()
  const rows = await m3.audit.list({})
  await m3.close()

  const kinds = rows.map((r) => `${r.kind} ${r.subject}`)
  expect(kinds.sort()).toEqual(
    [
      'alert_rule.added alert_rule:busy',
      'alert_rule.added alert_rule:errors',
      'alert_rule.changed alert_rule:busy',
      'alert_rule.removed alert_rule:errors',
      'migration.run migrations',
      'plugin.added plugin:failing',
      'plugin.added plugin:tagger',
      'plugin.changed plugin:tagger',
      'plugin.disabled plugin:failing',
      'probe.added probe:nightly',
      'probe.changed probe:nightly',
      'slo.added slo:avail',
      'slo.added slo:fast',
      'slo.changed slo:avail',
      'slo.removed slo:fast',
      'retention.run retention',
      'retention.run retention',
      'rollups.rebuild rollups',
    ].sort(),
  )
  const one = (kind: string, subject?: string): AuditRecord => rows.find((r) => r.kind === kind && (subject === undefined || r.subject === subject))!
  expect(one('migration.run')).toMatchObject({ before: { current: null }, after: { current: expect.stringMatching(/^0008_plugins_audit_system|^\d{4}_/) } })
  expect(one('migration.run').detail).toMatch(/applied 0001_initial.*0008_plugins_audit_system.*0009_storage_limits, applied 0010_raw_deletions, applied 0011_route_5m, applied 0012_route_hour_percentiles \(on start by (sqlite|postgres) storage\)/)
  expect(one('alert_rule.changed')).toMatchObject({
    before: { kind: 'requests', enabled: true, definition: expect.objectContaining({ threshold: 5 }) },
    after: { kind: 'requests', enabled: true, definition: expect.objectContaining({ threshold: 6 }) },
    instance: expect.stringMatching(/^default@.+:\d+$/),
  })
  expect(one('probe.changed')).toMatchObject({
    before: { kind: 'heartbeat', definition: expect.objectContaining({ heartbeat: expect.objectContaining({ everyMs: 86_400_000 }) }) },
    after: { kind: 'heartbeat', definition: expect.objectContaining({ heartbeat: expect.objectContaining({ everyMs: 43_200_000 }) }) },
  })
  expect(one('slo.changed')).toMatchObject({ before: expect.objectContaining({ objective: 0.99 }), after: expect.objectContaining({ objective: 0.995 }) })
  expect(one('slo.removed')).toMatchObject({ before: expect.objectContaining({ name: 'fast' }), after: null })
  expect(one('alert_rule.removed')).toMatchObject({ after: null, before: expect.objectContaining({ kind: 'error_rate' }) })
  expect(one('plugin.changed')).toMatchObject({ before: { version: '1.0.0', config: { label: 'a', apiKey: '***' } }, after: { version: '1.0.0', config: { label: 'b', apiKey: '***' } } })
  expect(one('plugin.disabled').detail).toMatch(/plugin 'failing' was disabled after 1 consecutive failures/)
  expect(one('rollups.rebuild')).toMatchObject({ after: { from: rebuilt.from.getTime(), to: rebuilt.to.getTime(), calls: 5 } })
  const retention = rows.filter((r) => r.kind === 'retention.run')
  expect(retention.map((r) => r.at)).toEqual([JULY_15, SEPTEMBER_10])
  expect(retention[0]!.after).toMatchObject({ calls: 5, systemSamples: 1 })
  expect(retention[1]!.after).toMatchObject({ calls: 5 })
  if (dialect === 'postgres') expect((retention[1]!.after as { partitions: string[] }).partitions).toContain('apimeter_calls_p2026_07')
  expect(JSON.stringify(rows)).not.toMatch(/key-SECRET/)
  // newest first with a limit; kind prefixes
  expect((await auditOf(open(clock), { order: 'desc', limit: 1 }))[0]!.at).toBe(Math.max(...rows.map((r) => r.at)))
  expect((await auditOf(open(clock), { kind: 'plugin' })).map((r) => r.kind).sort()).toEqual(['plugin.added', 'plugin.added', 'plugin.changed', 'plugin.disabled'])
  return rows
}

async function auditOf(storage: SqlStorage, query: Parameters<NonNullable<SqlStorage['audit']>['list']>[0]): Promise<AuditRecord[]> {
  try {
    return await storage.audit!.list(query)
  } finally {
    await storage.close()
  }
}
