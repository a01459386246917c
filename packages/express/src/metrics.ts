import { createMetricsHandler, type MetricsHandlerOptions, type Monitor } from '@apimeter/core'
import type { NextFunction, Request, RequestHandler, Response } from 'express'

/**
 * Options of {@link metricsHandler}: who may scrape (`auth`, required).
 *
 * @example
 * ```ts
 * app.get('/metrics', metricsHandler(monitor, { auth: { token: process.env.METRICS_TOKEN! } }))
 * ```
 */
export interface MetricsExpressOptions extends MetricsHandlerOptions {}

/**
 * An Express handler serving `monitor.metrics` for Prometheus: OpenMetrics or text 0.0.4 by `Accept`, behind the
 * required `auth` (401 otherwise), answering GET and HEAD. Its own requests are not metered, even with the
 * `apimeter` middleware in front. Throws `INVALID_OPTIONS` at once without `auth`, or when the monitor was created
 * without `metrics`.
 *
 * @example
 * ```ts
 * import { apimeter, metricsHandler } from '@apimeter/express'
 *
 * const monitor = createMonitor({ metrics: true })
 * app.use(apimeter(monitor))
 * app.get('/metrics', metricsHandler(monitor, { auth: { token: process.env.METRICS_TOKEN! } }))
 * ```
 */
export function metricsHandler(monitor: Monitor, options: MetricsExpressOptions): RequestHandler {
  const serve = createMetricsHandler(monitor, options, '@apimeter/express')
  return function apimeterMetrics(req: Request, res: Response, _next: NextFunction): Promise<void> {
    return serve(req, res)
  }
}
