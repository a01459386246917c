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
/**
 * On a socket whose one open response is held in OPEN: that response's watchers. Kept on the connection, whose
 * properties already exist after its first request, rather than added to every response (a new property on each
 * response object costs more than reusing the socket's slot). Pipelined responses keep theirs in WATCHERS.
 */
const SOLE = Symbol('apimeter.soleWatchers')
/** On a socket: whether its close is watched. */
const WATCHED = Symbol('apimeter.socketWatched')
type Watchers = Completable | Completable[]
type Watched = ServerResponse & { [WATCHERS]?: Watchers }
type Tracked = Socket & { [OPEN]?: Watched | Watched[] | null; [SOLE]?: Watchers; [WATCHED]?: true }

/** Adds a watcher to those of a response. */
function joined(existing: Watchers | undefined, watcher: Completable): Watchers {
  if (existing === undefined) return watcher
  if (Array.isArray(existing)) {
    existing.push(watcher)
    return existing
  }
  return [existing, watcher]
}

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
    let watchers: Watchers | undefined
    if (socket !== null && socket !== undefined && socket[OPEN] === response) {
      watchers = socket[SOLE]
      socket[OPEN] = null
      socket[SOLE] = undefined
    } else {
      watchers = response[WATCHERS]
      if (watchers === undefined) return
      response[WATCHERS] = undefined
      if (socket !== null && socket !== undefined) forget(socket, response)
    }
    if (watchers !== undefined) tell(watchers, response, true)
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

/** Takes a finished pipelined response off its socket's open ones. */
function forget(socket: Tracked, response: Watched): void {
  const open = socket[OPEN]
  if (Array.isArray(open)) {
    const at = open.indexOf(response)
    if (at !== -1) open.splice(at, 1)
  }
}

// The connection closed: every response still open on it is aborted.
function onSocketClose(this: Tracked): void {
  const open = this[OPEN]
  const sole = this[SOLE]
  this[OPEN] = null
  this[SOLE] = undefined
  if (open === null || open === undefined) return
  if (!Array.isArray(open)) {
    if (sole !== undefined) tell(sole, open, false)
    return
  }
  for (const response of open) {
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
  const socket = raw.socket as Tracked | null
  if (socket !== null && socket[OPEN] === response) {
    socket[SOLE] = joined(socket[SOLE], watcher) // a second meter on a response already watched
    return
  }
  // The request the server is handing over right now has no watcher yet (the first one clears `starting`), so its
  // response is not searched for one: a missing property read on a fresh response object is not free.
  if (raw === starting && socket !== null && !socket.destroyed) {
    starting = undefined
    if (socket[WATCHED] !== true) {
      socket[WATCHED] = true
      socket.once('close', onSocketClose)
    }
    const open = socket[OPEN]
    if (open === null || open === undefined || (Array.isArray(open) && open.length === 0)) {
      // usually the only open response of its connection: it and its watchers in the socket's slots
      socket[OPEN] = response
      socket[SOLE] = watcher
      return
    }
    // a pipelined request: the open responses in an array, each holding its own watchers
    response[WATCHERS] = watcher
    if (Array.isArray(open)) open.push(response)
    else {
      open[WATCHERS] = socket[SOLE]
      socket[SOLE] = undefined
      socket[OPEN] = [open, response]
    }
    return
  }
  const existing = response[WATCHERS]
  if (existing !== undefined) {
    response[WATCHERS] = joined(existing, watcher)
    return
  }
  response[WATCHERS] = watcher
  response.once('finish', onFinish)
  response.once('close', onClose)
}
