// The same server (or fetching client) mode from two checkouts of this repository, side by side (not part of
// `npm run bench`):
//   node --import tsx bench/compare-checkouts.ts <before-checkout> <after-checkout> <express5|express4|fastify> <mode> [rounds]
//   node --import tsx bench/compare-checkouts.ts <before-checkout> <after-checkout> outbound <client mode> [rounds]
// Every round starts a fresh process of `mode` from each checkout (`bench/servers/hello.ts`, or outbound
// `bench/servers/fetch-client.ts`, each fetching from an upstream of its own), pinned to one core when taskset is
// there, warms both up, then loads both at the same time for 3 s, as the peers suite pairs its lines: each round's
// ratio is before's CPU per request over after's, in the same interval (above 1: after is cheaper). Fresh processes
// every round, started in alternating order (outbound, the two upstreams trade places too), because one process keeps
// what its JIT made of the hot path for its whole life: rounds of the same two processes never average that out.
// Each checkout runs its own source (tsx resolves `@apimeter/*` through that checkout's tsconfig.json paths); a git
// worktree of another commit, with node_modules linked to this one's, makes a second checkout.
import { median } from './lib.js'
import { type Client, runClient, startClient, startUpstream } from './fetch-load.js'
import { freeHelperThreads, load, type Server, startServer } from './throughput.js'

const [before, after, framework, mode, roundsText] = process.argv.slice(2)
if (before === undefined || after === undefined || framework === undefined || mode === undefined) {
  throw new Error('usage: compare-checkouts.ts <before-checkout> <after-checkout> <express5|express4|fastify|outbound> <mode> [rounds]')
}
const rounds = Number(roundsText ?? 9)
const outbound = framework === 'outbound'

interface Run {
  main: number
  all: number
  rps: number
}

const upstreams = outbound ? [await startUpstream(), await startUpstream()] : []
/** One round: both fresh, warmed up, then loaded together; [before, after]. */
async function round(index: number): Promise<[Run, Run]> {
  const pair: (Server | Client)[] = []
  try {
    // started in alternating order; outbound, the two upstreams trade places every round too
    for (const at of index % 2 === 0 ? [0, 1] : [1, 0]) {
      const checkout = at === 0 ? before! : after!
      const upstream = upstreams[at ^ (index % 2)]
      pair[at] = upstream === undefined ? await startServer(framework!, mode!, checkout) : await startClient(mode!, upstream.url, checkout)
    }
    if (outbound) {
      await Promise.all(pair.map((client) => runClient(client, 1)))
      for (const client of pair) freeHelperThreads(client)
      const runs = await Promise.all(pair.map((client) => runClient(client, 3)))
      return runs.map((r) => ({ main: r.mainCpuPerRequest, all: r.cpuPerRequest, rps: r.rps })) as [Run, Run]
    }
    for (const server of pair) {
      await load(server, 2, 'hello/42')
      freeHelperThreads(server)
    }
    const runs = await Promise.all(pair.map((server) => load(server, 3, 'hello/42')))
    return runs.map((r) => ({ main: r.mainCpuPerRequest, all: r.cpuPerRequest, rps: r.rps })) as [Run, Run]
  } finally {
    for (const started of pair) started?.child.kill()
  }
}

const main: number[] = []
const all: number[] = []
const rps: number[] = []
try {
  for (let i = 0; i < rounds; i++) {
    const [b, a] = await round(i)
    main.push(b.main / a.main)
    all.push(b.all / a.all)
    rps.push(a.rps / b.rps)
    console.log(`round ${i + 1}: main thread µs/request before ${b.main.toFixed(1)}, after ${a.main.toFixed(1)} (${main.at(-1)!.toFixed(3)}); every thread ${all.at(-1)!.toFixed(3)}; throughput after/before ${rps.at(-1)!.toFixed(3)}`)
  }
  console.log(`${framework} ${mode}, median of ${rounds} rounds, before ÷ after (above 1: after is cheaper): main thread ${median(main).toFixed(3)}, every thread ${median(all).toFixed(3)}; throughput after ÷ before ${median(rps).toFixed(3)}`)
} finally {
  for (const upstream of upstreams) upstream.child.kill()
}
