import { ApimeterError, type CallRecord, memoryStorage, type StorageAdapter } from '@apimeter/core'
import { type PackedCalls, unpackCalls } from '@apimeter/core/sql'

/**
 * Wraps a real storage so that its first `failures` writes reject (an outage), counting attempts.
 * Everything else goes to the real storage underneath.
 */
export function failingFirst(inner: StorageAdapter, failures: number): StorageAdapter & { attempts: number; failed: number } {
  let failed = 0
  const wrapper = {
    name: `failing-${inner.name}`,
    capabilities: inner.capabilities,
    attempts: 0,
    get failed() {
      return failed
    },
    init: () => inner.init?.() ?? Promise.resolve(),
    async writeCalls(calls: readonly CallRecord[]) {
      wrapper.attempts++
      if (failed < failures) {
        failed++
        throw new Error(`simulated outage ${failed}/${failures}`)
      }
      await inner.writeCalls(calls)
    },
    aggregate: inner.aggregate.bind(inner),
    close: inner.close.bind(inner),
  }
  return wrapper
}

/** Wraps a real storage so writes wait until `open()` is called (a slow or stuck database). */
export function gated(inner: StorageAdapter): StorageAdapter & { open(): void; active: number; maxActive: number } {
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const wrapper = {
    name: `gated-${inner.name}`,
    capabilities: inner.capabilities,
    active: 0,
    maxActive: 0,
    open() {
      release()
    },
    init: () => inner.init?.() ?? Promise.resolve(),
    async writeCalls(calls: readonly CallRecord[]) {
      wrapper.active++
      wrapper.maxActive = Math.max(wrapper.maxActive, wrapper.active)
      try {
        await gate
        await inner.writeCalls(calls)
      } finally {
        wrapper.active--
      }
    },
    aggregate: inner.aggregate.bind(inner),
    close: inner.close.bind(inner),
  }
  void gate
  return wrapper
}

/** A storage that is always down. */
export function downStorage(): StorageAdapter & { attempts: number; closed: boolean } {
  const storage = {
    name: 'down',
    capabilities: { durable: false },
    attempts: 0,
    closed: false,
    async writeCalls() {
      storage.attempts++
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
    },
    async aggregate() {
      return []
    },
    async close() {
      storage.closed = true
    },
  }
  return storage
}

/** A storage that refuses every batch as invalid (a schema mismatch on the server side). */
export function refusingStorage(): StorageAdapter {
  return {
    name: 'refusing',
    capabilities: { durable: false },
    async writeCalls() {
      throw new ApimeterError('INVALID_RECORD', 'column "route" is too long for the server')
    },
    async aggregate() {
      return []
    },
    async close() {},
  }
}

/**
 * A real memory storage that also takes packed batches (as the SQLite worker storage does), counting what came
 * which way. `refuse(call)` makes a write refuse its whole batch for good when it holds such a call (a value the
 * database cannot hold), the way a database refuses a statement.
 */
export function packedStorage(refuse: (call: CallRecord) => boolean = () => false): StorageAdapter & { packed: number; records: number; inner: ReturnType<typeof memoryStorage> } {
  const inner = memoryStorage({ maxCalls: Infinity })
  const check = (calls: readonly CallRecord[]) => {
    if (calls.some(refuse)) throw Object.assign(new Error('value too long for type character varying(64)'), { code: '22001' })
  }
  const storage = {
    name: 'packed',
    capabilities: { durable: false },
    inner,
    packed: 0,
    records: 0,
    async writePacked(packed: PackedCalls) {
      const calls = unpackCalls(packed)
      check(calls)
      storage.packed += calls.length
      await inner.writeCalls(calls)
    },
    async writeCalls(calls: readonly CallRecord[]) {
      check(calls)
      storage.records += calls.length
      await inner.writeCalls(calls)
    },
    classifyError: (error: unknown) => ((error as { code?: string }).code === '22001' ? { kind: 'rejected' as const, field: 'route' } : { kind: 'transient' as const }),
    aggregate: inner.aggregate.bind(inner),
    close: inner.close.bind(inner),
  }
  return storage
}
