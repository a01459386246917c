import { type Kysely, sql } from 'kysely'
import { ApimeterError } from '../../errors.js'
import { emptyAggregate } from '../../storage/aggregate.js'
import { bucketStart, nextBucket } from '../../time.js'
import { num } from '../num.js'
import type { RollupContext } from './context.js'
import { KEY_COLUMNS, type KeyColumn, LEVEL_IDS, ROLLUP_SHAPES, ROLLUP_TABLES, type RollupResolution, type RollupRow, routeTableOf, rowId } from './levels.js'
import { mergeFolded, mergeIntoTable, storedState } from './merge.js'
import { aggregateForRollup } from './run.js'
import { readCursor, readHorizons } from './state.js'

/** Reads stored rollup rows of [start, end) and re-buckets them at a coarser resolution. */
async function coarsen(db: Kysely<unknown>, from: RollupResolution, to: 'day' | 'month', start: number, end: number): Promise<RollupRow[]> {
  const stored = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(ROLLUP_TABLES[from])} WHERE level IN (${sql.join(LEVEL_IDS)}) AND bucket_start >= ${start} AND bucket_start < ${end}`.execute(db)
  const out = new Map<string, RollupRow>()
  for (const row of stored.rows) {
    const key = Object.fromEntries(KEY_COLUMNS.map((c) => [c, c === 'status_code' ? num(row[c]) : row[c]])) as Record<KeyColumn, string | number>
    const level = num(row.level)
    const bucket = bucketStart(num(row.bucket_start), to)
    const id = rowId(level, bucket, key)
    let target = out.get(id)
    if (!target) {
      target = { level, bucketStart: bucket, key, state: emptyAggregate() }
      out.set(id, target)
    }
    storedState(row, target.state)
  }
  return [...out.values()]
}

/**
 * Recomputes the rollups of [from, to) (widened to whole hours): 5-minute and hour rollups from the raw calls already rolled up,
 * then the days and months those hours belong to from the hour and day rollups. Refuses a range whose raw calls
 * retention deleted (recomputing would lose what only the rollups still hold).
 */
export async function rebuildRollupRange(ctx: RollupContext, from: number, to: number): Promise<{ from: Date; to: Date; calls: number }> {
  const { db, dialect } = ctx
  const start = bucketStart(from, 'hour')
  const lastHour = bucketStart(to, 'hour')
  const end = lastHour === to ? to : nextBucket(lastHour, 'hour')
  const rebuilt = await dialect.writeTransaction(db, async (trx) => {
    const horizons = await readHorizons(trx)
    if (start < horizons.raw) {
      throw new ApimeterError(
        'INVALID_OPTIONS',
        `cannot rebuild rollups from ${new Date(start).toISOString()}: retention deleted raw calls before ${new Date(horizons.raw).toISOString()}, so only the rollups still hold that range`,
      )
    }
    const at = await readCursor(trx)
    // a resolution's rows in [a, b): its level table's, and its route table's where it has one
    const clear = async (resolution: RollupResolution, a: number, b: number): Promise<void> => {
      await sql`DELETE FROM ${sql.table(ROLLUP_TABLES[resolution])} WHERE level IN (${sql.join(LEVEL_IDS)}) AND bucket_start >= ${a} AND bucket_start < ${b}`.execute(trx)
      const route = routeTableOf(resolution)
      if (route) await sql`DELETE FROM ${sql.table(route.shape.table)} WHERE bucket_start >= ${a} AND bucket_start < ${b}`.execute(trx)
    }
    // 5-minute and hour buckets from raw calls
    await clear('5m', start, end)
    await clear('hour', start, end)
    const inTrx: RollupContext = { ...ctx, db: trx }
    const fresh = await aggregateForRollup(inTrx, sql<boolean>`ts >= ${start} AND ts < ${end} AND ${dialect.cursor.rolled(at)}`)
    await mergeFolded(inTrx, fresh, ['5m', 'hour'])
    // the days those hours belong to, from hours; the months, from days
    const dayStart = bucketStart(start, 'day')
    const dayEnd = bucketStart(end - 1, 'day') + 86_400_000
    await clear('day', dayStart, dayEnd)
    await mergeIntoTable(inTrx, ROLLUP_SHAPES.day, await coarsen(trx, 'hour', 'day', dayStart, dayEnd))
    const monthStart = bucketStart(start, 'month')
    const monthEnd = nextBucket(bucketStart(end - 1, 'month'), 'month')
    await clear('month', monthStart, monthEnd)
    await mergeIntoTable(inTrx, ROLLUP_SHAPES.month, await coarsen(trx, 'day', 'month', monthStart, monthEnd))
    let calls = 0
    for (const row of fresh.hour) if (row.level === 0) calls += row.state.requests
    return { from: new Date(start), to: new Date(end), calls }
  })
  return rebuilt!
}
