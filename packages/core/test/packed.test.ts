import { describe, expect, it } from 'vitest'
import type { CallRecord } from '@apimeter/core'
import { CALL_RECORD_FIELDS, packCalls, unpackCalls } from '@apimeter/core/sql'
import { recordFactory } from '@apimeter/core/testing'

const make = recordFactory({ service: 'packed' })

/** Calls varied on purpose: every field takes constant, few-valued, mostly distinct and null values across a batch. */
function variedCalls(n: number): CallRecord[] {
  return Array.from({ length: n }, (_, i) =>
    make({
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
    }),
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
    expect(column('rateLimitLimit')).toEqual({ same: null })
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
