import { type AggregateState, emptyAggregate, mergeAggregate, toSummary, type StatsSummary } from '../storage/aggregate.js'
import { ensureStorageReady, NO_VALUE_KEY, resolveFilter } from '../stats/stats.js'
import type { CallFilter } from '../storage/filter.js'
import type { StorageAdapter } from '../storage/adapter.js'
import { bucketStart } from '../time.js'
import type { ResolvedRule } from './rules.js'
import type { AlertStore } from '../storage/alert-store.js'
import { measureSloBurn } from '../slos/alerts.js'

/** The value of one group in the window; `null` means there was nothing to judge (no data). */
export interface Measurement {
  group: string
  /** Group values in `groupBy` order. */
  keys: (string | null)[]
  value: number | null
}

/** Kinds that count something, so an empty window is a value (0), not "no data". */
export function countsZero(rule: ResolvedRule): boolean {
  return rule.kind === 'requests' || rule.kind === 'cost' || rule.kind === 'status' || (rule.kind === 'rate_limit' && rule.limit !== undefined)
}

/** The group key of a rule instance: `''` ungrouped, the value for one dimension, a JSON list for several. */
export function groupKey(rule: ResolvedRule, keys: readonly (string | null)[]): string {
  if (rule.groupBy.length === 0) return ''
  const shown = keys.map((k) => k ?? NO_VALUE_KEY)
  return rule.groupBy.length === 1 ? shown[0]! : JSON.stringify(shown)
}

/** The group values of a stored group key (the inverse of {@link groupKey}). */
export function groupValues(rule: ResolvedRule, group: string): Record<string, string> | undefined {
  if (rule.groupBy.length === 0) return undefined
  const values: string[] = rule.groupBy.length === 1 ? [group] : (JSON.parse(group) as string[])
  return Object.fromEntries(rule.groupBy.map((d, i) => [d, values[i] ?? NO_VALUE_KEY]))
}

/** Start of a rule's window at `now` (epoch ms). */
export function windowStart(rule: ResolvedRule, now: number): number {
  if (rule.kind === 'rate_limit' && rule.limit) return now - rule.limit.perMs
  return 'calendar' in rule.window ? bucketStart(now, rule.window.calendar) : now - rule.window.rollingMs
}

/** The filter an evaluation reads, as the stats API resolves it. */
export function ruleFilter(rule: ResolvedRule, now: number): CallFilter {
  const filter = resolveFilter({ ...rule.filter, from: windowStart(rule, now) }, now, `alerts.${rule.name}`)
  if (rule.kind === 'status') filter.statusCode = rule.codes
  return filter
}

function valueOf(rule: ResolvedRule, s: StatsSummary): number | null {
  switch (rule.kind) {
    case 'error_rate':
      return s.requests >= rule.minRequests ? s.errorRate : null
    case 'latency':
      return s.requests >= rule.minRequests && s.latency ? s.latency[rule.percentile] : null
    case 'requests':
    case 'status':
      return s.requests
    case 'cost':
      return rule.estimates === 'exclude' ? (Math.round(s.cost * 1e9) - Math.round(s.costEstimated * 1e9)) / 1e9 : s.cost
    case 'rate_limit':
      return s.requests / rule.limit!.requests
    case 'slo_burn':
      return null // measured by measureSloBurn
  }
}

/**
 * Measures a rule at `now`: one value per group that has calls in the window. Reads the same aggregates as the stats
 * API (rollups plus raw edges, so counts and costs are exact); rate-limit headroom from headers reads the latest
 * headers through the alert store.
 */
export async function measure(rule: ResolvedRule, storage: StorageAdapter, store: AlertStore, now: number): Promise<Measurement[]> {
  if (rule.slo) return [{ group: '', keys: [], value: await measureSloBurn(storage, rule.slo.slo, rule.slo.severity, now) }]
  const filter = ruleFilter(rule, now)
  await ensureStorageReady(storage)
  if (rule.kind === 'rate_limit' && rule.limit === undefined) {
    const seen = await store.latestRateLimits(filter, rule.groupBy)
    const byGroup = new Map<string, Measurement>()
    for (const o of seen) {
      if (!(o.limit > 0)) continue
      const used = Math.max(0, o.limit - o.remaining) / o.limit
      const group = groupKey(rule, o.keys)
      const m = byGroup.get(group)
      if (m === undefined) byGroup.set(group, { group, keys: o.keys, value: used })
      else m.value = Math.max(m.value!, used)
    }
    return [...byGroup.values()]
  }
  const rows = await storage.aggregate({ filter, groupBy: rule.groupBy })
  // Merged per group, as stats.summary() does (an adapter may return a group in several parts).
  const groups = new Map<string, { keys: (string | null)[]; state: AggregateState }>()
  for (const row of rows) {
    const group = groupKey(rule, row.keys)
    let g = groups.get(group)
    if (g === undefined) groups.set(group, (g = { keys: row.keys, state: emptyAggregate() }))
    mergeAggregate(g.state, row.state)
  }
  return [...groups].map(([group, g]) => ({ group, keys: g.keys, value: valueOf(rule, toSummary(g.state)) }))
}
