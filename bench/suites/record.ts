import { type CallInput, createMonitor, memoryStorage } from '@apimeter/core'
import { type Figure, median, type SuiteResult, yieldToLoop } from '../lib.js'

const CALLS = 1_000_000
const CHUNK = 100_000
const ROUNDS = 7

const call: CallInput = {
  direction: 'outbound',
  api: 'openai',
  method: 'POST',
  route: '/v1/chat/completions',
  statusCode: 200,
  durationMs: 812.4,
  cost: 0.0021,
  model: 'gpt-4o-mini',
  inputTokens: 1200,
  outputTokens: 80,
  tenantId: 'acme',
}

/** record() alone: time spent inside record() calls, the buffer draining to memory storage between chunks. */
async function recordRate(): Promise<number> {
  const monitor = createMonitor({ logger: false, flushOnExit: false, batchSize: 5000, maxBufferSize: 1_000_000, storage: memoryStorage({ maxCalls: 50_000 }) })
  let ms = 0
  for (let done = 0; done < CALLS; done += CHUNK) {
    const t = performance.now()
    for (let i = 0; i < CHUNK; i++) monitor.record(call)
    ms += performance.now() - t
    await monitor.flush()
  }
  await monitor.close()
  return (CALLS / ms) * 1000
}

/**
 * The reference: what a naive buffer does at least — copy the call's fields and a timestamp into a new object and
 * push it onto an array (no validation at all).
 */
async function copyRate(): Promise<number> {
  let buffer: object[] = []
  let ms = 0
  const c = call as Required<Pick<CallInput, 'direction' | 'api' | 'method' | 'route' | 'statusCode' | 'durationMs' | 'cost' | 'model' | 'inputTokens' | 'outputTokens' | 'tenantId'>>
  for (let done = 0; done < CALLS; done += CHUNK) {
    const t = performance.now()
    for (let i = 0; i < CHUNK; i++) {
      buffer.push({
        direction: c.direction, api: c.api, method: c.method, route: c.route, statusCode: c.statusCode, durationMs: c.durationMs,
        cost: c.cost, model: c.model, inputTokens: c.inputTokens, outputTokens: c.outputTokens, tenantId: c.tenantId, timestamp: Date.now(),
      })
    }
    ms += performance.now() - t
    if (buffer.length >= 50_000) buffer = []
    await yieldToLoop()
  }
  return (CALLS / ms) * 1000
}

/** End to end: record() plus batching, validation and writing into memory storage, until flush() resolves. */
async function ingestRate(): Promise<number> {
  const storage = memoryStorage({ maxCalls: 100_000 })
  const monitor = createMonitor({ logger: false, flushOnExit: false, batchSize: 5000, maxBufferSize: 1_000_000, storage })
  const t = performance.now()
  for (let done = 0; done < CALLS; done += CHUNK) {
    for (let i = 0; i < CHUNK; i++) monitor.record(call)
    await yieldToLoop()
  }
  await monitor.flush()
  const ms = performance.now() - t
  if (monitor.health().written !== CALLS) throw new Error(`ingest lost calls: ${JSON.stringify(monitor.health())}`)
  await monitor.close()
  return (CALLS / ms) * 1000
}

export async function runRecordSuite(): Promise<SuiteResult> {
  const record: number[] = []
  const copy: number[] = []
  const ingest: number[] = []
  // warm-up
  await recordRate()
  await copyRate()
  for (let round = 0; round < ROUNDS; round++) {
    record.push(await recordRate())
    copy.push(await copyRate())
    ingest.push(await ingestRate())
  }
  const recordMedian = median(record)
  const ratios = record.map((r, i) => r / copy[i]!)
  const figures: Figure[] = [
    { name: '`record()` into the buffer', value: recordMedian, unit: 'calls/s', target: '≥ 1,000,000 calls/s', met: recordMedian >= 1_000_000 },
    { name: 'reference: unvalidated object copy pushed to an array', value: median(copy), unit: 'calls/s' },
    { name: '`record()` / reference', value: median(ratios), unit: 'ratio', note: 'what validation, normalisation and the route guard cost next to a bare copy' },
    { name: 'end-to-end ingest into memory storage', value: median(ingest), unit: 'events/s', note: 'record → batch → validate → store, until flush() resolves' },
  ]
  return {
    id: 'record',
    title: 'Write path: record() and in-memory ingest',
    method: `${CALLS.toLocaleString('en-US')} calls of an outbound LLM call shape per round, ${ROUNDS} rounds after a warm-up, median reported; record() and the reference run alternately in the same process. record() time counts only the synchronous calls (the buffer drains to memory storage between chunks of ${CHUNK.toLocaleString('en-US')}).`,
    figures,
  }
}
