import { memoryStorage } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { tempDir } from '../../../storage-sqlite/test/helpers.js'
import { probeBehaviour, probeFleet } from './behaviour.js'

probeBehaviour('memory', async () => ({ storage: memoryStorage() }))

probeBehaviour('SQLite', async () => {
  const tmp = tempDir('apimeter-probes-')
  return { storage: sqliteStorage({ filename: tmp.file() }), cleanup: async () => tmp.remove() }
})

// three storages on one file: each runs its own worker thread and connection, as separate processes would
probeFleet('one SQLite file', async (n) => {
  const tmp = tempDir('apimeter-probes-fleet-')
  const file = tmp.file()
  return { storages: Array.from({ length: n }, () => sqliteStorage({ filename: file })), cleanup: async () => tmp.remove() }
})
