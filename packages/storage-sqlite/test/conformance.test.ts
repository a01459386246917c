import { runStorageConformance } from '@apimeter/core/testing'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { tempDir } from './helpers.js'

runStorageConformance(
  'sqlite (file)',
  () => {
    const tmp = tempDir()
    const filename = tmp.file()
    return { storage: sqliteStorage({ filename }), reopen: () => sqliteStorage({ filename }), cleanup: tmp.remove }
  },
  { durable: true },
)

runStorageConformance('sqlite (:memory:)', () => ({ storage: sqliteStorage({ filename: ':memory:' }) }))
