import type { IncomingMessage, ServerResponse } from 'node:http'
import { z } from 'zod'
import { ApimeterError, describeValue, errorMessage, PACKAGE_NAME } from '../errors.js'
import type { MonitorMetrics } from '../metrics/monitor-metrics.js'
import { parseOrThrow } from '../validation.js'
import { type AuthOption, createAuthCheck, sendUnauthorized } from './auth.js'
import { skipMetering } from './unmetered.js'

/**
 * Options of a `/metrics` handler (`metricsHandler` of `@apimeter/express`, `apimeterMetrics` of
 * `@apimeter/fastify`, {@link createMetricsHandler}).
 *
 * @example
 * ```ts
 * app.get('/metrics', metricsHandler(monitor, { auth: { token: process.env.METRICS_TOKEN! } }))
 * ```
 */
export interface MetricsHandlerOptions {
  /**
   * Who may scrape (required): `{ token }` for `Authorization: Bearer <token>` (Prometheus's `authorization`
   * scrape setting), or your own check. See {@link AuthOption}.
   * @example
   * ```ts
   * metricsHandler(monitor, { auth: { token: process.env.METRICS_TOKEN! } })
   * ```
   */
  auth: AuthOption
}

/** A Node request handler (`(req, res) => …`); Express and `node:http` take it as it is. Never rejects. */
export type NodeRequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>

const optionsSchema = z.looseObject({}, { error: 'an object { auth }' })

/**
 * The `/metrics` endpoint behind the framework handlers: checks `auth` (401 with a `Bearer` challenge when it says
 * no), answers GET and HEAD with `monitor.metrics.prometheus()` in the format the `Accept` header asks for
 * (OpenMetrics for Prometheus, text 0.0.4 otherwise), and marks its own requests so the apimeter middleware does
 * not record them ({@link skipMetering}). Throws `INVALID_OPTIONS` at once when `auth` is missing or malformed, or
 * when the monitor's metrics are off.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * const serveMetrics = createMetricsHandler(monitor, { auth: { token: process.env.METRICS_TOKEN! } })
 * createServer((req, res) => (req.url === '/metrics' ? serveMetrics(req, res) : app(req, res))).listen(3000)
 * ```
 */
export function createMetricsHandler(monitor: unknown, options: unknown, prefix: string = PACKAGE_NAME): NodeRequestHandler {
  const metrics = (monitor as { metrics?: MonitorMetrics } | null | undefined)?.metrics
  if (typeof metrics?.prometheus !== 'function') {
    throw new ApimeterError('INVALID_OPTIONS', `${prefix}: monitor must be a monitor from createMonitor(), got ${describeValue(monitor)}`, { prefix })
  }
  if (!metrics.enabled) {
    throw new ApimeterError('INVALID_OPTIONS', `${prefix}: the monitor's metrics are off; create it with createMonitor({ metrics: true }) to serve them`, { prefix })
  }
  const parsed = parseOrThrow(optionsSchema, options ?? {}, 'options', 'INVALID_OPTIONS', prefix) as { auth?: unknown }
  const report = (error: ApimeterError) => {
    const fn = (monitor as { report?: (error: ApimeterError) => void }).report
    if (typeof fn === 'function') fn.call(monitor, error)
  }
  const allowed = createAuthCheck(parsed.auth, { prefix, path: 'options.auth', onError: report })
  return async (req, res) => {
    skipMetering(req)
    try {
      if (!(await allowed(req))) return sendUnauthorized(res)
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.statusCode = 405
        res.setHeader('Allow', 'GET, HEAD')
        res.end()
        return
      }
      const accept = req.headers.accept
      const { contentType, body } = await metrics.prometheus({ accept })
      res.statusCode = 200
      res.setHeader('Content-Type', contentType)
      res.setHeader('Cache-Control', 'no-store')
      res.setHeader('Vary', 'Accept')
      res.end(req.method === 'HEAD' ? undefined : body)
    } catch (error) {
      report(new ApimeterError('METRICS_FAILED', `${prefix}: the metrics could not be served: ${errorMessage(error)}`, { prefix, cause: error }))
      if (!res.headersSent) res.statusCode = 500
      res.end()
    }
  }
}
