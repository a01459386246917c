// The outbound benches' load: an upstream API in a child process and concurrent fetch loops against it (used by the
// peers suite's fetching clients and bench/profile-outbound.ts).
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { spawnListening } from './lib.js'

const SERVER = fileURLToPath(new URL('./servers/upstream.ts', import.meta.url))
/** How the outbound benches load an upstream: this many concurrent fetch loops. */
export const LOAD = { concurrency: 16 }

/** Starts the upstream server in a child process (`prefix`: e.g. a taskset command pinning it to a core). */
export async function startUpstream(prefix: readonly string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const { child, port } = await spawnListening([...prefix, process.execPath, '--import', 'tsx', SERVER], 'upstream')
  return { child, url: `http://127.0.0.1:${port}/v1/items/42` }
}

/** Client CPU microseconds per request of the last throughput() run (less disturbed by a busy machine than req/s). */
export let lastCpuPerRequest = 0

/** Requests per second of `concurrency` loops each fetching and reading the body, for `ms`. */
export async function throughput(fetchImpl: typeof fetch, url: string, ms: number): Promise<number> {
  const cpu = process.cpuUsage()
  let count = 0
  const deadline = performance.now() + ms
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const res = await fetchImpl(url)
      await res.text()
      count++
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: LOAD.concurrency }, loop))
  const used = process.cpuUsage(cpu)
  lastCpuPerRequest = (used.user + used.system) / count
  return (count / (performance.now() - started)) * 1000
}
