import { sqliteStorage } from '@apimeter/storage-sqlite'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { auditScenario } from '../../../test/support/audit-scenario.js'
import { cli, tempDir } from './helpers.js'

describe('audit log (SQLite)', () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir('apimeter-audit-')
  })
  afterEach(() => tmp.remove())

  it('records rule changes, migrations, rebuilds, retention runs and plugin changes and disables', async () => {
    const file = tmp.file()
    const rows = await auditScenario((now) => sqliteStorage({ filename: file, now, retention: { raw: '30d' } }), 'sqlite')

    // apimeter audit lists them, oldest first; --kind filters, --json is parseable
    const listed = await cli('audit', '--db', file)
    expect(listed.code).toBe(0)
    expect(listed.out.trim().split('\n')).toHaveLength(rows.length)
    expect(listed.out).toMatch(/2026-07-15T12:00:00.000Z {2}migration.run +migrations {2}\[.+:\d+\] {2}applied 0001_initial/)
    const json = await cli('audit', '--db', file, '--kind', 'alert_rule', '--kind', 'plugin.disabled', '--json')
    expect((JSON.parse(json.out) as { kind: string }[]).map((r) => r.kind).sort()).toEqual(['alert_rule.added', 'alert_rule.added', 'alert_rule.changed', 'alert_rule.removed', 'plugin.disabled'])
    const latest = await cli('audit', '--db', file, '--from', '2026-09-01', '--limit', '1', '--json')
    expect(JSON.parse(latest.out)).toMatchObject([{ kind: 'retention.run', at: '2026-09-10T12:00:00.000Z' }])
    expect(await cli('audit', '--db', file, '--limit', 'lots')).toMatchObject({ code: 2, err: expect.stringMatching(/--limit must be a whole number/) })
    expect(await cli('audit', '--db', tmp.file('missing.db'))).toMatchObject({ code: 3 })
  })

  it('a migration run by the CLI is recorded (and a run that removes the log cannot record itself)', async () => {
    const file = tmp.file()
    expect((await cli('migrate', 'latest', '--db', file)).code).toBe(0)
    expect((await cli('migrate', 'down', '--db', file)).code).toBe(0) // 0012_route_hour_percentiles
    expect((await cli('migrate', 'down', '--db', file)).code).toBe(0) // 0011_route_5m
    expect((await cli('migrate', 'down', '--db', file)).code).toBe(0) // 0010_raw_deletions
    expect((await cli('migrate', 'down', '--db', file)).code).toBe(0) // 0009_storage_limits
    expect((await cli('migrate', 'down', '--db', file)).code).toBe(0) // drops the audit log itself
    expect((await cli('migrate', 'latest', '--db', file)).code).toBe(0)
    const rows = JSON.parse((await cli('audit', '--db', file, '--json')).out) as { kind: string; detail: string; after: { current: string } }[]
    expect(rows.map((r) => `${r.kind} ${r.after.current}`)).toEqual(['migration.run 0012_route_hour_percentiles'])
    expect(rows[0]!.detail).toMatch(/^applied 0008_plugins_audit_system, applied 0009_storage_limits, applied 0010_raw_deletions, applied 0011_route_5m, applied 0012_route_hour_percentiles \(migrate\(\) by sqlite storage\)$/)
  })
})
