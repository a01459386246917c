import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { runFixture } from '../../../test/support/run-fixture.js'

const fixture = fileURLToPath(new URL('./fixtures/exit-child.ts', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'apimeter-exit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const runChild = (args: string[]) => runFixture(fixture, args, 20_000)

describe('process lifetime', () => {
  it('a script with an open monitor exits by itself (timers are unref\'d)', async () => {
    const result = await runChild(['no-exit-flush'])
    expect(result.stdout).toBe('recorded\n')
    expect(result.code).toBe(0)
  })

  it('writes buffered calls before a natural exit (flushOnExit)', async () => {
    const file = join(dir, 'calls.jsonl')
    const result = await runChild(['flush-on-exit', file])
    expect(result.code).toBe(0)
    const lines = readFileSync(file, 'utf8').trim().split('\n')
    expect(lines).toHaveLength(1234)
    expect(JSON.parse(lines[1233]!).durationMs).toBe(1233)
  })

  it('still exits, within closeTimeoutMs, when storage is down at exit, and says what was lost', async () => {
    const result = await runChild(['storage-down'])
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(/exiting with 1234 of 1234 calls unwritten/)
  })
})
