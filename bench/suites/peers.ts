// The peers suite: apimeter beside the tools a user would pick instead, on the same hello-world route, in one run.
// Inbound: one server process per tool (bench/servers/hello.ts), loaded one after the other in alternating rounds;
// outbound: plain fetch, monitor.fetch, instrument() and OpenTelemetry's undici instrumentation in this process.
// PEERS_ROUNDS and PEERS_SECONDS shrink (or grow) the run; PEERS_ONLY=express5,express4,fastify,outbound picks parts.
import { createMonitor } from '@apimeter/core'
import { discardStorage, type Figure, fmt, median, type SuiteResult } from '../lib.js'
import { freeHelperThreads, LOAD as HTTP_LOAD, load, report, type Server, serverPinning, startServer } from '../throughput.js'
import { lastCpuPerRequest, LOAD as FETCH_LOAD, startUpstream, throughput } from './outbound.js'

const ROUNDS = Number(process.env.PEERS_ROUNDS ?? 5)
const SECONDS = Number(process.env.PEERS_SECONDS ?? 2)
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
   * on, with the process's CPU (every thread) reported beside it.
   */
  offThread?: boolean
  /** Not a peer: the least any tool of the kind can cost (a middleware or hook doing nothing), shown for the floor. */
  floor?: boolean
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
  { name: '+ `response-time` (a minimal timer)', mode: 'response-time' },
  { name: '+ express-prom-bundle', mode: 'prom-bundle' },
  { name: '+ apimeter (SQLite storage)', mode: 'with-sqlite', apimeter: true, offThread: true },
  { name: "+ apimeter (SQLite storage, `thread: 'main'`)", mode: 'with-sqlite-main', apimeter: true },
  { name: '+ apimeter (in-memory storage)', mode: 'with-memory', apimeter: true },
  { name: '+ swagger-stats', mode: 'swagger-stats' },
  { name: '+ OpenTelemetry http + express', mode: 'otel' },
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
      { name: '+ apimeter (SQLite storage)', mode: 'with-sqlite', apimeter: true, offThread: true },
      { name: "+ apimeter (SQLite storage, `thread: 'main'`)", mode: 'with-sqlite-main', apimeter: true },
      { name: '+ apimeter (in-memory storage)', mode: 'with-memory', apimeter: true },
      { name: '+ fastify-metrics', mode: 'fastify-metrics' },
    ],
  },
]

interface Measured {
  name: string
  apimeter: boolean
  offThread?: boolean
  floor?: boolean
  rps: number[]
  /** CPU µs per request, every thread of the process. */
  cpu: number[]
  /** CPU µs per request of the main thread (outbound: the same as `cpu`). */
  main: number[]
  /** 99th percentile latency per round, ms (inbound; NaN outbound). */
  p99: number[]
}

/**
 * Rounds of `measure(line)` for every line, the order rotated each round so that no line always runs first (or
 * right after a GC-heavy one); one warm-up pass first.
 */
async function alternate<L>(lines: readonly L[], warmup: (line: L) => Promise<unknown>, measure: (line: L) => Promise<Sample>): Promise<Omit<Measured, 'name' | 'apimeter'>[]> {
  for (const line of lines) await warmup(line)
  const results = lines.map(() => ({ rps: [] as number[], cpu: [] as number[], main: [] as number[], p99: [] as number[] }))
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < lines.length; i++) {
      const at = (round + i) % lines.length
      const { rps, cpu, main, p99 } = await measure(lines[at]!)
      results[at]!.rps.push(rps)
      results[at]!.cpu.push(cpu)
      results[at]!.main.push(main)
      results[at]!.p99.push(p99)
    }
  }
  return results
}

interface Sample {
  rps: number
  cpu: number
  main: number
  p99: number
}

/**
 * One figure per line: bare as CPU µs per request; every other line as bare's CPU per request over its own. A line
 * whose storage works off the host's thread gets a second figure, its main thread's (and its target there).
 */
function figures(label: string, target: number | undefined, measured: Measured[]): Figure[] {
  const [bare, ...rest] = measured as [Measured, ...Measured[]]
  const bareCpu = median(bare.cpu)
  const bareMain = median(bare.main)
  const rpsRatios = (m: Measured) => m.rps.map((r, i) => r / bare.rps[i]!)
  const p99 = (m: Measured) => (m.p99.some(Number.isFinite) ? `; p99 latency ${median(m.p99).toFixed(0)} ms` : '')
  const out: Figure[] = [
    { name: `${label} ${bare.name}`, value: bareCpu, unit: 'µs/request', note: `${fmt(median(bare.rps))} req/s; main thread ${bareMain.toFixed(1)} µs/request${p99(bare)}` },
  ]
  const peers = rest.filter((m) => !m.apimeter && m.floor !== true)
  const bestPeer = Math.min(...peers.map((m) => median(m.cpu)))
  const bestPeerMain = Math.min(...peers.map((m) => median(m.main)))
  const goal = (met: boolean) => (target === undefined ? {} : { target: `≥ ${target.toFixed(2)}${peers.length ? ', ahead of every peer' : ''}`, met })
  for (const m of rest) {
    const cpuRatio = bareCpu / median(m.cpu)
    const rpsRatio = median(rpsRatios(m))
    const throughputNote = `${fmt(median(m.rps))} req/s, ${rpsRatio.toFixed(2)} of bare (per round: ${rpsRatios(m).map((r) => r.toFixed(2)).join(', ')})${p99(m)}`
    const judgedHere = m.apimeter && m.offThread !== true
    out.push({
      name: `${label} ${m.name}`,
      value: cpuRatio,
      unit: 'ratio',
      ...(judgedHere ? goal(cpuRatio >= (target ?? 0) && rpsRatio >= (target ?? 0) && (peers.length === 0 || median(m.cpu) < bestPeer)) : {}),
      note: `CPU ${median(m.cpu).toFixed(1)} µs/request, every thread${m.offThread ? ' (storage thread included)' : ''}; ${throughputNote}`,
    })
    if (m.apimeter && m.offThread === true) {
      const mainRatio = bareMain / median(m.main)
      out.push({
        name: `${label} ${m.name}, host thread`,
        value: mainRatio,
        unit: 'ratio',
        ...goal(mainRatio >= (target ?? 0) && rpsRatio >= (target ?? 0) && (peers.length === 0 || median(m.main) < bestPeerMain)),
        note: `main thread ${median(m.main).toFixed(1)} µs/request (bare ${bareMain.toFixed(1)}); ${throughputNote}`,
      })
    }
  }
  return out
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

async function loadPair(bare: Server, line: Server): Promise<Pair> {
  const [b, l] = await Promise.all([load(bare, SECONDS, PATH), load(line, SECONDS, PATH)])
  const sample = (r: typeof b): Sample => ({ rps: r.rps, cpu: r.cpuPerRequest, main: r.mainCpuPerRequest, p99: r.p99Ms })
  return { bare: sample(b), line: sample(l) }
}

async function inbound(group: Group): Promise<Figure[]> {
  const servers = new Map<string, Server>()
  /** Each line's own bare partner: loaded only in that line's rounds, so both halves of a pair idle alike between them. */
  const partners = new Map<string, Server>()
  try {
    for (const line of group.lines) {
      servers.set(line.mode, await startServer(group.framework, line.mode))
      partners.set(line.mode, await startServer(group.framework, 'without'))
    }
    for (const server of [...servers.values(), ...partners.values()]) {
      await load(server, 1, PATH)
      freeHelperThreads(server)
    }
    const pairs: Pair[][] = group.lines.map(() => [])
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < group.lines.length; i++) {
        const at = (round + i) % group.lines.length
        const mode = group.lines[at]!.mode
        pairs[at]!.push(await loadPair(partners.get(mode)!, servers.get(mode)!))
      }
    }
    for (const line of group.lines) {
      const seen = await report(servers.get(line.mode)!)
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
function pairedFigures(label: string, target: number, lines: Line[], pairs: Pair[][]): Figure[] {
  const allBare = pairs.flat().map((p) => p.bare)
  const ratios = (at: number, of: (s: Sample) => number, inverse = false) =>
    pairs[at]!.map((p) => (inverse ? of(p.line) / of(p.bare) : of(p.bare) / of(p.line)))
  const list = (values: number[]) => values.map((r) => r.toFixed(2)).join(', ')
  const p99 = (samples: Sample[]) => `; p99 latency ${median(samples.map((s) => s.p99)).toFixed(0)} ms`
  const out: Figure[] = [
    {
      name: `${label} bare`,
      value: median(allBare.map((s) => s.cpu)),
      unit: 'µs/request',
      note: `${fmt(median(allBare.map((s) => s.rps)))} req/s beside its partner; main thread ${median(allBare.map((s) => s.main)).toFixed(1)} µs/request${p99(allBare)}`,
    },
  ]
  const cpuRatio = lines.map((_, at) => median(ratios(at, (s) => s.cpu)))
  const mainRatio = lines.map((_, at) => median(ratios(at, (s) => s.main)))
  const peers = lines.map((line, at) => ({ line, at })).filter(({ line }) => !line.apimeter && line.floor !== true && line.mode !== 'without')
  const bestPeer = Math.max(...peers.map(({ at }) => cpuRatio[at]!))
  const bestPeerMain = Math.max(...peers.map(({ at }) => mainRatio[at]!))
  const goal = (met: boolean) => ({ target: `≥ ${target.toFixed(2)}${peers.length ? ', ahead of every peer' : ''}`, met })
  lines.forEach((line, at) => {
    const samples = pairs[at]!.map((p) => p.line)
    const rpsRatios = ratios(at, (s) => s.rps, true)
    const rpsRatio = median(rpsRatios)
    const name = line.mode === 'without' ? `${label} bare beside bare (the method's noise)` : `${label} ${line.name}`
    const throughputNote = `${fmt(median(samples.map((s) => s.rps)))} req/s, ${rpsRatio.toFixed(2)} of bare beside it (per round: ${list(rpsRatios)})${p99(samples)}`
    const judgedHere = line.apimeter === true && line.offThread !== true
    out.push({
      name,
      value: cpuRatio[at]!,
      unit: 'ratio',
      ...(judgedHere ? goal(cpuRatio[at]! >= target && rpsRatio >= target && cpuRatio[at]! > bestPeer) : {}),
      note: `CPU ${median(samples.map((s) => s.cpu)).toFixed(1)} µs/request, every thread${line.offThread ? ' (storage thread included)' : ''}; per round: ${list(ratios(at, (s) => s.cpu))}; ${throughputNote}`,
    })
    if (line.apimeter === true && line.offThread === true) {
      out.push({
        name: `${label} ${line.name}, host thread`,
        value: mainRatio[at]!,
        unit: 'ratio',
        ...goal(mainRatio[at]! >= target && rpsRatio >= target && mainRatio[at]! > bestPeerMain),
        note: `main thread ${median(samples.map((s) => s.main)).toFixed(1)} µs/request; per round: ${list(ratios(at, (s) => s.main))}; ${throughputNote}`,
      })
    }
  })
  return out
}

type FetchMode = 'plain fetch' | '`monitor.fetch`' | 'plain fetch with `instrument()`' | 'plain fetch with OpenTelemetry undici instrumentation'

async function outbound(): Promise<Figure[]> {
  const upstream = await startUpstream(serverPinning())
  // monitor.fetch subscribes to undici's diagnostics channels until its monitor closes: a monitor per run, so
  // that the other modes' rounds (plain fetch above all) run with no subscriber of apimeter's.
  let fetchedCalls = 0
  const instrumented = createMonitor({ service: 'bench', logger: false, flushOnExit: false, storage: discardStorage })
  const { discardingTracer } = await import('../otel.js')
  const { UndiciInstrumentation } = await import('@opentelemetry/instrumentation-undici')
  const { provider, spans } = discardingTracer()
  // Constructed enabled (its config decides whether spans are made at all), then switched off between its rounds.
  const otel = new UndiciInstrumentation()
  otel.setTracerProvider(provider)
  otel.disable()
  const plain = (input: Parameters<typeof fetch>[0], init?: RequestInit) => globalThis.fetch(input, init)
  const modes: FetchMode[] = ['plain fetch', '`monitor.fetch`', 'plain fetch with `instrument()`', 'plain fetch with OpenTelemetry undici instrumentation']
  const run = async (mode: FetchMode, ms: number): Promise<Sample> => {
    if (mode === 'plain fetch with `instrument()`') instrumented.instrument()
    const traced = mode === 'plain fetch with OpenTelemetry undici instrumentation'
    if (traced) otel.enable()
    try {
      if (mode === '`monitor.fetch`') {
        const fetching = createMonitor({ service: 'bench', logger: false, flushOnExit: false, storage: discardStorage })
        try {
          const rps = await throughput(fetching.fetch, upstream.url, ms)
          return { rps, cpu: lastCpuPerRequest, main: lastCpuPerRequest, p99: Number.NaN }
        } finally {
          await fetching.close()
          fetchedCalls += fetching.health().written
        }
      }
      const rps = await throughput(plain, upstream.url, ms)
      return { rps, cpu: lastCpuPerRequest, main: lastCpuPerRequest, p99: Number.NaN }
    } finally {
      instrumented.uninstrument()
      if (traced) otel.disable()
    }
  }
  try {
    const results = await alternate(modes, (mode) => run(mode, 1000), (mode) => run(mode, SECONDS * 1000))
    await provider.forceFlush()
    if (fetchedCalls === 0 || instrumented.health().written + instrumented.health().queued === 0) throw new Error('peers: a metered fetch mode recorded nothing')
    if (spans() === 0) throw new Error('peers: the undici instrumentation exported no span')
    const measured = modes.map((mode, i) => ({ name: mode, apimeter: mode.includes('monitor') || mode.includes('instrument()'), ...results[i]! }))
    return figures('Outbound:', 0.95, measured)
  } finally {
    await instrumented.close()
    await provider.shutdown()
    upstream.child.kill()
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
      `Every server answers \`GET /hello/:id\` with \`{"hello":"world"}\` (\`bench/servers/hello.ts\`), each tool set up in its own child process the way its README shows; apimeter writes to SQLite storage in a temporary file (the default a user runs) or to in-memory storage. Inbound lines are measured in pairs: each line's server and a bare server of its own are loaded at the same time by autocannon (${HTTP_LOAD.connections} connections each, one worker thread each) for ${SECONDS} s, so that whatever else the shared machine does in that interval weighs on both halves alike; the lines take turns, the order rotated each round, ${ROUNDS} rounds after a 1 s warm-up of each server. With \`taskset\` the servers' main threads (their event loops) share one core and the load generators run on the other; after the warm-up, every other thread of a server (V8's GC helpers, libuv's pool, a storage worker) may run on either core, as on a production machine with more cores than busy event loops. The *bare beside bare* line pairs two bare servers: how far it lands from 1.00 is the method's own noise in that run.`,
      `Outbound: one client process, ${FETCH_LOAD.concurrency} concurrent loops fetching a 47-byte JSON answer from a local server on the other core and reading the body, ${SECONDS} s per mode, rotated likewise; apimeter's monitors and OpenTelemetry's span processor discard what they are given.`,
      '',
      "**How to read this.** The first line of each group is the bare framework's (or plain fetch's) CPU time per request, read from `/proc/<pid>/stat` of the server process (every thread: SQLite's work included) or, outbound, from the client's `process.cpuUsage()`. Every other line is *bare CPU per request ÷ that line's CPU per request*, the bare server being the one loaded beside it in the same interval (median of the rounds; outbound, plain fetch in the same round): 1.00 is free, 0.50 doubles the cost. apimeter on SQLite does its writes, rollups and retention on a thread of its own: its line gives the process's CPU (every thread, the storage work included) and a second line, *host thread*, the same ratio for the main thread alone, the event loop a request waits for; that line carries its target. CPU per request is what a busy shared machine disturbs least; the note beside it gives the throughput and its ratio to bare in the same round, and the 99th percentile of request latency under 32 connections, where storage work on the event loop shows (medians). A target is met when both ratios reach it and apimeter uses less CPU per request than every peer of its group. The *empty middleware / empty hook* line is no peer: it is the least any per-request tool can cost in that framework (one more layer that only calls `next()`), so the ratio at or below it is the floor a metering tool works under. `PEERS_ROUNDS`, `PEERS_SECONDS` and `PEERS_ONLY` (`express5,express4,fastify,outbound`) shrink the run.",
    ].join('\n'),
    figures: figuresOut,
  }
}
