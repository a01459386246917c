import { type ChildProcess, execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { type Figure, median, spawnListening, statCpuUs } from './lib.js'

const SERVER = fileURLToPath(new URL('./servers/hello.ts', import.meta.url))

export const LOAD = { connections: 32, durationS: 5, warmupS: 3, rounds: 9 }

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

/** Starts `bench/servers/hello.ts` for one framework and mode in a child process, pinned to the server core. */
export async function startServer(framework: string, mode: string): Promise<Server> {
  serverPinning()
  const command = [...pins!.server, process.execPath, '--import', 'tsx', SERVER, framework, mode]
  const { child, port } = await spawnListening(command, `${framework} ${mode} server`, ['ignore', 'pipe', 'inherit', 'ipc'])
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
export function freeHelperThreads(server: Server): void {
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

type Mode = 'without' | 'with' | 'with-memory'
const MODES: readonly Mode[] = ['without', 'with', 'with-memory']

/**
 * Hello-world throughput of one framework without apimeter, with it (storage discarding batches) and with it on
 * in-memory storage, run side by side: each server in its own child process, all loaded at the same time by
 * autocannon from worker threads, so whatever else the machine is doing slows them alike. Every round gives a ratio
 * to the plain server; the figure is the median of the rounds.
 */
export async function compareThroughput(framework: string, label: string, target: number): Promise<Figure[]> {
  const servers: Server[] = []
  try {
    for (const mode of MODES) servers.push(await startServer(framework, mode))
    await Promise.all(servers.map((server) => load(server, LOAD.warmupS)))
    const rounds: LoadResult[][] = MODES.map(() => [])
    for (let round = 0; round < LOAD.rounds; round++) {
      const results = await Promise.all(servers.map((server) => load(server, LOAD.durationS)))
      results.forEach((result, i) => rounds[i]!.push(result))
    }
    const [plain, metered, memory] = rounds as [typeof rounds[0], typeof rounds[0], typeof rounds[0]]
    const ratiosTo = (runs: typeof plain) => runs.map((r, i) => r.rps / plain[i]!.rps)
    const cpu = (runs: typeof plain) => median(runs.map((r) => r.cpuPerRequest))
    const ratio = median(ratiosTo(metered))
    const figures: Figure[] = [
      { name: `${label} hello-world without apimeter`, value: median(plain.map((r) => r.rps)), unit: 'req/s', note: `server CPU ${cpu(plain).toFixed(1)} µs/request` },
      { name: `${label} hello-world with apimeter`, value: median(metered.map((r) => r.rps)), unit: 'req/s', note: `server CPU ${cpu(metered).toFixed(1)} µs/request` },
      {
        name: `${label}: with / without`,
        value: ratio,
        unit: 'ratio',
        target: `≥ ${target.toFixed(2)}`,
        met: ratio >= target,
        note: `per round: ${ratiosTo(metered).map((r) => r.toFixed(2)).join(', ')}`,
      },
      {
        name: `${label}: with, on in-memory storage / without`,
        value: median(ratiosTo(memory)),
        unit: 'ratio',
        note: `storage work included (server CPU ${cpu(memory).toFixed(1)} µs/request); per round: ${ratiosTo(memory).map((r) => r.toFixed(2)).join(', ')}`,
      },
    ]
    const { recorded } = await report(servers[1]!)
    if (recorded === 0) throw new Error(`${label}: the metered server recorded nothing`)
    return figures
  } finally {
    for (const server of servers) server.child.kill()
  }
}

export const METHOD = `Side by side: three servers, each in its own child process (\`bench/servers/hello.ts\`, one route answering \`{"hello":"world"}\`) — without apimeter, with it, and with it on in-memory storage — loaded at the same time by autocannon (${LOAD.connections} connections each, one worker thread each), so whatever else the shared machine does slows them alike. With \`taskset\` available, the servers are pinned to one core (which the scheduler splits evenly between them) and the load generators to another. "With" registers apimeter first on a monitor whose storage discards each batch it is given: the ratio is what the middleware, \`record()\` and the write pipeline's batching add to a request, not what a storage engine costs (the storage suites measure that); the in-memory line shows the same with storage work included. After a ${LOAD.warmupS} s warm-up, ${LOAD.rounds} rounds of ${LOAD.durationS} s; req/s are medians, ratios are medians of the per-round ratios. Server CPU per request is read from the server process's \`/proc/<pid>/stat\` (every thread).`
