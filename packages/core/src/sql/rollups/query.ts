import { type RawBuilder, sql } from 'kysely'
import { AggregateGroups, type AggregateRow, coarserResolution, type Resolution } from '../../storage/aggregate.js'
import type { AggregateQuery } from '../../storage/adapter.js'
import type { CallFilter } from '../../storage/filter.js'
import { bucketStart } from '../../time.js'
import { keyText, num } from '../num.js'
import { OUTCOMES } from '../../call/outcome.js'
import { LatencySketch } from '../../storage/sketch.js'
import type { SqlDialect } from '../dialect.js'
import { addSums, aggregateCalls } from '../raw-aggregate.js'
import type { RollupContext } from './context.js'
import { chooseLevel, DIMENSION_KEY_COLUMN, ROLLUP_TABLES, SUM_COLUMNS, type RollupResolution, rollupFilterExpression } from './levels.js'
import { planQuery } from './plan.js'
import { readPlanState } from './state.js'

/** Where the calls of a query are read: whole rollup buckets, or raw calls (edges, the not-yet-rolled tail). */
export type Source =
  | { kind: 'rollup'; unit: RollupResolution; level: number; start: number; end: number }
  | { kind: 'raw'; filter: CallFilter; where?: RawBuilder<boolean>; time?: RawBuilder<number> }

/** The sources of a query: the plan's segments, plus the raw tail inside the rollup range. */
export async function sourcesOf(ctx: RollupContext, query: AggregateQuery): Promise<{ sources: Source[]; resolution: Resolution }> {
  const { db, dialect } = ctx
  const level = chooseLevel(query.filter, query.groupBy)
  const { at, horizons } = await readPlanState(db)
  const plan = planQuery(query.filter.from, query.filter.to, query.interval, horizons, level !== null)
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
  if (rollupStart < rollupEnd) {
    sources.push({ kind: 'raw', filter: rangeFilter(rollupStart, rollupEnd), where: dialect.cursor.tail(at), time: dialect.cursor.tailTime })
  }
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
      await aggregateCalls(db, dialect, { ...query, filter: source.filter }, { where: source.where, time: source.time, into: groups })
      continue
    }
    // grouped in SQL: one row per group and rollup bucket, its sketches joined into one value
    const groupColumns = rollupGroupColumns(query)
    const rows = await sql<Record<string, unknown>>`SELECT ${rollupAggregates(query, dialect)} FROM ${sql.table(ROLLUP_TABLES[source.unit])}
      WHERE ${rollupWhere(source, query.filter)}${groupColumns.length > 0 ? sql` GROUP BY ${sql.join(groupColumns)}` : sql``}`.execute(db)
    // A bucket coarser than the query's interval (retention removed the finer one) is reported at its own start.
    const coarser = query.interval !== undefined && rankOf(source.unit) > rankOf(query.interval)
    for (const row of rows.rows) {
      if (num(row.requests) === 0) continue // an ungrouped aggregate over no rows
      const start = query.interval === undefined ? null : coarser ? num(row.bucket_start) : bucketStart(num(row.bucket_start), query.interval)
      const keys = query.groupBy.map((d) => {
        const column = DIMENSION_KEY_COLUMN[d]!
        const v = row[column]
        if (column === 'status_code') return num(v) === 0 ? null : String(num(v))
        return v === '' ? null : keyText(v)
      })
      const group = groups.get(start, keys)
      addSums(group.state, row)
      OUTCOMES.forEach((o, i) => {
        group.state.outcomes[o] += num(row[`o${i}`])
      })
      if (row.sketch) LatencySketch.decodeInto(row.sketch as Uint8Array, group.state.sketch)
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

/** The columns a rollup read groups by: the bucket when the query has an interval, and the query's group keys. */
function rollupGroupColumns(query: AggregateQuery): RawBuilder<unknown>[] {
  const keys = query.groupBy.map((d) => DIMENSION_KEY_COLUMN[d]!)
  return [...(query.interval === undefined ? [] : ['bucket_start']), ...keys].map((c) => sql.ref(c))
}

/**
 * What a rollup read selects per group: its group columns, the sums (named as in a rollup row, so `addSums` reads
 * them), the requests per outcome (`o0`… in {@link OUTCOMES} order) and the joined sketches.
 */
function rollupAggregates(query: AggregateQuery, dialect: SqlDialect): RawBuilder<unknown> {
  return sql.join([
    ...rollupGroupColumns(query),
    ...SUM_COLUMNS.map((c) => sql`SUM(${sql.ref(c)}) AS ${sql.ref(c)}`),
    ...OUTCOMES.map((o, i) => sql`SUM(CASE WHEN outcome = ${sql.lit(o)} THEN requests ELSE 0 END) AS ${sql.ref(`o${i}`)}`),
    sql`MIN(duration_min_us) AS duration_min_us`,
    sql`MAX(duration_max_us) AS duration_max_us`,
    sql`${dialect.joinSketches()} AS sketch`,
  ])
}

function rankOf(unit: string): number {
  return ['minute', 'hour', 'day', 'month'].indexOf(unit === 'raw' ? 'minute' : unit)
}
