// The peers suite: apimeter beside the tools a user would pick instead, on the same hello-world route, in one run.
// Inbound: one server process per tool (bench/servers/hello.ts); outbound: one client process per tool
// (bench/servers/fetch-client.ts: plain fetch, monitor.fetch, instrument(), OpenTelemetry's undici instrumentation).
// Each is measured in pairs, loaded at the same time as a bare partner of its own.
// PEERS_ROUNDS and PEERS_SECONDS shrink (or grow) the run; PEERS_ONLY=express5,express4,fastify,outbound picks parts.
import { type Figure, fmt, median, type SuiteResult } from '../lib.js'
import { freeHelperThreads, LOAD as HTTP_LOAD, load, report, type Server, serverPinning, startServer } from '../throughput.js'
import { type Client, type ClientRun, LOAD as FETCH_LOAD, runClient, startClient, startUpstream } from '../fetch-load.js'

const ROUNDS = Number(process.env.PEERS_ROUNDS ?? 5)
const SECONDS = Number(process.env.PEERS_SECONDS ?? 2)
/**
 * Seconds an outbound client fetches before it is measured. A fetching client is new in every round (see
 * {@link outbound}), and its first seconds are the JIT's: a tool whose write path runs once per flush (once a second)
 * has run it once or twice by then. Paired with the minimal timer, the timer that records through `monitor.record()`
 * read 0.91–0.93 of its CPU in the first 2 s after a 1 s warm-up and 0.95–1.01 from then on; after 3 s, 0.96–0.99
 * from the first interval (4 fresh pairs each). Inbound servers live through every round and are measured warm.
 */
const OUTBOUND_WARM_UP_SECONDS = 3
const PATH = 'hello/42'
const ONLY = process.env.PEERS_ONLY?.split(',')
const wanted = (part: string) => ONLY === undefined || ONLY.includes(part)

interface Line {
  name: string
  mode: string
  /** apimeter's lines carry the target; the others are the peers it must be ahead of. */
  apimeter?: boolean
  /**
   * Its storage works on a thread of its own (SQLite): judged on the host's main thread, the event loop requests run
   * on, with the process's CPU (every thread) reported beside it (a floor line shows both, judged on neither).
   */
  offThread?: boolean
  /** Not a peer: the least any tool of the kind can cost (a middleware or hook doing nothing), shown for the floor. */
  floor?: boolean
  /** A setting other than the default a user runs (SQLite on its worker thread): shown beside it, not judged. */
  option?: boolean
  /**
   * Head to head: the mode of the server loaded beside this one instead of a bare one (the nearest peer), so that the
   * two tools are compared within one interval rather than through two ratios to bare taken in different ones.
   */
  versus?: string
}

interface Group {
  label: string
  framework: string
  target: number
  lines: Line[]
}

const expressLines: Line[] = [
  { name: 'bare', mode: 'without' },
  { name: '+ an empty middleware (the floor of any middleware)', mode: 'empty-hook', floor: true },
  {
    name: "+ a minimal timer: a middleware keeping method, route, status and duration in arrays at the response's `finish` (the floor of a meter built that way)",
    mode: 'minimal-timer',
    floor: true,
  },
  { name: '+ `response-time` (a minimal timer)', mode: 'response-time' },
  { name: '+ express-prom-bundle', mode: 'prom-bundle' },
  { name: '+ apimeter (SQLite storage)', mode: 'with-sqlite', apimeter: true, offThread: true },
  { name: "+ apimeter (SQLite storage, `thread: 'main'`)", mode: 'with-sqlite-main', apimeter: true, option: true },
  { name: '+ apimeter (in-memory storage)', mode: 'with-memory', apimeter: true, option: true },
  { name: '+ swagger-stats', mode: 'swagger-stats' },
  { name: '+ OpenTelemetry http + express', mode: 'otel' },
  { name: 'apimeter (SQLite storage) head to head with `response-time`', mode: 'with-sqlite', apimeter: true, offThread: true, versus: 'response-time' },
]
const GROUPS: Group[] = [
  { label: 'Express 5', framework: 'express5', target: 0.95, lines: expressLines },
  { label: 'Express 4', framework: 'express4', target: 0.95, lines: expressLines },
  {
    label: 'Fastify 5',
    framework: 'fastify',
    target: 0.9,
    lines: [
      { name: 'bare', mode: 'without' },
      { name: '+ an empty `onRequest` hook (the floor of any hook)', mode: 'empty-hook', floor: true },
      {
        name: '+ a minimal timer: `onRequest` and `onResponse` hooks keeping method, route, status and duration in arrays (the floor of any meter built on hooks)',
        mode: 'minimal-timer',
        floor: true,
      },
      { name: '+ apimeter (SQLite storage)', mode: 'with-sqlite', apimeter: true, offThread: true },
      { name: "+ apimeter (SQLite storage, `thread: 'main'`)", mode: 'with-sqlite-main', apimeter: true, option: true },
      { name: '+ apimeter (in-memory storage)', mode: 'with-memory', apimeter: true, option: true },
      { name: '+ fastify-metrics', mode: 'fastify-metrics' },
    ],
  },
]

interface Sample {
  rps: number
  /** CPU µs per request, every thread of the process. */
  cpu: number
  /** CPU µs per request of the main thread (the event loop requests, or fetches, run on). */
  main: number
  /** 99th percentile latency, ms (inbound; NaN outbound). */
  p99: number
  /** The kernel's part of `main` (outbound: socket reads and writes, epoll); undefined inbound. */
  kernel?: number
}

/**
 * One round of the inbound pairs: every line loaded for {@link SECONDS} at the same time as a bare server of the same
 * framework, both on the server core (which the scheduler splits evenly between them), the order of the lines
 * rotated each round. A pair's ratios are taken from one interval, so whatever else the shared machine does in that
 * interval (a neighbour's burst, a slower clock) weighs on both alike. Each line has a bare partner of its own; the
 * bare line's pair is two bare servers, which shows the method's own noise (a ratio near 1.00).
 */
interface Pair {
  bare: Sample
  line: Sample
}

/** {@link ROUNDS} rounds of `measure(at, round)` for each of `count` lines, the order rotated each round; the pairs per line. */
async function rotatedPairs(count: number, measure: (at: number, round: number) => Promise<Pair>): Promise<Pair[][]> {
  const pairs: Pair[][] = Array.from({ length: count }, () => [])
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < count; i++) {
      const at = (round + i) % count
      pairs[at]!.push(await measure(at, round))
    }
  }
  return pairs
}

async function loadPair(bare: Server, line: Server): Promise<Pair> {
  const [b, l] = await Promise.all([load(bare, SECONDS, PATH), load(line, SECONDS, PATH)])
  const sample = (r: typeof b): Sample => ({ rps: r.rps, cpu: r.cpuPerRequest, main: r.mainCpuPerRequest, p99: r.p99Ms })
  return { bare: sample(b), line: sample(l) }
}

async function inbound(group: Group): Promise<Figure[]> {
  const servers = new Map<number, Server>()
  /** Each line's own bare partner: loaded only in that line's rounds, so both halves of a pair idle alike between them. */
  const partners = new Map<number, Server>()
  try {
    for (const [at, line] of group.lines.entries()) {
      servers.set(at, await startServer(group.framework, line.mode))
      partners.set(at, await startServer(group.framework, line.versus ?? 'without'))
    }
    for (const server of [...servers.values(), ...partners.values()]) {
      await load(server, 1, PATH)
      freeHelperThreads(server)
    }
    const pairs = await rotatedPairs(group.lines.length, (at) => loadPair(partners.get(at)!, servers.get(at)!))
    for (const [at, line] of group.lines.entries()) {
      const seen = await report(servers.get(at)!)
      if (line.apimeter && seen.recorded === 0) throw new Error(`${group.label} ${line.name}: nothing was recorded`)
      if (line.mode === 'otel' && seen.spans === 0) throw new Error(`${group.label} ${line.name}: no span was exported`)
    }
    return pairedFigures(group.label, group.target, group.lines, pairs)
  } finally {
    for (const server of [...servers.values(), ...partners.values()]) server.child.kill()
  }
}

/**
 * One figure per line from its pairs: bare as CPU µs per request (every pair's bare half); every other line as the
 * median over the rounds of *bare's CPU per request ÷ the line's*, both measured in the same interval. A line whose
 * storage works off the host's thread gets a second figure, its main thread's (and its target there).
 */
function pairedFigures(label: string, target: number, lines: Line[], pairs: Pair[][], bareName = 'bare'): Figure[] {
  const beside = lines.map((line, at) => ({ line, at })).filter(({ line }) => line.versus === undefined)
  const allBare = beside.flatMap(({ at }) => pairs[at]!.map((p) => p.bare))
  const ratios = (at: number, of: (s: Sample) => number, inverse = false) =>
    pairs[at]!.map((p) => (inverse ? of(p.line) / of(p.bare) : of(p.bare) / of(p.line)))
  const list = (values: number[]) => values.map((r) => r.toFixed(2)).join(', ')
  const p99 = (samples: Sample[]) => (samples.some((s) => Number.isFinite(s.p99)) ? `; p99 latency ${median(samples.map((s) => s.p99)).toFixed(0)} ms` : '')
  const out: Figure[] = [
    {
      name: `${label} ${bareName}`,
      value: median(allBare.map((s) => s.cpu)),
      unit: 'µs/request',
      note: `${fmt(median(allBare.map((s) => s.rps)))} req/s beside its partner${allBare.some((s) => s.main !== s.cpu) ? `; main thread ${median(allBare.map((s) => s.main)).toFixed(1)} µs/request${kernelNote(allBare)}` : ''}${p99(allBare)}`,
    },
  ]
  const cpuRatio = lines.map((_, at) => median(ratios(at, (s) => s.cpu)))
  const mainRatio = lines.map((_, at) => median(ratios(at, (s) => s.main)))
  const peers = beside.filter(({ line, at }) => !line.apimeter && line.floor !== true && at !== 0)
  /** Whether apimeter's line `at` is ahead of every peer: head to head where that pair was measured, else by ratio to bare. */
  const ahead = (at: number, ratio: number[]) =>
    peers.every((peer) => {
      const direct = lines.findIndex((line) => line.versus === peer.line.mode && line.mode === lines[at]!.mode)
      return direct === -1 ? ratio[at]! > ratio[peer.at]! : ratio[direct]! > 1
    })
  const goal = (met: boolean) => ({ target: `≥ ${target.toFixed(2)}${peers.length ? ', ahead of every peer' : ''}`, met })
  for (const { line, at } of beside) {
    const samples = pairs[at]!.map((p) => p.line)
    const rpsRatios = ratios(at, (s) => s.rps, true)
    const rpsRatio = median(rpsRatios)
    const name = at === 0 ? `${label} ${bareName} beside ${bareName} (the method's noise)` : `${label} ${line.name}`
    const throughputNote = `${fmt(median(samples.map((s) => s.rps)))} req/s, ${rpsRatio.toFixed(2)} of bare beside it (per round: ${list(rpsRatios)})${p99(samples)}`
    const judgedHere = line.apimeter === true && line.offThread !== true && line.option !== true
    out.push({
      name,
      value: cpuRatio[at]!,
      unit: 'ratio',
      ...(judgedHere ? goal(cpuRatio[at]! >= target && rpsRatio >= target && ahead(at, cpuRatio)) : {}),
      note: `CPU ${median(samples.map((s) => s.cpu)).toFixed(1)} µs/request, every thread${line.offThread ? ' (storage thread included)' : ''}; per round: ${list(ratios(at, (s) => s.cpu))}; ${throughputNote}`,
    })
    if (line.offThread === true) {
      out.push({
        name: `${label} ${line.name}, host thread`,
        value: mainRatio[at]!,
        unit: 'ratio',
        ...(line.apimeter === true ? goal(mainRatio[at]! >= target && rpsRatio >= target && ahead(at, mainRatio)) : {}),
        note: `main thread ${median(samples.map((s) => s.main)).toFixed(1)} µs/request${kernelNote(samples)}; per round: ${list(ratios(at, (s) => s.main))}; ${throughputNote}`,
      })
    }
  }
  // Head to head: the peer's CPU per request over apimeter's, in the same interval (above 1: apimeter is cheaper).
  for (const [at, line] of lines.entries()) {
    if (line.versus === undefined) continue
    out.push({
      name: `${label} ${line.name}: the peer's CPU per request ÷ apimeter's`,
      value: mainRatio[at]!,
      unit: 'ratio',
      note: `host thread (above 1: apimeter is cheaper); per round: ${list(ratios(at, (s) => s.main))}; every thread ${cpuRatio[at]!.toFixed(2)} (per round: ${list(ratios(at, (s) => s.cpu))})`,
    })
  }
  return out
}

/** The kernel's part of the main thread's CPU per request, where it was read (outbound clients). */
function kernelNote(samples: Sample[]): string {
  const kernel = samples.flatMap((s) => (s.kernel === undefined ? [] : [s.kernel]))
  return kernel.length === 0 ? '' : ` (${median(kernel).toFixed(1)} of it in the kernel)`
}

const fetchLines: Line[] = [
  { name: 'plain fetch', mode: 'plain' },
  { name: "plain fetch with empty subscribers on undici's request channels (the floor of any observer)", mode: 'empty-channels', floor: true },
  {
    name: "plain fetch with a minimal timer on undici's request channels: start time, status and bytes per request, method, URL, status and duration kept in arrays at the end (the floor of a meter built that way)",
    mode: 'minimal-timer',
    floor: true,
  },
  {
    name: 'the same minimal timer recording each call with `monitor.record()` onto SQLite storage (the floor of a meter writing through apimeter\'s write path)',
    mode: 'minimal-record',
    floor: true,
    offThread: true,
  },
  { name: '`monitor.fetch` (SQLite storage)', mode: 'monitor-fetch', apimeter: true, offThread: true },
  { name: 'plain fetch with `instrument()` (SQLite storage)', mode: 'instrument', apimeter: true, offThread: true },
  { name: 'plain fetch with OpenTelemetry undici instrumentation', mode: 'otel' },
]

/**
 * Outbound in pairs, like inbound: each line's client process and a plain-fetch client of its own fetch at the same
 * time, both on the measured core, each from an upstream of its own on the other core. Both clients are fresh
 * processes in every round, and the two upstreams trade places from one round to the next: a client process keeps
 * what its JIT made of fetch for its life, and two processes of the same code differed by up to 10% for that alone
 * (a minimal timer once read 1.10 of its plain partner), which rounds of the same two processes never average out.
 */
async function outbound(): Promise<Figure[]> {
  serverPinning()
  const upstreams = [await startUpstream(), await startUpstream()]
  try {
    const sample = (r: ClientRun): Sample => ({ rps: r.rps, cpu: r.cpuPerRequest, main: r.mainCpuPerRequest, p99: Number.NaN, kernel: r.mainSystemPerRequest })
    const pairs = await rotatedPairs(fetchLines.length, async (at, round) => {
      const line = fetchLines[at]!
      const swap = round % 2
      let partner: Client | undefined
      let client: Client | undefined
      try {
        partner = await startClient('plain', upstreams[swap]!.url)
        client = await startClient(line.mode, upstreams[1 - swap]!.url)
        await Promise.all([runClient(partner, OUTBOUND_WARM_UP_SECONDS), runClient(client, OUTBOUND_WARM_UP_SECONDS)])
        freeHelperThreads(partner)
        freeHelperThreads(client)
        const [bare, measured] = await Promise.all([runClient(partner, SECONDS), runClient(client, SECONDS)])
        if (line.apimeter && measured.recorded === 0) throw new Error(`peers: outbound ${line.name} recorded nothing`)
        if (line.mode === 'otel' && measured.spans === 0) throw new Error('peers: the undici instrumentation exported no span')
        return { bare: sample(bare), line: sample(measured) }
      } finally {
        partner?.child.kill()
        client?.child.kill()
      }
    })
    return pairedFigures('Outbound:', 0.95, fetchLines, pairs, 'plain fetch')
  } finally {
    for (const upstream of upstreams) upstream.child.kill()
  }
}

export async function runPeersSuite(): Promise<SuiteResult> {
  const figuresOut: Figure[] = []
  for (const group of GROUPS) if (wanted(group.framework)) figuresOut.push(...(await inbound(group)))
  if (wanted('outbound')) figuresOut.push(...(await outbound()))
  return {
    id: 'peers',
    title: 'Peers: apimeter beside the tools a user would pick instead',
    method: [
      `Every server answers \`GET /hello/:id\` with \`{"hello":"world"}\` (\`bench/servers/hello.ts\`), each tool set up in its own child process the way its README shows; apimeter writes to SQLite storage in a temporary file (the default a user runs) or to in-memory storage. Inbound lines are measured in pairs: each line's server and a bare server of its own are loaded at the same time by autocannon (${HTTP_LOAD.connections} connections each, one worker thread each) for ${SECONDS} s, so that whatever else the shared machine does in that interval weighs on both halves alike; the lines take turns, the order rotated each round, ${ROUNDS} rounds after a 1 s warm-up of each server. With \`taskset\` the servers' main threads (their event loops) share one core and the load generators run on the other; after the warm-up, every other thread of a server (V8's GC helpers, libuv's pool, a storage worker) may run on either core, as on a production machine with more cores than busy event loops. The *bare beside bare* line pairs two bare servers: how far it lands from 1.00 is the method's own noise in that run. The *head to head* line pairs apimeter's server with the nearest peer's instead of a bare one, the two tools compared within one interval; where it was measured, it decides whether apimeter is ahead of that peer.`,
      `Outbound likewise in pairs: each tool's client process (\`bench/servers/fetch-client.ts\`) and a plain-fetch client of its own run ${FETCH_LOAD.concurrency} concurrent loops each, fetching a 47-byte JSON answer and reading the body, for ${SECONDS} s at the same time; the clients share one core, each fetches from a local server of its own on the other core (the two servers trade places each round), and both clients are new processes in every round, so that no line keeps one process's luck with the JIT for the whole run, warmed up for ${OUTBOUND_WARM_UP_SECONDS} s before they are measured, as a long-lived client would be (measured: in the 2 s after a 1 s warm-up, the record() floor below read 0.91–0.93 of the minimal timer's CPU, and 0.96–0.99 after a 3 s one, a write path that runs once per flush having barely run after 1 s); apimeter's monitors write to SQLite storage (the default, its worker thread) and OpenTelemetry's span processor discards what it is given. The *plain fetch beside plain fetch* line is that method's noise; the *empty subscribers* line is no peer but the least any tool observing fetch through undici's diagnostics channels (as \`instrument()\`, \`monitor.fetch\` and OpenTelemetry do) can cost: undici builds and publishes its messages only when a channel has a subscriber.`,
      '',
      "**How to read this.** The first line of each group is the bare framework's (or plain fetch's) CPU time per request, read from `/proc/<pid>/stat` of the server process (every thread: SQLite's work included) or, outbound, from the client process's `process.cpuUsage()` (its main thread from `/proc/self/task/<pid>/stat`). Every other line is *bare CPU per request ÷ that line's CPU per request*, the bare server (outbound, the plain-fetch client) being the one loaded beside it in the same interval (median of the rounds): 1.00 is free, 0.50 doubles the cost. apimeter on SQLite does its writes, rollups and retention on a thread of its own: its line gives the process's CPU (every thread, the storage work included) and a second line, *host thread*, the same ratio for the main thread alone, the event loop a request waits for; that line carries its target. CPU per request is what a busy shared machine disturbs least; the note beside it gives the throughput and its ratio to bare in the same round, and the 99th percentile of request latency under 32 connections, where storage work on the event loop shows (medians). A target is met when both ratios reach it and apimeter uses less CPU per request than every peer of its group (head to head where that pair was measured). The targets apply to the default a user runs, SQLite storage with its worker thread; the `thread: 'main'` and in-memory lines show the other settings beside it. The *empty middleware / empty hook* line is no peer: it is the least any per-request tool can cost in that framework (one more layer that only calls `next()`), so the ratio at or below it is the floor a metering tool works under; the *minimal timer* lines are the floor of a meter built the usual way (a start time per request, and method, route, status and duration kept when the response is done: at its `finish` event in Express, in `onResponse` in Fastify; outbound, at the end of the body on undici's channels), and outbound a second floor line has that timer record each call with `monitor.record()` onto SQLite storage: what writing through apimeter's own write path costs a meter that does nothing else (its host-thread line, like apimeter's, reads the main thread alone, and carries no target). `PEERS_ROUNDS`, `PEERS_SECONDS` and `PEERS_ONLY` (`express5,express4,fastify,outbound`) shrink the run.",
    ].join('\n'),
    figures: figuresOut,
  }
}
