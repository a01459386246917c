import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createMonitor, type StorageAdapter } from '@apimeter/core'
import { postgresStorage } from '@apimeter/storage-postgres'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { callInputSchema } from '../../packages/core/src/call/input-schema.js'
import { freshSchema, testUrl } from '../../packages/storage-postgres/test/helpers.js'
import { tempDir } from '../../packages/storage-sqlite/test/helpers.js'

/**
 * Whatever an application passes to record() — garbage, or valid calls full of strings no database stores as they
 * are (NUL bytes, lone surrogates) — record() never throws, and every valid call is stored exactly once, on every
 * storage. "Valid" is what the zod schema of record() accepts.
 */

const nasty = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udfffy', '\ud83d', '😀', '\u0000\ud800', 'ok'),
  fc.tuple(fc.string({ maxLength: 4 }), fc.constantFrom('\u0000', '\ud800', '\udc00'), fc.string({ maxLength: 4 })).map(([a, b, c]) => a + b + c),
)
const validCall = fc.record(
  {
    direction: fc.constantFrom('inbound', 'outbound'),
    method: fc.constantFrom('GET', 'post', 'PATCH'),
    route: nasty.map((s) => `/${s}`),
    statusCode: fc.integer({ min: 100, max: 599 }),
    durationMs: fc.double({ min: 0, max: 10_000, noNaN: true }),
    tenantId: nasty,
    userAgent: nasty,
    errorMessage: nasty,
    model: nasty,
    metadata: fc.dictionary(nasty, nasty, { maxKeys: 3 }),
  },
  { requiredKeys: ['direction', 'method', 'route', 'durationMs', 'statusCode'] },
)
const input = fc.oneof({ weight: 3, arbitrary: validCall }, { weight: 1, arbitrary: fc.anything() })

const storages: [string, () => Promise<{ storage: StorageAdapter; cleanup: () => Promise<void> }>][] = [
  ['memory', async () => ({ storage: (await import('@apimeter/core')).memoryStorage({ maxCalls: Infinity }), cleanup: async () => undefined })],
  [
    'sqlite',
    async () => {
      const tmp = tempDir('apimeter-garbage-')
      return { storage: sqliteStorage({ filename: tmp.file() }), cleanup: async () => tmp.remove() }
    },
  ],
  [
    'postgres',
    async () => {
      const schema = await freshSchema('garbage')
      return { storage: postgresStorage({ connectionString: testUrl(), schema: schema.schema }), cleanup: schema.drop }
    },
  ],
]

describe.each(storages)('record() with garbage on %s', (_name, open) => {
  it('never throws, and stores every valid call exactly once with storable strings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(input, { minLength: 1, maxLength: 60 }), async (inputs) => {
        const { storage, cleanup } = await open()
        const monitor = createMonitor({ storage, logger: false, flushOnExit: false })
        try {
          let expected = 0
          inputs.forEach((raw, i) => {
            // (an operation id per call: stored calls stay distinct rows, so a call written twice would show in the counts)
            const call = typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'durationMs' in raw ? { ...raw, operationId: `op-${i}` } : raw
            if (callInputSchema.safeParse(call).success) expected++
            expect(() => monitor.record(call as never)).not.toThrow()
          })
          await monitor.flush({ timeoutMs: 20_000 })
          const health = monitor.health()
          expect(health).toMatchObject({ written: expected, invalid: inputs.length - expected, rejected: 0, dropped: 0, queued: 0 })
          const summary = await monitor.stats.summary()
          expect(summary.requests).toBe(expected)
          const ids = await monitor.stats.breakdown({ by: 'route' })
          expect(ids.reduce((n, r) => n + r.requests, 0)).toBe(expected)
        } finally {
          await monitor.close()
          await cleanup()
        }
      }),
      { numRuns: 25 },
    )
  })
})
