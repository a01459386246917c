import { postgresStorage } from '@apimeter/storage-postgres'
import { afterEach, beforeEach, describe, it } from 'vitest'
import { auditScenario } from '../../../test/support/audit-scenario.js'
import { systemScenario } from '../../../test/support/system-scenario.js'
import { freshSchema, testUrl } from './helpers.js'

describe('audit log and process metrics (PostgreSQL)', () => {
  let schema: string
  let drop: () => Promise<void>
  beforeEach(async () => {
    ;({ schema, drop } = await freshSchema('audit'))
  })
  afterEach(async () => drop())

  it('records rule changes, migrations, rebuilds, retention runs (partitions dropped) and plugin changes and disables', async () => {
    await auditScenario((now) => postgresStorage({ connectionString: testUrl(), schema, now, retention: { raw: '30d' } }), 'postgres')
  })

  it('stores process samples and answers per UTC bucket', async () => {
    const storage = postgresStorage({ connectionString: testUrl(), schema })
    try {
      await systemScenario(storage)
    } finally {
      await storage.close()
    }
  })
})
