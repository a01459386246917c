// Child process of the sqlite bench suite: the host's resident memory while it meters live traffic into a storage.
// Plain JavaScript on the built packages (no TypeScript loader), so what is measured is what an application carries.
//   node --expose-gc bench/servers/rss-child.mjs <memory|sqlite|sqlite-main> <calls> <dir>
// Prints { baseline, peak, steady } in MiB: RSS after everything is imported (the host's own baseline), the highest
// RSS seen while metering, and RSS once the last batch is written and garbage is collected.
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createMonitor, memoryStorage } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'

const [kind, callsText, dir] = process.argv.slice(2)
const calls = Number(callsText)
const mib = () => process.memoryUsage().rss / 2 ** 20
const settle = async () => {
  globalThis.gc?.()
  await sleep(300)
  globalThis.gc?.()
}

const apis = ['openai', 'anthropic', 'stripe', 'twilio', null]
const statuses = [200, 200, 200, 201, 404, 429, 500]
const now = Date.now()
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
const baseline = mib()
const storage = kind === 'memory' ? memoryStorage() : sqliteStorage({ filename: join(dir, `${kind}.db`), ...(kind === 'sqlite-main' ? { thread: 'main' } : {}) })
const monitor = createMonitor({ storage, logger: false, flushOnExit: false })
let peak = 0
// bursts of 1,000 calls every 10 ms (up to 100,000 calls/s); traffic a storage cannot keep up with for long is held
// while 20,000 calls wait in the buffer, instead of overflowing it
for (let i = 0; i < calls; i += 1000) {
  for (let j = i; j < i + 1000; j++) monitor.record(liveCall(j))
  await sleep(10)
  while (monitor.health().queued > 20_000) await sleep(5)
  if (i % 50_000 === 0) peak = Math.max(peak, mib())
}
await monitor.flush()
peak = Math.max(peak, mib())
await settle()
const steady = mib()
if (monitor.health().written !== calls) throw new Error(`lost calls: ${JSON.stringify(monitor.health())}`)
console.log(JSON.stringify({ baseline, peak, steady }))
await monitor.close()
