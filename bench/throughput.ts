import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { type Figure, median } from './lib.js'

const SERVER = fileURLToPath(new URL('./servers/hello.ts', import.meta.url))

export const LOAD = { connections: 32, durationS: 5, warmupS: 3, rounds: 9 }

interface Server {
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
function pinning(): { server: string[]; pinned: boolean } {
  if (availableParallelism() < 2) return { server: [], pinned: false }
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })
    return { server: ['taskset', '-c', '1'], pinned: true }
  } catch {
    return { server: [], pinned: false }
  }
}
let pins: ReturnType<typeof pinning> | undefined

async function startServer(framework: string, mode: 'with' | 'without'): Promise<Server> {
  pins ??= pinning()
  const command = [...pins.server, process.execPath, '--import', 'tsx', SERVER, framework, mode]
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /listening (\d+)/.exec(out)
      if (match) resolve(Number(match[1]))
    })
    child.once('exit', (code) => reject(new Error(`${framework} ${mode} server exited with ${code}`)))
  })
  return { child, url: `http://127.0.0.1:${port}/` }
}

function report(server: Server): Promise<ServerReport> {
  return new Promise((resolve) => {
    server.child.once('message', (message) => resolve(message as ServerReport))
    server.child.send('report')
  })
}

/** Loads a server for `seconds` from a worker thread; returns requests/s and the server's CPU µs per request. */
async function load(server: Server, seconds: number): Promise<{ rps: number; cpuPerRequest: number }> {
  const before = await report(server)
  const result = await autocannon({ url: server.url, connections: LOAD.connections, duration: seconds, workers: 1 })
  const after = await report(server)
  if (result.errors > 0 || result.non2xx > 0) throw new Error(`${server.url}: ${result.errors} errors, ${result.non2xx} non-2xx responses`)
  return { rps: result.requests.total / seconds, cpuPerRequest: (after.cpuUs - before.cpuUs) / result.requests.total }
}

/**
 * Hello-world throughput of one framework without and with apimeter, run side by side: each server in its own
 * child process, both loaded at the same time by autocannon from two worker threads, so whatever else the machine
 * is doing slows both alike. Every round gives a ratio; the figure is the median of the rounds.
 */
export async function compareThroughput(framework: string, label: string, target: number): Promise<Figure[]> {
  const without = await startServer(framework, 'without')
  const withIt = await startServer(framework, 'with')
  try {
    await Promise.all([load(without, LOAD.warmupS), load(withIt, LOAD.warmupS)])
    const plain: { rps: number; cpuPerRequest: number }[] = []
    const metered: { rps: number; cpuPerRequest: number }[] = []
    for (let round = 0; round < LOAD.rounds; round++) {
      const [p, m] = await Promise.all([load(without, LOAD.durationS), load(withIt, LOAD.durationS)])
      plain.push(p)
      metered.push(m)
    }
    const ratios = metered.map((m, i) => m.rps / plain[i]!.rps)
    const ratio = median(ratios)
    const cpuPlain = median(plain.map((p) => p.cpuPerRequest))
    const cpuMetered = median(metered.map((m) => m.cpuPerRequest))
    return [
      { name: `${label} hello-world without apimeter`, value: median(plain.map((p) => p.rps)), unit: 'req/s', note: `server CPU ${cpuPlain.toFixed(1)} µs/request` },
      { name: `${label} hello-world with apimeter`, value: median(metered.map((m) => m.rps)), unit: 'req/s', note: `server CPU ${cpuMetered.toFixed(1)} µs/request` },
      {
        name: `${label}: with / without`,
        value: ratio,
        unit: 'ratio',
        target: `≥ ${target.toFixed(2)}`,
        met: ratio >= target,
        note: `per round: ${ratios.map((r) => r.toFixed(2)).join(', ')}; CPU per request without / with: ${(cpuPlain / cpuMetered).toFixed(2)}`,
      },
    ]
  } finally {
    const { recorded } = await report(withIt)
    without.child.kill()
    withIt.child.kill()
    if (recorded === 0) throw new Error(`${label}: the metered server recorded nothing`)
  }
}

export const METHOD = `Side by side: each server runs in its own child process (\`bench/servers/hello.ts\`, one route answering \`{"hello":"world"}\`), and both are loaded at the same time by autocannon (${LOAD.connections} connections each, one worker thread each), so whatever else the shared machine does slows both alike. With \`taskset\` available, both servers are pinned to one core (which the scheduler splits evenly between them) and the load generators to another. "With" registers apimeter first, on a monitor writing to in-memory storage (capped at 10,000 calls), so the cost measured is the whole SDK: middleware, \`record()\` and the background write pipeline. After a ${LOAD.warmupS} s warm-up, ${LOAD.rounds} rounds of ${LOAD.durationS} s; req/s are medians, the ratio is the median of the per-round ratios. Server CPU per request (from \`process.cpuUsage()\`) is given as a cross-check that does not depend on how the two servers shared the cores.`
