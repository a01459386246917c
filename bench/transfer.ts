// Host-side cost of handing a batch of CallRecords to a worker thread, by encoding: what the SQLite storage's worker
// mode pays on the request thread per batch. Run: node --import tsx bench/transfer.ts
// Only the sender's time is measured (postMessage serialises synchronously); the worker discards what it gets.
import { Worker } from 'node:worker_threads'
import { recordFactory } from '@apimeter/core/testing'
import type { CallRecord } from '@apimeter/core'

const make = recordFactory({ service: 'bench' })
const BATCH = Number(process.env.BATCH ?? 500)
const ROUNDS = 400
const batch: CallRecord[] = Array.from({ length: BATCH }, (_, i) =>
  make({ direction: 'inbound', method: 'GET', route: `/users/:id`, statusCode: 200, durationMs: 1.2 + i / 1000, tenantId: 'acme', userAgent: 'curl/8.5.0', clientIp: '127.0.0.1' }),
)
const keys = Object.keys(batch[0]!) as (keyof CallRecord)[]

const worker = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.on("message", (m) => { if (m === "ping") parentPort.postMessage("pong") })', { eval: true })
const drained = () => new Promise<void>((resolve) => { worker.once('message', () => resolve()); worker.postMessage('ping') })

// one flat array of every record's values, record after record
const flat = (b: CallRecord[]) => {
  const out = new Array<unknown>(b.length * keys.length)
  for (let i = 0; i < b.length; i++) for (let k = 0; k < keys.length; k++) out[i * keys.length + k] = b[i]![keys[k]!]
  return out
}
const encodings: Record<string, (b: CallRecord[]) => unknown> = {
  'one flat value array': flat,
  'structured clone of the records': (b) => b,
  'JSON string': (b) => JSON.stringify(b),
  'column arrays': (b) => keys.map((k) => b.map((r) => r[k])),
  'row arrays (values only)': (b) => b.map((r) => keys.map((k) => r[k])),
}

for (const [name, encode] of Object.entries(encodings)) {
  const times: number[] = []
  const encodeTimes: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const t = process.hrtime.bigint()
    const encoded = encode(batch)
    const t1 = process.hrtime.bigint()
    worker.postMessage(encoded)
    encodeTimes.push(Number(t1 - t) / 1000)
    times.push(Number(process.hrtime.bigint() - t) / 1000)
    if (r % 20 === 0) await drained()
  }
  times.sort((a, b) => a - b)
  encodeTimes.sort((a, b) => a - b)
  const median = times[times.length >> 1]!
  console.log(`${name.padEnd(34)} ${median.toFixed(0).padStart(6)} µs per ${BATCH}-call batch  (${((median * 1000) / BATCH).toFixed(0)} ns per call, ${((encodeTimes[encodeTimes.length >> 1]! * 1000) / BATCH).toFixed(0)} of them encoding)`)
}
await worker.terminate()
