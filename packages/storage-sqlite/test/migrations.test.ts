import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { apimeterMigrations, runMigrations } from '@apimeter/core/sql'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { Kysely, sql, SqliteDialect } from 'kysely'
import { runFixture as run } from '../../../test/support/run-fixture.js'

const runFixture = (fixture: string, args: string[]) => run(new URL(`./fixtures/${fixture}`, import.meta.url), args)
import { tempDir } from './helpers.js'

/** apimeter's migrations, oldest first (the tests' own ones are named 9999_… so they always come last). */
const NAMES = apimeterMigrations('sqlite').map((m) => m.name)

function appliedMigrations(file: string): string[] {
  const db = new Database(file, { readonly: true })
  try {
    return (db.prepare('SELECT name FROM apimeter_migrations ORDER BY name').all() as { name: string }[]).map((r) => r.name)
  } finally {
    db.close()
  }
}

function tableNames(file: string): string[] {
  const db = new Database(file, { readonly: true })
  try {
    return (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map((r) => r.name)
  } finally {
    db.close()
  }
}

describe('SQLite migrations', () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir('apimeter-migrate-')
  })
  afterEach(() => tmp.remove())

  it('5 processes migrating one file at once apply each migration exactly once; the others wait and succeed', async () => {
    const file = tmp.file()
    const runs = await Promise.all(Array.from({ length: 5 }, () => runFixture('migrate-child.ts', ['slow', file])))
    const reports = runs.map((r) => {
      expect(r.code, r.stderr).toBe(0)
      return JSON.parse(r.stdout) as { steps: { name: string; status: string }[]; current: string; error?: string }
    })
    for (const report of reports) {
      expect(report.error).toBeUndefined()
      expect(report.current).toBe('9999_test_extra')
    }
    for (const name of [...NAMES, '9999_test_extra']) {
      const appliers = reports.filter((r) => r.steps.some((s) => s.name === name && s.status === 'applied'))
      expect(appliers, name).toHaveLength(1)
    }
    expect(appliedMigrations(file)).toEqual([...NAMES, '9999_test_extra'])
  })

  it('a process killed in the middle of a migration leaves the database at the previous version', async () => {
    const file = tmp.file()
    const storage = sqliteStorage({ filename: file })
    await storage.init!()
    await storage.close()
    expect(appliedMigrations(file)).toEqual(NAMES)

    const crashed = await runFixture('migrate-child.ts', ['crash', file])
    expect(crashed.signal).toBe('SIGKILL')
    expect(appliedMigrations(file)).toEqual(NAMES)
    expect(tableNames(file)).not.toContain('apimeter_test_crash')

    // the lock died with the process: the next run proceeds
    const again = sqliteStorage({ filename: file })
    expect((await again.migrationStatus()).pending).toEqual([])
    await again.close()
  })

  it('a failing migration rolls the whole run back and says so', async () => {
    const file = tmp.file()
    const raw = new Database(file)
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: raw }) })
    const report = await runMigrations(db, {
      dialect: 'sqlite',
      migrations: [
        ...apimeterMigrations('sqlite'),
        { name: '9999_broken', up: async (d) => { await sql`CREATE TABLE half_done (x INTEGER)`.execute(d); await sql`SELECT * FROM no_such_table`.execute(d) }, down: async () => {} },
      ],
    })
    expect(report.error?.code).toBe('MIGRATION_FAILED')
    expect(report.error?.message).toMatch(/migration 9999_broken failed: no such table: no_such_table; the run was rolled back, the database stays at no migration/)
    expect(report.steps).toEqual([
      ...NAMES.map((name) => ({ name, direction: 'up', status: 'rolled-back' })),
      { name: '9999_broken', direction: 'up', status: 'failed' },
    ])
    expect(report.current).toBeNull()
    await db.destroy()
    expect(tableNames(file).filter((t) => t.startsWith('apimeter_calls') || t === 'half_done')).toEqual([])
  })

  it('migrates to a named migration, down to zero, and rejects an unknown target', async () => {
    const storage = sqliteStorage({ filename: tmp.file(), migrate: false })
    expect((await storage.migrate('0001_initial')).current).toBe('0001_initial')
    const zero = await storage.migrate('zero')
    expect(zero.steps).toEqual([{ name: '0001_initial', direction: 'down', status: 'reverted' }])
    expect(zero.current).toBeNull()
    const bad = await storage.migrate('0042_nope')
    expect(bad.error?.message).toContain(`migration target must be 'latest', 'up', 'down', 'zero' or one of ${NAMES.join(', ')}, got "0042_nope"`)
    await storage.close()
  })

  it('uses its own bookkeeping tables, never kysely defaults, beside a host app that also uses kysely', async () => {
    const file = tmp.file()
    const raw = new Database(file)
    raw.exec('CREATE TABLE kysely_migration (name TEXT PRIMARY KEY, timestamp TEXT); CREATE TABLE app_users (id INTEGER)')
    raw.prepare(`INSERT INTO kysely_migration VALUES ('2024_app_init', '2024-01-01')`).run()
    raw.close()
    const storage = sqliteStorage({ filename: file })
    await storage.init!()
    await storage.close()
    const tables = tableNames(file)
    expect(tables).toEqual(expect.arrayContaining(['apimeter_migrations', 'apimeter_migrations_lock', 'kysely_migration', 'app_users']))
    expect(tables.filter((t) => !t.startsWith('apimeter_') && t !== 'sqlite_sequence')).toEqual(['app_users', 'kysely_migration'])
    const check = new Database(file, { readonly: true })
    expect(check.prepare('SELECT name FROM kysely_migration').all()).toEqual([{ name: '2024_app_init' }])
    check.close()
  })
})
