import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AlertRule, costs, createMonitor, type StorageAdapter } from '@apimeter/core'
import { postgresStorage } from '@apimeter/storage-postgres'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { type FakeProvider, startFakeProvider } from '../../packages/core/test/outbound/fake-provider.js'
import { freshSchema, testUrl } from '../../packages/storage-postgres/test/helpers.js'

/**
 * Estimated costs are reported apart from exact ones: a streamed completion whose usage never came is priced from
 * the text that did (an estimate); stats show that part as `costEstimated` (inside `cost`), and a budget may leave
 * it out. Real openai client, real fake provider on loopback, every storage.
 */

let provider: FakeProvider
beforeAll(async () => {
  provider = await startFakeProvider()
})
afterAll(() => provider.close())

const messages = [{ role: 'user' as const, content: 'Say hello' }]
// the exact completion: 1,000 full-price input + 200 cached input + 80 output tokens of gpt-4o-mini
const EXACT_NANOS = 1000 * 150 + 200 * 75 + 80 * 600

const storages: [string, () => Promise<{ storage?: StorageAdapter; cleanup: () => Promise<void> }>][] = [
  ['memory', async () => ({ cleanup: async () => undefined })],
  ['sqlite', async () => ({ storage: sqliteStorage({ filename: ':memory:' }), cleanup: async () => undefined })],
  [
    'postgres',
    async () => {
      const schema = await freshSchema('estimated')
      return { storage: postgresStorage({ connectionString: testUrl(), schema: schema.schema }), cleanup: schema.drop }
    },
  ],
]

describe.each(storages)('estimated costs on %s', (_name, open) => {
  it('reports the estimated part of the cost apart, and lets a budget leave it out', async () => {
    const { storage, cleanup } = await open()
    const budget = (name: string, estimates: AlertRule['estimates']): AlertRule => ({ name, kind: 'cost', api: 'openai', window: '1h', threshold: EXACT_NANOS / 1e9 + 1e-9, estimates })
    const monitor = createMonitor({
      logger: false,
      flushOnExit: false,
      ...(storage ? { storage } : {}),
      apis: [{ name: 'openai', match: new URL(provider.url).host, cost: costs.openai() }],
      alerts: [budget('with-estimates', undefined), budget('exact-only', 'exclude')],
      alertIntervalMs: 86_400_000,
    })
    try {
      const client = new OpenAI({ apiKey: 'sk-test-0123456789abcdef', baseURL: `${provider.url}/v1`, fetch: monitor.fetch, maxRetries: 0 })
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages })
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }) // no usage sent
      for await (const _ of stream) void _
      await monitor.flush()
      const s = await monitor.stats.summary({ api: 'openai' })
      expect(s.requests).toBe(2)
      expect(s.costEstimated).toBeGreaterThan(0)
      expect(Math.round(s.cost * 1e9)).toBe(EXACT_NANOS + Math.round(s.costEstimated * 1e9))
      const byModel = await monitor.stats.breakdown({ by: 'model' })
      expect(byModel[0]!.costEstimated).toBe(s.costEstimated)
      const fired = (await monitor.alerts.evaluate()).map((e) => e.rule)
      expect(fired).toEqual(['with-estimates']) // exact cost alone is under the threshold
    } finally {
      await monitor.close()
      await cleanup()
    }
  })
})
