// CPU per recorded call on the main thread and on all threads, by storage: what SQLite storage's worker thread moves
// off the event loop, and what it costs in all. Linux only (reads /proc). One mode per process, so run each:
//   for m in memory main worker; do node --import tsx bench/host-cpu.ts $m; done
// memory: in-memory storage; main: SQLite with thread: 'main'; worker: SQLite in its worker thread (the default).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMonitor, memoryStorage } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { statCpuUs } from './lib.js'

const mainThread = () => statCpuUs(`/proc/self/task/${process.pid}/stat`)
const allThreads = () => statCpuUs('/proc/self/stat')

const mode = process.argv[2] as 'memory' | 'main' | 'worker'
const CALLS = 300_000
const dir = mkdtempSync(join(tmpdir(), 'apimeter-host-cpu-'))
const storage = mode === 'memory' ? memoryStorage({ maxCalls: 10_000 }) : sqliteStorage({ filename: join(dir, 'bench.db'), thread: mode })
const monitor = createMonitor({ logger: false, flushOnExit: false, storage })
await storage.init?.()
const call = { direction: 'inbound', method: 'GET', route: '/hello/:id', statusCode: 200, durationMs: 0.4, tenantId: 'acme' } as const
const main0 = mainThread()
const all0 = allThreads()
for (let i = 0; i < CALLS; i++) {
  monitor.record(call)
  if (i % 500 === 499) await new Promise((resolve) => setImmediate(resolve))
  if (i % 10_000 === 9_999) await monitor.flush() // paced: no call is dropped for a full buffer
}
await monitor.flush()
const main = (mainThread() - main0) / CALLS
const all = (allThreads() - all0) / CALLS
console.log(`${mode.padEnd(6)} main thread ${main.toFixed(2)} µs/call, all threads ${all.toFixed(2)} µs/call (${monitor.health().written} written)`)
await monitor.close()
rmSync(dir, { recursive: true, force: true })
