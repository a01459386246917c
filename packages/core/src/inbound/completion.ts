import { channel } from 'node:diagnostics_channel'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/**
 * How a metered request learns that its response is done, at the least cost per request.
 *
 * Requests a Node `http`/`https` server received are watched through the server's own diagnostics channels:
 * `http.server.request.start` tells which request the server is handing to the app right now, and
 * `http.server.response.finish` reports each finished response — so a finished request costs no listener, closure
 * or hook. A client that goes away first is seen once per connection: one `close` listener on the socket finishes
 * the responses still open on it as aborted. Requests no server published (Fastify's `inject()`, HTTP/2's
 * compatibility API, a framework that hands the request over later) get one `finish` and one `close` listener on
 * their response instead: the same answers, by the slower path.
 */

/** What a watched response tells when it is done. */
export interface Completable {
  /** The response was sent completely. */
  finish(statusCode: number): void
  /** The connection closed before the response was complete. */
  abort(): void
}

const WATCHERS = Symbol('apimeter.completion')
/** On a socket: its metered responses not finished yet — one, or (pipelined requests) an array; null for none. */
const OPEN = Symbol('apimeter.openResponses')
/** On a socket: whether its close is watched. */
const WATCHED = Symbol('apimeter.socketWatched')
type Watched = ServerResponse & { [WATCHERS]?: Completable | Completable[] }
type Tracked = Socket & { [OPEN]?: Watched | Watched[] | null; [WATCHED]?: true }

/** The request a server is handing to its app at this moment (set and read in the same synchronous turn). */
let starting: IncomingMessage | undefined
let subscribed = false

interface ServerMessage {
  request: IncomingMessage
  response: Watched
  socket: Tracked
}

/** Subscribes to the server channels (once per process): done when a meter is created, before its first request. */
export function subscribeCompletion(): void {
  if (subscribed) return
  subscribed = true
  channel('http.server.request.start').subscribe((message) => {
    starting = (message as ServerMessage).request
  })
  channel('http.server.response.finish').subscribe((message) => {
    const { response, socket } = message as ServerMessage
    const watchers = response[WATCHERS]
    if (watchers === undefined) return
    response[WATCHERS] = undefined
    if (socket !== null && socket !== undefined) forget(socket, response)
    tell(watchers, response, true)
  })
}

/** Tells each watcher (no closure per call); a watcher never throws (meters catch their own errors), but a listener must not either. */
function tell(watchers: Completable | Completable[], response: ServerResponse, finished: boolean): void {
  if (Array.isArray(watchers)) for (const watcher of watchers) tellOne(watcher, response, finished)
  else tellOne(watchers, response, finished)
}

function tellOne(watcher: Completable, response: ServerResponse, finished: boolean): void {
  try {
    if (finished) watcher.finish(response.statusCode)
    else watcher.abort()
  } catch {
    // nothing may escape into the server's event emitters
  }
}

/** Takes a finished response off its socket's open ones. */
function forget(socket: Tracked, response: Watched): void {
  const open = socket[OPEN]
  if (open === response) socket[OPEN] = null
  else if (Array.isArray(open)) {
    const at = open.indexOf(response)
    if (at !== -1) open.splice(at, 1)
  }
}

// The connection closed: every response still open on it is aborted.
function onSocketClose(this: Tracked): void {
  const open = this[OPEN]
  this[OPEN] = null
  if (open === null || open === undefined) return
  for (const response of Array.isArray(open) ? open : [open]) {
    const watchers = response[WATCHERS]
    if (watchers === undefined) continue
    response[WATCHERS] = undefined
    tell(watchers, response, false)
  }
}

// The slower path, shared listeners (no closure per request).
function onFinish(this: Watched): void {
  const watchers = this[WATCHERS]
  if (watchers === undefined) return
  this[WATCHERS] = undefined
  tell(watchers, this, true)
}

function onClose(this: Watched): void {
  const watchers = this[WATCHERS]
  if (watchers === undefined) return
  this[WATCHERS] = undefined
  tell(watchers, this, this.writableFinished)
}

/**
 * Calls `watcher.finish(statusCode)` once the response to `raw` has been sent, or `watcher.abort()` when the
 * connection closes first — exactly one of them, once. Several watchers on one response (two meters on one app)
 * are told in the order they were added. Meant to be called while the request is being handed to the app (a
 * framework's first hook or middleware), which is when a server's request can be recognised without listeners.
 *
 * @example
 * ```ts
 * fastify.addHook('onRequest', (request, reply, next) => {
 *   watchCompletion(request.raw, reply.raw, { finish: (status) => …, abort: () => … })
 *   next()
 * })
 * ```
 */
export function watchCompletion(raw: IncomingMessage, res: ServerResponse, watcher: Completable): void {
  subscribeCompletion()
  const response = res as Watched
  const existing = response[WATCHERS]
  if (existing !== undefined) {
    if (Array.isArray(existing)) existing.push(watcher)
    else response[WATCHERS] = [existing, watcher]
    return
  }
  response[WATCHERS] = watcher
  const socket = raw.socket as Tracked | null
  if (raw === starting && socket !== null && !socket.destroyed) {
    starting = undefined
    if (socket[WATCHED] !== true) {
      socket[WATCHED] = true
      socket.once('close', onSocketClose)
    }
    // Usually the only open response of its connection: kept in one slot, an array only for pipelined requests.
    const open = socket[OPEN]
    if (open === null || open === undefined || (Array.isArray(open) && open.length === 0)) socket[OPEN] = response
    else if (Array.isArray(open)) open.push(response)
    else socket[OPEN] = [open, response]
    return
  }
  response.once('finish', onFinish)
  response.once('close', onClose)
}
