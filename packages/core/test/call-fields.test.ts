import { readFileSync } from 'node:fs'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createMonitor, memoryStorage } from '@apimeter/core'
import {
  addCallColumns,
  CALL_COLUMN_SPECS,
  CALL_COLUMNS,
  CALL_FIELDS,
  CALL_RECORD_FIELDS,
  callColumnDefinitions,
  callToRow,
  dropCallColumns,
  type FieldSpec,
  postgresDialect,
  sqliteDialect,
  TABLES,
} from '@apimeter/core/sql'
import { generatedSource } from '../src/call/compile.js'
import { DIRECT_INPUT_FIELDS } from '../src/call/fields.js'
import { CALL_INPUT_KEYS, callInputSchema } from '../src/call/input-schema.js'
import { CallColumns, normalizeCall } from '../src/call/normalize.js'
import { RouteGuard } from '../src/call/route.js'

/**
 * The field table (`call/fields.ts`) is the one definition of a call: these tests hold every derived piece to it —
 * the staging columns and generated hot paths, the zod schema of record(), the SQL columns and types, and
 * docs/schema.md.
 */

const ctx = { service: 'svc', now: () => 1_700_000_000_000, routeGuard: new RouteGuard(10_000, 10_000), nextId: () => 'id-1' }
const base = { direction: 'outbound', method: 'GET', route: '/x', statusCode: 200, durationMs: 1 } as const

/** A valid value of each direct input, and what the record then holds. */
function sampleOf(spec: FieldSpec): { input: unknown; stored: unknown } {
  switch (spec.kind) {
    case 'text':
      return { input: 'v'.repeat(3), stored: 'vvv' }
    case 'id':
      return { input: 42, stored: '42' }
    case 'count':
      return { input: 7, stored: 7 }
    case 'ms':
      return { input: 1.23456, stored: 1.235 }
    case 'real':
      return { input: 2.5, stored: 2.5 }
    case 'int':
      return { input: spec.min! + 1, stored: spec.min! + 1 }
    case 'bool':
      return { input: true, stored: true }
    case 'enum':
      return { input: spec.values![0], stored: spec.values![0] }
    default:
      throw new Error(`no sample for ${spec.kind}`)
  }
}

describe('the field table', () => {
  it('stages, reads back and stores every direct input under its own name', async () => {
    const input: Record<string, unknown> = { ...base }
    for (const field of DIRECT_INPUT_FIELDS) input[field] = sampleOf(CALL_FIELDS[field]).input
    const record = normalizeCall(input as never, ctx) as unknown as Record<string, unknown>
    for (const field of DIRECT_INPUT_FIELDS) expect(record[field], field).toEqual(sampleOf(CALL_FIELDS[field] as FieldSpec).stored)
    expect(Object.keys(record)).toEqual(CALL_RECORD_FIELDS)

    // and end to end through a monitor into storage
    const storage = memoryStorage()
    const monitor = createMonitor({ storage, logger: false })
    monitor.record(input as never)
    await monitor.flush()
    const [stored] = storage.calls() as unknown as Record<string, unknown>[]
    for (const field of DIRECT_INPUT_FIELDS) expect(stored![field], field).toEqual(sampleOf(CALL_FIELDS[field] as FieldSpec).stored)
    await monitor.close()
  })

  it('rejects a bad value of each direct input, naming the field', () => {
    for (const field of DIRECT_INPUT_FIELDS) {
      expect(() => normalizeCall({ ...base, [field]: { not: 'valid' } }, ctx), field).toThrow(new RegExp(`call\\.${field} must be`))
    }
  })

  it('has one staging column per field and generated code covering every field', () => {
    const columns = new CallColumns(4) as unknown as Record<string, unknown>
    for (const field of CALL_RECORD_FIELDS) expect(columns[field], field).toBeDefined()
    const source = generatedSource()
    for (const field of DIRECT_INPUT_FIELDS) expect(source.stage).toContain(`input.${field}`)
    for (const field of CALL_RECORD_FIELDS) expect(source.read).toContain(`${field}:`)
  })

  it('gives every field one SQL column, in storage order, and writes a value for each', () => {
    const fromFields = CALL_RECORD_FIELDS.map((f) => (CALL_FIELDS[f] as FieldSpec).column)
    expect(CALL_COLUMNS.filter((c) => c !== 'latency_bucket')).toEqual(fromFields)
    const row = callToRow(normalizeCall({ ...base, cached: true, ttfbMs: 0.5 }, ctx))
    expect(row).toHaveLength(CALL_COLUMNS.length)
    expect(row[CALL_COLUMNS.indexOf('duration_us')]).toBe(1000)
    expect(row[CALL_COLUMNS.indexOf('ttfb_us')]).toBe(500)
    expect(row[CALL_COLUMNS.indexOf('cached')]).toBe(1)
    expect(row[CALL_COLUMNS.indexOf('call_id')]).toBe('id-1')
  })

  it('adds columns with addCallColumns exactly as the initial migration creates them, and drops them again (SQLite)', () => {
    const db = new Database(':memory:')
    db.exec(`CREATE TABLE ${TABLES.calls} (id INTEGER PRIMARY KEY AUTOINCREMENT)`)
    for (const statement of addCallColumns(sqliteDialect.types, '0001_initial', { checks: false })) db.exec(statement)
    const created = new Database(':memory:')
    for (const statement of sqliteDialect.ddl.callsTable(callColumnDefinitions(sqliteDialect.types, '0001_initial', { checks: false }))) created.exec(statement)
    const shape = (d: Database.Database) => d.prepare(`PRAGMA table_info(${TABLES.calls})`).all()
    expect(shape(db)).toEqual(shape(created))
    for (const statement of dropCallColumns('0001_initial')) db.exec(statement)
    expect((shape(db) as { name: string }[]).map((c) => c.name)).toEqual(['id'])
  })

  it('is what docs/schema.md documents for apimeter_calls: columns, SQLite and PostgreSQL types, nullability', () => {
    const doc = readFileSync(new URL('../../../docs/schema.md', import.meta.url), 'utf8')
    const section = doc.slice(doc.indexOf('## apimeter_calls'), doc.indexOf('\n## ', doc.indexOf('## apimeter_calls') + 1))
    const table = section.slice(section.indexOf('| column | SQLite | PostgreSQL |'))
    const rows = table
      .slice(0, table.indexOf('\n\n'))
      .split('\n')
      .filter((l) => /^\| `\w+` \|/.test(l))
      .map((l) => l.split('|').map((c) => c.trim().replace(/`/g, '')))
      .filter((cells) => cells[1] !== 'id')
      .map((cells) => ({ name: cells[1], sqlite: cells[2], postgres: cells[3], nullable: cells[4] === 'yes' }))
    expect(rows).toEqual(
      CALL_COLUMN_SPECS.map((c) => ({ name: c.name, sqlite: sqliteDialect.types[c.storage], postgres: postgresDialect.types[c.storage], nullable: c.nullable })),
    )
  })
})

describe('the zod schema of record() and the hot path', () => {
  const anyValue = fc.oneof(
    fc.constant(undefined),
    fc.constant(null),
    fc.constant(''),
    fc.string({ maxLength: 4 }),
    fc.integer({ min: -5, max: 2000 }),
    fc.double({ noDefaultInfinity: false }),
    fc.boolean(),
    fc.constantFrom('inbound', 'outbound', 'GET', 'success', 'timeout', 'server_error', 'computed', 'unknown', '/a/1', 'https://x.test/a'),
    fc.date(),
    fc.constant([1]),
    fc.constant({ limit: 5, remaining: 1 }),
  )
  const valid: Record<string, fc.Arbitrary<unknown>> = {
    direction: fc.constantFrom('inbound', 'outbound'),
    method: fc.constantFrom('GET', 'post'),
    route: fc.constantFrom('/users/:id', '/'),
    url: fc.constantFrom('https://api.test/v1/items/42?key=s3cret', '/a/b'),
    durationMs: fc.double({ min: 0, max: 1e6, noNaN: true }),
    statusCode: fc.integer({ min: 100, max: 599 }),
    outcome: fc.constantFrom('success', 'timeout', 'aborted', 'server_error'),
    error: fc.constant(new Error('boom')),
    timestamp: fc.integer({ min: 0, max: 2e12 }),
    service: fc.constant('svc2'),
    api: fc.constant('openai'),
    host: fc.constant('api.test'),
    cost: fc.double({ min: 0, max: 100, noNaN: true }),
    costSource: fc.constantFrom('provider', 'computed', 'estimated'),
    errorType: fc.constant('E'),
    errorMessage: fc.constant('m'),
    rateLimit: fc.constant({ limit: 60, remaining: 3, resetMs: 1000, scope: 'requests' }),
    metadata: fc.constant({ a: 1 }),
  }
  for (const field of DIRECT_INPUT_FIELDS) valid[field] = fc.constant(sampleOf(CALL_FIELDS[field] as FieldSpec).input)
  // A call built from valid values (optional keys present or not), then zero to two keys set to anything at all: most
  // calls are then one mistake away from valid, where the two validators could disagree.
  const keys = [...CALL_INPUT_KEYS, 'unknownKey']
  const call = fc
    .tuple(
      fc.record(Object.fromEntries(Object.entries(valid)), { requiredKeys: ['direction', 'method', 'durationMs'] }),
      fc.array(fc.tuple(fc.constantFrom(...keys), anyValue), { maxLength: 2 }),
    )
    .map(([validCall, changes]) => {
      const out: Record<string, unknown> = { ...validCall }
      for (const [key, value] of changes) out[key] = value
      return out
    })

  it('covers every input key of CallInput', () => {
    expect([...CALL_INPUT_KEYS].sort()).toEqual([...Object.keys(valid)].sort())
  })

  it('accepts and rejects exactly the calls the hot path accepts and rejects', () => {
    fc.assert(
      fc.property(call, (input) => {
        const clean = input
        let hot = true
        try {
          normalizeCall(clean as never, ctx)
        } catch {
          hot = false
        }
        expect(hot, JSON.stringify(clean)).toBe(callInputSchema.safeParse(clean).success)
      }),
      { numRuns: 10_000 },
    )
  })
})
