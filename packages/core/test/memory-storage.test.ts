import { describe, expect, it } from 'vitest'
import { memoryStorage } from '@apimeter/core'
import { recordFactory, runStorageConformance } from '@apimeter/core/testing'

runStorageConformance('memory', () => ({ storage: memoryStorage({ maxCalls: Infinity }) }))

describe('memoryStorage()', () => {
  const make = recordFactory()
  const call = () => make({ direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 1 })

  it('evicts the oldest calls past maxCalls and counts them', async () => {
    const storage = memoryStorage({ maxCalls: 100 })
    const first = call()
    await storage.writeCalls([first, ...Array.from({ length: 99 }, call)])
    expect(storage.size).toBe(100)
    expect(storage.evicted).toBe(0)
    await storage.writeCalls([call()])
    // one over the bound evicts the oldest tenth at once, so eviction is not paid on every write
    expect(storage.size).toBe(91)
    expect(storage.evicted).toBe(10)
    expect(storage.calls().some((c) => c.id === first.id)).toBe(false)
  })

  it('rejects bad options with a prefixed message', () => {
    expect(() => memoryStorage({ maxCalls: 0 })).toThrow(
      '@apimeter/core: memoryStorage.options.maxCalls must be a whole number >= 1 (or Infinity), got 0',
    )
    expect(() => memoryStorage({ maxCals: 5 } as never)).toThrow(/maxCals is not a known option \(did you mean maxCalls\?\)/)
  })

  it('stores copies, so later mutation of a written record changes nothing', async () => {
    const storage = memoryStorage()
    const c = call()
    await storage.writeCalls([c])
    c.route = '/mutated'
    expect(storage.calls()[0]!.route).toBe('/')
  })
})
