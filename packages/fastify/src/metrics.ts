import { ApimeterError, createMetricsHandler, type MetricsHandlerOptions, type Monitor } from '@apimeter/core'
import type { FastifyPluginCallback } from 'fastify'

/**
 * Options of {@link apimeterMetrics}: the monitor, who may scrape (`auth`, required) and the path.
 *
 * @example
 * ```ts
 * await app.register(apimeterMetrics, { monitor, auth: { token: process.env.METRICS_TOKEN! }, path: '/internal/metrics' })
 * ```
 */
export interface ApimeterMetricsOptions extends MetricsHandlerOptions {
  /**
   * The monitor whose metrics are served, from `createMonitor({ metrics: true })`.
   * @example
   * ```ts
   * await app.register(apimeterMetrics, { monitor: createMonitor({ metrics: true }), auth })
   * ```
   */
  monitor: Monitor
  /**
   * Where the metrics are served (under the registration's `prefix`, if any).
   * @default '/metrics'
   * @example
   * ```ts
   * await app.register(apimeterMetrics, { monitor, auth, path: '/internal/metrics' })
   * ```
   */
  path?: string
}

const PREFIX = '@apimeter/fastify'

const plugin: FastifyPluginCallback<ApimeterMetricsOptions> = (fastify, options, done) => {
  let serve: ReturnType<typeof createMetricsHandler>
  let path: string
  try {
    const { monitor, path: given, auth } = (options ?? {}) as Partial<ApimeterMetricsOptions>
    if (given !== undefined && (typeof given !== 'string' || !given.startsWith('/'))) {
      throw new ApimeterError('INVALID_OPTIONS', `${PREFIX}: options.path must be a path starting with '/', got ${JSON.stringify(given) ?? String(given)}`, { prefix: PREFIX })
    }
    path = given ?? '/metrics'
    serve = createMetricsHandler(monitor, { auth }, PREFIX)
  } catch (error) {
    done(error as Error) // register (and ready()) reject with it
    return
  }
  // not metered: left out of the apimeter plugin by its route config, and marked by the handler (skipMetering)
  fastify.route({
    method: ['GET', 'HEAD'],
    url: path,
    config: { apimeter: false },
    handler: (request, reply) => {
      reply.hijack() // the Node handler writes the response itself
      return serve(request.raw, reply.raw)
    },
  })
  done()
}

/**
 * Fastify 5 plugin serving `monitor.metrics` for Prometheus at `path` (`/metrics`): OpenMetrics or text 0.0.4 by
 * `Accept`, behind the required `auth`, and never metered itself. Register it where the route should live (it
 * honours `prefix`). Options are checked at register time (`INVALID_OPTIONS`).
 *
 * @example
 * ```ts
 * import { apimeterFastify, apimeterMetrics } from '@apimeter/fastify'
 *
 * const monitor = createMonitor({ metrics: true })
 * await app.register(apimeterFastify, { monitor })
 * await app.register(apimeterMetrics, { monitor, auth: { token: process.env.METRICS_TOKEN! } })
 * ```
 */
export const apimeterMetrics = plugin
