// One outbound mode alone, for a CPU profile (not part of `npm run bench`):
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile-outbound.ts <plain|fetch|instrument> [seconds]
//   node --import tsx bench/profile-top.ts /tmp/prof/<file>.cpuprofile
// The same loop as the outbound suite (16 concurrent fetches of the upstream's small JSON answer, each body read),
// after a warm-up of a quarter of the time; prints req/s and client CPU µs per request of the measured part.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMonitor } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { lastCpuPerRequest, lastMainCpuPerRequest, startUpstream, throughput } from './fetch-load.js'

const mode = process.argv[2] ?? 'fetch'
const seconds = Number(process.argv[3] ?? 8)
if (!['plain', 'fetch', 'instrument'].includes(mode)) throw new Error(`mode: plain, fetch or instrument, got ${mode}`)

const upstream = await startUpstream()
// SQLite storage on its worker thread, the default a user runs (as in the peers bench's outbound clients; named, since
// under taskset the default would be 'main')
const dir = mkdtempSync(join(tmpdir(), 'apimeter-profile-'))
const monitor = createMonitor({ service: 'bench', logger: false, flushOnExit: false, storage: sqliteStorage({ filename: join(dir, 'bench.db'), thread: 'worker' }) })
const plain = (input: Parameters<typeof fetch>[0], init?: RequestInit) => globalThis.fetch(input, init)
if (mode === 'instrument') monitor.instrument()
const fetchImpl = mode === 'fetch' ? monitor.fetch : plain
try {
  const warmUp = await throughput(fetchImpl, upstream.url, (seconds * 1000) / 4)
  const rps = await throughput(fetchImpl, upstream.url, seconds * 1000)
  const requests = Math.round((warmUp * seconds) / 4 + rps * seconds)
  console.log(`${mode}: ${rps.toFixed(0)} req/s, client CPU ${lastCpuPerRequest.toFixed(1)} µs/request (main thread ${lastMainCpuPerRequest.toFixed(1)}), about ${requests} requests in the profile, recorded ${monitor.health().written + monitor.health().queued}`)
} finally {
  await monitor.close()
  upstream.child.kill()
  rmSync(dir, { recursive: true, force: true })
}
