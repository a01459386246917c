import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const fixture = fileURLToPath(new URL('./fixtures/exit-child.ts', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'apimeter-exit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function runChild(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`child did not exit within ${timeoutMs} ms (stderr: ${stderr})`))
    }, timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Date.now() - started })
    })
  })
}

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
