import { type Monitor, UNMATCHED_ROUTE } from '@apimeter/core'
import { type Completable, countOnPrototype, createInboundMeter, type InboundCall, type InboundOptions, joinRoute, templateFromMatch, watchCompletion } from '@apimeter/core/inbound'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { channel } from 'node:diagnostics_channel'
import { IncomingMessage, type Server, ServerResponse } from 'node:http'

/**
 * Options of {@link apimeter}: every field is optional.
 *
 * @example
 * ```ts
 * app.use(apimeter(monitor, {
 *   tenant: (req) => req.get('x-tenant-id'),
 *   user: (req) => req.user?.id,
 *   apiKey: (req) => req.get('x-api-key'),   // only a hash is stored
 *   ignore: ['/health', '/static/*'],
 * }))
 * ```
 */
export interface ApimeterExpressOptions extends InboundOptions<Request> {}

/**
 * Express 4 and 5 middleware recording every request the app receives on `monitor`: route template, status,
 * outcome, duration, request and response bytes, client and identity fields. Register it before your routes.
 * Throws an `INVALID_OPTIONS` error on a bad argument; never throws or delays a request afterwards.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { createMonitor } from '@apimeter/core'
 * import { apimeter } from '@apimeter/express'
 *
 * const monitor = createMonitor({ service: 'shop' })
 * const app = express()
 * app.use(apimeter(monitor))
 * app.get('/orders/:id', (req, res) => res.json({ id: req.params.id }))   // recorded as GET /orders/:id
 * ```
 */
export function apimeter(monitor: Monitor, options: ApimeterExpressOptions = {}): RequestHandler {
  const meter = createInboundMeter<Request>(monitor, options, {
    prefix: '@apimeter/express',
    monitorPath: 'monitor',
    clientIp,
  })
  subscribeEarlySlots()
  return function apimeterMiddleware(req: Request, res: Response, next: NextFunction): void {
    const call = meter.start(req, req, res)
    if (call !== undefined) {
      try {
        track(req, res, call)
      } catch {
        // a request object that refuses the route watchers is served unmetered rather than broken
      }
    }
    next()
  }
}

/**
 * The client address as Express resolves it (`req.ip`). With no proxy trusted (Express's default, `trust proxy`
 * false) that is the socket's address, so it is read there instead of through `req.ip`, which parses the
 * X-Forwarded-For header into arrays on every request only to discard it.
 */
function clientIp(req: Request): string | undefined {
  // The compiled setting read where app.get('trust proxy fn') finds it (an app's settings inherit its parent's), as a
  // plain property lookup rather than through app.get(), which walks the settings chain with hasOwnProperty calls.
  const trust = (req.app as { settings?: Record<string, unknown> } | undefined)?.settings?.['trust proxy fn']
  // proxy-addr's compiled "trust nothing" (what Express compiles `false`, `[]` and the default to)
  if (typeof trust === 'function' && trust.name === 'trustNone') return req.socket?.remoteAddress
  return req.ip
}

/**
 * How the route template is found. Express only keeps real paths (`req.baseUrl` is `/orgs/42`, and Express 5
 * resets it after `next(err)`), so the middleware watches the router write `req.baseUrl` and `req.route` on this
 * request: each mount entered is remembered with the parameters it matched, and the moment a route is dispatched
 * the chain of mounts is captured. The template is assembled only when the response is done.
 *
 * The watching costs almost nothing per request where it can: `baseUrl` and `route` become accessors once, on the
 * request prototype of the Express copy the app uses (`express.request`, which every app's and sub-app's request
 * inherits from), keeping their values in one small object per request ({@link Slots}: given as the server hands the
 * request over, else at the router's first write; it also holds the routing state and the call once the request is
 * metered). Express 5 sets the prototype before
 * its router writes anything, so every write goes through them. Where a request already holds its own `baseUrl`
 * (Express 4's router writes it before the prototype is set; the first request of an app; a request another copy
 * of this package watches the old way), the accessors are defined on that one request instead.
 */
interface Mount {
  readonly parent: Mount | null
  /** `req.baseUrl` inside this mount. */
  readonly url: string
  /** The part of the path this mount matched, and the parameters that match produced. */
  readonly piece: string
  readonly params: Readonly<Record<string, unknown>> | undefined
}

/**
 * One object per request: the values behind the `baseUrl` and `route` accessors and, once the request is metered,
 * what is known of its routing and the call to record; told by the server when its response is done
 * (watchCompletion).
 */
class Slots implements Completable {
  /** Given when the server handed the request over (its server is marked already); see {@link subscribeEarlySlots}. */
  constructor(readonly early = false) {}
  baseUrl: unknown = undefined
  route: unknown = undefined
  /** The call to record when the response is done; undefined while the request is not metered. */
  call: InboundCall | undefined = undefined
  /** The calls of further apimeter middleware on the same app (rare). */
  more: InboundCall[] | undefined = undefined
  /** Accessors found already defined on the request (by another copy of this package), chained to. */
  prev: { baseUrl?: PropertyDescriptor; route?: PropertyDescriptor } | undefined = undefined
  mount: Mount | null = null
  routeMount: Mount | null = null
  routeParams: Readonly<Record<string, unknown>> | undefined = undefined
  routeUrl = '/'

  finish(statusCode: number): void {
    this.settle(statusCode)
  }

  abort(): void {
    this.settle(undefined)
  }

  /** Records every call with the route template: finished with the status, or aborted (no status). */
  private settle(statusCode: number | undefined): void {
    let route: string
    try {
      route = routeTemplate(this)
    } catch {
      route = UNMATCHED_ROUTE // never let an unexpected routing shape throw out of the server's completion
    }
    settleCall(this.call!, route, statusCode)
    if (this.more !== undefined) for (const call of this.more) settleCall(call, route, statusCode)
  }
}

function settleCall(call: InboundCall, route: string, statusCode: number | undefined): void {
  call.route = route
  if (statusCode === undefined) call.abort()
  else call.finish(statusCode)
}

/** Set on a request prototype this copy has put its accessors on (or failed to: then `false`). */
const PROTO_WATCHED = Symbol('apimeter.express.prototype')
/** Set on a request by every copy of this package that watches it, so another copy knows to chain. */
const WATCHED = Symbol.for('apimeter.express.watched')
type Tracked<T> = T & {
  [WATCHED]?: true
  [PROTO_WATCHED]?: boolean
  [SLOTS]?: Slots
}

/**
 * The slots of a request, on the request under a symbol. A property rather than a weak map: the router's first write
 * adds it at the same point of every request, and a weak map with an entry per request made the garbage collector
 * dearer than the property costs (measured side by side, two builds loaded in pairs on one core: the weak map's
 * server used 3–5% more main-thread CPU per request and 8–10% more over all its threads, GC helpers included).
 */
const SLOTS = Symbol('apimeter.express.slots')

/** The slots of a request, created on first use. */
function slotsOf(req: Tracked<Request>): Slots {
  return (req[SLOTS] ??= new Slots())
}

/** Set on an HTTP server once a request it received reached this middleware: its requests get slots early. */
const SERVES_METERED = Symbol('apimeter.express.servesMetered')
type MeteredServer = Server & { [SERVES_METERED]?: true }
let earlySubscribed = false

/**
 * Gives each request of a server this middleware has metered before its slots the moment the server hands it over
 * (`http.server.request.start`), before the framework sets the request's prototype. The same property added after
 * Express has set the prototype (at the router's first write, on Express 5) cost ~2% more CPU per request on the
 * host thread (two builds loaded in pairs on one core, both orders). Requests of other servers are left alone; a
 * server's first metered request, and requests no server publishes (HTTP/2's compatibility API), get their slots at
 * the router's first write as before.
 */
function subscribeEarlySlots(): void {
  if (earlySubscribed) return
  earlySubscribed = true
  channel('http.server.request.start').subscribe((message) => {
    const { request, server } = message as { request: Tracked<IncomingMessage>; server?: MeteredServer }
    if (server?.[SERVES_METERED] === true) request[SLOTS] = new Slots(true)
  })
}

/** Marks the server of a request whose slots did not come early, so that its later requests' do. */
function markServer(req: Request): void {
  const server = (req.socket as { server?: MeteredServer | null } | null | undefined)?.server
  if (server === undefined || server === null || server[SERVES_METERED] === true) return
  try {
    server[SERVES_METERED] = true
  } catch {
    // a frozen server: its requests get their slots at the router's first write
  }
}

function track(req: Tracked<Request>, res: Tracked<Response>, call: InboundCall): void {
  let slots = req[SLOTS]
  if (slots?.early !== true) markServer(req)
  if (slots?.call !== undefined) {
    ;(slots.more ??= []).push(call)
    return
  }
  if (req[PROTO_WATCHED] === undefined) watchPrototypes(req, res)
  const onPrototype = req[PROTO_WATCHED] === true && !Object.hasOwn(req, 'baseUrl') && !Object.hasOwn(req, 'route')
  const baseUrl = req.baseUrl ?? ''
  slots ??= slotsOf(req)
  if (!onPrototype) {
    if (req[WATCHED] === true) {
      const prevBase = Object.getOwnPropertyDescriptor(req, 'baseUrl')
      const prevRoute = Object.getOwnPropertyDescriptor(req, 'route')
      slots.prev = { baseUrl: prevBase?.set ? prevBase : undefined, route: prevRoute?.set ? prevRoute : undefined }
    }
    slots.baseUrl = baseUrl
    slots.route = undefined
    req[WATCHED] = true
    Object.defineProperty(req, 'baseUrl', OWN_BASE_URL)
    Object.defineProperty(req, 'route', OWN_ROUTE)
  }
  slots.mount = baseUrl === '' ? null : { parent: null, url: baseUrl, piece: baseUrl, params: req.params }
  slots.call = call
  watchCompletion(req, res, slots)
}

/** What the router's writes tell: a mount entered or left, a route matched or dispatched. */
function baseUrlSet(slots: Slots, value: unknown, req: Request): void {
  slots.mount = enter(slots.mount, typeof value === 'string' ? value : '', req.params)
}

// Set when a route matches and again when it dispatches (params are final by then): the last one counts.
function routeSet(slots: Slots, _value: unknown, req: Request): void {
  slots.routeMount = slots.mount
  slots.routeParams = req.params
  slots.routeUrl = req.url ?? '/'
}

/** The prototype of `object` whose own prototype is `base` (`express.request` above `http.IncomingMessage`). */
function rootBelow<T extends object>(object: T, base: object): T | null {
  let root = Object.getPrototypeOf(object) as T | null
  while (root !== null && Object.getPrototypeOf(root) !== base) root = Object.getPrototypeOf(root) as T | null
  return root
}

/**
 * Puts the accessors on the root request prototype of the app's Express copy (the object whose prototype is
 * `http.IncomingMessage.prototype`), once, chaining to accessors another copy of this package put there before.
 * Marks the prototype either way, so a prototype that refuses them is not tried again. Has response bytes counted
 * on the root response prototype (`express.response`) likewise, so responses are not wrapped one by one.
 *
 * Express 4's router writes `req.baseUrl` before it gives the request Express's prototype, so that first write lands
 * as an own property of the request and hides the accessor; seen on the first request, the `baseUrl` accessor then
 * goes on `http.IncomingMessage.prototype` too, where that early write finds it. The first requests are watched one
 * by one; every later one through the prototypes, as on Express 5.
 */
function watchPrototypes(req: Tracked<Request>, res: Response): void {
  const response = rootBelow(res, ServerResponse.prototype)
  if (response !== null) countOnPrototype(response)
  const root = rootBelow(req, IncomingMessage.prototype)
  if (root === null || Object.hasOwn(root, PROTO_WATCHED)) return
  const watched = watchPrototype(root, true)
  if (watched && Object.hasOwn(req, 'baseUrl') && !Object.hasOwn(IncomingMessage.prototype, EARLY_WATCHED)) {
    watchPrototype(IncomingMessage.prototype, false)
    try {
      Object.defineProperty(IncomingMessage.prototype, EARLY_WATCHED, { value: true, configurable: true })
    } catch {
      // ignore: tried again on the next Express copy's first request, which is harmless
    }
  }
}

/** Marks `http.IncomingMessage.prototype` once its `baseUrl` accessor is in place (see {@link watchPrototypes}). */
const EARLY_WATCHED = Symbol('apimeter.express.earlyBaseUrl')

/**
 * Puts the `baseUrl` accessor (and with `route`, the `route` one) on `proto`, chaining to accessors found there;
 * false when the prototype has plain values there or refuses them. The root prototype (with `route`) is marked with
 * the answer.
 */
function watchPrototype(proto: object, route: boolean): boolean {
  let watched = false
  try {
    const prevBase = Object.getOwnPropertyDescriptor(proto, 'baseUrl')
    const prevRoute = route ? Object.getOwnPropertyDescriptor(proto, 'route') : undefined
    if ((prevBase === undefined || prevBase.set !== undefined) && (prevRoute === undefined || prevRoute.set !== undefined)) {
      Object.defineProperty(proto, 'baseUrl', baseUrlAccessor(prevBase))
      if (route) Object.defineProperty(proto, 'route', routeAccessor(prevRoute))
      watched = true
    }
  } catch {
    // a frozen or unusual prototype: requests are watched one by one
  }
  if (route) {
    try {
      Object.defineProperty(proto, PROTO_WATCHED, { value: watched, configurable: true })
    } catch {
      // ignore: the hasOwn check in watchPrototypes then retries, which is harmless
    }
  }
  return watched
}

// The prototype accessors, one pair per property (each store site sees one property of one class: no keyed
// stores on the request past the one that adds its slots). They chain to accessors another copy put there before.
function baseUrlAccessor(prev: PropertyDescriptor | undefined): PropertyDescriptor {
  const prevGet = prev?.get
  const prevSet = prev?.set
  return {
    configurable: true,
    enumerable: true,
    get(this: Tracked<Request>) {
      return prevGet !== undefined ? (prevGet.call(this) as unknown) : this[SLOTS]?.baseUrl
    },
    set(this: Tracked<Request>, value: unknown) {
      if (prevSet !== undefined) prevSet.call(this, value)
      const slots = slotsOf(this)
      slots.baseUrl = value
      if (slots.call !== undefined) baseUrlSet(slots, value, this)
    },
  }
}

function routeAccessor(prev: PropertyDescriptor | undefined): PropertyDescriptor {
  const prevGet = prev?.get
  const prevSet = prev?.set
  return {
    configurable: true,
    enumerable: true,
    get(this: Tracked<Request>) {
      return prevGet !== undefined ? (prevGet.call(this) as unknown) : this[SLOTS]?.route
    },
    set(this: Tracked<Request>, value: unknown) {
      if (prevSet !== undefined) prevSet.call(this, value)
      const slots = slotsOf(this)
      slots.route = value
      if (slots.call !== undefined) routeSet(slots, value, this)
    },
  }
}

/**
 * An accessor for `req[name]` defined on one request: keeps the value (or defers to an accessor found there
 * before) and tells `onSet` of every assignment. Shared by all requests: the state is found in the request's slots.
 */
function ownAccessor(name: 'baseUrl' | 'route', onSet: (slots: Slots, value: unknown, req: Request) => void): PropertyDescriptor {
  return {
    configurable: true,
    enumerable: true,
    get(this: Tracked<Request>) {
      const slots = this[SLOTS]!
      const prev = slots.prev?.[name]
      return prev ? (prev.get!.call(this) as unknown) : slots[name]
    },
    set(this: Tracked<Request>, value: never) {
      const slots = this[SLOTS]!
      slots.prev?.[name]?.set!.call(this, value)
      slots[name] = value
      onSet(slots, value, this)
    },
  }
}

const OWN_BASE_URL = ownAccessor('baseUrl', baseUrlSet)
const OWN_ROUTE = ownAccessor('route', routeSet)

/** The mount the router is in after it sets `req.baseUrl` to `url`: a new child, an ancestor left, or the same. */
function enter(mount: Mount | null, url: string, params: Readonly<Record<string, unknown>> | undefined): Mount | null {
  const current = mount === null ? '' : mount.url
  if (url === current) return mount
  if (url.startsWith(current) && url.length > current.length) return { parent: mount, url, piece: url.slice(current.length), params }
  let ancestor = mount
  while (ancestor !== null && ancestor.url !== url) ancestor = ancestor.parent
  return ancestor !== null || url === '' ? ancestor : { parent: null, url, piece: url, params }
}

function mountTemplate(mount: Mount | null, used: Set<string>): string {
  if (mount === null) return ''
  return mountTemplate(mount.parent, used) + fromPath(mount.piece, mount.params, used)
}

/**
 * A template rebuilt from the path as requested. Express matches case-insensitively by default, so `/ORGS/acme`
 * reaches `/orgs/:orgId`: fixed words are lower-cased, or every casing a scanner tries would be a route of its own.
 */
function fromPath(path: string, params: Readonly<Record<string, unknown>> | undefined, used: Set<string>): string {
  const template = templateFromMatch(path, params, used)
  return /[A-Z]/.test(template) ? template.replace(/(^|\/)([^/:*][^/]*)/g, (_, slash: string, word: string) => slash + word.toLowerCase()) : template
}

function routeTemplate(state: Slots): string {
  const route = state.route as { path?: unknown } | null | undefined
  if (route === undefined || route === null) {
    // Answered by middleware inside a mount (express.static under '/assets'): the mount, and everything below it.
    return state.mount === null ? UNMATCHED_ROUTE : joinRoute(mountTemplate(state.mount, new Set()), '/*')
  }
  const path = route.path
  // a route of the app itself (no mount): its path as declared, with no set of parameter names to keep
  if (state.routeMount === null && typeof path === 'string') return joinRoute('', path)
  const used = new Set<string>()
  const mount = mountTemplate(state.routeMount, used)
  if (typeof path === 'string') return joinRoute(mount, path)
  if (Array.isArray(path) && path.every((p) => typeof p === 'string')) {
    // app.get(['/a', '/b/:id'], …): the element that matched, rebuilt from the path and its parameters.
    const query = state.routeUrl.indexOf('?')
    return joinRoute(mount, fromPath(query === -1 ? state.routeUrl : state.routeUrl.slice(0, query), state.routeParams, used))
  }
  // RegExp routes (and arrays holding one): a stable rendering of the declaration.
  return joinRoute(mount, Array.isArray(path) ? `[${path.map(String).join(', ')}]` : String(path))
}
