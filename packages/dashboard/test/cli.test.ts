import { createMonitor } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../core/src/cli/main.js'
import { waitFor } from '../../../test/support/http.js'
import { sampleCalls, seed, startDashboardCli, tempDir } from './fixtures.js'

const start = startDashboardCli

describe('apimeter dashboard', () => {
  const tmp = tempDir()
  const file = `${tmp.dir}/cli.db`
  beforeAll(async () => {
    const monitor = createMonitor({ logger: false, flushOnExit: false, storage: sqliteStorage({ filename: file }) })
    await seed(monitor, sampleCalls(Date.now()))
    await monitor.close()
  })
  afterAll(() => tmp.remove())

  it('serves a database alone on loopback without a token, printing its URL, until stopped', async () => {
    const run = start('--db', file, '--port', '0')
    await waitFor(() => /http:\/\/127\.0\.0\.1:\d+\//.test(run.out()) || run.err() !== '', 'the URL')
    expect(run.err()).toBe('')
    const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(run.out())![1]!
    expect(run.out()).toBe(`apimeter dashboard for ${file} at ${url} (this machine only: no token); Ctrl-C stops it\n`)
    expect((await fetch(url)).status).toBe(200)
    const body = (await (await fetch(`${url}api/overview?range=7d`)).json()) as { summary: { requests: number } }
    expect(body.summary.requests).toBe(24)
    expect(await run.stop()).toBe(0)
    await expect(fetch(url)).rejects.toThrow()
  })

  it('asks for the token when given one (--token or APIMETER_TOKEN)', async () => {
    const run = start('--db', file, '--port', '0', '--token', 's3cret')
    await waitFor(() => run.out().includes('Ctrl-C') || run.err() !== '', 'the URL')
    const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(run.out())![1]!
    expect(run.out()).not.toContain('this machine only')
    expect((await fetch(`${url}api/overview`)).status).toBe(401)
    expect((await fetch(`${url}api/overview`, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(200)
    expect(await run.stop()).toBe(0)
  })

  it('refuses to listen beyond loopback without a token, and says what is wrong with its options', async () => {
    const open = start('--db', file, '--host', '0.0.0.0', '--port', '0')
    expect(await open.code).toBe(2)
    expect(open.err()).toMatch(/^apimeter: options\.auth is required when listening on 0\.0\.0\.0: pass a token/)
    const port = start('--db', file, '--port', 'http')
    expect(await port.code).toBe(2)
    expect(port.err()).toBe('apimeter: --port must be a whole number from 0 to 65535, got "http"\n')
    const missing = start('--db', `${tmp.dir}/none.db`, '--port', '0')
    expect(await missing.code).toBe(3)
    let help = ''
    expect(await runCli(['dashboard', '--help'], { out: (t) => (help += t), err: () => undefined })).toBe(0)
    expect(help).toMatch(/apimeter dashboard --db <database> \[--port <port>\] \[--host <address>\] \[--token <token>\]/)
  })
})
