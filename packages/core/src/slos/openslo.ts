import { parseAllDocuments, stringify } from 'yaml'
import { ApimeterError, describeValue, PACKAGE_NAME } from '../errors.js'
import type { Outcome } from '../call/outcome.js'
import { parseOrThrow } from '../validation.js'
import { type SloDefinition, type SloFilter, slosSchema } from './slo.js'

/** The `metricSource.type` apimeter's OpenSLO documents use: the calls in apimeter's own store. */
export const OPENSLO_SOURCE = 'apimeter'
const ALERTS_ANNOTATION = 'apimeter/alerts'

type Doc = Record<string, unknown>

/**
 * SLOs as OpenSLO v1 YAML (one `kind: SLO` document each, separated by `---`), for tools that read OpenSLO.
 * The SLI is a `ratioMetric` whose `good` and `total` metric sources are of type `apimeter`, carrying the call filter
 * and what counts as good (`outcomes`, or `durationMsAtMost` for a latency SLI); budgeting is `Occurrences`.
 * Notifiers are not exported (they may hold secrets); `alerts: false` becomes the annotation `apimeter/alerts`.
 *
 * @example
 * ```ts
 * writeFileSync('slos.yaml', toOpenSLO([{ name: 'checkout', objective: 0.999, window: '30d', indicator: { kind: 'availability' } }]))
 * ```
 */
export function toOpenSLO(slos: readonly SloDefinition[]): string {
  const list = parseOrThrow(slosSchema, slos, 'toOpenSLO(slos)') as SloDefinition[]
  return list
    .map((slo) => {
      const ind = slo.indicator
      const filter: SloFilter = { ...ind.filter }
      const good: Doc = ind.kind === 'availability' ? (ind.goodOutcomes ? { filter, outcomes: [...ind.goodOutcomes] } : { filter }) : { filter, durationMsAtMost: ind.thresholdMs }
      const window = slo.window
      const metadata: Doc = { name: slo.name }
      if (slo.alerts === false) metadata.annotations = { [ALERTS_ANNOTATION]: 'false' }
      const spec: Doc = {}
      if (slo.description !== undefined) spec.description = slo.description
      Object.assign(spec, {
        service: typeof filter.service === 'string' ? filter.service : 'apimeter',
        indicator: {
          metadata: { name: `${slo.name}-sli` },
          spec: {
            ratioMetric: {
              counter: true,
              good: { metricSource: { type: OPENSLO_SOURCE, spec: { ...good, kind: ind.kind } } },
              total: { metricSource: { type: OPENSLO_SOURCE, spec: { filter } } },
            },
          },
        },
        timeWindow: [typeof window === 'string' ? { duration: window, isRolling: true } : { duration: '1M', isRolling: false, calendar: { startTime: '2020-01-01 00:00:00', timeZone: 'UTC' } }],
        budgetingMethod: 'Occurrences',
        objectives: [{ target: slo.objective }],
      })
      return stringify({ apiVersion: 'openslo/v1', kind: 'SLO', metadata, spec }, { aliasDuplicateObjects: false })
    })
    .join('---\n')
}

class Reader {
  constructor(private readonly root: string) {}
  fail(path: string, expected: string, got: unknown): never {
    throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE_NAME}: ${this.root}${path} must be ${expected}, got ${describeValue(got)}`, { details: { field: `${this.root}${path}` } })
  }
  object(v: unknown, path: string, allowed: readonly string[]): Doc {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'an object', v)
    for (const key of Object.keys(v)) {
      if (!allowed.includes(key)) {
        throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE_NAME}: ${this.root}${path}.${key} is not supported by apimeter's OpenSLO import (supported here: ${allowed.join(', ')})`, { details: { field: `${this.root}${path}.${key}` } })
      }
    }
    return v as Doc
  }
  single(v: unknown, path: string): unknown {
    if (!Array.isArray(v) || v.length !== 1) this.fail(path, 'a list of exactly one entry (apimeter SLOs have one window and one objective)', v)
    return (v as unknown[])[0]
  }
}

/**
 * Reads OpenSLO v1 YAML (one or more `kind: SLO` documents) back into SLO definitions, validated like
 * `createMonitor({ slos })`. Accepts what {@link toOpenSLO} writes: a `ratioMetric` over `apimeter` metric sources,
 * `Occurrences` budgeting, one objective, one window (rolling days, or a UTC calendar month). Anything else fails
 * with an error naming the document and field (`openslo[1].spec.budgetingMethod must be 'Occurrences' …`).
 *
 * @example
 * ```ts
 * const monitor = createMonitor({ slos: fromOpenSLO(readFileSync('slos.yaml', 'utf8')) })
 * ```
 */
export function fromOpenSLO(yaml: string): SloDefinition[] {
  if (typeof yaml !== 'string') throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE_NAME}: fromOpenSLO(yaml) must be given YAML text, got ${describeValue(yaml)}`)
  const docs = parseAllDocuments(yaml)
  const list = Array.isArray(docs) ? docs : [docs]
  const out: SloDefinition[] = []
  list.forEach((doc, i) => {
    if (doc.errors.length > 0) throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE_NAME}: openslo[${i}] is not valid YAML: ${doc.errors[0]!.message}`)
    const value: unknown = doc.toJS()
    if (value === null || value === undefined) return // an empty document (a trailing ---)
    out.push(readSlo(value, new Reader(`openslo[${i}]`)))
  })
  return parseOrThrow(slosSchema, out, 'fromOpenSLO(yaml)') as SloDefinition[]
}

function readSlo(value: unknown, r: Reader): SloDefinition {
  const top = r.object(value, '', ['apiVersion', 'kind', 'metadata', 'spec'])
  if (top.apiVersion !== 'openslo/v1') r.fail('.apiVersion', `'openslo/v1'`, top.apiVersion)
  if (top.kind !== 'SLO') r.fail('.kind', `'SLO' (apimeter imports SLO documents only)`, top.kind)
  const metadata = r.object(top.metadata, '.metadata', ['name', 'displayName', 'labels', 'annotations'])
  const annotations = metadata.annotations === undefined ? {} : r.object(metadata.annotations, '.metadata.annotations', Object.keys(metadata.annotations as Doc))
  const spec = r.object(top.spec, '.spec', ['description', 'service', 'indicator', 'indicatorRef', 'timeWindow', 'budgetingMethod', 'objectives'])
  if (spec.indicatorRef !== undefined) r.fail('.spec.indicatorRef', 'left out: define the indicator inline (spec.indicator)', spec.indicatorRef)
  if (spec.budgetingMethod !== 'Occurrences') r.fail('.spec.budgetingMethod', `'Occurrences' (the only budgeting method apimeter computes)`, spec.budgetingMethod)

  const indicator = r.object(spec.indicator, '.spec.indicator', ['metadata', 'spec'])
  const indSpec = r.object(indicator.spec, '.spec.indicator.spec', ['ratioMetric'])
  const ratio = r.object(indSpec.ratioMetric, '.spec.indicator.spec.ratioMetric', ['counter', 'good', 'total'])
  const source = (which: 'good' | 'total', keys: readonly string[]): Doc => {
    const path = `.spec.indicator.spec.ratioMetric.${which}`
    const m = r.object(r.object(ratio[which], path, ['metricSource']).metricSource, `${path}.metricSource`, ['type', 'spec'])
    if (m.type !== OPENSLO_SOURCE) r.fail(`${path}.metricSource.type`, `'${OPENSLO_SOURCE}' (apimeter computes SLIs from its own calls)`, m.type)
    return r.object(m.spec, `${path}.metricSource.spec`, keys)
  }
  const good = source('good', ['kind', 'filter', 'outcomes', 'durationMsAtMost'])
  const total = source('total', ['filter'])
  if (JSON.stringify(good.filter ?? {}) !== JSON.stringify(total.filter ?? {})) {
    r.fail('.spec.indicator.spec.ratioMetric.good.metricSource.spec.filter', 'the same filter as total (good calls are a part of the total)', good.filter)
  }
  const filter = (total.filter ?? {}) as SloFilter
  if (good.kind !== undefined && good.kind !== 'availability' && good.kind !== 'latency') r.fail('.spec.indicator.spec.ratioMetric.good.metricSource.spec.kind', `'availability' or 'latency'`, good.kind)
  const latency = good.kind === 'latency' || good.durationMsAtMost !== undefined
  const withFilter = Object.keys(filter).length > 0 ? { filter } : {}
  const window = r.object(r.single(spec.timeWindow, '.spec.timeWindow'), '.spec.timeWindow[0]', ['duration', 'isRolling', 'calendar'])
  let sloWindow: SloDefinition['window']
  if (window.isRolling === false) {
    const cal = window.calendar === undefined ? {} : r.object(window.calendar, '.spec.timeWindow[0].calendar', ['startTime', 'timeZone'])
    if (window.duration !== '1M') r.fail('.spec.timeWindow[0].duration', `'1M' for a calendar window (apimeter's calendar windows are months)`, window.duration)
    if (cal.timeZone !== undefined && cal.timeZone !== 'UTC') r.fail('.spec.timeWindow[0].calendar.timeZone', `'UTC' (calendar months are UTC)`, cal.timeZone)
    sloWindow = { calendar: 'month' }
  } else {
    if (typeof window.duration !== 'string' || !/^\d+d$/.test(window.duration)) r.fail('.spec.timeWindow[0].duration', `a rolling number of days such as '28d'`, window.duration)
    sloWindow = window.duration as SloDefinition['window']
  }
  const objective = r.object(r.single(spec.objectives, '.spec.objectives'), '.spec.objectives[0]', ['displayName', 'target'])

  const slo: SloDefinition = {
    name: metadata.name as string,
    objective: objective.target as number,
    window: sloWindow,
    indicator: latency
      ? { kind: 'latency', thresholdMs: good.durationMsAtMost as number, ...withFilter }
      : { kind: 'availability', ...withFilter, ...(good.outcomes === undefined ? {} : { goodOutcomes: good.outcomes as Outcome[] }) },
  }
  if (spec.description !== undefined) slo.description = spec.description as string
  if (annotations[ALERTS_ANNOTATION] === 'false') slo.alerts = false
  return slo
}
