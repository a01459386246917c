import { describe, expect, it } from 'vitest'
import { QueryGate } from '../src/sql/rollups/query-gate.js'

// The pauses a background rollup run takes for queries of its process, alone (the PostgreSQL storage tests run it
// against a real server).

const later = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
/** A query held in flight until `release` is called. */
function held(gate: QueryGate): { release: () => void; done: Promise<string> } {
  let release!: () => void
  const hold = new Promise<void>((resolve) => (release = resolve))
  return { release, done: gate.around(async () => (await hold, 'answer')) }
}

describe('QueryGate', () => {
  it('a run with no query in flight does not wait, not even a microtask', () => {
    const pause = new QueryGate().forRun()
    expect(pause()).toBeUndefined()
  })

  it('a run waits while a query is in flight and goes on as soon as the last one ends', async () => {
    const gate = new QueryGate(10_000, 10_000)
    const a = held(gate)
    const b = held(gate)
    expect(gate.active).toBe(2)
    let resumed = false
    const paused = gate.forRun()()!
    void paused.then(() => (resumed = true))
    a.release()
    await a.done
    await later(20)
    expect(resumed).toBe(false)
    b.release()
    expect(await b.done).toBe('answer')
    await paused
    expect(resumed).toBe(true)
    expect(gate.active).toBe(0)
  })

  it('a run goes on only after what the caller does with the answer in the same turn', async () => {
    const gate = new QueryGate(10_000, 10_000)
    const order: string[] = []
    const q = held(gate)
    const answered = q.done.then(() => order.push('caller handles the answer'))
    const paused = gate.forRun()()!.then(() => order.push('run goes on'))
    q.release()
    await Promise.all([answered, paused])
    expect(order).toEqual(['caller handles the answer', 'run goes on'])
  })

  it('a run waits on when another query begins before it was woken', async () => {
    const gate = new QueryGate(10_000, 10_000)
    const first = held(gate)
    let resumed = false
    const paused = gate.forRun()()!.then(() => (resumed = true))
    first.release()
    await first.done
    const second = held(gate) // before the turn in which the run would be woken
    await later(20)
    expect(resumed).toBe(false)
    second.release()
    await second.done
    await paused
    expect(resumed).toBe(true)
  })

  it('a query that fails still ends its turn', async () => {
    const gate = new QueryGate(10_000, 10_000)
    const failing = gate.around(async () => {
      await later(5)
      throw new Error('refused')
    })
    const paused = gate.forRun()()!
    await expect(failing).rejects.toThrow('refused')
    await paused
    expect(gate.active).toBe(0)
  })

  it('each pause ends after maxWaitMs, and a run stops pausing once its budget is spent', async () => {
    const gate = new QueryGate(30, 70)
    const q = held(gate)
    const pause = gate.forRun()
    const started = performance.now()
    await pause()
    await pause()
    await pause()
    // 30 + 30 + the 10 left of the budget
    expect(pause()).toBeUndefined()
    expect(performance.now() - started).toBeGreaterThanOrEqual(65)
    // another run has a budget of its own
    const next = gate.forRun()()
    expect(next).toBeInstanceOf(Promise)
    q.release()
    await next
    await q.done
  })
})
