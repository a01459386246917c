// A CPU profile of one hello-world server under load, and what apimeter costs in it per request (not part of
// `npm run bench`):
//   node --import tsx bench/profile-inbound.ts <express5|express4|fastify> <mode> [seconds]
// Starts `bench/servers/hello.ts <framework> <mode>` with `--cpu-prof`, loads `GET /hello/42` with autocannon for
// the given seconds (8 by default) after a 1 s warm-up, stops the server (which writes its profile) and prints, for
// the samples taken while the measured load ran (start-up, module loading and warm-up left out), per request: the
// server's busy CPU, garbage collection, and the time whose nearest JavaScript frame is apimeter's — its own code
// and the Node internals it calls directly, but not the framework code it hands over to (`next()`) nor the real
// write()/end() its byte counters forward to. Then apimeter's top frames by that measure.
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { type ProfileNode, readCpuProfile } from './lib.js'
import { freeHelperThreads, serverPinning } from './throughput.js'

const [framework, mode, secondsText] = process.argv.slice(2)
if (framework === undefined || mode === undefined) throw new Error('usage: profile-inbound.ts <express5|express4|fastify> <mode> [seconds]')
const seconds = Number(secondsText ?? 8)
const dir = mkdtempSync(join(tmpdir(), 'apimeter-profile-'))
const server = fileURLToPath(new URL('./servers/hello.ts', import.meta.url))
// As in the benches: with taskset, the server's threads start on one core and the load generator runs on the other.
const pin = serverPinning()
const command = [...pin, process.execPath, '--cpu-prof', `--cpu-prof-dir=${dir}`, '--import', 'tsx', server, framework, mode]
const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
const port = await new Promise<number>((resolve, reject) => {
  child.stdout!.on('data', (data: Buffer) => {
    const match = /listening (\d+)/.exec(String(data))
    if (match) resolve(Number(match[1]))
  })
  child.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
})
// a warm-up, then (as in the peers bench) the server's helper threads (a storage worker, GC helpers) may use either core
await autocannon({ url: `http://127.0.0.1:${port}/hello/42`, connections: 32, duration: 1, workers: 1 })
freeHelperThreads({ child })
// The window measured, on the monotonic clock the profile's timestamps use: start-up and warm-up are left out.
const loadFrom = Number(process.hrtime.bigint() / 1000n)
const result = await autocannon({ url: `http://127.0.0.1:${port}/hello/42`, connections: 32, duration: seconds, workers: 1 })
const loadTo = Number(process.hrtime.bigint() / 1000n)
const exited = new Promise((resolve) => child.once('exit', resolve))
child.kill('SIGTERM')
await exited
const requests = result.requests.total

// With tsx the main thread's profile is the first one written (the loader thread's comes second).
const file = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort()[0]!
const written = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { startTime: number; samples: number[]; timeDeltas: number[] }
rmSync(dir, { recursive: true, force: true })
// Only the samples taken while the measured load ran (V8 and process.hrtime() read the same monotonic clock).
const samples: number[] = []
const timeDeltas: number[] = []
let sampledAt = written.startTime
for (let i = 0; i < written.samples.length; i++) {
  sampledAt += written.timeDeltas[i] ?? 0
  if (sampledAt < loadFrom || sampledAt > loadTo) continue
  samples.push(written.samples[i]!)
  timeDeltas.push(samples.length === 1 ? 0 : (written.timeDeltas[i] ?? 0))
}
Object.assign(written, { samples, timeDeltas, startTime: loadFrom, endTime: loadTo })
// PROFILE_OUT=<file>: keep the profile of the window (for bench/profile-top.ts or a diff of two runs)
if (process.env.PROFILE_OUT) writeFileSync(process.env.PROFILE_OUT, JSON.stringify(written))
const profile = readCpuProfile(written)
const { byId, parent } = profile
const ours = (node: ProfileNode) => /\/packages\/(core|express|fastify|storage-sqlite)\/src\//.test(node.callFrame.url)
const internal = (node: ProfileNode) => node.callFrame.url === '' || node.callFrame.url.startsWith('node:')
/** Byte counters forwarding to the real write()/end(): what runs below them is the response's own cost. */
const forwarding = (node: ProfileNode) => ours(node) && /^(meteredWrite|meteredEnd|write|end)$/.test(node.callFrame.functionName)

/** The frame a sample is charged to: the nearest JavaScript frame outside Node, unless it only forwards. */
function owner(leaf: ProfileNode): ProfileNode | undefined {
  for (let at: ProfileNode | undefined = leaf; at !== undefined; at = byId.get(parent.get(at.id) ?? -1)) {
    if (internal(at)) continue
    return at !== leaf && forwarding(at) ? undefined : at
  }
  return undefined
}

let busy = 0
let gc = 0
let apimeter = 0
const charged = new Map<string, number>()
for (let i = 0; i < profile.samples.length; i++) {
  const leaf = byId.get(profile.samples[i]!)!
  const dt = profile.timeDeltas[i] ?? 0
  const name = leaf.callFrame.functionName
  if (name === '(idle)') continue
  busy += dt
  if (name === '(garbage collector)') {
    gc += dt
    continue
  }
  const at = owner(leaf)
  if (at === undefined || !ours(at)) continue
  apimeter += dt
  const key = `${at.callFrame.functionName || '(anonymous)'} ${at.callFrame.url.replace(/^.*\/packages\//, '')}`
  charged.set(key, (charged.get(key) ?? 0) + dt)
}
const per = (us: number) => (us / requests).toFixed(2)
console.log(`${framework} ${mode}: ${requests} requests in ${seconds} s; per request: busy ${per(busy)} µs, GC ${per(gc)} µs, apimeter ${per(apimeter)} µs (${((apimeter / busy) * 100).toFixed(1)}% of busy)`)
for (const [key, us] of [...charged].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${per(us).padStart(7)} µs  ${key}`)
