import { runStorageConformance } from '@apimeter/core/testing'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { tempDir } from './helpers.js'

// The conformance dataset lives in early 2026; keep everything so retention does not take part here (it has its
// own tests).
const retention = { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' }

runStorageConformance(
  'sqlite (file)',
  () => {
    const tmp = tempDir()
    const filename = tmp.file()
    const storage = sqliteStorage({ filename, retention })
    return {
      storage,
      reopen: () => sqliteStorage({ filename, retention }),
      maintain: () => storage.maintain(),
      cleanup: tmp.remove,
    }
  },
  { durable: true, propertyRuns: Number(process.env.APIMETER_PROPERTY_RUNS ?? 25) },
)

// The same file storage with everything on the host's thread; the one above runs in its worker thread (the default).
runStorageConformance(
  'sqlite (file, thread: main)',
  () => {
    const tmp = tempDir()
    const filename = tmp.file()
    const storage = sqliteStorage({ filename, retention, thread: 'main' })
    return {
      storage,
      reopen: () => sqliteStorage({ filename, retention, thread: 'main' }),
      maintain: () => storage.maintain(),
      cleanup: tmp.remove,
    }
  },
  { durable: true, propertyRuns: Number(process.env.APIMETER_PROPERTY_RUNS ?? 25) },
)

runStorageConformance('sqlite (:memory:)', () => {
  const storage = sqliteStorage({ filename: ':memory:', retention })
  return { storage, maintain: () => storage.maintain() }
})
