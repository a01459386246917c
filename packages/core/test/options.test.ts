import { describe, expect, it } from 'vitest'
import { createMonitor, isApimeterError } from '@apimeter/core'

function errorOf(fn: () => unknown): Error {
  try {
    fn()
  } catch (error) {
    return error as Error
  }
  throw new Error('expected a throw')
}

describe('createMonitor() options', () => {
  it('accepts no options and works on in-memory storage', async () => {
    const monitor = createMonitor({ logger: false })
    expect(monitor.service).toBe('default')
    expect(monitor.storage.name).toBe('memory')
    await monitor.close()
  })

  it.each([
    [{ flushIntervalMs: -5 }, '@apimeter/core: options.flushIntervalMs must be a whole number of milliseconds from 10 to 3,600,000, got -5'],
    [{ flushIntervalMs: '1000' }, '@apimeter/core: options.flushIntervalMs must be a whole number of milliseconds from 10 to 3,600,000, got "1000"'],
    [{ batchSize: 0 }, '@apimeter/core: options.batchSize must be a whole number from 1 to 50,000, got 0'],
    [{ batchSize: 1.5 }, '@apimeter/core: options.batchSize must be a whole number from 1 to 50,000, got 1.5'],
    [{ service: '' }, '@apimeter/core: options.service must be a non-empty string of at most 200 characters, got ""'],
    [{ storage: {} }, '@apimeter/core: options.storage must be a storage adapter (memoryStorage(), sqliteStorage(), postgresStorage() …), got an empty object'],
    [{ concurrency: 100 }, '@apimeter/core: options.concurrency must be a whole number from 1 to 32, got 100'],
    [{ retry: { jitter: 2 } }, '@apimeter/core: options.retry.jitter must be a number from 0 to 1, got 2'],
    [{ retry: { maxAttempts: 0 } }, '@apimeter/core: options.retry.maxAttempts must be a whole number >= 1 or Infinity, got 0'],
    [{ batchSize: 1000, maxBufferSize: 10 }, '@apimeter/core: options.maxBufferSize must be at least batchSize (1000), got 10'],
    [{ clock: { now: 5 } }, '@apimeter/core: options.clock must be an object with a now() function (and optionally monotonic()), got an object with keys { now }'],
    [{ logger: console.log }, '@apimeter/core: options.logger must be an object with a warn(message) function, or false, got a function'],
    [{ flushIntervalMS: 10 }, '@apimeter/core: options.flushIntervalMS is not a known option (did you mean flushIntervalMs?)'],
    [{ retry: { initialDelay: 10 } }, '@apimeter/core: options.retry.initialDelay is not a known option (did you mean initialDelayMs?)'],
  ])('rejects %o with a message naming the option, the expectation and the value', (options, message) => {
    const error = errorOf(() => createMonitor(options as never))
    expect(isApimeterError(error, 'INVALID_OPTIONS')).toBe(true)
    expect(error.message).toBe(message)
  })

  it('reports several problems at once', () => {
    const error = errorOf(() => createMonitor({ batchSize: 0, concurrency: 0 }))
    expect(error.message).toMatch(/options\.batchSize must be/)
    expect(error.message).toMatch(/options\.concurrency must be/)
  })

  it('rejects a non-object', () => {
    expect(() => createMonitor(42 as never)).toThrow(/@apimeter\/core: options must be an object, got 42/)
  })
})
