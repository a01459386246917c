import { type Monitor, UNMATCHED_ROUTE } from '@apimeter/core'
import { ServerResponse } from 'node:http'
import { countOnPrototype, createInboundMeter, type InboundCall, type InboundMeter, type InboundOptions, watchCompletion } from '@apimeter/core/inbound'
import type { FastifyPluginCallback, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `false` leaves this route out of apimeter's metering.
     * @default true
     * @example
     * ```ts
     * app.get('/health', { config: { apimeter: false } }, () => 'ok')
     * ```
     */
    apimeter?: boolean
  }
}

/**
 * Options of {@link apimeterFastify}: `monitor` is required, everything else optional.
 *
 * @example
 * ```ts
 * await app.register(apimeterFastify, {
 *   monitor,
 *   tenant: (request) => request.headers['x-tenant-id'] as string | undefined,
 *   ignore: ['/health'],
 *   closeMonitor: true,
 * })
 * ```
 */
export interface ApimeterFastifyOptions extends InboundOptions<FastifyRequest> {
  /**
   * The monitor requests are recorded on, from `createMonitor()`.
   * @example
   * ```ts
   * await app.register(apimeterFastify, { monitor: createMonitor({ service: 'api' }) })
   * ```
   */
  monitor: Monitor
  /**
   * Close the monitor (flushing what is buffered) when the Fastify instance closes.
   * @default false
   * @example
   * ```ts
   * await app.register(apimeterFastify, { monitor, closeMonitor: true })
   * await app.close()   // also awaits monitor.close()
   * ```
   */
  closeMonitor?: boolean
}

// Options Fastify itself reads from every plugin's options object; not ours to validate.
const FASTIFY_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

/** What apimeter reads of a request's route: its template and its `config`. */
type RouteConfig = { url?: string; apimeter?: boolean } | undefined
/**
 * The key under which Fastify keeps a request's route context (`kRouteContext`, described `fastify.context`), found on
 * the first request; null when a Fastify release keeps it elsewhere.
 */
let contextKey: symbol | null | undefined
/**
 * The route's config, read from the route context Fastify keeps on the request. `request.routeOptions` gives the same
 * `config` (and `url`, which is `config.url`), but builds a new object of twelve fields on every read.
 */
function routeConfig(request: FastifyRequest): RouteConfig {
  const held = request as unknown as Record<symbol, { config?: RouteConfig } | undefined>
  // looked for once (null, when absent, is remembered too: `??=` would search again on every request)
  if (contextKey === undefined) contextKey = Object.getOwnPropertySymbols(request).find((key) => key.description === 'fastify.context') ?? null
  const context = contextKey === null ? undefined : held[contextKey]
  if (context !== undefined) return context.config
  const route = request.routeOptions
  return { url: route.url, apimeter: route.config?.apimeter }
}

const plugin: FastifyPluginCallback<ApimeterFastifyOptions> = (fastify, options, done) => {
  const { monitor, ...rest } = (options ?? {}) as Partial<ApimeterFastifyOptions> & Record<string, unknown>
  for (const key of FASTIFY_KEYS) delete rest[key]
  let meter: InboundMeter<FastifyRequest>
  try {
    meter = createInboundMeter<FastifyRequest>(monitor, rest, {
      prefix: '@apimeter/fastify',
      monitorPath: 'options.monitor',
      clientIp: (request) => request.ip,
      switches: ['closeMonitor'],
    })
  } catch (error) {
    done(error as Error) // register (and ready()) reject with it
    return
  }
  // Per-request state in a request decorator: declared up front, so every request object keeps one shape. One
  // symbol per registration, so two monitors on one app each keep their own call.
  const kCall = Symbol('apimeter.call')
  fastify.decorateRequest(kCall, null)
  type Metered = FastifyRequest & { [kCall]: InboundCall | null }
  // Response bytes are counted by write()/end() on http.ServerResponse.prototype (Fastify's replies are plain Node
  // responses), so no response is wrapped; and the end of a response comes from the server's diagnostics channels
  // (watchCompletion): no onResponse or onRequestAbort hook, whose listeners and closures Fastify would set up for
  // every request.
  countOnPrototype(ServerResponse.prototype)

  fastify.addHook('onRequest', (request, reply, next) => {
    const config = routeConfig(request)
    if (config?.apimeter !== false) {
      const call = meter.start(request, request.raw, reply.raw)
      if (call !== undefined) {
        call.route = config?.url ?? UNMATCHED_ROUTE // undefined for the 404 handler
        ;(request as Metered)[kCall] = call
        watchCompletion(request.raw, reply.raw, call)
      }
    }
    next()
  })
  fastify.addHook('onError', (request, _reply, error, next) => {
    ;(request as Metered)[kCall]?.error(error)
    next()
  })
  if (meter.switches.closeMonitor === true) {
    fastify.addHook('onClose', (_instance, next) => {
      meter.monitor.close().then(() => next(), next)
    })
  }
  done()
}

/**
 * Fastify 5 plugin recording every request the app receives on `monitor`: route template (`routeOptions.url`),
 * status, outcome, duration, request and response bytes, errors, client aborts, client and identity fields.
 * Wrapped with `fastify-plugin`, so it meters the whole app whatever the context it is registered in. Options are
 * validated at register time (`INVALID_OPTIONS`); afterwards it never throws or delays a request.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { createMonitor } from '@apimeter/core'
 * import { apimeterFastify } from '@apimeter/fastify'
 *
 * const app = Fastify()
 * await app.register(apimeterFastify, { monitor: createMonitor({ service: 'api' }) })
 * app.get('/orders/:id', async (request) => ({ id: request.params }))   // recorded as GET /orders/:id
 * ```
 */
export const apimeterFastify = fp(plugin, { fastify: '5.x', name: '@apimeter/fastify' })
