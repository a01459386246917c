import { execFile } from 'node:child_process'
import { chmodSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { createMonitor, type Monitor } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { pinnedNodes } from '../../scripts/node-versions.js'
import { tempDir } from '../../packages/storage-sqlite/test/helpers.js'

/**
 * Faults of the write path on real SQLite files (docs/reliability.md): another process holding the lock, a file this
 * process may not write, a database that is full, a native driver that cannot load in this Node.js.
 */

const run = promisify(execFile)
const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const fixture = fileURLToPath(new URL('./fixtures/sqlite-child.ts', import.meta.url))
const call = { direction: 'inbound', method: 'GET', route: '/x', statusCode: 200, durationMs: 1 } as const

interface ChildReport {
  flushed: string
  flushMs: number
  health: { written: number; dropped: number; queued: number; lastError: { message: string } | null }
  errors: string[]
  node: string
}

async function child(command: string, args: string[]): Promise<{ code: number; report: ChildReport; stderr: string }> {
  const result = await run(command, args, { cwd: repoRoot, timeout: 60_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  )
  const line = result.stdout.trim().split('\n').at(-1) ?? ''
  if (!line.startsWith('{')) throw new Error(`the child printed no report (exit ${result.code}): ${result.stderr}`)
  return { code: result.code, report: JSON.parse(line) as ChildReport, stderr: result.stderr }
}

describe('SQLite write faults', () => {
  const tmp = tempDir('apimeter-faults-')
  let monitor: Monitor | undefined
  afterEach(async () => {
    await monitor?.close()
    monitor = undefined
  })

  it('waits out another process holding the write lock (busy), then writes every call once', async () => {
    const file = tmp.file('locked.db')
    const storage = sqliteStorage({ filename: file, busyTimeoutMs: 50 })
    await storage.init!()
    monitor = createMonitor({ storage, logger: false, flushOnExit: false, retry: { initialDelayMs: 20, maxDelayMs: 100, jitter: 0 } })
    const other = new Database(file)
    other.exec('BEGIN EXCLUSIVE')
    for (let i = 0; i < 30; i++) monitor.record(call)
    monitor.flush().catch(() => undefined)
    const deadline = Date.now() + 10_000
    while (monitor.health().failedWrites < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(monitor.health().failedWrites).toBeGreaterThanOrEqual(2)
    expect(monitor.health().lastError?.message).toMatch(/locked|busy/i)
    expect(monitor.health()).toMatchObject({ written: 0, dropped: 0, queued: 30 })
    other.exec('COMMIT')
    other.close()
    await monitor.flush({ timeoutMs: 10_000 })
    expect(monitor.health()).toMatchObject({ written: 30, dropped: 0, queued: 0 })
    expect((await monitor.stats.summary()).requests).toBe(30)
  })

  it('keeps calls buffered while the database is full, and writes them once there is room', async () => {
    const database = new Database(tmp.file('full.db'))
    const storage = sqliteStorage({ database })
    await storage.init!()
    const pages = Number(database.pragma('page_count', { simple: true }))
    database.pragma(`max_page_count = ${pages}`) // no room for one more page: SQLITE_FULL
    monitor = createMonitor({ storage, logger: false, flushOnExit: false, retry: { initialDelayMs: 20, maxDelayMs: 100, jitter: 0 } })
    for (let i = 0; i < 2000; i++) monitor.record({ ...call, userAgent: `agent ${i} ${'x'.repeat(200)}` })
    await expect(monitor.flush({ timeoutMs: 1500 })).rejects.toMatchObject({ code: 'FLUSH_TIMEOUT' })
    expect(monitor.health().lastError?.message).toMatch(/full/i)
    expect(monitor.health()).toMatchObject({ dropped: 0, queued: 2000 })
    database.pragma('max_page_count = 1000000')
    await monitor.flush({ timeoutMs: 10_000 })
    expect(monitor.health()).toMatchObject({ written: 2000, dropped: 0, queued: 0 })
    await monitor.close()
    monitor = undefined
    database.close()
  })

  it('reports a read-only database file without crashing, and keeps the calls buffered', async () => {
    const file = tmp.file('readonly.db')
    const storage = sqliteStorage({ filename: file })
    await storage.init!()
    await storage.close()
    chmodSync(file, 0o444)
    chmodSync(tmp.dir, 0o555) // nor may it create a journal beside the file
    try {
      // As root the mode bits would not apply: the child runs as root without the capabilities that bypass them.
      const asRoot = process.getuid?.() === 0
      const command = asRoot ? 'setpriv' : process.execPath
      const args = [...(asRoot ? ['--inh-caps=-all', '--bounding-set=-dac_override,-dac_read_search', '--', process.execPath] : []), '--import', 'tsx', fixture, file, '5']
      const { code, report } = await child(command, args)
      expect(code).toBe(0)
      expect(report.flushed).toMatch(/flush\(\) timed out/)
      expect(report.health).toMatchObject({ written: 0, queued: 5 })
      expect(report.health.lastError?.message).toMatch(/readonly|read-only/i)
    } finally {
      chmodSync(tmp.dir, 0o755)
    }
  })

  it('stops at once, saying what to run, when the native driver cannot load in this Node.js (never retried forever)', async () => {
    // better-sqlite3 was compiled for the Node.js that ran `npm install` (20); Node 22 cannot load that addon.
    const node22 = pinnedNodes().find((n) => n.major === 22)!
    expect(existsSync(node22.bin), `Node ${node22.version} is installed by npm install (test/node-versions)`).toBe(true)
    const { code, report } = await child(node22.bin, ['--import', 'tsx', fixture, tmp.file('driver.db'), '5'])
    expect(code).toBe(0)
    expect(report.node).toBe(node22.version)
    expect(report.flushed).toBe('flushed') // it used to wait forever: the load error was retried as transient
    expect(report.health).toMatchObject({ written: 0, dropped: 5, queued: 0 })
    expect(report.health.lastError?.message).toMatch(/npm rebuild better-sqlite3/)
    expect(report.errors.filter((e) => e.startsWith('WRITE_FAILED'))).toHaveLength(1) // reported once
  })
})
