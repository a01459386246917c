import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { apiReport, ENTRY_POINTS, REPORT_PATH } from '../scripts/api-report.js'

describe('API report (docs/api-report.md)', () => {
  it('lists exactly what every public entry point exports (run `npm run api-report` after an intended change)', () => {
    expect(apiReport()).toBe(readFileSync(REPORT_PATH, 'utf8'))
  })

  it('keeps the SQL layer and adapter internals out of the root entry of @apimeter/core', () => {
    const root = apiReport().split('\n## ')[1]!
    for (const internal of ['writeCallRow', 'aggregateCalls', 'planQuery', 'createSqlStorage', 'retentionSchema', 'sqlStorageOptionFields', 'createInboundMeter', 'TABLES', 'CALL_COLUMNS', 'parseOrThrow']) {
      expect(root, internal).not.toMatch(new RegExp(`\`${internal}\``))
    }
    expect(Object.keys(ENTRY_POINTS)).toContain('@apimeter/core/sql')
  })
})
