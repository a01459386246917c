import { type RawBuilder, sql } from 'kysely'
import { AggregateGroups, type AggregateRow, coarserResolution, type Resolution } from '../../storage/aggregate.js'
import type { AggregateQuery } from '../../storage/adapter.js'
import type { CallFilter } from '../../storage/filter.js'
import { bucketStart } from '../../time.js'
import { keyText, num } from '../num.js'
import { aggregateCalls } from '../raw-aggregate.js'
import type { RollupContext } from './context.js'
import { chooseLevel, DIMENSION_KEY_COLUMN, ROLLUP_TABLES, type RollupResolution, rollupFilterExpression } from './levels.js'
import { storedState } from './merge.js'
import { planQuery } from './plan.js'
import { readCursor, readHorizons } from './state.js'

/** Where the calls of a query are read: whole rollup buckets, or raw calls (edges, the not-yet-rolled tail). */
export type Source =
  | { kind: 'rollup'; unit: RollupResolution; level: number; start: number; end: number }
  | { kind: 'raw'; filter: CallFilter; where?: RawBuilder<boolean> }

/** The sources of a query: the plan's segments, plus the raw tail inside the rollup range. */
export async function sourcesOf(ctx: RollupContext, query: AggregateQuery): Promise<{ sources: Source[]; resolution: Resolution }> {
  const { db, dialect } = ctx
  const level = chooseLevel(query.filter, query.groupBy)
  const horizons = await readHorizons(db)
  const plan = planQuery(query.filter.from, query.filter.to, query.interval, horizons, level !== null)
  const at = await readCursor(db)
  const rangeFilter = (start: number, end: number): CallFilter => ({
    ...query.filter,
    from: Number.isFinite(start) ? start : undefined,
    to: Number.isFinite(end) ? end : undefined,
  })
  const sources: Source[] = []
  let rollupStart = Infinity
  let rollupEnd = -Infinity
  for (const segment of plan.segments) {
    if (segment.unit === 'raw') {
      sources.push({ kind: 'raw', filter: rangeFilter(segment.start, segment.end) })
      continue
    }
    rollupStart = Math.min(rollupStart, segment.start)
    rollupEnd = Math.max(rollupEnd, segment.end)
    sources.push({ kind: 'rollup', unit: segment.unit, level: level!.id, start: segment.start, end: segment.end })
  }
  if (rollupStart < rollupEnd) sources.push({ kind: 'raw', filter: rangeFilter(rollupStart, rollupEnd), where: dialect.cursor.tail(at) })
  return { sources, resolution: plan.resolution }
}

/** The WHERE clause of a rollup source: level, bucket range, and the query's filter on the key columns. */
export function rollupWhere(source: Extract<Source, { kind: 'rollup' }>, filter: CallFilter): RawBuilder<boolean> {
  const bounds: RawBuilder<unknown>[] = [sql`level = ${source.level}`]
  if (Number.isFinite(source.start)) bounds.push(sql`bucket_start >= ${source.start}`)
  if (Number.isFinite(source.end)) bounds.push(sql`bucket_start < ${source.end}`)
  return sql<boolean>`${sql.join(bounds, sql` AND `)} AND ${rollupFilterExpression(filter)}`
}

/**
 * Answers an aggregate query from rollups where whole buckets allow, raw calls at the edges, and the not-yet-rolled
 * tail; falls back to raw calls when no rollup level keeps the query's dimensions.
 */
export async function aggregateWithRollups(ctx: RollupContext, query: AggregateQuery): Promise<AggregateRow[]> {
  const { db, dialect } = ctx
  const { sources, resolution } = await sourcesOf(ctx, query)
  const groups = new AggregateGroups()
  for (const source of sources) {
    if (source.kind === 'raw') {
      await aggregateCalls(db, dialect, { ...query, filter: source.filter }, { where: source.where, into: groups })
      continue
    }
    const rows = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(ROLLUP_TABLES[source.unit])} WHERE ${rollupWhere(source, query.filter)}`.execute(db)
    // A bucket coarser than the query's interval (retention removed the finer one) is reported at its own start.
    const coarser = query.interval !== undefined && rankOf(source.unit) > rankOf(query.interval)
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
      if (coarser) group.resolution = coarserResolution(group.resolution ?? 'raw', source.unit)
    }
  }
  const result = groups.rows()
  // Summaries and breakdowns carry the plan's precision; timeseries points carry their own (marked above).
  if (resolution !== 'raw' && (query.interval === undefined || resolution === 'partial')) {
    for (const row of result) row.resolution = coarserResolution(row.resolution ?? 'raw', resolution)
  }
  return result
}

function rankOf(unit: string): number {
  return ['minute', 'hour', 'day', 'month'].indexOf(unit === 'raw' ? 'minute' : unit)
}
