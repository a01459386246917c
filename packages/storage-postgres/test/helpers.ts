import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** The URL of the test cluster the global setup started. */
export function testUrl(): string {
  const url = process.env.APIMETER_TEST_PG_URL
  if (!url) throw new Error('APIMETER_TEST_PG_URL is not set: PostgreSQL tests run through `npm test`, whose global setup starts a cluster')
  return url
}

/** A fresh, empty schema in the test cluster, and a function dropping it. */
export async function freshSchema(prefix = 't'): Promise<{ schema: string; drop: () => Promise<void> }> {
  const schema = `${prefix}_${randomBytes(5).toString('hex')}`
  return {
    schema,
    drop: async () => {
      const client = new pg.Client({ connectionString: testUrl() })
      await client.connect()
      try {
        // A test may leave a transaction running that a close() gave up waiting for (it finishes on its own): the
        // drop can then deadlock with it once, and is tried again.
        for (let attempt = 1; ; attempt++) {
          try {
            await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
            break
          } catch (error) {
            if ((error as { code?: string }).code !== '40P01' || attempt === 5) throw error
            await new Promise((resolve) => setTimeout(resolve, 200))
          }
        }
      } finally {
        await client.end()
      }
    },
  }
}

/** Runs one query against the test cluster (in `schema` when given). */
export async function query<T extends Record<string, unknown>>(text: string, schema?: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: testUrl(), ...(schema ? { options: `-c search_path="${schema}"` } : {}) })
  await client.connect()
  try {
    return (await client.query<T>(text)).rows
  } finally {
    await client.end()
  }
}
