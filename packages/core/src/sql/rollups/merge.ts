import { copyAggregate, emptyAggregate, type AggregateState } from '../../storage/aggregate.js'
import { OUTCOMES } from '../../call/outcome.js'
import { LatencySketch } from '../../storage/sketch.js'
import type { SqlDialect } from '../dialect.js'
import { num } from '../num.js'
import { addSums } from '../raw-aggregate.js'
import { type RollupContext, execute } from './context.js'
import { ALL_COLUMNS, KEY_COLUMNS, type KeyColumn, type RollupRow, rowId, SUM_COLUMNS } from './levels.js'

/**
 * Merging aggregated rows into a rollup table: read the stored rows of the same keys, add, upsert — or, where the
 * connection merges latency sketches itself (`RollupContext.sketchMerge`), one upsert that adds in the database. The statements
 * are built once per (dialect, table, chunk size) and kept.
 */

const CHUNK = 200
const UPDATED_COLUMNS = ALL_COLUMNS.slice(2 + KEY_COLUMNS.length)

/** SQL text per (dialect, table, rows, merge), built once: rollup merges run often and with many parameters. */
const statementCache = new Map<string, { select: string; upsert: string }>()
function statements(dialect: SqlDialect, table: string, rows: number, sketchMerge: string | undefined): { select: string; upsert: string } {
  const cacheKey = `${dialect.name}|${table}|${rows}|${sketchMerge ?? ''}`
  let cached = statementCache.get(cacheKey)
  if (cached) return cached
  let n = 0
  const p = (): string => dialect.param(++n)
  const tuple = (width: number): string => `(${Array.from({ length: width }, p).join(', ')})`
  const keyList = ['level', 'bucket_start', ...KEY_COLUMNS].join(', ')
  const keyTypes = ['int2', 'int8', ...KEY_COLUMNS.map((c) => (c === 'status_code' ? 'int4' : 'text'))] as const
  const keyTuple = (): string => `(${keyTypes.map((t) => dialect.typedParam(++n, t)).join(', ')})`
  const select = `SELECT * FROM ${table} WHERE (${keyList}) IN (VALUES ${Array.from({ length: rows }, keyTuple).join(', ')})`
  n = 0
  // Merged by the caller (stored rows read first): the new values replace the stored ones. Merged in the database:
  // sums add, the extremes take the smaller and larger, the sketches merge through the connection's function.
  const assignments = sketchMerge
    ? [
        ...SUM_COLUMNS.map((c) => `${c} = ${c} + excluded.${c}`),
        'duration_min_us = min(duration_min_us, excluded.duration_min_us)',
        'duration_max_us = max(duration_max_us, excluded.duration_max_us)',
        `latency_sketch = ${sketchMerge}(latency_sketch, excluded.latency_sketch)`,
      ]
    : UPDATED_COLUMNS.map((c) => `${c} = excluded.${c}`)
  const upsert =
    `INSERT INTO ${table} (${ALL_COLUMNS.join(', ')}) VALUES ${Array.from({ length: rows }, () => tuple(ALL_COLUMNS.length)).join(', ')} ` +
    `ON CONFLICT (${keyList}) DO UPDATE SET ${assignments.join(', ')}`
  cached = { select, upsert }
  statementCache.set(cacheKey, cached)
  return cached
}

/** Merges rows into a rollup table: read the existing rows, add, write back (the caller holds the write lock). */
export async function mergeIntoTable(ctx: RollupContext, table: string, rows: RollupRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK)
    const text = statements(ctx.dialect, table, chunk.length, ctx.sketchMerge)
    const existing = ctx.sketchMerge ? [] : await execute(ctx, text.select, keyParamsOf(chunk))
    // What each row writes: its state, plus the stored row's where one was read. The rows' own states are left as
    // they are (a folded row may share its state with other rows of the run, see foldToLevels; and the run counts
    // the calls it rolled up from them afterwards).
    const written = new Map<RollupRow, AggregateState>()
    if (existing.length > 0) {
      const byId = new Map(chunk.map((r) => [rowId(r.level, r.bucketStart, r.key), r]))
      for (const stored of existing) {
        const key = Object.fromEntries(KEY_COLUMNS.map((c) => [c, c === 'status_code' ? num(stored[c]) : stored[c]])) as Record<KeyColumn, string | number>
        const target = byId.get(rowId(num(stored.level), num(stored.bucket_start), key))
        if (target) written.set(target, storedState(stored, copyAggregate(target.state)))
      }
    }
    const params: unknown[] = []
    for (const r of chunk) {
      const s = written.get(r) ?? r.state
      params.push(
        r.level, r.bucketStart, ...KEY_COLUMNS.map((c) => r.key[c]),
        s.requests, s.cached, s.costNanos, s.costUnknown, s.costEstimatedNanos, s.inputTokens, s.outputTokens, s.cachedInputTokens,
        s.requestBytes, s.responseBytes, s.durationSumUs, Math.round(s.durationMin * 1000), Math.round(s.durationMax * 1000),
        Buffer.from(s.sketch.encode()),
      )
    }
    await execute(ctx, text.upsert, params)
  }
}

function keyParamsOf(chunk: readonly RollupRow[]): unknown[] {
  const params: unknown[] = []
  for (const r of chunk) params.push(r.level, r.bucketStart, ...KEY_COLUMNS.map((c) => r.key[c]))
  return params
}

/** The aggregate state of a stored rollup row (added into `into`). */
export function storedState(row: Record<string, unknown>, into: AggregateState = emptyAggregate()): AggregateState {
  addSums(into, row)
  LatencySketch.decodeInto(row.latency_sketch as Uint8Array, into.sketch)
  // a row has one outcome: it is part of the key
  const outcome = row.outcome as string
  if ((OUTCOMES as readonly string[]).includes(outcome)) into.outcomes[outcome as keyof AggregateState['outcomes']] += num(row.requests)
  return into
}
