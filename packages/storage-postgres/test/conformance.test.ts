import { runStorageConformance } from '@apimeter/core/testing'
import { postgresStorage } from '@apimeter/storage-postgres'
import { freshSchema, testUrl } from './helpers.js'

// The conformance dataset lives in early 2026: keep everything so retention does not take part here.
const retention = { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' }

runStorageConformance(
  'postgres',
  async () => {
    const { schema, drop } = await freshSchema()
    const storage = postgresStorage({ connectionString: testUrl(), schema, retention })
    return {
      storage,
      reopen: () => postgresStorage({ connectionString: testUrl(), schema, retention }),
      maintain: () => storage.maintain(),
      cleanup: drop,
    }
  },
  { durable: true, timeoutMs: 120_000, exactSumCalls: 50_000, propertyRuns: Number(process.env.APIMETER_PROPERTY_RUNS ?? 15) },
)
