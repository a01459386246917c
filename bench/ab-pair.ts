// A/B of two versions of this checkout's source, measured the way the peers suite pairs its servers (not part of
// `npm run bench`):
//   node --import tsx bench/ab-pair.ts <express5|express4|fastify> <mode> <rounds> '<shell command that makes B>'
//   node --import tsx bench/ab-pair.ts outbound <monitor-fetch|instrument> <rounds> '<shell command that makes B>'
// Starts server A (`bench/servers/hello.ts`) on the source as it is now, runs the command (which changes the source,
// e.g. `git stash` or a patch), starts server B on the changed source, and then loads both at the same time, on one
// core, for 2 s per round: each round's ratio is A's CPU per request over B's in the same interval (above 1: B is
// cheaper). Outbound, A and B are fetching client processes (`bench/servers/fetch-client.ts`), each fetching from an
// upstream of its own on the other core, compared by CPU per request the same way. The servers and clients run under
// tsx, which resolves `@apimeter/*` to the packages' source through tsconfig.json's paths: the built dist/ folders
// play no part, so a command that only rebuilds compares a version with itself. Run it again with the versions
// swapped, to see that the order of starting them does not decide. Its two processes live through every round, so what
// their JITs made of the hot path stays in the result: bench/compare-checkouts.ts starts fresh ones every round.
// Measured: the same change (batchSize 500 against 2000, Fastify on SQLite) read A/B 0.855 started one way round and
// 0.965 the other, where ten fresh processes of each read 19.66 and 19.40 µs per request: the order decided by ±9%.
// Trust compare-checkouts for anything smaller than that.
import { execSync } from 'node:child_process'
import { median } from './lib.js'
import { freeHelperThreads, load, startServer } from './throughput.js'
import { runClient, startClient, startUpstream } from './fetch-load.js'

const [framework, mode, roundsText, switchToB] = process.argv.slice(2)
if (framework === undefined || mode === undefined || switchToB === undefined) throw new Error("usage: ab-pair.ts <framework> <mode> <rounds> '<command building B>'")
const PATH = 'hello/42'
const rounds = Number(roundsText ?? 12)
if (framework === 'outbound') await outbound(mode, switchToB)
else await inbound(framework, mode, switchToB)

async function outbound(mode: string, switchToB: string): Promise<void> {
  const upstreams = [await startUpstream(), await startUpstream()]
  const a = await startClient(mode, upstreams[0]!.url)
  execSync(switchToB, { stdio: 'inherit' })
  const b = await startClient(mode, upstreams[1]!.url)
  try {
    for (const client of [a, b]) {
      await runClient(client, 1)
      freeHelperThreads(client)
    }
    const main: number[] = []
    const all: number[] = []
    for (let round = 0; round < rounds; round++) {
      const [x, y] = await Promise.all([runClient(a, 2), runClient(b, 2)])
      main.push(x.mainCpuPerRequest / y.mainCpuPerRequest)
      all.push(x.cpuPerRequest / y.cpuPerRequest)
      console.log(`client main thread µs/request: A ${x.mainCpuPerRequest.toFixed(1)}, B ${y.mainCpuPerRequest.toFixed(1)}; A/B ${main.at(-1)!.toFixed(3)}`)
    }
    console.log(`median A/B: main thread ${median(main).toFixed(3)}, every thread ${median(all).toFixed(3)} (above 1: B is cheaper)`)
  } finally {
    for (const child of [a.child, b.child, ...upstreams.map((u) => u.child)]) child.kill()
  }
}

async function inbound(framework: string, mode: string, switchToB: string): Promise<void> {
  const a = await startServer(framework, mode)
  try {
    execSync(switchToB, { stdio: 'inherit' })
    const b = await startServer(framework, mode)
    try {
      for (const server of [a, b]) {
        await load(server, 2, PATH)
        freeHelperThreads(server)
      }
      const main: number[] = []
      const all: number[] = []
      for (let round = 0; round < rounds; round++) {
        const [x, y] = await Promise.all([load(a, 2, PATH), load(b, 2, PATH)])
        main.push(x.mainCpuPerRequest / y.mainCpuPerRequest)
        all.push(x.cpuPerRequest / y.cpuPerRequest)
        console.log(`main thread µs/request: A ${x.mainCpuPerRequest.toFixed(1)}, B ${y.mainCpuPerRequest.toFixed(1)}; A/B ${main.at(-1)!.toFixed(3)}`)
      }
      console.log(`median A/B: main thread ${median(main).toFixed(3)}, every thread ${median(all).toFixed(3)} (above 1: B is cheaper)`)
    } finally {
      b.child.kill()
    }
  } finally {
    a.child.kill()
  }
}
