import { type Monitor, skipMetering } from '@apimeter/core'
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import { createDashboardHandler } from './handler.js'
import type { DashboardOptions } from './options.js'

/**
 * Options of {@link dashboardFastify}: the monitor and the dashboard's options; register it with a `prefix`.
 *
 * @example
 * ```ts
 * await app.register(dashboardFastify, { prefix: '/apimeter', monitor, auth: { token: process.env.APIMETER_TOKEN! } })
 * ```
 */
export interface DashboardFastifyOptions extends DashboardOptions {
  /**
   * The monitor whose storage the dashboard reads, from `createMonitor()`.
   * @example
   * ```ts
   * await app.register(dashboardFastify, { prefix: '/apimeter', monitor: createMonitor({ storage }), auth })
   * ```
   */
  monitor: Monitor
}

// Options Fastify itself reads from every plugin's options object; not ours to validate.
const FASTIFY_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

/**
 * The dashboard as a Fastify 5 plugin, served under the prefix it is registered with (encapsulated: its routes
 * and form parser stay inside that prefix). Its live streams end when the Fastify instance closes. Options are
 * validated at register time (`INVALID_OPTIONS`).
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { apimeterFastify } from '@apimeter/fastify'
 * import { dashboardFastify } from '@apimeter/dashboard'
 *
 * const app = Fastify()
 * await app.register(apimeterFastify, { monitor })
 * await app.register(dashboardFastify, { prefix: '/apimeter', monitor, auth: { token: process.env.APIMETER_TOKEN! } })
 * ```
 */
export const dashboardFastify: FastifyPluginCallback<DashboardFastifyOptions> = (fastify, options, done) => {
  const { monitor, ...rest } = (options ?? {}) as Partial<DashboardFastifyOptions> & Record<string, unknown>
  for (const key of FASTIFY_KEYS) delete rest[key]
  let handle: ReturnType<typeof createDashboardHandler>
  try {
    handle = createDashboardHandler(monitor as Monitor, rest as unknown as DashboardOptions, { root: 'options' })
  } catch (error) {
    done(error as Error)
    return
  }
  const base = fastify.prefix
  // the sign-in form, unless the app already parses forms (@fastify/formbody): then its parser's object is used
  if (!fastify.hasContentTypeParser('application/x-www-form-urlencoded')) {
    fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, next) => next(null, body))
  }
  fastify.addHook('onClose', (_instance, next) => {
    handle.close()
    next()
  })
  // '/' under the prefix answers both '/apimeter' and '/apimeter/': the first gets the slash the page's relative links need
  const serve = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    skipMetering(request.raw)
    const path = request.url.slice(base.length)
    if (path === '' || path.startsWith('?')) return void reply.redirect(`${base}/${path}`, 308)
    reply.hijack()
    await handle(request.raw, reply.raw, { base, path, body: request.body })
  }
  fastify.route({ method: ['GET', 'HEAD', 'POST'], url: '/', handler: serve })
  fastify.route({ method: ['GET', 'HEAD', 'POST'], url: '/*', handler: serve })
  done()
}
