import { type ChildProcess, execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { spawnListening, statCpuUs } from './lib.js'

const SERVER = fileURLToPath(new URL('./servers/hello.ts', import.meta.url))

export const LOAD = { connections: 32 }

export interface Server {
  child: ChildProcess
  url: string
}

interface ServerReport {
  cpuUs: number
  recorded: number
}

/**
 * On a machine with a few cores shared with other work, pinning keeps the comparison fair: both servers share one
 * core (where the scheduler splits it evenly between them), the load generators run on another. Without taskset
 * the processes float.
 */
export function pinning(): { server: string[]; pinned: boolean } {
  if (availableParallelism() < 2) return { server: [], pinned: false }
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })
    return { server: ['taskset', '-c', '1'], pinned: true }
  } catch {
    return { server: [], pinned: false }
  }
}
let pins: ReturnType<typeof pinning> | undefined
/** The command prefix that pins a server process to its core (empty when it cannot be pinned); pins this process. */
export function serverPinning(): string[] {
  pins ??= pinning()
  return pins.server
}

/**
 * Starts `bench/servers/hello.ts` for one framework and mode in a child process, pinned to the server core: this
 * checkout's, or another `checkout`'s (run there, on its own source).
 */
export async function startServer(framework: string, mode: string, checkout?: string): Promise<Server> {
  serverPinning()
  const script = checkout === undefined ? SERVER : join(checkout, 'bench/servers/hello.ts')
  const command = [...pins!.server, process.execPath, '--import', 'tsx', script, framework, mode]
  const { child, port } = await spawnListening(command, `${framework} ${mode} server`, ['ignore', 'pipe', 'inherit', 'ipc'], checkout)
  return { child, url: `http://127.0.0.1:${port}/` }
}

/** Asks a server over IPC what it used and recorded so far. */
export function report(server: Server): Promise<ServerReport & { spans: number }> {
  return new Promise((resolve) => {
    server.child.once('message', (message) => resolve(message as ServerReport & { spans: number }))
    server.child.send('report')
  })
}

/** CPU time a server has used, in µs: `all` its threads, `main` its main thread (the event loop requests run on). */
export interface CpuUse {
  all: number
  main: number
}

/**
 * CPU time (user + system) a process has used, in µs: every thread from `/proc/<pid>/stat` and the main thread from
 * `/proc/<pid>/task/<pid>/stat`, read from outside so that asking costs the server nothing; over IPC from the
 * server's `process.cpuUsage()` (every thread, for both) where there is no /proc.
 */
export async function cpuUs(server: Server): Promise<CpuUse> {
  const pid = server.child.pid
  try {
    return { all: statCpuUs(`/proc/${pid}/stat`), main: statCpuUs(`/proc/${pid}/task/${pid}/stat`) }
  } catch {
    const { cpuUs: all } = await report(server)
    return { all, main: all }
  }
}

/**
 * Lets every thread of a pinned server but its main one run on any core: the event loop stays on the server core,
 * while helper threads (a storage worker, V8's GC helpers, libuv's pool) may use the spare capacity of a machine
 * with more cores than busy event loops, as they would in production. Applied alike to every server of a
 * comparison, after its warm-up (threads start lazily, inheriting the main thread's core). No-op when unpinned.
 */
export function freeHelperThreads(server: Pick<Server, 'child'>): void {
  if (pins?.pinned !== true) return
  const pid = server.child.pid
  let tids: string[]
  try {
    tids = readdirSync(`/proc/${pid}/task`).filter((tid) => tid !== String(pid))
  } catch {
    return
  }
  for (const tid of tids) {
    try {
      execFileSync('taskset', ['-p', '-c', `0-${availableParallelism() - 1}`, tid], { stdio: 'ignore' })
    } catch {
      // the thread ended meanwhile
    }
  }
}

export interface LoadResult {
  rps: number
  /** The server's CPU µs per request, every thread. */
  cpuPerRequest: number
  /** The server's main-thread CPU µs per request: what the host's event loop paid. */
  mainCpuPerRequest: number
  /** The 99th percentile of the request latency autocannon saw, ms: what work on the event loop delays. */
  p99Ms: number
}

/** Loads a server for `seconds` from a worker thread; returns requests/s and the server's CPU µs per request. */
export async function load(server: Server, seconds: number, path = ''): Promise<LoadResult> {
  const before = await cpuUs(server)
  const result = await autocannon({ url: server.url + path, connections: LOAD.connections, duration: seconds, workers: 1 })
  const after = await cpuUs(server)
  if (result.errors > 0 || result.non2xx > 0) throw new Error(`${server.url}: ${result.errors} errors, ${result.non2xx} non-2xx responses`)
  const requests = result.requests.total
  return { rps: requests / seconds, cpuPerRequest: (after.all - before.all) / requests, mainCpuPerRequest: (after.main - before.main) / requests, p99Ms: result.latency.p99 }
}

