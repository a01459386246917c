// The outbound benches' load: an upstream API in a child process and concurrent fetch loops against it (used by the
// peers suite's fetching clients and bench/profile-outbound.ts).
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnListening, statCpuSplitUs } from './lib.js'
import { serverPinning } from './throughput.js'

const SERVER = fileURLToPath(new URL('./servers/upstream.ts', import.meta.url))
const CLIENT = fileURLToPath(new URL('./servers/fetch-client.ts', import.meta.url))
/** How the outbound benches load an upstream: this many concurrent fetch loops. */
export const LOAD = { concurrency: 16 }

/** Starts the upstream server in a child process (`prefix`: e.g. a taskset command pinning it to a core). */
export async function startUpstream(prefix: readonly string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const { child, port } = await spawnListening([...prefix, process.execPath, '--import', 'tsx', SERVER], 'upstream')
  return { child, url: `http://127.0.0.1:${port}/v1/items/42` }
}

/** Client CPU microseconds per request of the last throughput() run (less disturbed by a busy machine than req/s). */
export let lastCpuPerRequest = 0
/** The same for the main thread alone (the event loop the fetches run on; a storage worker's thread left out). */
export let lastMainCpuPerRequest = 0
/** The kernel's part of {@link lastMainCpuPerRequest} (system calls: socket reads and writes, epoll). */
export let lastMainSystemPerRequest = 0
const MAIN_THREAD_STAT = `/proc/${process.pid}/task/${process.pid}/stat`

/** Requests per second of `concurrency` loops each fetching and reading the body, for `ms`. */
export async function throughput(fetchImpl: typeof fetch, url: string, ms: number): Promise<number> {
  const cpu = process.cpuUsage()
  const main = statCpuSplitUs(MAIN_THREAD_STAT)
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
  const mainAfter = statCpuSplitUs(MAIN_THREAD_STAT)
  lastMainCpuPerRequest = (mainAfter.user + mainAfter.system - main.user - main.system) / count
  lastMainSystemPerRequest = (mainAfter.system - main.system) / count
  return (count / (performance.now() - started)) * 1000
}

/** A fetching client process (`bench/servers/fetch-client.ts`) and the upstream it fetches from. */
export interface Client {
  child: ChildProcess
  url: string
}

/** Starts a fetching client of `mode`: this checkout's, or another `checkout`'s (run there, on its own source). */
export async function startClient(mode: string, upstream: string, checkout?: string): Promise<Client> {
  // pinned like the inbound servers: the clients share the measured core, their upstreams run on the other
  const script = checkout === undefined ? CLIENT : join(checkout, 'bench/servers/fetch-client.ts')
  const { child } = await spawnListening([...serverPinning(), process.execPath, '--import', 'tsx', script, mode], `${mode} client`, ['ignore', 'pipe', 'inherit', 'ipc'], checkout)
  return { child, url: upstream }
}

export interface ClientRun {
  rps: number
  /** CPU µs per request, every thread of the client process. */
  cpuPerRequest: number
  /** CPU µs per request of its main thread. */
  mainCpuPerRequest: number
  /** The kernel's part of it. */
  mainSystemPerRequest: number
  recorded: number
  spans: number
}

export function runClient(client: Client, seconds: number): Promise<ClientRun> {
  return new Promise((resolve) => {
    client.child.once('message', (message) => resolve(message as ClientRun))
    client.child.send({ url: client.url, ms: seconds * 1000 })
  })
}
