import type { IncomingMessage } from 'node:http'

/**
 * Requests apimeter's own handlers serve (`/metrics`, the dashboard) are not the host's traffic: they are marked
 * here and the inbound meter drops them when they end. The request is already being metered when a handler runs
 * (the middleware sits before the routes), so the mark is read at finish/abort, not at start.
 *
 * `anyMarked` keeps the check free for apps that never serve such a handler: until the first mark, the meter
 * reads one module-level boolean and never touches the WeakSet.
 */
let anyMarked = false
const marked = new WeakSet<object>()

/**
 * Marks a request so that the apimeter middleware (Express, Fastify) records nothing for it, whatever happens
 * afterwards. For handlers that serve monitoring itself (a metrics endpoint, a dashboard, a health check you do
 * not want counted). Pass the raw Node request (`req` in Express, `request.raw` in Fastify).
 *
 * @example
 * ```ts
 * import { skipMetering } from '@apimeter/core'
 *
 * app.get('/internal/ping', (req, res) => {
 *   skipMetering(req)   // Fastify: skipMetering(request.raw)
 *   res.end('pong')
 * })
 * ```
 */
export function skipMetering(req: IncomingMessage): void {
  if (typeof req !== 'object' || req === null) return
  anyMarked = true
  marked.add(req)
}

/**
 * True when {@link skipMetering} marked this request.
 *
 * @example
 * ```ts
 * if (isMeteringSkipped(req)) return   // an apimeter handler's own request
 * ```
 */
export function isMeteringSkipped(req: IncomingMessage): boolean {
  return anyMarked && marked.has(req)
}
