import { describe, expect, it } from 'vitest'
import type { CallRecord } from '@apimeter/core'
import { recordFactory } from '@apimeter/core/testing'
import { TxTail } from '../src/sql/rollups/tx-tail.js'

// The generations of PostgreSQL's tail in memory, alone (the storage tests run it against a real server).

const HOUR = 3_600_000
const make = recordFactory({ service: 't' })
const calls = (n: number, routes = 3): CallRecord[] =>
  Array.from({ length: n }, (_, i) => make({ direction: 'outbound', api: 'a', method: 'GET', route: `/r${i % routes}`, statusCode: 200, durationMs: 1 + i, timestamp: 10 * HOUR + i }))
const requests = (rows: { hourly: readonly { state: { requests: number } }[] }[]): number =>
  rows.reduce((n, r) => n + r.hourly.reduce((m, row) => m + row.state.requests, 0), 0)

describe('TxTail', () => {
  it('a query takes the generations wholly above the cursor; a rollup run takes a generation all or none', () => {
    const tail = new TxTail()
    tail.start(0)
    const write = (tx: number, n: number) => tail.add(tail.writing(), calls(n), tx)
    write(10, 3)
    write(11, 4)
    let sealed = tail.seal()
    expect(tail.take(sealed, { upto: 10, pending: [] }, 0, -Infinity)).toMatchObject({ txids: [10, 11] })
    expect(requests(tail.take(sealed, { upto: 10, pending: [] }, 0, -Infinity).rows)).toBe(7)
    // a batch acknowledged after the query sealed its list is not in it
    write(12, 5)
    expect(tail.take(sealed, { upto: 10, pending: [] }, 0, -Infinity).txids).toEqual([10, 11])

    // a run of this process starts while batch 14 is being written: 14 is a generation of its own, whichever way the
    // run's snapshot falls; 15 begins after the snapshot and joins the next generation with 16
    const inFlight = tail.writing()
    const snapshotTaken = tail.runStarting()
    write(13, 1) // began and ended while the run took its snapshot: uncertain too
    snapshotTaken()
    tail.add(inFlight, calls(2), 14)
    write(15, 1)
    write(16, 1)
    sealed = tail.seal()
    // the run took 10–14 (14 as well): every generation it took whole is dropped, the one of 15–16 is taken
    const after = tail.take(sealed, { upto: 15, pending: [] }, 0, -Infinity)
    expect(after.txids).toEqual([15, 16])
    expect(requests(after.rows)).toBe(2)
    expect(tail.seal()).toHaveLength(1)
    // had it not reached 14: 14 alone stays in the tail, with its calls
    const tail2 = new TxTail()
    tail2.start(0)
    tail2.add(tail2.writing(), calls(3), 20)
    const busy = tail2.writing()
    tail2.runStarting()()
    tail2.add(busy, calls(2), 21)
    tail2.add(tail2.writing(), calls(1), 22)
    expect(tail2.take(tail2.seal(), { upto: 21, pending: [] }, 0, -Infinity)).toMatchObject({ txids: [21, 22] })
  })

  it('a query that sealed its list before a run of this process committed still takes what the run passed; after a deletion it takes nothing', () => {
    const tail = new TxTail()
    tail.start(0)
    tail.add(tail.writing(), calls(3), 20)
    tail.add(tail.writing(), calls(4), 21)
    const sealed = tail.seal()
    // a run of this process rolls up 20 and 21 and commits while the query is between its seal and its take: the
    // query's snapshot, taken before that commit, still has them in the tail
    const done = tail.runStarting()
    expect(tail.forRun({ upto: 20, pending: [] }, { upto: 22, pending: [] }, 0, -Infinity).txids).toEqual([20, 21])
    done()
    tail.rolledUp({ upto: 22, pending: [] })
    const taken = tail.take(sealed, { upto: 20, pending: [] }, 0, -Infinity)
    expect(taken.txids).toEqual([20, 21])
    expect(requests(taken.rows)).toBe(7)
    // a query sealing now does not hold them
    expect(tail.take(tail.seal(), { upto: 22, pending: [] }, 0, -Infinity).txids).toEqual([])
    // forgotten for a deletion instead: a list sealed before holds nothing usable
    tail.add(tail.writing(), calls(2), 23)
    const before = tail.seal()
    expect(tail.take(tail.seal(), { upto: 23, pending: [] }, 1, -Infinity).txids).toEqual([])
    expect(tail.take(before, { upto: 23, pending: [] }, 1, -Infinity).txids).toEqual([])
  })

  it('takes at most 256 transactions: whole generations up to the bound, the rest left to the raw read', () => {
    const tail = new TxTail()
    tail.start(0)
    // three generations of 128 batches (a generation closes when it holds 128)
    for (let tx = 100; tx < 100 + 3 * 128; tx++) tail.add(tail.writing(), calls(1), tx)
    const taken = tail.take(tail.seal(), { upto: 100, pending: [] }, 0, -Infinity)
    expect(taken.txids).toEqual(Array.from({ length: 256 }, (_, i) => 100 + i))
    expect(requests(taken.rows)).toBe(256)
    const done = tail.runStarting()
    expect(tail.forRun({ upto: 100, pending: [] }, { upto: 1000, pending: [] }, 0, -Infinity).txids).toHaveLength(256)
    done()
  })

  it('leaves a generation that a run of another process split to the database, and forgets all after a deletion', () => {
    const tail = new TxTail()
    tail.start(2)
    tail.add(tail.writing(), calls(3), 30)
    tail.add(tail.writing(), calls(3), 31)
    tail.add(tail.writing(), calls(3), 32)
    const sealed = tail.seal()
    // another process's run reached 31 but not 32 (or 31 was running then: pending)
    expect(tail.take(sealed, { upto: 32, pending: [] }, 2, -Infinity).txids).toEqual([])
    expect(tail.take(sealed, { upto: 30, pending: [] }, 2, -Infinity).txids).toEqual([30, 31, 32])
    expect(tail.take(sealed, { upto: 33, pending: [31] }, 2, -Infinity).txids).toEqual([])
    // a snapshot counting a deletion: nothing is taken, now or later, from what was held then
    expect(tail.take(sealed, { upto: 30, pending: [] }, 3, -Infinity).txids).toEqual([])
    expect(tail.take(sealed, { upto: 30, pending: [] }, 3, -Infinity).txids).toEqual([])
    // an older snapshot (a query begun before) takes nothing either, and changes nothing
    expect(tail.take(sealed, { upto: 30, pending: [] }, 2, -Infinity).txids).toEqual([])
    tail.add(tail.writing(), calls(1), 40)
    expect(tail.take(tail.seal(), { upto: 30, pending: [] }, 3, -Infinity).txids).toEqual([40])
  })

  it('a rollup run of this process takes the generations it rolls up whole, and closes the one being written', () => {
    const tail = new TxTail()
    tail.start(0)
    tail.add(tail.writing(), calls(2), 60)
    tail.seal()
    tail.add(tail.writing(), calls(3), 61)
    tail.add(tail.writing(), calls(4), 63)
    // the run moves the cursor from 60 to 63 (63 is not reached): 60 is taken, 61 and 63 share a generation: left
    expect(tail.forRun({ upto: 60, pending: [] }, { upto: 63, pending: [] }, 0, -Infinity).txids).toEqual([60])
    // the generation was closed: a batch written now is not added into rows a run is folding
    tail.add(tail.writing(), calls(1), 64)
    const all = tail.forRun({ upto: 60, pending: [] }, { upto: 65, pending: [] }, 0, -Infinity)
    expect(all.txids).toEqual([60, 61, 63, 64])
    expect(requests(all.rows)).toBe(10)
    // one still running at the run's snapshot (pending after it) keeps its generation out; a deletion takes none
    expect(tail.forRun({ upto: 60, pending: [] }, { upto: 65, pending: [61] }, 0, -Infinity).txids).toEqual([60, 64])
    expect(tail.forRun({ upto: 60, pending: [] }, { upto: 65, pending: [] }, 1, -Infinity).txids).toEqual([])
  })

  it('drops a batch in flight across a forget, closes a full generation, and keeps no call before the raw horizon', () => {
    const tail = new TxTail()
    tail.start(0)
    tail.add(tail.writing(), calls(2), 70)
    const inFlight = tail.writing()
    // a query sees a deletion while the batch commits: everything held is forgotten, and so is the batch
    expect(tail.take(tail.seal(), { upto: 70, pending: [] }, 1, -Infinity).txids).toEqual([])
    tail.add(inFlight, calls(3), 71)
    tail.add(tail.writing(), calls(4), 72)
    expect(tail.take(tail.seal(), { upto: 70, pending: [] }, 1, -Infinity).txids).toEqual([72])

    // a process that only writes: its generation closes after 128 batches instead of growing without end
    const writer = new TxTail()
    writer.start(0)
    for (let i = 0; i < 300; i++) writer.add(writer.writing(), calls(1), 1000 + i)
    expect(writer.seal().map((g) => g.txids.length)).toEqual([128, 128, 44])

    // retention dropped the partition of old calls: a generation holding any before the horizon is not read
    const old = new TxTail()
    old.start(0)
    old.add(old.writing(), calls(2), 80) // 10:00
    expect(old.take(old.seal(), { upto: 80, pending: [] }, 0, 11 * HOUR).txids).toEqual([])
    expect(old.take(old.seal(), { upto: 80, pending: [] }, 0, 10 * HOUR).txids).toEqual([80])
    expect(old.forRun({ upto: 80, pending: [] }, { upto: 81, pending: [] }, 0, 11 * HOUR).txids).toEqual([])
  })

  it('drops what its own run committed, bounds its groups and its generations, and skips failed batches', () => {
    const tail = new TxTail(10)
    tail.start(0)
    tail.add(tail.writing(), calls(3), 50) // 3 routes: 3 hourly groups + 1 five-minute group
    tail.seal()
    tail.add(tail.writing(), calls(9, 9), 51) // 9 + 1 more groups: past the bound of 10
    const failed = tail.writing()
    tail.failed(failed)
    const sealed = tail.seal()
    expect(tail.take(sealed, { upto: 50, pending: [] }, 0, -Infinity).txids).toEqual([50])
    tail.rolledUp({ upto: 51, pending: [] })
    expect(tail.seal()).toHaveLength(1) // 51's generation (overflowed, never taken) until a run passes it
    tail.rolledUp({ upto: 52, pending: [] })
    expect(tail.seal()).toHaveLength(0)
    // a process that writes and never queries nor rolls up keeps the newest 64 generations
    const writer = new TxTail()
    writer.start(0)
    for (let i = 0; i < 100; i++) {
      writer.add(writer.writing(), calls(1), 100 + i)
      writer.seal()
    }
    expect(writer.seal()).toHaveLength(64)
    expect(writer.take(writer.seal(), { upto: 0, pending: [] }, 0, -Infinity).txids).toEqual(Array.from({ length: 64 }, (_, i) => 136 + i))
  })
})
