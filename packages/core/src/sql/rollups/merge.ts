import { copyAggregate, emptyAggregate, type AggregateState } from '../../storage/aggregate.js'
import { OUTCOMES } from '../../call/outcome.js'
import { LatencySketch } from '../../storage/sketch.js'
import type { SqlDialect } from '../dialect.js'
import { num } from '../num.js'
import { addSums } from '../raw-aggregate.js'
import { type RollupContext, execute } from './context.js'
import { storedPercentiles } from './stored-percentiles.js'
import { type FoldedRows, OUTCOME_COLUMNS, ROLLUP_SHAPES, type RollupResolution, type RollupRow, type RollupTableShape, routeTableOf, SUM_COLUMNS, type KeyColumn } from './levels.js'

/**
 * Merging aggregated rows into a rollup table: read the stored rows of the same keys, add, upsert — or, where the
 * connection merges latency sketches itself (`RollupContext.sketchMerge`), one upsert that adds in the database. The statements
 * are built once per (dialect, table, chunk size) and kept.
 */

const CHUNK = 200

/** SQL text per (dialect, table, rows, merge), built once: rollup merges run often and with many parameters. */
const statementCache = new Map<string, { select: string; upsert: string }>()
function statements(dialect: SqlDialect, shape: RollupTableShape, rows: number, sketchMerge: string | undefined, sketchPercentiles: string | undefined): { select: string; upsert: string } {
  const cacheKey = `${dialect.name}|${shape.table}|${rows}|${sketchMerge ?? ''}|${sketchPercentiles ?? ''}`
  let cached = statementCache.get(cacheKey)
  if (cached) return cached
  let n = 0
  const p = (): string => dialect.param(++n)
  const columns = [...shape.keys, ...valueColumns(shape)]
  const tuple = (): string => `(${columns.map(p).join(', ')})`
  const keyList = shape.keys.join(', ')
  const keyTypes = shape.keys.map((c) => (c === 'level' ? 'int2' : c === 'bucket_start' ? 'int8' : c === 'status_code' ? 'int4' : 'text'))
  const keyTuple = (): string => `(${keyTypes.map((t) => dialect.typedParam(++n, t)).join(', ')})`
  const select = `SELECT * FROM ${shape.table} WHERE (${keyList}) IN (VALUES ${Array.from({ length: rows }, keyTuple).join(', ')})`
  n = 0
  // Merged by the caller (stored rows read first): the new values replace the stored ones. Merged in the database:
  // sums (and outcome counts) add, the extremes take the smaller and larger, the sketches merge through the
  // connection's function.
  const min = 'min(duration_min_us, excluded.duration_min_us)'
  const max = 'max(duration_max_us, excluded.duration_max_us)'
  const sketch = `${sketchMerge}(latency_sketch, excluded.latency_sketch)`
  // Stored percentiles are read from the merged sketch (merged once: every expression of a SET sees the row as it
  // was, so a second expression naming the merge would merge again), or cleared where the connection has no function.
  const sketchAssignment = !shape.percentiles
    ? `latency_sketch = ${sketch}`
    : sketchPercentiles
      ? `(latency_sketch, latency_percentiles) = (SELECT merged, ${sketchPercentiles}(merged, requests + excluded.requests, ${min}, ${max}) FROM (SELECT ${sketch} AS merged))`
      : `latency_sketch = ${sketch}, latency_percentiles = NULL`
  const assignments = sketchMerge
    ? [
        ...[...SUM_COLUMNS, ...(shape.outcomeColumns ? OUTCOME_COLUMNS : [])].map((c) => `${c} = ${c} + excluded.${c}`),
        `duration_min_us = ${min}`,
        `duration_max_us = ${max}`,
        sketchAssignment,
      ]
    : valueColumns(shape).map((c) => `${c} = excluded.${c}`)
  const upsert =
    `INSERT INTO ${shape.table} (${columns.join(', ')}) VALUES ${Array.from({ length: rows }, tuple).join(', ')} ` +
    `ON CONFLICT (${keyList}) DO UPDATE SET ${assignments.join(', ')}`
  cached = { select, upsert }
  statementCache.set(cacheKey, cached)
  return cached
}

/**
 * The columns a merge writes after the key: sums, outcome counts where the table has them, extremes, sketch, and the
 * stored percentiles where the table keeps them.
 */
function valueColumns(shape: RollupTableShape): string[] {
  return [...SUM_COLUMNS, ...(shape.outcomeColumns ? OUTCOME_COLUMNS : []), 'duration_min_us', 'duration_max_us', 'latency_sketch', ...(shape.percentiles ? ['latency_percentiles'] : [])]
}

/** A row's value for a key column of a rollup table. */
function keyValue(row: RollupRow, column: RollupTableShape['keys'][number]): string | number {
  return column === 'level' ? row.level : column === 'bucket_start' ? row.bucketStart : row.key[column]
}

/**
 * Merges rows into a rollup table: read the existing rows, add, write back (the caller holds the write lock). The
 * rows are written in primary-key order (sorted here, in place): calls written out of time order leave a run with
 * rows all over the table, and in key order each page of it is reached once, in turn, instead of at random.
 */
export async function mergeIntoTable(ctx: RollupContext, shape: RollupTableShape, rows: RollupRow[]): Promise<void> {
  sortByKey(shape, rows)
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK)
    const text = statements(ctx.dialect, shape, chunk.length, ctx.sketchMerge, ctx.sketchPercentiles)
    await ctx.pause?.()
    const existing = ctx.sketchMerge ? [] : await execute(ctx, text.select, keyParamsOf(shape, chunk))
    // What each row writes: its state, plus the stored row's where one was read. The rows' own states are left as
    // they are (a folded row may share its state with other rows of the run, see foldToLevels; and the run counts
    // the calls it rolled up from them afterwards).
    const written = new Map<RollupRow, AggregateState>()
    if (existing.length > 0) {
      const byId = new Map(chunk.map((r) => [shape.keys.map((c) => keyValue(r, c)).join('|'), r]))
      for (const stored of existing) {
        const id = shape.keys.map((c) => (c === 'level' || c === 'bucket_start' || c === 'status_code' ? num(stored[c]) : stored[c])).join('|')
        const target = byId.get(id)
        if (target) written.set(target, storedState(stored, copyAggregate(target.state), shape.outcomeColumns))
      }
    }
    const params: unknown[] = []
    for (const r of chunk) {
      const s = written.get(r) ?? r.state
      for (const c of shape.keys) params.push(keyValue(r, c))
      params.push(
        s.requests, s.cached, s.costNanos, s.costUnknown, s.costEstimatedNanos, s.inputTokens, s.outputTokens, s.cachedInputTokens,
        s.requestBytes, s.responseBytes, s.durationSumUs,
      )
      if (shape.outcomeColumns) for (const o of OUTCOMES) params.push(s.outcomes[o])
      const sketch = s.sketch.encode() // a copy of its own: handed over as it is
      const minUs = Math.round(s.durationMin * 1000)
      const maxUs = Math.round(s.durationMax * 1000)
      params.push(minUs, maxUs, Buffer.from(sketch.buffer, sketch.byteOffset, sketch.byteLength))
      // read from the values written, as a query will read the row
      if (shape.percentiles) params.push(storedPercentiles(sketch, s.requests, minUs, maxUs))
    }
    await ctx.pause?.()
    await execute(ctx, text.upsert, params)
  }
}

/** Merges a run's folded rows into the tables of `resolutions`: each one's level table, and its route table if any. */
export async function mergeFolded(ctx: RollupContext, folded: FoldedRows, resolutions: readonly RollupResolution[]): Promise<void> {
  for (const resolution of resolutions) {
    await mergeIntoTable(ctx, ROLLUP_SHAPES[resolution], folded[resolution])
    const route = routeTableOf(resolution)
    if (route) await mergeIntoTable(ctx, route.shape, folded[route.rows])
  }
}

/**
 * Sorts rows in primary-key order, in place: by level and bucket start as numbers, which tells most pairs apart (a run
 * of history written out of order holds rows of hundreds of buckets), then by the other key columns in turn. Sorting
 * by one string per row (its key values joined) built and compared a string of ~60 characters per row and pair: 9% of
 * a random-order backfill's time. JavaScript orders strings by UTF-16 code units and SQLite's BINARY collation by
 * UTF-8 bytes; where they differ, only the locality of the upserts changes, not what they write.
 */
function sortByKey(shape: RollupTableShape, rows: RollupRow[]): void {
  const byLevel = shape.keys[0] === 'level'
  const rest = shape.keys.filter((c): c is KeyColumn => c !== 'level' && c !== 'bucket_start')
  rows.sort((a, b) => {
    if (byLevel && a.level !== b.level) return a.level - b.level
    if (a.bucketStart !== b.bucketStart) return a.bucketStart - b.bucketStart
    for (const c of rest) {
      const x = a.key[c]
      const y = b.key[c]
      if (x !== y) return x < y ? -1 : 1
    }
    return 0
  })
}

function keyParamsOf(shape: RollupTableShape, chunk: readonly RollupRow[]): unknown[] {
  const params: unknown[] = []
  for (const r of chunk) for (const c of shape.keys) params.push(keyValue(r, c))
  return params
}

/**
 * The aggregate state of a stored rollup row (added into `into`); `outcomeColumns`: the row keeps its requests per
 * outcome in {@link OUTCOME_COLUMNS} (the route-by-hour table) rather than one outcome in its key.
 */
export function storedState(row: Record<string, unknown>, into: AggregateState = emptyAggregate(), outcomeColumns = false): AggregateState {
  addSums(into, row)
  LatencySketch.decodeInto(row.latency_sketch as Uint8Array, into.sketch)
  if (outcomeColumns) {
    for (let i = 0; i < OUTCOMES.length; i++) into.outcomes[OUTCOMES[i]!] += num(row[OUTCOME_COLUMNS[i]!])
    return into
  }
  // a row has one outcome: it is part of the key
  const outcome = row.outcome as string
  if ((OUTCOMES as readonly string[]).includes(outcome)) into.outcomes[outcome as keyof AggregateState['outcomes']] += num(row.requests)
  return into
}
