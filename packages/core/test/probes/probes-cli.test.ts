import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { createMonitor } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { runCli } from '../../src/cli/main.js'
import { tempDir } from '../../../storage-sqlite/test/helpers.js'
import { probeClock, probeTarget } from './harness.js'

const repoRoot = fileURLToPath(new URL('../../../..', import.meta.url))
const bin = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url))
const execFileP = promisify(execFile)

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await runCli(argv, { out: (t) => (out += t), err: (t) => (err += t) })
  return { code, out, err }
}

/** The bin in a child process, as a deploy pipeline runs it: its exit code. */
async function binExitCode(...argv: string[]): Promise<{ code: number; stdout: string }> {
  return execFileP(process.execPath, ['--import', 'tsx', bin, ...argv], { cwd: repoRoot, env: { ...process.env, TSX_TSCONFIG_PATH: `${repoRoot}/tsconfig.json` } }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  )
}

describe('apimeter probes status', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c()
    cleanups.length = 0
  })

  it('prints each probe and exits 1 while an incident is open, 0 once it is resolved', async () => {
    const tmp = tempDir('apimeter-probes-cli-')
    cleanups.push(() => tmp.remove())
    const file = tmp.file()
    const target = await probeTarget()
    cleanups.push(target.close)
    const clock = probeClock(Date.UTC(2026, 2, 2, 10))
    const monitor = createMonitor({
      storage: sqliteStorage({ filename: file }),
      clock,
      runProbes: false,
      logger: false,
      flushOnExit: false,
      probes: [
        { name: 'payments', url: target.url, intervalMs: 10_000, timeoutMs: 2000 },
        { name: 'nightly', heartbeat: { everyMs: 3_600_000 } },
      ],
    })
    cleanups.push(() => monitor.close())
    const round = async () => {
      await monitor.probes.runOnce('payments')
      clock.advance(10_000)
    }
    await round()
    const healthy = await cli('probes', 'status', '--db', file)
    expect(healthy).toMatchObject({ code: 0, err: '' })
    expect(healthy.out).toMatch(/ {2}up {6}payments {2}last check 2026-03-02T10:00:00.000Z ok HTTP 200 \d+ ms\n/)
    expect(healthy.out).toMatch(/ {2}unknown nightly {2}no check yet\n/)
    expect(healthy.out).toMatch(/no open incident\n$/)

    await target.down()
    for (let i = 0; i < 3; i++) await round()
    const down = await cli('probes', 'status', '--db', file)
    expect(down.code).toBe(1)
    expect(down.out).toMatch(/ {2}down {4}payments {2}last check 2026-03-02T10:00:30.000Z failed \(connection_refused: .*ECONNREFUSED.*\) \d+ ms\n {10}incident \d+ open since 2026-03-02T10:00:10.000Z \(connection_refused\)\n/)
    expect(down.out).toMatch(/1 open incident\n$/)
    const json = await cli('probes', 'status', '--db', `sqlite:${file}`, '--json')
    expect(json.code).toBe(1)
    expect(JSON.parse(json.out)).toMatchObject({ open: 1, probes: [{ name: 'nightly', state: 'unknown' }, { name: 'payments', state: 'down', failures: 3, openIncident: { cause: 'connection_refused' } }] })
    expect((await binExitCode('probes', 'status', '--db', file)).code).toBe(1)

    await target.up()
    await round()
    expect((await cli('probes', 'status', '--db', file)).code).toBe(1) // one success: still open
    await round()
    expect(await cli('probes', 'status', '--db', file)).toMatchObject({ code: 0, out: expect.stringMatching(/ {2}up {6}payments .*\nno open incident\n$/s) })
    expect((await binExitCode('probes', 'status', '--db', file)).code).toBe(0)
  })

  it('exits 2 on a bad command line and 3 on a missing database', async () => {
    expect(await cli('probes')).toMatchObject({ code: 2, err: expect.stringMatching(/probes needs a subcommand: status/) })
    expect(await cli('probes', 'list', '--db', 'x.db')).toMatchObject({ code: 2, err: expect.stringMatching(/unknown probes subcommand 'list'/) })
    expect(await cli('probes', 'status')).toMatchObject({ code: 2, err: expect.stringMatching(/needs --db/) })
    const tmp = tempDir('apimeter-probes-cli-')
    cleanups.push(() => tmp.remove())
    expect(await cli('probes', 'status', '--db', tmp.file('missing.db'))).toMatchObject({ code: 3 })
    expect(await cli('probes', '--help')).toMatchObject({ code: 0, out: expect.stringMatching(/apimeter probes status --db <database>/) })
  })
})
