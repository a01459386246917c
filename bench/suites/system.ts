// What opt-in process metrics (`system: { intervalMs }`) cost a server: Express 5 hello-world metered into SQLite,
// with and without sampling every 100 ms (the most often the option allows; the default is 10 s), side by side.
import { type Figure, median, type SuiteResult } from '../lib.js'
import { freeHelperThreads, load, report, type Server, startServer } from '../throughput.js'

const ROUNDS = Number(process.env.SYSTEM_ROUNDS ?? 7)
const SECONDS = Number(process.env.SYSTEM_SECONDS ?? 3)
const PATH = 'hello/42'

export async function runSystemSuite(): Promise<SuiteResult> {
  const modes = ['with-sqlite', 'with-sqlite-system'] as const
  const servers: Server[] = []
  try {
    for (const mode of modes) servers.push(await startServer('express5', mode))
    for (const server of servers) {
      await load(server, 1, PATH)
      freeHelperThreads(server)
    }
    const cpu: number[][] = [[], []]
    const rps: number[][] = [[], []]
    for (let round = 0; round < ROUNDS; round++) {
      // alternate which goes first, so a drift of the machine's load weighs on both alike
      const order = round % 2 === 0 ? [0, 1] : [1, 0]
      for (const i of order) {
        const result = await load(servers[i]!, SECONDS, PATH)
        cpu[i]!.push(result.mainCpuPerRequest)
        rps[i]!.push(result.rps)
      }
    }
    const { recorded } = await report(servers[1]!)
    if (recorded === 0) throw new Error('system: the sampling server recorded nothing')
    const cpuRatio = median(cpu[0]!.map((c, r) => c / cpu[1]![r]!))
    const rpsRatio = median(rps[1]!.map((x, r) => x / rps[0]![r]!))
    const figures: Figure[] = [
      { name: 'Express 5 + apimeter (SQLite), main-thread CPU', value: median(cpu[0]!), unit: 'µs/request', note: `${Math.round(median(rps[0]!))} req/s` },
      { name: '… with process metrics every 100 ms, main-thread CPU', value: median(cpu[1]!), unit: 'µs/request', note: `${Math.round(median(rps[1]!))} req/s` },
      {
        name: 'CPU per request without sampling / with it',
        value: cpuRatio,
        unit: 'ratio',
        note: `1.00 = sampling costs nothing measurable; throughput with / without ${rpsRatio.toFixed(2)} (per round CPU ratios: ${cpu[0]!.map((c, r) => (c / cpu[1]![r]!).toFixed(2)).join(', ')})`,
      },
    ]
    return {
      id: 'system',
      title: 'Process metrics: what sampling costs a metered server',
      method: `Two Express 5 hello-world servers (\`bench/servers/hello.ts\`), both metered into SQLite storage; one also samples process metrics every 100 ms (\`system: { intervalMs: 100 }\`, 100 times more often than the 10 s default). Loaded one after the other by autocannon for ${SECONDS} s, the order alternating, ${ROUNDS} rounds; CPU per request from each server's main thread (\`/proc\`). The ratio is the median of the per-round ratios.`,
      figures,
    }
  } finally {
    for (const server of servers) server.child.kill()
  }
}
