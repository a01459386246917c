// Child process of the sqlite bench suite: the host's resident memory while it meters live traffic into a storage.
// Plain JavaScript on the built packages (no TypeScript loader), so what is measured is what an application carries.
//   node --expose-gc bench/servers/rss-child.mjs <memory|sqlite|sqlite-main|control> <calls> <dir> [burst]
// (control: the same host with the same imports making the same calls at the same pace, none of them recorded: what
// the host's own allocation grows by)
// Prints { baseline, peak, steady, parts } in MiB: RSS after everything is imported (the host's own baseline), the
// highest RSS seen while metering, RSS once the last batch is written and garbage is collected, and what grew between
// baseline and steady state, part by part (see parts() below).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createMonitor, memoryStorage } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'

const [kind, callsText, dir, burstText] = process.argv.slice(2)
const calls = Number(callsText)
/** Calls recorded in one synchronous loop before the child yields (1,000 every 10 ms unless given). */
const burst = Number(burstText ?? 1000)
const mib = () => process.memoryUsage().rss / 2 ** 20

/**
 * Resident memory by kind, in MiB, from /proc/self/smaps (Linux): the host's JavaScript heap in use and its array
 * buffers (from the host's own V8), V8's heap pages of every thread (its 256 KiB mappings), native memory (glibc's
 * brk heap and its mmapped arenas — a worker thread's, where its SQLite allocates, and the main thread's when the brk
 * heap cannot grow in place — and V8's large objects: one pool, since where a thread's allocations land varies from
 * run to run), and the mapped files (the node binary and libraries, paged in as code runs).
 */
function parts() {
  const usage = process.memoryUsage()
  const out = { jsHeap: usage.heapUsed, arrayBuffers: usage.arrayBuffers, v8Pages: 0, native: 0, files: 0 }
  let size = 0
  let name = ''
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const mapping = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (mapping) {
      size = parseInt(mapping[2], 16) - parseInt(mapping[1], 16)
      name = mapping[3]
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (!rss) continue
    const bytes = Number(rss[1]) * 1024
    if (name.startsWith('/')) out.files += bytes
    else if (name === '' && size === 256 * 1024) out.v8Pages += bytes
    else if (name === '' || name === '[heap]') out.native += bytes
  }
  for (const key of Object.keys(out)) out[key] /= 2 ** 20
  return out
}
const settle = async () => {
  globalThis.gc?.()
  await sleep(300)
  globalThis.gc?.()
}

const apis = ['openai', 'anthropic', 'stripe', 'twilio', null]
const statuses = [200, 200, 200, 201, 404, 429, 500]
const now = Date.now()
/** The control's stand-in for a monitor: reads each call's strings, keeps nothing. */
function unrecorded() {
  let seen = 0
  let read = 0
  return {
    /** @param {{ route: string, tenantId: string }} call */
    record: (call) => {
      seen++
      read += call.route.length + call.tenantId.length
    },
    health: () => ({ queued: 0, written: seen, read }),
    flush: async () => {},
    close: async () => {},
  }
}
/** The i-th call of live traffic over the last hour: 5 APIs (one inbound), 20 routes, 50 tenants, costs. */
const liveCall = (i) => ({
  direction: apis[i % 5] ? 'outbound' : 'inbound',
  api: apis[i % 5],
  method: i % 3 === 0 ? 'POST' : 'GET',
  route: `/v1/resource${i % 10}/${i % 20 < 10 ? ':id' : 'list'}`,
  statusCode: statuses[(i * 7) % statuses.length],
  durationMs: 2 + ((i * 7919) % 50_000) / 25,
  cost: apis[i % 5] ? ((i % 97) + 1) / 1e6 : undefined,
  tenantId: `tenant-${(i * 31) % 50}`,
  responseBytes: 100 + (i % 4000),
  timestamp: now - 3_600_000 + Math.floor((i / calls) * 3_600_000),
})

await settle()
const before = parts()
const baseline = mib()
const monitor = kind === 'control' ? unrecorded() : createMonitor({ storage: kind === 'memory' ? memoryStorage() : sqliteStorage({ filename: join(dir, `${kind}.db`), ...(kind === 'sqlite-main' ? { thread: 'main' } : {}) }), logger: false, flushOnExit: false })
let peak = 0
// bursts of 1,000 calls every 10 ms (up to 100,000 calls/s); traffic a storage cannot keep up with for long is held
// while 20,000 calls wait in the buffer, instead of overflowing it
for (let i = 0; i < calls; i += burst) {
  for (let j = i; j < Math.min(i + burst, calls); j++) monitor.record(liveCall(j))
  await sleep(10)
  while (monitor.health().queued > 20_000) await sleep(5)
  if (i % 50_000 < burst) peak = Math.max(peak, mib())
}
await monitor.flush()
peak = Math.max(peak, mib())
// two flush intervals (2 s by default) with nothing recorded: the monitor gives back the staging room a burst grew
await sleep(4500)
await settle()
const steady = mib()
const after = parts()
const grown = Object.fromEntries(Object.keys(after).map((key) => [key, after[key] - before[key]]))
if (monitor.health().written !== calls) throw new Error(`lost calls: ${JSON.stringify(monitor.health())}`)
console.log(JSON.stringify({ baseline, peak, steady, parts: grown }))
await monitor.close()
