// The same hello-world server mode from two checkouts of this repository, side by side (not part of `npm run bench`):
//   node --import tsx bench/compare-checkouts.ts <before-checkout> <after-checkout> <express5|express4|fastify> <mode> [rounds]
// Starts `bench/servers/hello.ts` bare (from the second checkout) and in `mode` from each checkout, pinned to core 1
// when taskset is there, warms each up, then loads them one at a time in rotated order for `rounds` rounds of 3 s
// (5 by default) with autocannon (32 connections), reading each server's CPU time from /proc. Prints the median CPU
// µs per request of each and its ratio to bare: what a change did, measured on one machine in one run.
import { type ChildProcess, spawn } from 'node:child_process'
import autocannon from 'autocannon'
import { median, statCpuUs } from './lib.js'
import { serverPinning } from './throughput.js'

const [before, after, framework, mode, roundsText] = process.argv.slice(2)
if (before === undefined || after === undefined || framework === undefined || mode === undefined) {
  throw new Error('usage: compare-checkouts.ts <before-checkout> <after-checkout> <express5|express4|fastify> <mode> [rounds]')
}
const rounds = Number(roundsText ?? 5)

const cpuUs = (pid: number): number => statCpuUs(`/proc/${pid}/stat`)

async function start(checkout: string, serverMode: string): Promise<{ child: ChildProcess; port: number }> {
  const command = [...serverPinning(), process.execPath, '--import', 'tsx', 'bench/servers/hello.ts', framework!, serverMode]
  const child = spawn(command[0]!, command.slice(1), { cwd: checkout, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (data: Buffer) => {
      const match = /listening (\d+)/.exec(String(data))
      if (match) resolve(Number(match[1]))
    })
    child.once('exit', (code) => reject(new Error(`${checkout}: server exited with ${code}`)))
  })
  return { child, port }
}

const servers = { bare: await start(after, 'without'), before: await start(before, mode), after: await start(after, mode) }
const names = Object.keys(servers) as (keyof typeof servers)[]
const cpu: Record<string, number[]> = { bare: [], before: [], after: [] }
const run = async (name: keyof typeof servers, seconds: number) => {
  const { child, port } = servers[name]
  const used = cpuUs(child.pid!)
  const result = await autocannon({ url: `http://127.0.0.1:${port}/hello/42`, connections: 32, duration: seconds, workers: 1 })
  return (cpuUs(child.pid!) - used) / result.requests.total
}
try {
  for (const name of names) await run(name, 2)
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(round + i) % names.length]!
      cpu[name]!.push(await run(name, 3))
    }
  }
  const bare = median(cpu.bare!)
  for (const name of names) {
    const value = median(cpu[name]!)
    console.log(`${framework} ${name === 'bare' ? 'without' : mode} (${name}): ${value.toFixed(1)} µs/request, ${(bare / value).toFixed(2)} of bare (per round: ${cpu[name]!.map((v) => v.toFixed(1)).join(', ')})`)
  }
} finally {
  for (const { child } of Object.values(servers)) child.kill()
}
