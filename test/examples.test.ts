import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { testUrl } from '../packages/storage-postgres/test/helpers.js'
import { runFixture } from './support/run-fixture.js'

// The README's demo and every example run as a user runs them (a child process through tsx), and print numbers
// that must add up: these keep the documented commands working.
const run = promisify(execFile)
const repoRoot = fileURLToPath(new URL('..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'apimeter-examples-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const example = (path: string) => new URL(`../examples/${path}`, import.meta.url)
const ok = (result: { code: number | null; stderr: string }) => expect(result.code, result.stderr).toBe(0)

describe('examples', () => {
  it('npm run demo: a real Express app on SQLite, real traffic, stats read back from the file', async () => {
    const result = await runFixture(example('demo/demo.ts'), [], 120_000, { APIMETER_DEMO_DB: join(dir, 'demo.db'), APIMETER_DEMO_REQUESTS: '400' })
    ok(result)
    const head = /served 400 real requests in [\d.]+ s; ([\d,]+) calls metered/.exec(result.stdout)
    expect(head, result.stdout).not.toBeNull()
    const metered = Number(head![1]!.replace(/,/g, ''))
    const health = JSON.parse(/write path health: (\{.*\})/.exec(result.stdout)![1]!) as { written: number; dropped: number; queued: number }
    // every request but the ignored health checks, plus one outbound call per description request
    expect(metered).toBeGreaterThan(300)
    expect(health).toMatchObject({ written: metered, dropped: 0, queued: 0 })
    expect(result.stdout).toMatch(/\/products\/:id\/description/)
    expect(result.stdout).toMatch(/\(unmatched\)|\/cart\/:cartId\/items/)
    expect(result.stdout).toMatch(/openai\s+\d+/)
    // the dashboard over the file: its URL, and (without --serve) the demo still ends by itself
    expect(result.stdout).toMatch(/\ndashboard: http:\/\/127\.0\.0\.1:\d+\/ \(closed now; run npm run demo -- --serve to keep it open\)\n/)
    // the demo ends by telling the user what to run next: exactly that command works from the repository root
    // (offline: when the bin is not linked, npx must fail rather than fetch some registry package named apimeter)
    const next = /inspect it: (npx apimeter migrate status --db \S+)\n/.exec(result.stdout)
    expect(next, result.stdout).not.toBeNull()
    const inspect = await run('sh', ['-c', next![1]!], { cwd: repoRoot, env: { ...process.env, npm_config_offline: 'true' } })
    expect(inspect.stdout).toMatch(/applied {2}0003_alerts[\s\S]*up to date/)
  })

  it('npm run example:express writes to a SQLite file that keeps every run', async () => {
    const env = { APIMETER_EXAMPLE_DB: join(dir, 'express.db') }
    const first = await runFixture(example('express-sqlite/server.ts'), [], 120_000, env)
    ok(first)
    const count = (out: string) => Number(/apimeter × Express: (\d+) requests/.exec(out)?.[1])
    expect(first.stdout).toMatch(/\/orgs\/:orgId\/projects\/:projectId\s+30/)
    const second = await runFixture(example('express-sqlite/server.ts'), [], 120_000, env)
    ok(second)
    expect(count(second.stdout)).toBe(2 * count(first.stdout))
  })

  it('npm run example:fastify', async () => {
    const result = await runFixture(example('fastify-basic/server.ts'), [])
    ok(result)
    expect(result.stdout).toMatch(/\/api\/v1\/books\/:isbn\s+20 requests/)
  })

  it('npm run example:postgres: two instances, one database, fleet-wide stats', async () => {
    const result = await runFixture(example('fastify-postgres/server.ts'), [], 120_000, { DATABASE_URL: testUrl() })
    ok(result)
    expect(result.stdout).toMatch(/550 requests from 2 instances, 22 errors/)
    expect(result.stdout).toMatch(/\/orders\/:id\/invoice\s+150 requests\s+errors 22/)
  })
})
