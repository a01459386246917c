import { ApimeterError, type AuthCheck, createAuthCheck, type Monitor, readStored, sendUnauthorized, skipMetering, type StoredReader } from '@apimeter/core'
import { reportToMonitor } from '@apimeter/core/inbound'
import { errorMessage } from '@apimeter/core/sql'
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { gzip, gzipSync } from 'node:zlib'
import { type DashboardOptions, PACKAGE, resolveOptions, type ResolvedDashboardOptions } from './options.js'
import { appPage, deniedPage, signInPage } from './page.js'
import { BadQuery, parseViewQuery } from './query.js'
import { cookieHeader, Sessions } from './session.js'
import { type ViewName, viewData, VIEWS } from './views.js'

/**
 * Where a request falls inside the dashboard: `base` is the path it is mounted at (`/apimeter`, or `''` at the
 * root), `path` the rest (`/`, `/api/overview`). `body` is a request body a framework already read (Express's
 * body parsers, Fastify's content-type parsers); otherwise the handler reads it itself.
 */
export interface DashboardRoute {
  base: string
  path: string
  body?: unknown
}

/**
 * The framework-neutral dashboard: serves one request on Node's own request and response. The Express and
 * Fastify adapters, the CLI and {@link serveDashboard} are thin layers over it. Never rejects.
 */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse, route: DashboardRoute): Promise<void>
  /**
   * Ends every open live stream and stops their timers (a server's own close waits for open streams otherwise).
   * @example
   * ```ts
   * process.on('SIGTERM', () => { handle.close(); server.close() })
   * ```
   */
  close(): void
}

const JSON_TYPE = 'application/json; charset=utf-8'
const HTML_TYPE = 'text/html; charset=utf-8'
// uPlot positions its elements with style attributes, hence 'unsafe-inline' for styles only; no script but ours
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/**
 * Builds the framework-neutral dashboard handler for `monitor`, validating `options` (`INVALID_OPTIONS` naming the
 * field). Use it to serve the dashboard from a plain `node:http` server or a framework without an adapter.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * const handle = createDashboardHandler(monitor, { auth: { token: process.env.APIMETER_TOKEN! } })
 * createServer((req, res) => {
 *   const url = req.url ?? '/'
 *   if (url.startsWith('/apimeter/')) void handle(req, res, { base: '/apimeter', path: url.slice('/apimeter'.length) })
 *   else res.end('app')
 * }).listen(3000)
 * ```
 */
export function createDashboardHandler(monitor: Monitor, options: DashboardOptions, where: { prefix?: string; root?: string } = {}): DashboardHandler {
  const prefix = where.prefix ?? PACKAGE
  const root = where.root ?? 'options'
  if (typeof monitor !== 'object' || monitor === null || typeof (monitor as Partial<Monitor>).stats?.summary !== 'function') {
    throw new ApimeterError('INVALID_OPTIONS', `${prefix}: monitor must be a monitor from createMonitor(), got ${monitor === null ? 'null' : typeof monitor}`, { prefix })
  }
  const resolved = resolveOptions(options, root)
  const report = (error: ApimeterError): void => void reportToMonitor(monitor, error)
  const auth = (options as Partial<DashboardOptions>).auth
  const allowed = createAuthCheck(auth, { prefix, path: `${root}.auth`, onError: report })
  const sessions = typeof auth === 'object' && auth !== null ? new Sessions(Array.isArray(auth.token) ? auth.token : [auth.token]) : undefined
  const server = new Dashboard(monitor, resolved, allowed, sessions, report, readStored(monitor.storage, { clock: resolved.clock }))
  const handler = ((req, res, route) => server.serve(req, res, route)) as DashboardHandler
  handler.close = () => server.close()
  return handler
}

/**
 * Wrong sign-in tokens allowed from one client address within `windowMs`; after that, every sign-in from it is
 * answered 429 (with Retry-After) until the oldest of them is `windowMs` old — through the form and in bearer headers
 * alike (with token auth; the host's own check is its business). Behind a proxy every client shares the proxy's
 * address, so one guesser locks out token sign-ins for all of them for that long (signed-in cookies keep working).
 */
const SIGNIN_LIMIT = { failures: 5, windowMs: 15 * 60_000, addresses: 1_000 } as const

class Dashboard {
  private readonly streams = new Set<() => void>()
  /** Times of recent wrong tokens, by client address (see {@link SIGNIN_LIMIT}). */
  private readonly failures = new Map<string, number[]>()
  private assets: Map<string, { type: string; body: Buffer; gzip: Buffer }> | undefined

  constructor(
    private readonly monitor: Monitor,
    private readonly options: ResolvedDashboardOptions,
    private readonly allowed: AuthCheck,
    private readonly sessions: Sessions | undefined,
    private readonly report: (error: ApimeterError) => void,
    private readonly stored: StoredReader,
  ) {}

  close(): void {
    for (const end of [...this.streams]) end()
  }

  /** Live feeds by view and query: every page open on the same view and filters shares one read per interval. */
  private readonly feeds = new Map<string, Feed>()

  async serve(req: IncomingMessage, res: ServerResponse, route: DashboardRoute): Promise<void> {
    skipMetering(req)
    try {
      await this.route(req, res, route)
    } catch (error) {
      this.report(new ApimeterError('CALLBACK_FAILED', `${PACKAGE}: ${req.method} ${route.path} failed: ${errorMessage(error)}`, { prefix: PACKAGE, cause: error }))
      if (!res.headersSent) send(res, 500, JSON_TYPE, JSON.stringify({ error: 'internal error' }))
      else res.end()
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, { base, path, body }: DashboardRoute): Promise<void> {
    const url = new URL(`http://dashboard.invalid${path.startsWith('/') ? path : `/${path}`}`)
    const pathname = url.pathname
    const method = req.method ?? 'GET'
    res.setHeader('X-Content-Type-Options', 'nosniff')
    res.setHeader('Referrer-Policy', 'no-referrer')
    if (pathname.startsWith('/assets/') && (method === 'GET' || method === 'HEAD')) return this.asset(req, res, pathname.slice('/assets/'.length))
    if (pathname === '/signin' && method === 'POST' && this.sessions) return this.signIn(req, res, base, body)
    if (pathname === '/signout' && method === 'POST') {
      res.setHeader('Set-Cookie', cookieHeader('', `${base}/`, this.secure(req)))
      return redirect(res, `${base}/`)
    }
    const now = this.options.clock.now()
    // a token in a bearer header counts against the same limit as the sign-in form's (the host's own check does not)
    const bearer = this.sessions !== undefined && typeof req.headers.authorization === 'string'
    const ip = req.socket?.remoteAddress ?? 'unknown'
    if (bearer) {
      const wait = this.lockedFor(ip, now)
      if (wait > 0) {
        res.setHeader('Retry-After', String(Math.ceil(wait / 1000)))
        return send(res, 429, JSON_TYPE, JSON.stringify({ error: 'too many wrong tokens from this address; try again later' }))
      }
    }
    const byAuth = await this.allowed(req)
    if (bearer && !byAuth) this.failed(ip, now)
    const signedIn = byAuth || (this.sessions?.valid(req, now) ?? false)
    if (pathname === '/' && (method === 'GET' || method === 'HEAD')) {
      res.setHeader('Content-Security-Policy', CSP)
      if (!signedIn) return send(res, 401, HTML_TYPE, this.sessions ? signInPage(this.options.title, undefined) : deniedPage(this.options.title), req)
      return send(res, 200, HTML_TYPE, appPage(this.options.title, this.sessions !== undefined), req)
    }
    const api = /^\/api\/([a-z]+)$/.exec(pathname)
    if (!api || method !== 'GET') return send(res, 404, JSON_TYPE, JSON.stringify({ error: 'not found' }))
    if (!signedIn) return sendUnauthorized(res)
    let query
    try {
      query = () => parseViewQuery(url.searchParams, this.options.clock.now())
      query()
    } catch (error) {
      if (error instanceof BadQuery) return send(res, 400, JSON_TYPE, JSON.stringify({ error: error.message }))
      throw error
    }
    if (api[1] === 'stream') {
      const view = url.searchParams.get('view') ?? 'overview'
      if (!isView(view)) return send(res, 400, JSON_TYPE, JSON.stringify({ error: `view must be one of ${VIEWS.join(', ')}` }))
      return this.stream(req, res, view, url.searchParams, query)
    }
    if (!isView(api[1]!)) return send(res, 404, JSON_TYPE, JSON.stringify({ error: 'not found' }))
    send(res, 200, JSON_TYPE, await this.viewJson(api[1], query()), req)
  }

  /** Checks the form's token; a sign-in (or a wrong token) is written to the audit log. */
  private async signIn(req: IncomingMessage, res: ServerResponse, base: string, body: unknown): Promise<void> {
    const origin = req.headers.origin
    if (typeof origin === 'string' && origin !== 'null' && new URL(origin).host !== req.headers.host) return send(res, 403, JSON_TYPE, JSON.stringify({ error: 'cross-origin sign-in refused' }))
    // a framework's body parser may have read the form already; an empty object means none did (Express 4 sets one)
    const parsed = body !== undefined && body !== null && !(typeof body === 'object' && !Buffer.isBuffer(body) && Object.keys(body).length === 0)
    const token = tokenFrom(parsed ? body : await readBody(req))
    const ip = req.socket?.remoteAddress ?? 'unknown'
    const now = this.options.clock.now()
    res.setHeader('Content-Security-Policy', CSP)
    const wait = this.lockedFor(ip, now)
    if (wait > 0) {
      // every attempt is refused while locked, a right token too: otherwise guessing would go on at full speed
      res.setHeader('Retry-After', String(Math.ceil(wait / 1000)))
      return send(res, 429, HTML_TYPE, signInPage(this.options.title, `Too many wrong tokens from your address: try again in ${Math.ceil(wait / 60_000)} min.`))
    }
    const ok = token !== undefined && this.sessions!.tokenMatches(token)
    this.audit(ok ? 'dashboard.signin' : 'dashboard.signin_failed', `${ok ? 'signed in' : 'wrong token'} from ${ip}`)
    if (ok) this.failures.delete(ip)
    else this.failed(ip, now)
    if (!ok) return send(res, 401, HTML_TYPE, signInPage(this.options.title, 'That token is not right.'))
    res.setHeader('Set-Cookie', cookieHeader(this.sessions!.issue(this.options.clock.now()), `${base}/`, this.secure(req)))
    redirect(res, `${base}/`)
  }

  /** How long sign-ins from `ip` stay refused (0: not refused). */
  private lockedFor(ip: string, now: number): number {
    const times = this.failures.get(ip)
    if (times === undefined) return 0
    while (times.length > 0 && times[0]! <= now - SIGNIN_LIMIT.windowMs) times.shift()
    if (times.length === 0) this.failures.delete(ip)
    return times.length >= SIGNIN_LIMIT.failures ? times[0]! + SIGNIN_LIMIT.windowMs - now : 0
  }

  /** Remembers a wrong token from `ip` (the addresses remembered are bounded: the oldest is forgotten first). */
  private failed(ip: string, now: number): void {
    const times = this.failures.get(ip) ?? []
    times.push(now)
    if (times.length > SIGNIN_LIMIT.failures) times.shift()
    this.failures.delete(ip)
    this.failures.set(ip, times)
    if (this.failures.size > SIGNIN_LIMIT.addresses) this.failures.delete(this.failures.keys().next().value!)
  }

  private audit(kind: string, detail: string): void {
    this.monitor.audit.append({ kind, subject: 'dashboard', detail, at: this.options.clock.now() }).catch((error: unknown) => {
      this.report(new ApimeterError('WRITE_FAILED', `${PACKAGE}: a ${kind} audit row could not be stored: ${errorMessage(error)}`, { prefix: PACKAGE, cause: error }))
    })
  }

  private secure(req: IncomingMessage): boolean {
    if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted === true) return true
    return this.options.trustProxy && String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]?.trim() === 'https'
  }

  /**
   * The page's one live stream (server-sent events): the view's data now, then again whenever a read every
   * `liveIntervalMs` finds it changed. It reads the storage, so calls any instance wrote show up. Streams of the
   * same view and query share one feed: one read per interval, however many pages are open.
   */
  private stream(req: IncomingMessage, res: ServerResponse, view: ViewName, search: URLSearchParams, query: () => ReturnType<typeof parseViewQuery>): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' })
    res.write(`retry: ${Math.max(1000, this.options.liveIntervalMs)}\n\n`)
    const params = [...search].filter(([k]) => k !== 'view').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    const key = JSON.stringify([view, params])
    let feed = this.feeds.get(key)
    if (!feed) {
      feed = new Feed(
        () => this.viewJson(view, query()),
        (error) => this.report(new ApimeterError('CALLBACK_FAILED', `${PACKAGE}: the ${view} view could not be read: ${errorMessage(error)}`, { prefix: PACKAGE, cause: error })),
        this.options.liveIntervalMs,
        () => this.feeds.delete(key),
      )
      this.feeds.set(key, feed)
    }
    let open = true
    const unsubscribe = feed.subscribe((chunk) => {
      if (open) res.write(chunk)
    })
    const end = (): void => {
      if (!open) return
      open = false
      unsubscribe()
      this.streams.delete(end)
      res.end()
    }
    this.streams.add(end)
    req.on('close', end)
    res.on('close', end)
  }

  /** One view's data as JSON (what the JSON endpoints answer and the live streams send). */
  private async viewJson(view: ViewName, query: ReturnType<typeof parseViewQuery>): Promise<string> {
    return JSON.stringify(await viewData(this.monitor, view, query, this.stored))
  }

  private asset(req: IncomingMessage, res: ServerResponse, name: string): void {
    const asset = this.loadAssets().get(name)
    if (!asset) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n')
    res.setHeader('Cache-Control', 'no-cache')
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))
    res.statusCode = 200
    res.setHeader('Content-Type', asset.type)
    res.setHeader('Vary', 'Accept-Encoding')
    if (gzip) res.setHeader('Content-Encoding', 'gzip')
    const body = gzip ? asset.gzip : asset.body
    res.setHeader('Content-Length', body.length)
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  /** The built script and styles, read once (from dist/assets beside the built module, or the built package when run from source). */
  private loadAssets(): Map<string, { type: string; body: Buffer; gzip: Buffer }> {
    if (this.assets) return this.assets
    const assets = new Map<string, { type: string; body: Buffer; gzip: Buffer }>()
    for (const [name, type] of [
      ['app.js', 'text/javascript; charset=utf-8'],
      ['app.css', 'text/css; charset=utf-8'],
    ] as const) {
      const body = readAsset(name)
      assets.set(name, { type, body, gzip: gzipSync(body, { level: 9 }) })
    }
    this.assets = assets
    return assets
  }
}

/**
 * One view and query's live data, shared by the streams that show it: read every `intervalMs` (never two reads at
 * once) and sent to every subscriber when it changed; a new subscriber gets the last data at once. The timer is
 * unref'd and stops with the last subscriber.
 */
class Feed {
  private readonly subscribers = new Set<(chunk: string) => void>()
  private readonly timer: NodeJS.Timeout
  private last: string | undefined
  private busy = false
  private stopped = false

  constructor(
    private readonly read: () => Promise<string>,
    private readonly onError: (error: unknown) => void,
    intervalMs: number,
    private readonly onStop: () => void,
  ) {
    this.timer = setInterval(() => void this.tick(), intervalMs)
    this.timer.unref()
  }

  subscribe(write: (chunk: string) => void): () => void {
    this.subscribers.add(write)
    if (this.last !== undefined) write(`event: data\ndata: ${this.last}\n\n`)
    else void this.tick()
    return () => {
      this.subscribers.delete(write)
      if (this.subscribers.size > 0) return
      this.stopped = true
      clearInterval(this.timer)
      this.onStop()
    }
  }

  private async tick(): Promise<void> {
    if (this.busy || this.stopped) return
    this.busy = true
    let chunk: string
    try {
      const json = await this.read()
      chunk = json !== this.last ? `event: data\ndata: ${json}\n\n` : ': unchanged\n\n'
      this.last = json
    } catch (error) {
      this.onError(error)
      chunk = `event: problem\ndata: ${JSON.stringify({ error: 'the data could not be read; retrying' })}\n\n`
    } finally {
      this.busy = false
    }
    for (const write of [...this.subscribers]) write(chunk)
  }
}

function readAsset(name: string): Buffer {
  const places = [new URL(`./assets/${name}`, import.meta.url), new URL(`../dist/assets/${name}`, import.meta.url)]
  for (const place of places) {
    try {
      return readFileSync(place)
    } catch {
      // next place
    }
  }
  throw new Error(`${PACKAGE}: its page asset ${name} is missing (build the package: npm run build -w @apimeter/dashboard)`)
}

function isView(view: string): view is ViewName {
  return (VIEWS as readonly string[]).includes(view)
}

function send(res: ServerResponse, status: number, type: string, body: string, req?: IncomingMessage): void {
  res.statusCode = status
  res.setHeader('Content-Type', type)
  res.setHeader('Cache-Control', 'no-store')
  const end = (payload: Buffer | string): void => {
    res.setHeader('Content-Length', Buffer.byteLength(payload))
    res.end(req?.method === 'HEAD' ? undefined : payload)
  }
  if (!req || body.length <= 1024 || !/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) return end(body)
  // compressed on libuv's pool, not on the event loop of the app the dashboard is mounted in
  gzip(body, (error, zipped) => {
    if (error) return end(body)
    res.setHeader('Content-Encoding', 'gzip')
    res.setHeader('Vary', 'Accept-Encoding')
    end(zipped)
  })
}

function redirect(res: ServerResponse, location: string): void {
  res.statusCode = 303
  res.setHeader('Location', location)
  res.setHeader('Cache-Control', 'no-store')
  res.end()
}

/** Reads a small form body (at most 4 KiB). */
async function readBody(req: IncomingMessage): Promise<string> {
  let text = ''
  for await (const chunk of req) {
    text += String(chunk)
    if (text.length > 4096) break
  }
  return text
}

/** The `token` field of a sign-in form, parsed here or by the framework. */
function tokenFrom(body: unknown): string | undefined {
  if (typeof body === 'string' || Buffer.isBuffer(body)) return new URLSearchParams(String(body)).get('token') ?? undefined
  if (typeof body === 'object' && body !== null && typeof (body as { token?: unknown }).token === 'string') return (body as { token: string }).token
  return undefined
}
