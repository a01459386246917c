import { type Monitor, skipMetering } from '@apimeter/core'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createDashboardHandler } from './handler.js'
import type { DashboardOptions } from './options.js'

/** What Express hands a middleware, structurally (no dependency on Express's types). */
type ExpressRequest = IncomingMessage & { originalUrl?: string; url: string; body?: unknown }

/**
 * The dashboard as Express 4 or 5 middleware: mount it on a path. `close()` ends its open live streams (the
 * server's own close waits for them otherwise). Throws `INVALID_OPTIONS` on a missing or malformed `auth`.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { apimeter } from '@apimeter/express'
 * import { dashboard } from '@apimeter/dashboard'
 *
 * const app = express()
 * app.use(apimeter(monitor))
 * app.use('/apimeter', dashboard(monitor, { auth: { token: process.env.APIMETER_TOKEN! } }))
 * ```
 */
export function dashboard(monitor: Monitor, options: DashboardOptions): ((req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void) & { close(): void } {
  const handle = createDashboardHandler(monitor, options)
  const middleware = (req: IncomingMessage, res: ServerResponse): void => {
    const r = req as ExpressRequest
    const original = (r.originalUrl ?? r.url).split('?')[0]!
    const path = r.url.split('?')[0]!
    // Mounted at /apimeter, Express hands '/' for both /apimeter and /apimeter/: the page's relative links need the slash
    if (path === '/' && !original.endsWith('/')) {
      skipMetering(req)
      res.statusCode = 308
      res.setHeader('Location', `${original}/${r.url.slice(1)}`)
      res.end()
      return
    }
    const base = original.slice(0, original.length - path.length)
    void handle(req, res, { base, path: r.url, body: r.body })
  }
  return Object.assign(middleware, { close: () => handle.close() })
}
