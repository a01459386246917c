import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { apimeterMigrations, runMigrations } from '@apimeter/core/sql'
import { postgresStorage } from '@apimeter/storage-postgres'
import { sql } from 'kysely'
import pg from 'pg'
import { runCli } from '../../core/src/cli/main.js'
import { runFixture as run } from '../../../test/support/run-fixture.js'
import { freshSchema, query, testUrl } from './helpers.js'

/** apimeter's migrations, oldest first (the tests' own ones are named 9999_… so they always come last). */
const NAMES = apimeterMigrations('postgres').map((m) => m.name)

const runFixture = (fixture: string, args: string[]) => run(new URL(`./fixtures/${fixture}`, import.meta.url), args)

describe('PostgreSQL migrations', () => {
  let schema: string
  let drop: () => Promise<void>
  beforeEach(async () => {
    ;({ schema, drop } = await freshSchema('m'))
  })
  afterEach(async () => drop())

  it('5 processes migrating at once apply each migration exactly once (advisory lock, one transaction per run)', async () => {
    const runs = await Promise.all(Array.from({ length: 5 }, () => runFixture('migrate-child.ts', [testUrl(), schema])))
    const reports = runs.map((r) => {
      expect(r.code, r.stderr).toBe(0)
      return JSON.parse(r.stdout) as { steps: { name: string; status: string }[]; current: string; error?: string }
    })
    for (const report of reports) {
      expect(report.error).toBeUndefined()
      expect(report.current).toBe('9999_test_extra')
    }
    for (const name of [...NAMES, '9999_test_extra']) {
      expect(reports.filter((r) => r.steps.some((s) => s.name === name && s.status === 'applied')), name).toHaveLength(1)
    }
    const applied = await query<{ name: string }>(`SELECT name FROM "${schema}".apimeter_migrations ORDER BY name`)
    expect(applied.map((r) => r.name)).toEqual([...NAMES, '9999_test_extra'])
  })

  it('a failing migration rolls its whole run back (transactional DDL)', async () => {
    const storage = postgresStorage({ connectionString: testUrl(), schema, migrate: false })
    await storage.migrationStatus()
    const report = await runMigrations(storage.db, {
      dialect: 'postgres',
      schema,
      migrations: [...apimeterMigrations('postgres'), { name: '9999_broken', up: async (db) => { await sql`CREATE TABLE half_done (x INT)`.execute(db); await sql`SELECT * FROM no_such_table`.execute(db) }, down: async () => {} }],
    })
    expect(report.error?.code).toBe('MIGRATION_FAILED')
    expect(report.error?.message).toMatch(/migration 9999_broken failed: relation "no_such_table" does not exist; the run was rolled back, the database stays at no migration/)
    const tables = await query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = '${schema}' AND tablename NOT LIKE 'apimeter_migrations%'`)
    expect(tables).toEqual([])
    await storage.close()
  })

  it('uses its own advisory lock: a host app migrating with kysely at the same time does not block it', async () => {
    const holder = new pg.Client({ connectionString: testUrl() })
    await holder.connect()
    try {
      await holder.query('SELECT pg_advisory_lock(3853314791062309107)') // kysely's migration lock key
      const storage = postgresStorage({ connectionString: testUrl(), schema })
      await storage.init!() // would wait forever on kysely's key
      expect((await storage.migrationStatus()).pending).toEqual([])
      await storage.close()
    } finally {
      await holder.end()
    }
  })

  it('keeps each schema separate and never uses kysely’s default table names', async () => {
    const other = await freshSchema('m')
    try {
      const a = postgresStorage({ connectionString: testUrl(), schema })
      await a.init!()
      const b = postgresStorage({ connectionString: testUrl(), schema: other.schema, migrate: false })
      expect((await b.migrationStatus()).pending).toEqual(NAMES)
      await a.close()
      await b.close()
      const names = await query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = '${schema}' ORDER BY tablename`)
      expect(names.map((n) => n.tablename)).toContain('apimeter_migrations')
      expect(names.map((n) => n.tablename)).not.toContain('kysely_migration')
    } finally {
      await other.drop()
    }
  })

  it('apimeter migrate latest|status work with a postgres:// URL, with documented exit codes', async () => {
    const dbName = `cli_${schema}`
    await query(`CREATE DATABASE ${dbName}`)
    const url = testUrl().replace(/\/postgres$/, `/${dbName}`)
    try {
      let out = ''
      let err = ''
      const io = { out: (t: string) => (out += t), err: (t: string) => (err += t) }
      expect(await runCli(['migrate', 'status', '--db', url], io)).toBe(1)
      expect(out).toMatch(/pending {2}0001_initial/)
      expect(await runCli(['migrate', 'latest', '--db', url], io)).toBe(0)
      expect(out).toMatch(new RegExp(`applied\\s+${NAMES.at(-1)}`))
      out = ''
      expect(await runCli(['migrate', 'status', '--db', url, '--json'], io)).toBe(0)
      expect(JSON.parse(out)).toMatchObject({ current: NAMES.at(-1), pending: [] })
      // an unreachable server: exit 3
      expect(await runCli(['migrate', 'status', '--db', 'postgres://postgres@127.0.0.1:1/postgres'], io)).toBe(3)
      expect(err).toMatch(/cannot reach PostgreSQL/)
    } finally {
      const admin = new pg.Client({ connectionString: testUrl() })
      await admin.connect()
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
      await admin.end()
    }
  })
})
