import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { CallRecord } from '@apimeter/core'
import { CALL_COLUMNS, callToRow, TABLES } from '@apimeter/core/sql'
import { recordFactory } from '@apimeter/core/testing'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { tempDir } from './helpers.js'

const make = recordFactory({ service: 'rows-test' })

/**
 * Chunks of 100 calls (the multi-row statement's size) with different sets of NULL columns: the first chunk fills
 * every optional field of some call, the others leave out more and more, and a tail of 37 calls goes row by row.
 */
function chunkedCalls(): CallRecord[] {
  const out: CallRecord[] = []
  for (let i = 0; i < 537; i++) {
    const chunk = Math.floor(i / 100)
    const full = chunk === 0 || i >= 500
    out.push(
      make({
        direction: chunk % 2 ? 'inbound' : 'outbound',
        method: 'POST',
        url: `https://api.example.com/v1/x/${i}`,
        statusCode: chunk === 3 && i % 2 ? null : 200,
        outcome: chunk === 3 && i % 2 ? 'network_error' : undefined,
        durationMs: i / 3,
        ttfbMs: full || chunk === 1 ? i / 7 : undefined,
        cached: i % 9 === 0,
        cost: chunk !== 2 ? (i % 5) / 1e4 : undefined,
        model: full ? 'gpt-4o' : undefined,
        inputTokens: full ? i : undefined,
        outputTokens: full ? 2 * i : undefined,
        tenantId: chunk === 4 ? undefined : `t-${i % 3}`,
        userId: full ? `u-${i}` : undefined,
        clientIp: full ? '10.0.0.1' : undefined,
        userAgent: full ? 'ua' : undefined,
        error: full && i % 10 === 0 ? 'boom' : undefined,
        attempt: chunk === 1 ? 2 : undefined,
        metadata: full ? { i } : undefined,
        timestamp: Date.UTC(2026, 0, 1) + i,
      }),
    )
  }
  return out
}

describe('sqliteStorage() rows', () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir()
  })
  afterEach(() => tmp.remove())

  for (const thread of ['main', 'worker'] as const) {
    it(`stores every column of every call exactly, whichever columns a chunk leaves NULL (thread: '${thread}')`, async () => {
      const file = tmp.file()
      const storage = sqliteStorage({ filename: file, thread })
      const calls = chunkedCalls()
      await storage.writeCalls(calls.slice(0, 300))
      await storage.writeCalls(calls.slice(300))
      await storage.close()
      const db = new Database(file, { readonly: true })
      const rows = db.prepare(`SELECT ${CALL_COLUMNS.join(', ')} FROM ${TABLES.calls} ORDER BY id`).raw().all() as unknown[][]
      db.close()
      expect(rows).toEqual(calls.map(callToRow))
      // the defaults are not taken for a column given: cached 0/1 and attempt as written
      expect(rows.filter((r) => r[CALL_COLUMNS.indexOf('attempt')] === 2)).toHaveLength(100)
    })
  }

  it('writes batches of more distinct NULL-column sets than it keeps statements for', async () => {
    const file = tmp.file()
    const storage = sqliteStorage({ filename: file, thread: 'main' })
    // 40 chunks, each with its own set of filled optional fields (a bit pattern over six of them)
    const optional = ['ttfbMs', 'model', 'inputTokens', 'userId', 'clientIp', 'userAgent'] as const
    const calls: CallRecord[] = []
    for (let chunk = 0; chunk < 40; chunk++) {
      for (let j = 0; j < 100; j++) {
        const extra: Record<string, unknown> = {}
        optional.forEach((field, bit) => {
          if ((chunk + 1) & (1 << bit)) extra[field] = field === 'ttfbMs' || field === 'inputTokens' ? j + 1 : `${field}-${j}`
        })
        calls.push(make({ direction: 'inbound', method: 'GET', route: '/r', statusCode: 200, durationMs: j, timestamp: Date.UTC(2026, 0, 1) + chunk * 100 + j, ...extra }))
      }
    }
    await storage.writeCalls(calls)
    await storage.close()
    const db = new Database(file, { readonly: true })
    const rows = db.prepare(`SELECT ${CALL_COLUMNS.join(', ')} FROM ${TABLES.calls} ORDER BY id`).raw().all() as unknown[][]
    db.close()
    expect(rows).toEqual(calls.map(callToRow))
  })
})
