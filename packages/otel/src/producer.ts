import { ApimeterError, type MetricFamily, type MetricPoint, type MetricsSnapshot, type Monitor, VERSION } from '@apimeter/core'
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type MetricData,
  type MetricDescriptor,
  type MetricProducer,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics'

const PREFIX = '@apimeter/otel'
function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (typeof value === 'string') return JSON.stringify(value)
  return typeof value === 'object' || typeof value === 'function' ? `a${typeof value === 'object' ? 'n object' : ' function'}` : typeof value
}

/**
 * Options of {@link apimeterMetricProducer}.
 *
 * @example
 * ```ts
 * apimeterMetricProducer(monitor, { scope: { name: 'checkout-api' } })
 * ```
 */
export interface ApimeterProducerOptions {
  /**
   * The instrumentation scope the metrics are reported under.
   * @default { name: '@apimeter/otel', version: <the apimeter version> }
   * @example
   * ```ts
   * apimeterMetricProducer(monitor, { scope: { name: 'checkout-api', version: '2.1.0' } })
   * ```
   */
  scope?: { name: string; version?: string }
}

/** HrTime ([seconds, nanoseconds]) of an epoch-ms time. */
function hrTime(ms: number): [number, number] {
  const seconds = Math.floor(ms / 1000)
  return [seconds, Math.round((ms - seconds * 1000) * 1e6)]
}

// @opentelemetry/api's ValueType (INT = 0, DOUBLE = 1), without depending on the API package at run time
const INT = 0 as MetricDescriptor['valueType']
const DOUBLE = 1 as MetricDescriptor['valueType']

/** Attributes the semantic conventions type as integers. */
const INT_ATTRIBUTES = new Set(['http.response.status_code'])

function attributesOf(point: MetricPoint): Record<string, string | number> {
  const out: Record<string, string | number> = {}
  for (const [key, value] of Object.entries(point.attributes)) {
    const n = INT_ATTRIBUTES.has(key) ? Number(value) : Number.NaN
    out[key] = Number.isInteger(n) ? n : value
  }
  return out
}

/** One apimeter metric family as OpenTelemetry metric data (cumulative since the monitor started). */
function toMetricData(family: MetricFamily, startTime: [number, number], endTime: [number, number]): MetricData {
  const descriptor: MetricDescriptor = { name: family.name, description: family.description, unit: family.unit, valueType: family.integer ? INT : DOUBLE }
  const aggregationTemporality = AggregationTemporality.CUMULATIVE
  const point = <T>(p: MetricPoint, value: T) => ({ startTime, endTime, attributes: attributesOf(p), value })
  if (family.kind === 'histogram') {
    return {
      descriptor,
      aggregationTemporality,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: family.points.map((p) => {
        const h = p.histogram!
        return point(p, { buckets: { boundaries: [...h.boundaries], counts: [...h.counts] }, sum: h.sum, count: h.count, min: h.min, max: h.max })
      }),
    }
  }
  if (family.kind === 'counter') {
    return { descriptor, aggregationTemporality, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: family.points.map((p) => point(p, p.value)) }
  }
  return { descriptor, aggregationTemporality, dataPointType: DataPointType.GAUGE, dataPoints: family.points.map((p) => point(p, p.value)) }
}

/** The resource a producer must return; a MetricReader replaces it with its MeterProvider's own. */
const NO_RESOURCE = {
  attributes: {},
  merge(other: unknown) {
    return other ?? NO_RESOURCE
  },
  getRawAttributes: () => [],
} as unknown as ResourceMetrics['resource']

/**
 * An OpenTelemetry `MetricProducer` handing `monitor.metrics` to the readers of your `MeterProvider`, named per the
 * semantic conventions: `http.server.request.duration` and `http.client.request.duration` (seconds, the default
 * explicit buckets; attributes `http.request.method`, `http.route` — always the template —,
 * `http.response.status_code`, `server.address`), `gen_ai.client.token.usage` (`gen_ai.token.type`,
 * `gen_ai.request.model`, `gen_ai.system`; input tokens include cached input tokens whatever the provider reports),
 * and apimeter's own `apimeter.cost` (USD), cache hits, rate-limit headroom, write-path health and alert/probe
 * states. Sums and histograms are cumulative from the monitor's start. The monitor must be created with
 * `metrics: true`; `INVALID_OPTIONS` is thrown otherwise.
 *
 * @example
 * ```ts
 * import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics'
 * import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http'
 * import { apimeterMetricProducer } from '@apimeter/otel'
 *
 * const monitor = createMonitor({ metrics: true })
 * const reader = new PeriodicExportingMetricReader({
 *   exporter: new OTLPMetricExporter(),
 *   metricProducers: [apimeterMetricProducer(monitor)],
 * })
 * const provider = new MeterProvider({ readers: [reader] })
 * ```
 */
export function apimeterMetricProducer(monitor: Monitor, options: ApimeterProducerOptions = {}): MetricProducer {
  const metrics = (monitor as Partial<Monitor> | undefined)?.metrics
  if (typeof metrics?.collect !== 'function') {
    throw new ApimeterError('INVALID_OPTIONS', `${PREFIX}: monitor must be a monitor from createMonitor(), got ${describe(monitor)}`, { prefix: PREFIX })
  }
  if (!metrics.enabled) {
    throw new ApimeterError('INVALID_OPTIONS', `${PREFIX}: the monitor's metrics are off; create it with createMonitor({ metrics: true }) to export them`, { prefix: PREFIX })
  }
  const scope = options.scope
  if (scope !== undefined && (typeof scope !== 'object' || scope === null || typeof scope.name !== 'string' || scope.name === '')) {
    throw new ApimeterError('INVALID_OPTIONS', `${PREFIX}: options.scope must be an object { name, version? } with a non-empty name, got ${describe(scope)}`, { prefix: PREFIX })
  }
  const instrumentationScope = { name: scope?.name ?? PREFIX, version: scope?.version ?? (scope === undefined ? VERSION : undefined) }
  return {
    async collect(): Promise<CollectionResult> {
      let snapshot: MetricsSnapshot
      try {
        snapshot = await metrics.collect()
      } catch (error) {
        return { resourceMetrics: { resource: NO_RESOURCE, scopeMetrics: [] }, errors: [error] }
      }
      const start = hrTime(snapshot.startTime)
      const end = hrTime(snapshot.time)
      const data = snapshot.families.filter((f) => f.points.length > 0).map((f) => toMetricData(f, start, end))
      return { resourceMetrics: { resource: NO_RESOURCE, scopeMetrics: [{ scope: instrumentationScope, metrics: data }] }, errors: [] }
    },
  }
}
