import { z } from 'zod'
import { intInRange } from '../validation.js'

/**
 * Live metrics of this monitor instance (`monitor.metrics`), for Prometheus (`monitor.metrics.prometheus()`, the
 * `metricsHandler` of `@apimeter/express` / the `metrics` option of `@apimeter/fastify`) and OpenTelemetry
 * (`@apimeter/otel`). Off by default; `true` turns them on with the defaults below. See docs/export.md.
 *
 * @example
 * ```ts
 * createMonitor({ metrics: true })
 * createMonitor({ metrics: { tenantLabel: true, maxTenants: 50 } })
 * ```
 */
export interface MetricsOptions {
  /**
   * Adds an `apimeter_tenant` label (`apimeter.tenant` attribute) to the HTTP duration histograms and the cost
   * counter. Every tenant multiplies the number of series, so it is opt-in and capped by {@link maxTenants}.
   * @default false
   * @example
   * ```ts
   * createMonitor({ metrics: { tenantLabel: true } })
   * ```
   */
  tenantLabel?: boolean
  /**
   * With {@link tenantLabel}: the first `maxTenants` tenants seen get their own label value; later ones share
   * the value `(other)`.
   * @default 100
   * @example
   * ```ts
   * createMonitor({ metrics: { tenantLabel: true, maxTenants: 20 } })
   * ```
   */
  maxTenants?: number
  /**
   * The most series one metric keeps. Routes are templates and unknown paths collapse into `(unmatched)` already;
   * this bounds what is left (many outbound hosts, models, status codes): once a metric holds `maxSeries` series,
   * new label combinations are counted in one series whose labels are all `(other)`.
   * @default 2000
   * @example
   * ```ts
   * createMonitor({ metrics: { maxSeries: 500 } })
   * ```
   */
  maxSeries?: number
}

/** Resolved {@link MetricsOptions}. */
export interface ResolvedMetricsOptions {
  tenantLabel: boolean
  maxTenants: number
  maxSeries: number
}

/** Defaults of {@link MetricsOptions}. */
export const METRICS_DEFAULTS: ResolvedMetricsOptions = { tenantLabel: false, maxTenants: 100, maxSeries: 2000 }

/** The zod schema of the `metrics` option of `createMonitor()`. */
export const metricsOptionsSchema = z.union(
  [
    z.boolean(),
    z.strictObject({
      tenantLabel: z.boolean({ error: 'true or false' }).optional(),
      maxTenants: intInRange(1, 10_000, 'a whole number from 1 to 10,000').optional(),
      maxSeries: intInRange(10, 1_000_000, 'a whole number from 10 to 1,000,000').optional(),
    }),
  ],
  { error: 'true, false or an object { tenantLabel?, maxTenants?, maxSeries? }' },
)

/** The resolved options, or undefined when metrics are off. */
export function resolveMetricsOptions(option: boolean | MetricsOptions | undefined): ResolvedMetricsOptions | undefined {
  if (option === undefined || option === false) return undefined
  if (option === true) return { ...METRICS_DEFAULTS }
  return {
    tenantLabel: option.tenantLabel ?? METRICS_DEFAULTS.tenantLabel,
    maxTenants: option.maxTenants ?? METRICS_DEFAULTS.maxTenants,
    maxSeries: option.maxSeries ?? METRICS_DEFAULTS.maxSeries,
  }
}
