import { type RawBuilder, sql } from 'kysely'
import { AggregateGroups, type AggregateRow, coarserResolution } from '../../storage/aggregate.js'
import type { AggregateQuery } from '../../storage/adapter.js'
import type { CallFilter } from '../../storage/filter.js'
import { bucketStart } from '../../time.js'
import { keyText, num } from '../num.js'
import { aggregateCalls } from '../raw-aggregate.js'
import type { RollupContext } from './context.js'
import { chooseLevel, DIMENSION_KEY_COLUMN, ROLLUP_TABLES, rollupFilterExpression } from './levels.js'
import { storedState } from './merge.js'
import { planQuery } from './plan.js'
import { readCursor, readHorizons } from './state.js'

/**
 * Answers an aggregate query from rollups where whole buckets allow, raw calls at the edges, and the not-yet-rolled
 * tail; falls back to raw calls when no rollup level keeps the query's dimensions.
 */
export async function aggregateWithRollups(ctx: RollupContext, query: AggregateQuery): Promise<AggregateRow[]> {
  const { db, dialect } = ctx
  const level = chooseLevel(query.filter, query.groupBy)
  const horizons = await readHorizons(db)
  const plan = planQuery(query.filter.from, query.filter.to, query.interval, horizons, level !== null)
  const groups = new AggregateGroups()
  const at = await readCursor(db)
  const cursor = dialect.cursor
  let rollupStart = Infinity
  let rollupEnd = -Infinity
  const rangeFilter = (start: number, end: number): CallFilter => ({
    ...query.filter,
    from: Number.isFinite(start) ? start : undefined,
    to: Number.isFinite(end) ? end : undefined,
  })

  for (const segment of plan.segments) {
    if (segment.unit === 'raw') {
      await aggregateCalls(db, dialect, { ...query, filter: rangeFilter(segment.start, segment.end) }, { into: groups })
      continue
    }
    rollupStart = Math.min(rollupStart, segment.start)
    rollupEnd = Math.max(rollupEnd, segment.end)
    const table = ROLLUP_TABLES[segment.unit]
    const bounds: RawBuilder<unknown>[] = [sql`level = ${level!.id}`]
    if (Number.isFinite(segment.start)) bounds.push(sql`bucket_start >= ${segment.start}`)
    if (Number.isFinite(segment.end)) bounds.push(sql`bucket_start < ${segment.end}`)
    const rows = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table)} WHERE ${sql.join(bounds, sql` AND `)} AND ${rollupFilterExpression(query.filter)}`.execute(db)
    // A bucket coarser than the query's interval (retention removed the finer one) is reported at its own start.
    const coarser = query.interval !== undefined && rankOf(segment.unit) > rankOf(query.interval)
    for (const row of rows.rows) {
      const t = num(row.bucket_start)
      const start = query.interval === undefined ? null : coarser ? t : bucketStart(t, query.interval)
      const keys = query.groupBy.map((d) => {
        const column = DIMENSION_KEY_COLUMN[d]!
        const v = row[column]
        if (column === 'status_code') return num(v) === 0 ? null : String(num(v))
        return v === '' ? null : keyText(v)
      })
      const group = groups.get(start, keys)
      storedState(row, group.state)
      if (coarser) group.resolution = coarserResolution(group.resolution ?? 'raw', segment.unit)
    }
  }
  if (rollupStart < rollupEnd) {
    await aggregateCalls(db, dialect, { ...query, filter: rangeFilter(rollupStart, rollupEnd) }, { where: cursor.tail(at), into: groups })
  }
  const result = groups.rows()
  // Summaries and breakdowns carry the plan's precision; timeseries points carry their own (marked above).
  if (plan.resolution !== 'raw' && (query.interval === undefined || plan.resolution === 'partial')) {
    for (const row of result) row.resolution = coarserResolution(row.resolution ?? 'raw', plan.resolution)
  }
  return result
}

function rankOf(unit: string): number {
  return ['minute', 'hour', 'day', 'month'].indexOf(unit === 'raw' ? 'minute' : unit)
}
