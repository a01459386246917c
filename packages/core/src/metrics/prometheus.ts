import type { MetricFamily, MetricsSnapshot } from './snapshot.js'

/** The Prometheus text exposition format 0.0.4, as a `Content-Type`. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
/** OpenMetrics 1.0.0 text, as a `Content-Type`. */
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8'

/** What `monitor.metrics.prometheus()` returns: the body and the `Content-Type` to send it with. */
export interface PrometheusExposition {
  /** `text/plain; version=0.0.4; …` or `application/openmetrics-text; version=1.0.0; …`. */
  contentType: string
  body: string
}

/**
 * Whether an `Accept` header asks for OpenMetrics (what Prometheus sends first): `application/openmetrics-text` with
 * a quality above zero and not below that of `text/plain`.
 */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (accept === undefined || accept === '') return false
  let openMetrics = -1
  let plain = -1
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.split(';').map((p) => p.trim().toLowerCase())
    const qParam = params.find((p) => p.startsWith('q='))
    const q = qParam === undefined ? 1 : Number(qParam.slice(2))
    if (!Number.isFinite(q)) continue
    if (type === 'application/openmetrics-text') openMetrics = Math.max(openMetrics, q)
    else if (type === 'text/plain' || type === '*/*' || type === 'text/*') plain = Math.max(plain, type === 'text/plain' ? q : Math.min(q, 0.01))
  }
  return openMetrics > 0 && openMetrics >= plain
}

/** A label value escaped per the text formats: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : value
}

function escapeHelp(text: string, openMetrics: boolean): string {
  const escaped = text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
  return openMetrics ? escaped.replace(/"/g, '\\"') : escaped
}

/** A sample value: integers as integers, infinities and NaN as the formats spell them. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

const LABEL_NAMES = new Map<string, string>()

/** A Prometheus label name from an OpenTelemetry attribute key (`http.route` → `http_route`). */
export function labelName(key: string): string {
  let name = LABEL_NAMES.get(key)
  if (name === undefined) {
    name = key.replace(/[^a-zA-Z0-9_]/g, '_')
    if (LABEL_NAMES.size < 1000) LABEL_NAMES.set(key, name)
  }
  return name
}

/** `a="x",b="y"` of a series (without braces), built once per series and reused by all its lines. */
function labelPairs(attributes: Readonly<Record<string, string>>): string {
  let out = ''
  for (const key in attributes) out += `${out === '' ? '' : ','}${labelName(key)}="${escapeLabelValue(attributes[key]!)}"`
  return out
}

/** `{pairs}`, or nothing for a series without labels. */
function braces(pairs: string): string {
  return pairs === '' ? '' : `{${pairs}}`
}

/** Units OpenMetrics may declare: only where the family name ends with them. */
const OPENMETRICS_UNITS: Record<string, string> = { s: 'seconds', '1': 'ratio' }

function renderFamily(f: MetricFamily, openMetrics: boolean, lines: string[]): void {
  const name = f.promName
  // OpenMetrics declares a counter's family without `_total`; the 0.0.4 format names it as its samples are named
  const declared = f.kind === 'counter' && !openMetrics ? `${name}_total` : name
  lines.push(`# HELP ${declared} ${escapeHelp(f.description, openMetrics)}`, `# TYPE ${declared} ${f.kind}`)
  const unit = OPENMETRICS_UNITS[f.unit]
  if (openMetrics && unit !== undefined && name.endsWith(`_${unit}`)) lines.push(`# UNIT ${name} ${unit}`)
  for (const point of f.points) {
    const pairs = labelPairs(point.attributes)
    if (f.kind === 'counter') {
      lines.push(`${name}_total${braces(pairs)} ${formatValue(point.value)}`)
    } else if (f.kind === 'gauge') {
      lines.push(`${name}${braces(pairs)} ${formatValue(point.value)}`)
    } else if (point.histogram !== undefined) {
      const h = point.histogram
      const bucket = `${name}_bucket{${pairs === '' ? '' : `${pairs},`}le="`
      let cumulative = 0
      for (let i = 0; i < h.boundaries.length; i++) {
        cumulative += h.counts[i]!
        lines.push(`${bucket}${formatValue(h.boundaries[i]!)}"} ${cumulative}`)
      }
      lines.push(`${bucket}+Inf"} ${h.count}`)
      const plain = braces(pairs)
      lines.push(`${name}_sum${plain} ${formatValue(h.sum)}`)
      lines.push(`${name}_count${plain} ${h.count}`)
    }
  }
}

/**
 * Renders a snapshot in the Prometheus text format 0.0.4, or in OpenMetrics 1.0.0 (counters declared without their
 * `_total` suffix, seconds and ratio units declared, `# EOF` at the end).
 */
export function renderPrometheus(snapshot: MetricsSnapshot, openMetrics: boolean): PrometheusExposition {
  const lines: string[] = []
  for (const f of snapshot.families) renderFamily(f, openMetrics, lines)
  if (openMetrics) lines.push('# EOF')
  return { contentType: openMetrics ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE, body: `${lines.join('\n')}\n` }
}
