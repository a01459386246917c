import { emptyAggregate, type AggregateState } from '../../storage/aggregate.js'
import { OUTCOMES } from '../../call/outcome.js'
import { LatencySketch } from '../../storage/sketch.js'
import type { SqlDialect } from '../dialect.js'
import { num } from '../num.js'
import { addSums } from '../raw-aggregate.js'
import { type RollupContext, execute } from './context.js'
import { ALL_COLUMNS, KEY_COLUMNS, type KeyColumn, type RollupRow, rowId } from './levels.js'

/**
 * Merging aggregated rows into a rollup table: read the stored rows of the same keys, add, upsert. The statements
 * are built once per (dialect, table, chunk size) and kept.
 */

const CHUNK = 200
const UPDATED_COLUMNS = ALL_COLUMNS.slice(2 + KEY_COLUMNS.length)

/** SQL text per (dialect, table, rows), built once: rollup merges run often and with many parameters. */
const statementCache = new Map<string, { select: string; upsert: string }>()
function statements(dialect: SqlDialect, table: string, rows: number): { select: string; upsert: string } {
  const cacheKey = `${dialect.name}|${table}|${rows}`
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
  const upsert =
    `INSERT INTO ${table} (${ALL_COLUMNS.join(', ')}) VALUES ${Array.from({ length: rows }, () => tuple(ALL_COLUMNS.length)).join(', ')} ` +
    `ON CONFLICT (${keyList}) DO UPDATE SET ${UPDATED_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}`
  cached = { select, upsert }
  statementCache.set(cacheKey, cached)
  return cached
}

/** Merges rows into a rollup table: read the existing rows, add, write back (the caller holds the write lock). */
export async function mergeIntoTable(ctx: RollupContext, table: string, rows: RollupRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK)
    const text = statements(ctx.dialect, table, chunk.length)
    const keyParams: unknown[] = []
    for (const r of chunk) keyParams.push(r.level, r.bucketStart, ...KEY_COLUMNS.map((c) => r.key[c]))
    const existing = await execute(ctx, text.select, keyParams)
    if (existing.length > 0) {
      const byId = new Map(chunk.map((r) => [rowId(r.level, r.bucketStart, r.key), r]))
      for (const stored of existing) {
        const key = Object.fromEntries(KEY_COLUMNS.map((c) => [c, c === 'status_code' ? num(stored[c]) : stored[c]])) as Record<KeyColumn, string | number>
        const target = byId.get(rowId(num(stored.level), num(stored.bucket_start), key))
        if (target) storedState(stored, target.state)
      }
    }
    const params: unknown[] = []
    for (const r of chunk) {
      const s = r.state
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

/** The aggregate state of a stored rollup row (added into `into`). */
export function storedState(row: Record<string, unknown>, into: AggregateState = emptyAggregate()): AggregateState {
  addSums(into, row)
  LatencySketch.decodeInto(row.latency_sketch as Uint8Array, into.sketch)
  // a row has one outcome: it is part of the key
  const outcome = row.outcome as string
  if ((OUTCOMES as readonly string[]).includes(outcome)) into.outcomes[outcome as keyof AggregateState['outcomes']] += num(row.requests)
  return into
}
