import { postgresStorage } from '@apimeter/storage-postgres'
import { probeBehaviour, probeFleet } from '../../core/test/probes/behaviour.js'
import { freshSchema, testUrl } from './helpers.js'

probeBehaviour('PostgreSQL', async () => {
  const { schema, drop } = await freshSchema('probes')
  return { storage: postgresStorage({ connectionString: testUrl(), schema }), cleanup: drop }
})

// three monitors, each with its own pool on one schema: the lease row and the compare-and-set are all that keep them
// from running a round (or notifying a transition) twice
probeFleet('one PostgreSQL schema', async (n) => {
  const { schema, drop } = await freshSchema('probesfleet')
  const storages = Array.from({ length: n }, () => postgresStorage({ connectionString: testUrl(), schema }))
  // migrate once before the monitors race for it
  await storages[0]!.init!()
  return { storages, cleanup: drop }
})
