import { type RawBuilder, sql } from 'kysely'
import { OUTCOMES } from '../../call/outcome.js'
import type { AggregateQuery, TopGroups } from '../../storage/adapter.js'
import { DIMENSION_FIELD, type CallFilter } from '../../storage/filter.js'
import { keyText } from '../num.js'
import { DIMENSION_COLUMN, filterExpression } from '../raw-aggregate.js'
import { TABLES } from '../schema.js'
import type { RollupContext } from './context.js'
import { DIMENSION_KEY_COLUMN, ROLLUP_TABLES } from './levels.js'
import { rollupWhere, type Source, sourcesOf, tailFromTransactions } from './query.js'
import { AggregateGroups, type AggregateRow } from '../../storage/aggregate.js'

/**
 * Ranking groups in SQL: the keys of the first `limit` groups of a one-dimension breakdown (and every group tied at
 * the boundary), from the sums of every source of the query — rollup buckets, raw edges and the tail — in one
 * statement. Only those groups are then aggregated with their latency sketches, so a breakdown over 100,000 tenants
 * materialises ten, not 100,000.
 */

const SUCCESS = OUTCOMES[0]

/** The sums a rank needs, per source, as `k, requests, errors, cost, cached, tokens, req_b, res_b, dur_sum, dur_max`. */
function sums(source: Source, query: AggregateQuery): RawBuilder<unknown> {
  const dimension = query.groupBy[0]!
  if (source.kind === 'raw') {
    const key = sql.ref(DIMENSION_COLUMN[dimension])
    const filtered = filterExpression(source.filter, source.time)
    const where = source.where ? sql`${filtered} AND ${source.where}` : filtered
    return sql`SELECT ${key} AS k, COUNT(*) AS requests,
      SUM(CASE WHEN outcome = ${sql.lit(SUCCESS)} THEN 0 ELSE 1 END) AS errors, SUM(cost_nanos) AS cost, SUM(cached) AS cached,
      SUM(COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0) + COALESCE(cached_input_tokens, 0)) AS tokens,
      SUM(request_bytes) AS req_b, SUM(response_bytes) AS res_b, SUM(duration_us) AS dur_sum, MAX(duration_us) AS dur_max
      FROM ${sql.table(TABLES.calls)} WHERE ${where} GROUP BY ${key}`
  }
  const column = DIMENSION_KEY_COLUMN[dimension]!
  // rollup keys store "none" as '' (0 for a status): the same key as NULL in raw calls
  const key = column === 'status_code' ? sql`NULLIF(status_code, 0)` : sql`NULLIF(${sql.ref(column)}, '')`
  return sql`SELECT ${key} AS k, SUM(requests) AS requests,
    SUM(CASE WHEN outcome = ${sql.lit(SUCCESS)} THEN 0 ELSE requests END) AS errors, SUM(cost_nanos) AS cost, SUM(cached) AS cached,
    SUM(input_tokens + output_tokens + cached_input_tokens) AS tokens,
    SUM(request_bytes) AS req_b, SUM(response_bytes) AS res_b, SUM(duration_sum_us) AS dur_sum, MAX(duration_max_us) AS dur_max
    FROM ${sql.table(ROLLUP_TABLES[source.unit])} WHERE ${rollupWhere(source, query.filter)} GROUP BY ${key}`
}

/** Groups of the tail in memory above which a ranking reads the whole tail raw (their sums are sent as values). */
const MAX_MEMORY_KEYS = 1000

/** The sums of groups aggregated in memory (the tail's batches of this process), as the rows of a VALUES list. */
function memorySums(rows: readonly AggregateRow[], query: AggregateQuery): RawBuilder<unknown> {
  const integer = (n: number) => sql`CAST(${n} AS BIGINT)`
  const key = (k: string | null) => (query.groupBy[0] === 'status' ? sql`CAST(${k === null ? null : Number(k)} AS INTEGER)` : sql`CAST(${k} AS TEXT)`)
  const values = rows.map(({ keys, state }) => {
    const numbers = [
      state.requests,
      state.requests - state.outcomes[SUCCESS],
      state.costNanos,
      state.cached,
      state.inputTokens + state.outputTokens + state.cachedInputTokens,
      state.requestBytes,
      state.responseBytes,
      state.durationSumUs,
      Math.round(state.durationMax * 1000),
    ]
    return sql`(${sql.join([key(keys[0] ?? null), ...numbers.map(integer)])})`
  })
  return sql`SELECT * FROM (VALUES ${sql.join(values)}) AS memory (k, requests, errors, cost, cached, tokens, req_b, res_b, dur_sum, dur_max)`
}

/** The rank metric over the summed columns; ratios are computed the way `toSummary()` computes them. */
function metric(order: TopGroups['order']): RawBuilder<unknown> {
  const real = (x: RawBuilder<unknown>) => sql`CAST(${x} AS DOUBLE PRECISION)`
  switch (order) {
    case 'requests':
      return sql`requests`
    case 'errors':
      return sql`errors`
    case 'errorRate':
      return sql`${real(sql`errors`)} / requests`
    case 'cost':
      return sql`COALESCE(cost, 0)`
    case 'cached':
      return sql`cached`
    case 'cacheHitRate':
      return sql`${real(sql`cached`)} / requests`
    case 'tokens':
      return sql`COALESCE(tokens, 0)`
    case 'requestBytes':
      return sql`COALESCE(req_b, 0)`
    case 'responseBytes':
      return sql`COALESCE(res_b, 0)`
    case 'avgLatency':
      return sql`${real(sql`dur_sum`)} / requests / 1000`
    case 'maxLatency':
      return sql`dur_max`
  }
}

/**
 * The keys of the top groups (as the filter values of the grouped dimension), or null when the query cannot be
 * ranked in SQL (several dimensions, an interval).
 */
export async function topKeys(ctx: RollupContext, query: AggregateQuery): Promise<CallFilter | null> {
  const top = query.top
  if (!top || query.groupBy.length !== 1 || query.interval !== undefined) return null
  const { sources } = await sourcesOf(ctx, query, { routeHour: false })
  if (sources.length === 0) return null
  const parts: RawBuilder<unknown>[] = []
  for (const source of sources) {
    if (source.kind === 'raw' && source.tail && ctx.txTail) {
      // PostgreSQL: the batches of this process still in the tail are summed from memory, the rest read raw
      const memory = new AggregateGroups()
      const where = tailFromTransactions(ctx, query, source.tail, memory)
      const rows = memory.rows()
      if (rows.length <= MAX_MEMORY_KEYS) {
        if (rows.length > 0) parts.push(memorySums(rows, query))
        parts.push(sums({ ...source, where }, query))
        continue
      }
    }
    parts.push(sums(source, query))
  }
  const union = sql.join(parts, sql` UNION ALL `)
  const totals = sql`SELECT k, SUM(requests) AS requests, SUM(errors) AS errors, SUM(cost) AS cost, SUM(cached) AS cached,
    SUM(tokens) AS tokens, SUM(req_b) AS req_b, SUM(res_b) AS res_b, SUM(dur_sum) AS dur_sum, MAX(dur_max) AS dur_max
    FROM (${union}) AS parts GROUP BY k`
  const direction = top.descending ? sql`DESC` : sql`ASC`
  const ranked = await sql<{ k: unknown }>`SELECT k FROM (
      SELECT k, RANK() OVER (ORDER BY ${metric(top.order)} ${direction}) AS r FROM (${totals}) AS totals
    ) AS ranked WHERE r <= ${top.limit}`.execute(ctx.db)
  const dimension = query.groupBy[0]!
  const values = ranked.rows.map((row) => {
    const key = keyText(row.k)
    return key !== null && dimension === 'status' ? Number(key) : key
  })
  return { ...query.filter, [DIMENSION_FIELD[dimension]]: values }
}
