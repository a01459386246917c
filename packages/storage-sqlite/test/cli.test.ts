import { execFile } from 'node:child_process'
import { chmodSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { apimeterMigrations } from '@apimeter/core/sql'
import { cli, tempDir } from './helpers.js'

const NAMES = apimeterMigrations('sqlite').map((m) => m.name)
const LATEST = NAMES.at(-1)!

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url))
const bin = fileURLToPath(new URL('../../core/src/cli/bin.ts', import.meta.url))
const execFileP = promisify(execFile)

describe('apimeter migrate (SQLite)', () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir('apimeter-cli-')
  })
  afterEach(() => tmp.remove())

  it('status on a missing file exits 3 without creating it', async () => {
    const file = tmp.file()
    const r = await cli('migrate', 'status', '--db', file)
    expect(r.code).toBe(3)
    expect(r.err).toMatch(/database file .* does not exist/)
    expect(await cli('migrate', 'status', '--db', file)).toMatchObject({ code: 3 })
  })

  it('latest applies, status reports up to date (0), down makes one pending (1), up re-applies', async () => {
    const file = tmp.file()
    const applied = await cli('migrate', 'latest', '--db', file)
    expect(applied).toMatchObject({ code: 0, err: '' })
    expect(applied.out).toMatch(new RegExp(NAMES.map((name) => `applied\\s+${name} \\(up\\)`).join('\\n\\s+')))
    expect(await cli('migrate', 'latest', '--db', file)).toMatchObject({ code: 0, out: expect.stringMatching(new RegExp(`nothing to do; database .* is at ${LATEST}`)) })

    const upToDate = await cli('migrate', 'status', '--db', file)
    expect(upToDate.code).toBe(0)
    expect(upToDate.out).toMatch(new RegExp(NAMES.map((name) => ` {2}applied {2}${name}`).join('.*\\n')))
    expect(upToDate.out).toMatch(/up to date/)

    const down = await cli('migrate', 'down', '--db', `sqlite:${file}`)
    expect(down).toMatchObject({ code: 0, out: expect.stringMatching(new RegExp(`reverted\\s+${LATEST} \\(down\\)`)) })
    const pending = await cli('migrate', 'status', '--db', file, '--json')
    expect(pending.code).toBe(1)
    expect(JSON.parse(pending.out)).toMatchObject({ current: NAMES.at(-2), pending: [LATEST], unknown: [] })

    expect((await cli('migrate', 'up', '--db', file)).code).toBe(0)
    const tables = new Database(file, { readonly: true }).prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'apimeter_%' ORDER BY name`).all()
    expect(tables.map((t) => (t as { name: string }).name)).toContain('apimeter_calls')
  })

  it('reads the database from APIMETER_DB', async () => {
    const file = tmp.file()
    process.env.APIMETER_DB = file
    try {
      expect((await cli('migrate', 'latest')).code).toBe(0)
      expect((await cli('migrate', 'status')).code).toBe(0)
    } finally {
      delete process.env.APIMETER_DB
    }
  })

  it('status exits 1 when the database has migrations this version does not know', async () => {
    const file = tmp.file()
    await cli('migrate', 'latest', '--db', file)
    const db = new Database(file)
    db.prepare(`INSERT INTO apimeter_migrations (name, timestamp) VALUES ('9999_from_the_future', ?)`).run(new Date().toISOString())
    db.close()
    const r = await cli('migrate', 'status', '--db', file)
    expect(r.code).toBe(1)
    expect(r.out).toMatch(/unknown {2}9999_from_the_future/)
  })

  it.each([
    [['migrate'], 2, /migrate needs a subcommand/],
    [['migrate', 'sideways', '--db', 'x.db'], 2, /unknown migrate subcommand 'sideways'/],
    [['migrate', 'latest'], 2, /needs --db/],
    [['migrate', 'latest', '--db', 'mysql://localhost/x'], 2, /--db scheme "mysql" is not supported/],
    [['migrate', 'latest', '--db', 'postgres://'], 2, /--db must be a valid postgres:\/\/ URL/],
    [['migrate', 'latest', '--db', 'sqlite:'], 2, /needs a path after "sqlite:"/],
    [['migrate', 'latest', '--db', 'x.db', '--frob'], 2, /Unknown option '--frob'/],
    [['migrate', 'latest', 'extra', '--db', 'x.db'], 2, /unexpected argument 'extra'/],
    [['migrate', 'latest', '--db', '/no/such/dir/x.db'], 3, /directory \/no\/such\/dir does not exist/],
  ])('%j exits %i with a clear message', async (argv, code, message) => {
    const r = await cli(...argv)
    expect(r.code).toBe(code)
    expect(r.err).toMatch(message)
  })

  it('prints help for the command', async () => {
    const r = await cli('migrate', '--help')
    expect(r.code).toBe(0)
    expect(r.out).toMatch(/apimeter migrate <latest\|up\|down\|status> --db <database>/)
    expect(r.out).toMatch(/Exit codes:/)
  })

  it('exits 3 on a read-only database file, naming the problem', async () => {
    const file = tmp.file()
    writeFileSync(file, '')
    chmodSync(file, 0o444)
    // Root ignores file modes through CAP_DAC_OVERRIDE (and CAP_DAC_READ_SEARCH): as root, the CLI runs still as
    // root but without those two capabilities (setpriv drops them from the bounding set, so the exec'd process never
    // has them), so the mode bits apply. Unlike switching to an unprivileged user, this needs no other user to be
    // able to read the checkout (a clone in a 0700 directory or under /root).
    const asRoot = process.getuid?.() === 0
    const command = asRoot ? 'setpriv' : process.execPath
    const args = [...(asRoot ? ['--inh-caps=-all', '--bounding-set=-dac_override,-dac_read_search', '--', process.execPath] : []), '--import', 'tsx', bin, 'migrate', 'latest', '--db', file]
    const result = await execFileP(command, args, { cwd: repoRoot, env: { ...process.env, TSX_TSCONFIG_PATH: `${repoRoot}/tsconfig.json` } }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    )
    expect(result.stderr).toMatch(/readonly|read-only/i)
    expect(result.code).toBe(3)
  })
})
