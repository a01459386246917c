import { type Kysely, type RawBuilder, sql } from 'kysely'
import { aggregateCalls } from '../raw-aggregate.js'
import { FINE_MS } from './plan.js'
import type { RollupContext } from './context.js'
import { FINE_GRAIN, type FoldedRows, foldToLevels, ROLLUP_GRAIN, ROLLUP_SHAPES, type RollupResolution } from './levels.js'
import { mergeFolded } from './merge.js'
import type { CursorPosition } from '../dialect.js'
import { readCursor, readPlanState, writeCursor } from './state.js'
import { TABLES } from '../schema.js'
import type { TakenTail, TxTail } from './tx-tail.js'

/**
 * Rollups: 5-minute, hour, day and month aggregates of the raw calls, kept at three levels of detail so every common
 * question reads a few hundred rows instead of millions.
 *
 * They are maintained incrementally from the raw table, not on the insert path: a rollup run aggregates the raw
 * calls written since the last run (in SQL, grouped by the level's dimensions, the hour and the latency sketch
 * bucket), merges them into the rollup rows and advances a cursor, all in one transaction. A row is therefore in
 * the rollups exactly once, and queries add the few calls above the cursor from the raw table ("the tail"), so a
 * rollup-backed answer always equals a raw scan, even between runs. Late calls (timestamps in buckets already rolled
 * up) simply land in their old buckets on the next run.
 */

/**
 * Aggregates the raw calls matching `where` into rollup rows of every level and resolution. `bounded`: `where` holds
 * at most a run's worth of calls (see `aggregateCalls`' `listBuckets`).
 */
export async function aggregateForRollup(ctx: RollupContext, where: RawBuilder<boolean>, bounded = false): Promise<FoldedRows> {
  const hourly = await aggregateCalls(ctx.db, ctx.dialect, { filter: {}, groupBy: ROLLUP_GRAIN, interval: 'hour' }, { where, listBuckets: bounded })
  const fine = await aggregateCalls(ctx.db, ctx.dialect, { filter: {}, groupBy: FINE_GRAIN }, { where, bucketMs: FINE_MS, listBuckets: bounded })
  return foldToLevels({ hourly, fine })
}

/**
 * Rolls up the next raw calls not yet in the rollups (at most `maxRows` on SQLite), in one transaction. Returns how
 * many calls it rolled up; `ran`, when given, is told how many distinct hours those calls fell in (once the run has
 * committed).
 */
export async function rollUpPending(ctx: RollupContext, maxRows = 50_000, skipIfBusy = false, ran?: (hours: number) => void): Promise<number> {
  // PostgreSQL's tail in memory: which batches this run may take is settled once its snapshot is read (see `TxTail`)
  const snapshotTaken = ctx.txTail?.runStarting() ?? (() => undefined)
  try {
    return await rollUp(ctx, maxRows, skipIfBusy, snapshotTaken, ran)
  } finally {
    snapshotTaken()
  }
}

async function rollUp(ctx: RollupContext, maxRows: number, skipIfBusy: boolean, snapshotTaken: () => void, ran?: (hours: number) => void): Promise<number> {
  let hours = 0
  const cursor = ctx.dialect.cursor
  let position: CursorPosition | undefined
  const rolled = await ctx.dialect.writeTransaction(ctx.db, async (trx) => {
    const inTrx: RollupContext = { ...ctx, db: trx }
    const from = await readCursor(trx)
    let to: CursorPosition
    const rows: FoldedRows[] = []
    // the accumulator exists only where ids grow in commit order, so "everything above the cursor" is one id range
    const all = ctx.accumulator ? await cursor.next(trx, from, Infinity) : null
    const fast = all ? ctx.accumulator!.rowsFor(from.upto, all.to.upto) : null
    if (all && fast) {
      to = all.to
      rows.push(foldToLevels(fast))
    } else {
      const next = await cursor.next(trx, from, maxRows)
      snapshotTaken()
      if (next === null) {
        ctx.accumulator?.reset()
        return 0
      }
      to = next.to
      // PostgreSQL: the batches of this process the run takes whole come from memory, the rest of its stretch raw
      // with memory in use, even an empty take probes first: the stretch is then often empty (its own transaction's
      // id, left behind by the run before), and a probe is one statement where the groupings are two
      const taken = ctx.txTail && cursor.tailExcept ? await takeForRun(ctx.txTail, trx, from, next.to) : null
      if (taken) {
        // folding is the run's longest stretch of JavaScript (10-30 ms after a burst), on the thread a query of this
        // process needs to read its answers: after any query in flight
        await ctx.pause?.()
        rows.push(foldToLevels({ hourly: taken.rows.flatMap((r) => r.hourly), fine: taken.rows.flatMap((r) => r.fine) }))
      }
      const stretch = taken ? sql<boolean>`(${next.batch}) AND ${cursor.tailExcept!(from, taken.txids)}` : next.batch
      // when memory took it all, one probe finds that nothing else is there instead of two groupings of nothing
      const rest = taken ? await sql`SELECT 1 AS one FROM ${sql.table(TABLES.calls)} WHERE ${stretch} LIMIT 1`.execute(trx) : null
      if (!rest || rest.rows.length > 0) {
        await ctx.pause?.()
        rows.push(await aggregateForRollup(inTrx, stretch, Number.isFinite(maxRows)))
      }
    }
    ctx.accumulator?.reset()
    let count = 0
    const starts = new Set<number>()
    for (const folded of rows) {
      await mergeFolded(inTrx, folded, Object.keys(ROLLUP_SHAPES) as RollupResolution[])
      for (const row of folded.hour) {
        if (row.level !== 0) continue
        count += row.state.requests
        starts.add(row.bucketStart)
      }
    }
    hours = starts.size
    await writeCursor(trx, to, from)
    position = to
    return count
  }, { skipIfBusy })
  // committed: the batches in memory it took are no longer in the tail
  if (position) {
    ctx.txTail?.rolledUp(position)
    ran?.(hours)
  }
  return rolled ?? 0
}

/** What a run may take from memory, with the raw-deletion count and the raw horizon read in its transaction. */
async function takeForRun(tail: TxTail, trx: Kysely<unknown>, from: CursorPosition, to: CursorPosition): Promise<TakenTail> {
  const { deletions, horizons } = await readPlanState(trx)
  return tail.forRun(from, to, deletions, horizons.raw)
}

/** Rolls up until nothing is pending. */
export async function rollUpAll(ctx: RollupContext): Promise<number> {
  let total = 0
  for (;;) {
    const n = await rollUpPending(ctx)
    total += n
    if (n === 0) return total
  }
}
