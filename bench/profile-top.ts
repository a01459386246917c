// Top self-time functions of a V8 .cpuprofile (as written by `node --cpu-prof`), and apimeter's share:
//   node --import tsx bench/profile-top.ts <file.cpuprofile> [count]
// (with tsx, the main thread's profile is the one named `….0.001.cpuprofile`; the other is its loader thread)
import { type ProfileNode, readCpuProfile } from './lib.js'

const [file, countText] = process.argv.slice(2)
if (file === undefined) throw new Error('usage: profile-top.ts <file.cpuprofile> [count]')
const profile = readCpuProfile(file)
const { byId, parent } = profile
const isOurs = (node: ProfileNode) => node.callFrame.url.includes('/packages/core/src/')
/** Whether a sample ran under one of apimeter's frames (its own code or what that code called). */
function underOurs(id: number): boolean {
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) if (isOurs(byId.get(at)!)) return true
  return false
}
const self = new Map<string, number>()
let total = 0
let ours = 0
let under = 0
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i]!)!
  const dt = profile.timeDeltas[i] ?? 0
  const { functionName, url, lineNumber } = node.callFrame
  const where = url === '' ? '' : ` ${url.replace(/^.*\/(packages|node_modules)\//, '$1/').replace(/^node:/, 'node:')}:${lineNumber + 1}`
  const key = `${functionName || '(anonymous)'}${where}`
  self.set(key, (self.get(key) ?? 0) + dt)
  if (functionName !== '(idle)') total += dt
  if (isOurs(node)) ours += dt
  if (underOurs(node.id)) under += dt
}
const idle = self.get('(idle)') ?? 0
console.log(`busy ${(total / 1000).toFixed(0)} ms (idle ${(idle / 1000).toFixed(0)} ms); apimeter's own frames ${((ours / total) * 100).toFixed(1)}% of busy, under apimeter's frames (what they called included) ${((under / total) * 100).toFixed(1)}%`)
const top = [...self].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, Number(countText ?? 25))
for (const [key, us] of top) console.log(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${key}`)
