import { ApimeterError, type Monitor } from '@apimeter/core'
import { createServer } from 'node:http'
import { isIP } from 'node:net'
import { createDashboardHandler } from './handler.js'
import { type DashboardOptions, PACKAGE } from './options.js'

/**
 * Options of {@link serveDashboard}: the dashboard's options (with `auth` optional only on a loopback host) and
 * where to listen.
 *
 * @example
 * ```ts
 * await serveDashboard(monitor, { host: '0.0.0.0', port: 4318, auth: { token: process.env.APIMETER_TOKEN! } })
 * ```
 */
export interface ServeDashboardOptions extends Omit<DashboardOptions, 'auth'> {
  /**
   * As in {@link DashboardOptions.auth}. Without it the dashboard is served only to this machine: it refuses to
   * start unless `host` is a loopback address, and answers only requests from a loopback address.
   * @example
   * ```ts
   * await serveDashboard(monitor, { auth: { token: process.env.APIMETER_TOKEN! }, host: '0.0.0.0' })
   * ```
   */
  auth?: DashboardOptions['auth']
  /**
   * The address to listen on.
   * @default '127.0.0.1'
   * @example
   * ```ts
   * await serveDashboard(monitor, { host: '::1' })
   * ```
   */
  host?: string
  /**
   * The port; 0 picks a free one (see the returned `url`).
   * @default 4318
   * @example
   * ```ts
   * const { url } = await serveDashboard(monitor, { port: 0 })
   * ```
   */
  port?: number
}

/** A running standalone dashboard. */
export interface ServedDashboard {
  /** Where it is served, e.g. `http://127.0.0.1:4318/`. */
  url: string
  /** Stops listening and ends the live streams (the monitor is left open). */
  close(): Promise<void>
}

/**
 * True for 127.0.0.0/8, ::1, IPv4-mapped loopback and `localhost`: the addresses a dashboard without auth may
 * listen on and answer.
 *
 * @example
 * ```ts
 * isLoopback(req.socket.remoteAddress)   // true for 127.0.0.1 and ::1
 * ```
 */
export function isLoopback(host: string | undefined): boolean {
  if (host === undefined) return false
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h === '::1') return true
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h
  return isIP(v4) === 4 && v4.startsWith('127.')
}

/**
 * Serves the dashboard alone on its own HTTP server (what `apimeter dashboard` runs). Resolves once listening.
 * Without `auth` it refuses (`INVALID_OPTIONS`) to listen anywhere but on a loopback address.
 *
 * @example
 * ```ts
 * const { url, close } = await serveDashboard(monitor, { port: 0 })
 * console.log(`dashboard at ${url}`)
 * process.on('SIGINT', () => void close())
 * ```
 */
export async function serveDashboard(monitor: Monitor, options: ServeDashboardOptions = {}): Promise<ServedDashboard> {
  const { host = '127.0.0.1', port = 4318, auth, ...rest } = options
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE}: options.port must be a whole number from 0 to 65535, got ${String(port)}`, { prefix: PACKAGE })
  }
  if (auth === undefined && !isLoopback(host)) {
    throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE}: options.auth is required when listening on ${host}: pass a token (apimeter dashboard --token …), or listen on a loopback address such as 127.0.0.1`, { prefix: PACKAGE })
  }
  // no auth on a loopback host: only this machine's clients are served
  const handle = createDashboardHandler(monitor, { ...rest, auth: auth ?? ((req) => isLoopback(req.socket.remoteAddress)) })
  const server = createServer((req, res) => void handle(req, res, { base: '', path: req.url ?? '/' }))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  const actual = typeof address === 'object' && address !== null ? address.port : port
  const shown = host.includes(':') ? `[${host}]` : host
  return {
    url: `http://${shown}:${actual}/`,
    close: () =>
      new Promise<void>((resolve) => {
        handle.close()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
