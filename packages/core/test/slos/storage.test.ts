import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { type AlertEvent, createMonitor } from '@apimeter/core'
import { postgresStorage } from '@apimeter/storage-postgres'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { freshSchema, query, testUrl } from '../../../storage-postgres/test/helpers.js'
import { makeSloStorage, MINUTE, recordAt, removeSloStorages, testClock } from './helpers.js'

afterAll(removeSloStorages)

const N = Date.UTC(2026, 6, 1, 12, 0, 0)
const SLO = { name: 'api', objective: 0.99, window: '30d' as const, indicator: { kind: 'availability' as const } }

describe('SLO burn alerts across a PostgreSQL fleet', () => {
  it('three monitors on one database evaluating at once notify the page once and its resolution once', async () => {
    const { schema, drop } = await freshSchema('slofleet')
    const clock = testClock(N)
    const events: AlertEvent[] = []
    const monitors = [1, 2, 3].map((i) =>
      createMonitor({ service: `node-${i}`, storage: postgresStorage({ connectionString: testUrl(), schema, now: clock.now }), clock: { now: clock.now }, logger: false, flushOnExit: false, alertIntervalMs: 86_400_000, slos: [SLO], onAlert: (e) => void events.push(e) }),
    )
    try {
      // 20 calls in the last 5 minutes, 10 failing: burn 50 over 5m and 1h (and over 6h/30m): a page
      recordAt(monitors[0]!, N - 2 * MINUTE, 10)
      recordAt(monitors[1]!, N - 2 * MINUTE, 10, { statusCode: 500 })
      await Promise.all(monitors.map((m) => m.flush()))
      await Promise.all(monitors.map((m) => m.alerts.evaluate()))
      clock.set(N + 7 * 60 * MINUTE) // past every window but 1d and 3d: the page resolves (the ticket's 6h window is empty too)
      await Promise.all(monitors.map((m) => m.alerts.evaluate()))
      await new Promise((resolve) => setImmediate(resolve))
      expect(events.map((e) => `${e.rule} ${e.state}`).sort()).toEqual(['slo:api:page firing', 'slo:api:page resolved', 'slo:api:ticket firing', 'slo:api:ticket resolved'])
      const stored = await query<{ rule_name: string; state: string }>(`SELECT rule_name, state FROM apimeter_alert_events ORDER BY id`, schema)
      expect(stored.map((r) => `${r.rule_name} ${r.state}`)).toEqual(['slo:api:page firing', 'slo:api:ticket firing', 'slo:api:page resolved', 'slo:api:ticket resolved'])
      expect(await query(`SELECT name, kind FROM apimeter_alert_rules ORDER BY name`, schema)).toEqual([{ name: 'slo:api:page', kind: 'slo_burn' }, { name: 'slo:api:ticket', kind: 'slo_burn' }])
      expect((await query<{ name: string }>(`SELECT name FROM apimeter_slos`, schema)).map((r) => r.name)).toEqual(['api'])
    } finally {
      for (const m of monitors) await m.close()
      await drop()
    }
  })
})

/** An alert rule and a firing instance written the way 0001–0005 left them. */
const RULE = `INSERT INTO apimeter_alert_rules (name, kind, definition, enabled, created_at, updated_at) VALUES ('errors', 'error_rate', '{}', 1, 1, 2)`
const STATE = `INSERT INTO apimeter_alert_state (rule_name, group_key, state, severity, value, firing_since, active_at, version) VALUES ('errors', 'g', 'firing', 'critical', 0.5, 10, 20, 3)`
const BURN = `INSERT INTO apimeter_alert_rules (name, kind, definition, enabled, created_at, updated_at) VALUES ('slo:x:page', 'slo_burn', '{}', 1, 1, 1)`

describe('migration 0007_slos keeps existing alert state', () => {
  it('on SQLite: the rule table is rebuilt with the slo_burn kind, its state rows survive, and down reverts it', async () => {
    const { db: file } = await makeSloStorage('sqlite', Date.now)
    const storage = sqliteStorage({ filename: file!, migrate: false })
    expect((await storage.migrate('0005_rollups_5m')).error).toBeUndefined()
    const raw = new Database(file)
    raw.pragma('foreign_keys = ON')
    raw.exec(RULE)
    raw.exec(STATE)
    expect(() => raw.exec(BURN)).toThrow(/CHECK constraint failed/)
    raw.close()
    expect(await storage.migrate('0007_slos')).toMatchObject({ current: '0007_slos' })
    const db = new Database(file)
    db.pragma('foreign_keys = ON')
    expect(db.prepare(`SELECT rule_name, group_key, state, severity, value, firing_since, active_at, version FROM apimeter_alert_state`).all()).toEqual([{ rule_name: 'errors', group_key: 'g', state: 'firing', severity: 'critical', value: 0.5, firing_since: 10, active_at: 20, version: 3 }])
    db.exec(BURN)
    // the foreign key still holds: deleting a rule cascades to its state
    db.exec(`INSERT INTO apimeter_alert_state (rule_name, group_key, state, version) VALUES ('slo:x:page', '', 'firing', 1)`)
    expect(db.pragma('foreign_key_check')).toEqual([])
    db.close()
    expect(await storage.migrate('0005_rollups_5m')).toMatchObject({ current: '0005_rollups_5m' })
    const after = new Database(file)
    expect(after.prepare(`SELECT name, kind FROM apimeter_alert_rules`).all()).toEqual([{ name: 'errors', kind: 'error_rate' }])
    expect(after.prepare(`SELECT rule_name, state FROM apimeter_alert_state`).all()).toEqual([{ rule_name: 'errors', state: 'firing' }])
    expect(after.prepare(`SELECT name FROM sqlite_master WHERE name = 'apimeter_slos'`).all()).toEqual([])
    after.close()
    await storage.close()
  })

  it('on PostgreSQL: the kind constraint takes slo_burn, state rows untouched, and down reverts it', async () => {
    const { schema, drop } = await freshSchema('slomig')
    const storage = postgresStorage({ connectionString: testUrl(), schema, migrate: false })
    try {
      expect((await storage.migrate('0005_rollups_5m')).error).toBeUndefined()
      await query(RULE, schema)
      await query(STATE, schema)
      await expect(query(BURN, schema)).rejects.toThrow(/apimeter_alert_rules_kind_check/)
      expect(await storage.migrate('0007_slos')).toMatchObject({ current: '0007_slos' })
      await query(BURN, schema)
      expect(await query(`SELECT rule_name, state, version FROM apimeter_alert_state`, schema)).toEqual([{ rule_name: 'errors', state: 'firing', version: 3 }])
      expect(await storage.migrate('0005_rollups_5m')).toMatchObject({ current: '0005_rollups_5m' })
      expect(await query(`SELECT name FROM apimeter_alert_rules`, schema)).toEqual([{ name: 'errors' }])
      await expect(query(BURN, schema)).rejects.toThrow(/apimeter_alert_rules_kind_check/)
    } finally {
      await storage.close()
      await drop()
    }
  })
})
