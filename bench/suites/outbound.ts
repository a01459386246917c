import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createMonitor } from '@apimeter/core'
import { discardStorage, type Figure, median, spawnListening, type SuiteResult } from '../lib.js'

const SERVER = fileURLToPath(new URL('../servers/upstream.ts', import.meta.url))
export const LOAD = { concurrency: 16, roundMs: 2000, warmupMs: 2000, rounds: 9 }
const TARGET = 0.95

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

type Mode = 'plain' | 'monitor.fetch' | 'instrument()'
const MODES: readonly Mode[] = ['plain', 'monitor.fetch', 'instrument()']

export async function runOutboundSuite(): Promise<SuiteResult> {
  const upstream = await startUpstream()
  const fetching = createMonitor({ service: 'bench', logger: false, flushOnExit: false, storage: discardStorage })
  const instrumented = createMonitor({ service: 'bench', logger: false, flushOnExit: false, storage: discardStorage })
  const plain = (input: Parameters<typeof fetch>[0], init?: RequestInit) => globalThis.fetch(input, init)
  const run = async (mode: Mode, ms: number): Promise<number> => {
    if (mode === 'instrument()') instrumented.instrument()
    try {
      return await throughput(mode === 'monitor.fetch' ? fetching.fetch : plain, upstream.url, ms)
    } finally {
      instrumented.uninstrument()
    }
  }
  try {
    for (const mode of MODES) await run(mode, LOAD.warmupMs)
    const rps: Record<Mode, number[]> = { plain: [], 'monitor.fetch': [], 'instrument()': [] }
    const cpu: Record<Mode, number[]> = { plain: [], 'monitor.fetch': [], 'instrument()': [] }
    for (let round = 0; round < LOAD.rounds; round++) {
      // rotate the order so that no mode always runs first (or right after a GC-heavy one)
      for (let i = 0; i < MODES.length; i++) {
        const mode = MODES[(round + i) % MODES.length]!
        rps[mode].push(await run(mode, LOAD.roundMs))
        cpu[mode].push(lastCpuPerRequest)
      }
    }
    const recorded = fetching.health().written + fetching.health().queued
    const instrumentedRecorded = instrumented.health().written + instrumented.health().queued
    if (recorded === 0 || instrumentedRecorded === 0) throw new Error('outbound bench: a metered mode recorded nothing')
    const ratios = (mode: Mode) => rps[mode].map((r, i) => r / rps.plain[i]!)
    const ratioFigure = (mode: Mode, name: string): Figure => {
      const value = median(ratios(mode))
      return { name, value, unit: 'ratio', target: `≥ ${TARGET.toFixed(2)}`, met: value >= TARGET, note: `per round: ${ratios(mode).map((r) => r.toFixed(2)).join(', ')}` }
    }
    return {
      id: 'outbound',
      title: 'Outbound: `monitor.fetch` and `instrument()` against plain fetch',
      method: `One client process fetching from a local upstream server in a child process (\`bench/servers/upstream.ts\`, a 47-byte JSON answer, keep-alive), ${LOAD.concurrency} concurrent request loops, each request reading its whole body. Three modes — plain global fetch, \`monitor.fetch\`, and plain fetch with \`monitor.instrument()\` on — run one after the other in each round (order rotated per round), ${LOAD.rounds} rounds of ${LOAD.roundMs / 1000} s after a ${LOAD.warmupMs / 1000} s warm-up of each; req/s are medians, ratios are medians of the per-round ratios to plain fetch in the same round. Monitors write to a storage that discards batches, so the ratio is the metering (registry, timing, body counting, cost/cache/rate-limit reading, record() and batching), not a storage engine.`,
      figures: [
        { name: 'plain fetch', value: median(rps.plain), unit: 'req/s', note: `client CPU ${median(cpu.plain).toFixed(0)} µs/request` },
        { name: '`monitor.fetch`', value: median(rps['monitor.fetch']), unit: 'req/s', note: `client CPU ${median(cpu['monitor.fetch']).toFixed(0)} µs/request` },
        { name: 'plain fetch with `instrument()`', value: median(rps['instrument()']), unit: 'req/s', note: `client CPU ${median(cpu['instrument()']).toFixed(0)} µs/request` },
        ratioFigure('monitor.fetch', '`monitor.fetch` / plain fetch'),
        ratioFigure('instrument()', '`instrument()` / none'),
        { name: 'plain / `monitor.fetch` client CPU per request', value: median(cpu.plain) / median(cpu['monitor.fetch']), unit: 'ratio', note: 'the throughput ratio a CPU-bound client would see' },
        { name: 'plain / `instrument()` client CPU per request', value: median(cpu.plain) / median(cpu['instrument()']), unit: 'ratio' },
      ],
    }
  } finally {
    await fetching.close()
    await instrumented.close()
    upstream.child.kill()
  }
}
