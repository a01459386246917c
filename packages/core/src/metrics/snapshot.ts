/**
 * The neutral shape of this instance's live metrics: what `monitor.metrics.collect()` returns, what the Prometheus
 * renderer formats and what `@apimeter/otel` hands to a `MeterProvider`. Names and attribute keys are the
 * OpenTelemetry ones (`http.server.request.duration`, `http.request.method`); the Prometheus form of each is
 * derived (dots become underscores, the unit and `_total` suffixes are added), so both exports say the same thing.
 */

/** `histogram`: a distribution in buckets; `counter`: a monotonic sum; `gauge`: the last value. */
export type MetricKind = 'histogram' | 'counter' | 'gauge'

/**
 * A histogram point: `counts[i]` calls fell in `(boundaries[i-1], boundaries[i]]`, the last one above the last
 * boundary (not cumulative, as OpenTelemetry holds them; the Prometheus renderer accumulates).
 */
export interface HistogramValue {
  readonly boundaries: readonly number[]
  readonly counts: readonly number[]
  readonly sum: number
  readonly count: number
  readonly min: number
  readonly max: number
}

/** One series of a metric: its attributes (empty values are left out) and its value. */
export interface MetricPoint {
  /** OpenTelemetry attribute keys (`http.route`); Prometheus label names replace the dots with underscores. */
  readonly attributes: Readonly<Record<string, string>>
  /** Counters and gauges: the value (counters: the total since the monitor started). Histograms: the count. */
  readonly value: number
  /** Histograms only. */
  readonly histogram?: HistogramValue
}

/** One metric with every series it holds. */
export interface MetricFamily {
  /** The OpenTelemetry name (`http.server.request.duration`). */
  readonly name: string
  /** The Prometheus family name (`http_server_request_duration_seconds`; counters without `_total`). */
  readonly promName: string
  readonly kind: MetricKind
  /** The UCUM unit (`s`, `{token}`, `USD`, `{call}`, `1`). */
  readonly unit: string
  readonly description: string
  /** Whether the values are whole numbers (OpenTelemetry's INT value type). */
  readonly integer: boolean
  readonly points: readonly MetricPoint[]
}

/** Every metric of this instance at one moment. */
export interface MetricsSnapshot {
  /** When counting started (the monitor was created), epoch ms: the start of every cumulative point. */
  readonly startTime: number
  /** When the snapshot was taken, epoch ms. */
  readonly time: number
  readonly families: readonly MetricFamily[]
}

/** The OpenTelemetry default explicit buckets of the HTTP duration histograms, in seconds (semantic conventions). */
export const HTTP_DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

/** The buckets the GenAI semantic conventions recommend for `gen_ai.client.token.usage`. */
export const TOKEN_USAGE_BUCKETS: readonly number[] = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
