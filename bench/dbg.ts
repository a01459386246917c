import { createStats, memoryStorage } from '@apimeter/core'
import { recordFactory } from '@apimeter/core/testing'
import { sqliteStorage } from '@apimeter/storage-sqlite'
const make = recordFactory()
const s = sqliteStorage({ filename: ':memory:', retention: { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' } })
const m = memoryStorage()
const recs = Array.from({ length: 50 }, (_, i) => make({ direction: 'outbound', api: 'x', method: 'GET', route: '/x', statusCode: 200, durationMs: i + 1, timestamp: Date.UTC(2026, 0, 1) + i * 3600_000 }))
await s.writeCalls(recs); await m.writeCalls(recs)
await s.maintain()
const clock = { now: () => Date.UTC(2026, 3, 1) }
const a = await createStats(s, { clock }).summary({})
const b = await createStats(m, { clock }).summary({})
console.log(a.latency, b.latency)
