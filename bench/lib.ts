import { type ChildProcess, spawn, type StdioOptions } from 'node:child_process'
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { type CallInput, createMonitor, type StorageAdapter } from '@apimeter/core'

const TICK_US = 1_000_000 / 100 // USER_HZ is 100 on Linux
/** CPU time (user + system) in µs from a `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat` file (Linux). */
export function statCpuUs(path: string): number {
  const { user, system } = statCpuSplitUs(path)
  return user + system
}

/** The same, user and kernel time apart (utime and stime, fields 14 and 15 of the line), in µs. */
export function statCpuSplitUs(path: string): { user: number; system: number } {
  const stat = readFileSync(path, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { user: Number(fields[11]) * TICK_US, system: Number(fields[12]) * TICK_US }
}

/** A node of a V8 `.cpuprofile` (as `node --cpu-prof` writes it). */
export interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

/** A `.cpuprofile` file read (or its parsed contents), with its nodes by id and each node's parent id. */
export function readCpuProfile(file: string | object): { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; byId: Map<number, ProfileNode>; parent: Map<number, number> } {
  const profile = (typeof file === 'string' ? JSON.parse(readFileSync(file, 'utf8')) : file) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  return { ...profile, byId, parent }
}

/** One measured figure of a suite. */
export interface Figure {
  name: string
  value: number
  unit: string
  /** e.g. '≥ 1,000,000 calls/s' */
  target?: string
  /** Whether the target is met, when there is one. */
  met?: boolean
  note?: string
}

/** A suite's result: its figures and a short description of how they were measured. */
export interface SuiteResult {
  id: string
  title: string
  method: string
  figures: Figure[]
}

/** Median of numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Lets pending I/O and timers run. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** Accepts and discards every batch: what is measured is the metering and the write pipeline, not a storage engine. */
export const discardStorage: StorageAdapter = {
  name: 'discard',
  capabilities: { durable: false },
  async writeCalls() {},
  async aggregate() {
    return []
  },
  async close() {},
}

/**
 * Spawns a server process that prints `listening <port>` once ready (in `cwd`, when given); resolves with the child
 * and the port, rejects when it exits first.
 */
export async function spawnListening(command: readonly string[], label: string, stdio: StdioOptions = ['ignore', 'pipe', 'inherit'], cwd?: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(command[0]!, command.slice(1), { stdio, cwd })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /listening (\d+)/.exec(out)
      if (match) resolve(Number(match[1]))
    })
    child.once('exit', (code) => reject(new Error(`${label} exited with ${code}`)))
  })
  return { child, port }
}

/**
 * Runs `fn` `warmup` times untimed, then `runs` times; the median time in ms, the last value and each timed run's
 * time in ms.
 */
export async function timeMedian<T>(fn: () => Promise<T>, runs: number, warmup = 0): Promise<{ ms: number; value: T; times: number[] }> {
  for (let w = 0; w < warmup; w++) await fn()
  const times: number[] = []
  let value!: T
  for (let r = 0; r < runs; r++) {
    const t = performance.now()
    value = await fn()
    times.push(performance.now() - t)
  }
  return { ms: median(times), value, times }
}

/**
 * Records `n` calls (`make(i)`) through a monitor on `storage`, from the first record() until flush() resolves;
 * events/s. Throws when a call was lost. The producer waits while half a million calls are queued.
 */
export async function ingestRate(storage: StorageAdapter, n: number, make: (i: number) => CallInput, batchSize: number): Promise<number> {
  await storage.init?.()
  const monitor = createMonitor({ storage, logger: false, flushOnExit: false, batchSize, maxBufferSize: 1_000_000 })
  const t = performance.now()
  for (let i = 0; i < n; i++) {
    monitor.record(make(i))
    if (i % 10_000 === 9_999) {
      await yieldToLoop()
      // An app cannot produce faster than its storage absorbs for long: hold the producer while the buffer is
      // half full, as real traffic would be spread out, instead of overflowing it.
      while (monitor.health().queued > 500_000) await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
  await monitor.flush()
  const ms = performance.now() - t
  if (monitor.health().written !== n) throw new Error(`lost calls: ${JSON.stringify(monitor.health())}`)
  return (n / ms) * 1000
}

/** Formats a number with thousands separators. */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

/** Machine line for the report. */
export function machine(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU'
  return `${cpu}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}/${process.arch}`
}

/** Renders one suite as a Markdown section. */
export function renderSuite(result: SuiteResult, date: string): string {
  const rows = result.figures
    .map((f) => `| ${f.name} | ${fmt(f.value, f.unit === 'ratio' || f.unit === 'ms' || f.unit === 'MiB' ? 2 : 0)} ${f.unit === 'ratio' ? '' : f.unit} | ${f.target ?? '—'} | ${f.met === undefined ? '—' : f.met ? 'met' : '**not met**'} |${f.note ? ` ${f.note} |` : ' |'}`)
    .join('\n')
  return [
    `<!-- bench:${result.id}:start -->`,
    `## ${result.title}`,
    '',
    `Measured ${date} on ${machine()}.`,
    '',
    result.method,
    '',
    '| figure | result | target | status | note |',
    '|---|---|---|---|---|',
    rows,
    `<!-- bench:${result.id}:end -->`,
  ].join('\n')
}

/** Replaces (or appends) each suite's section in docs/benchmarks.md, leaving other suites' sections alone. */
export function writeReport(path: string, results: SuiteResult[]): void {
  const date = new Date().toISOString().slice(0, 10)
  let doc = existsSync(path)
    ? readFileSync(path, 'utf8')
    : `# Benchmarks\n\nProduced by \`npm run bench\` (not part of \`npm test\`). Each section is rewritten when its suite runs;\nratios are measured side by side in one run, so they hold better than absolute figures on a shared machine.\nRun one suite with \`npm run bench -- <suite>\`.\n`
  for (const result of results) {
    const section = renderSuite(result, date)
    const pattern = new RegExp(`<!-- bench:${result.id}:start -->[\\s\\S]*?<!-- bench:${result.id}:end -->`)
    doc = pattern.test(doc) ? doc.replace(pattern, section) : `${doc.trimEnd()}\n\n${section}\n`
  }
  writeFileSync(path, doc.endsWith('\n') ? doc : `${doc}\n`)
}
