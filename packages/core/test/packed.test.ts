import { describe, expect, it } from 'vitest'
import type { CallInput, CallRecord } from '@apimeter/core'
import { CALL_RECORD_FIELDS, packCalls, unpackCalls } from '@apimeter/core/sql'
import { recordFactory } from '@apimeter/core/testing'
import { CallColumns, normalizeInto } from '../src/call/normalize.js'
import { packStaged } from '../src/call/packed.js'
import { RouteGuard } from '../src/call/route.js'

const make = recordFactory({ service: 'packed' })

/** Calls varied on purpose: every field takes constant, few-valued, mostly distinct and null values across a batch. */
function variedCalls(n: number): CallRecord[] {
  return variedInputs(n).map((input) => make(input))
}

function variedInputs(n: number): CallInput[] {
  return Array.from({ length: n }, (_, i) =>
    ({
      direction: i % 2 ? 'outbound' : 'inbound',
      method: i % 3 ? 'GET' : 'POST',
      url: `https://api.example.com/v1/items/${i}?q=${i % 7}`,
      statusCode: i % 11 === 0 ? null : 200 + (i % 4),
      outcome: i % 11 === 0 ? 'timeout' : undefined,
      durationMs: i / 7,
      ttfbMs: i % 5 === 0 ? null : i / 9,
      cached: i % 4 === 0,
      cost: i % 6 === 0 ? undefined : (i % 13) / 1e4,
      model: i % 2 ? 'gpt-4o' : undefined,
      inputTokens: i % 2 ? i : undefined,
      tenantId: i % 3 === 0 ? null : `tenant-${i % 40}`,
      userId: i % 5 === 0 ? `user-${i}` : undefined,
      attempt: 1 + (i % 3),
      metadata: i % 8 === 0 ? { i, nested: { ok: true } } : undefined,
      timestamp: Date.UTC(2026, 0, 1) + i * 1000,
      rateLimit: i % 9 === 0 ? { limit: 1000, remaining: i, scope: i % 2 ? 'tokens' : null } : undefined,
    }) satisfies CallInput,
  )
}

describe('packCalls / unpackCalls', () => {
  it('give back every field of every call, values and types alike', () => {
    for (const n of [1, 2, 3, 100, 500]) {
      const calls = variedCalls(n)
      const packed = structuredClone(packCalls(calls)) // as it crosses to a worker
      const back = unpackCalls(packed)
      expect(back).toEqual(calls)
      // toEqual ignores the difference between a missing property and undefined: the shape must be the full record
      for (const call of back) expect(Object.keys(call)).toEqual([...CALL_RECORD_FIELDS])
    }
  })

  it('packs constant, numeric, few-valued and distinct columns each the compact way', () => {
    const calls = variedCalls(500)
    const { columns, count } = packCalls(calls)
    expect(count).toBe(500)
    const column = (field: string) => columns[CALL_RECORD_FIELDS.indexOf(field as never)]!
    expect(column('service')).toEqual({ same: 'packed' })
    expect(column('apiKeyId')).toEqual({ same: null })
    expect(column('durationMs')).toHaveProperty('numbers')
    expect(column('statusCode')).toHaveProperty('numbers') // numbers and nulls: NaN stands for null
    expect(column('tenantId')).toMatchObject({ dict: expect.arrayContaining([null, 'tenant-1']) })
    expect(column('cached')).toMatchObject({ dict: [true, false] })
    expect(column('id')).toHaveProperty('values') // distinct: a dictionary would only add
    // a third of the wire size of the records themselves at least
    const size = (value: unknown) => JSON.stringify(value, (_, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Uint8Array) : v)).length
    expect(size(packCalls(calls))).toBeLessThan(size(calls) / 2)
  })

  it('indexes a dictionary beyond 65,535 calls with 32 bits', () => {
    const calls = Array.from({ length: 70_000 }, (_, i) => make({ direction: 'inbound', method: 'GET', route: `/r${i % 3}`, statusCode: 200, durationMs: 1, timestamp: Date.UTC(2026, 0, 1) + (i % 5) }))
    const packed = packCalls(calls)
    const route = packed.columns[CALL_RECORD_FIELDS.indexOf('route')] as { index: Uint32Array }
    expect(route.index).toBeInstanceOf(Uint32Array)
    expect(unpackCalls(packed)).toEqual(calls)
  })

  it('packs an empty batch', () => {
    expect(unpackCalls(packCalls([]))).toEqual([])
  })
})

describe('packStaged', () => {
  const ctx = { service: 'packed', now: () => Date.UTC(2026, 0, 1), routeGuard: new RouteGuard(10_000, 10_000) }
  /** A staging buffer holding `inputs`, as a monitor's pipeline holds recorded calls. */
  function staged(inputs: CallInput[]): CallColumns {
    const columns = new CallColumns(inputs.length)
    inputs.forEach((input, i) => normalizeInto(input, ctx, columns, i))
    return columns
  }

  it('packs staging rows to exactly the records they read as, with sequential ids, whatever the slice', () => {
    const inputs = variedInputs(600)
    const columns = staged(inputs)
    for (const [start, n] of [[0, 1], [0, 600], [17, 250], [599, 1], [3, 2]] as const) {
      const packed = structuredClone(packStaged(columns, start, n, 'pfx', 35)) // as it crosses to a worker
      const expected = Array.from({ length: n }, (_, j) => columns.read(start + j, 'pfx' + (35 + j).toString(36)))
      const back = unpackCalls(packed)
      expect(back).toEqual(expected)
      for (const call of back) expect(Object.keys(call)).toEqual([...CALL_RECORD_FIELDS])
      expect(back[n - 1]!.id).toBe('pfx' + (35 + n - 1).toString(36))
    }
  })

  it('sends constant columns once, codes and numbers as typed arrays, ids as a sequence', () => {
    const columns = staged(variedInputs(500))
    const packed = packStaged(columns, 0, 500, 'p', 0)
    const column = (field: string) => packed.columns[CALL_RECORD_FIELDS.indexOf(field as never)]!
    expect(column('id')).toEqual({ sequence: { prefix: 'p', first: 0 } })
    expect(column('service')).toEqual({ same: 'packed' })
    expect(column('apiKeyId')).toEqual({ same: null })
    expect(column('durationMs')).toHaveProperty('numbers')
    expect(column('direction')).toMatchObject({ index: expect.any(Uint8Array) })
    expect(column('cached')).toMatchObject({ dict: [false, true], index: expect.any(Uint8Array) })
    // a column of one enum value and of one boolean value
    const same = packStaged(staged(variedInputs(500).map((c) => ({ ...c, direction: 'inbound', cached: true }))), 0, 500, 'p', 0)
    expect(same.columns[CALL_RECORD_FIELDS.indexOf('direction')]).toEqual({ same: 'inbound' })
    expect(same.columns[CALL_RECORD_FIELDS.indexOf('cached')]).toEqual({ same: true })
  })
})
