import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

// Byte counting state lives on the request and response under this symbol (read by the shared wrappers below).
const COUNTER = Symbol('apimeter.inboundBytes')
/**
 * Own property of a response prototype that countOnPrototype() was asked about: the prototype itself when its
 * write()/end() count, null when it could not be made to. Read through a response, it names the nearest counting
 * prototype: the one that counts for it, so that two counting prototypes on one chain (`express.response` above
 * `http.ServerResponse.prototype`) never both count.
 */
const COUNTING = Symbol('apimeter.countingPrototype')
type Metered<T> = T & { [COUNTER]?: ByteCounter; [COUNTING]?: object | null }
/**
 * On a connection: the response its counter slot serves, and that counter. A response counted on its prototype finds
 * its counter there when it is the one its connection serves, so no property is added to each response (a new
 * property on every response costs more than reusing the connection's, which exist after its first request). A
 * response queued behind another (pipelining) or wrapped one by one keeps its counter under COUNTER.
 */
const SLOT_RESPONSE = Symbol('apimeter.countedResponse')
const SLOT_COUNTER = Symbol('apimeter.responseCounter')
type Connection = Socket & { [SLOT_RESPONSE]?: ServerResponse | null; [SLOT_COUNTER]?: ByteCounter | null }

/**
 * Whether any counter was ever kept on a response itself (under COUNTER). Until one is, no response can hold one,
 * and the lookup (a property missing on every response, searched for up its prototype chain) is skipped.
 */
let countersOnResponses = false

/** The counter of a response, wherever it is kept. */
function counterOf(res: Metered<ServerResponse>): ByteCounter | undefined {
  const socket: Connection | null = res.socket
  if (socket !== null && socket[SLOT_RESPONSE] === res) return socket[SLOT_COUNTER] ?? undefined
  return countersOnResponses ? res[COUNTER] : undefined
}
type Write = ServerResponse['write']
type End = ServerResponse['end']
type Push = IncomingMessage['push']
type Forward<R> = (this: unknown, ...args: unknown[]) => R
/**
 * Counts the bytes of one request and its response. Response bytes: what goes through `write()`/`end()` (exact
 * for fixed-length and chunked bodies alike), wrapped on the response itself, or nowhere when its prototype counts
 * already ({@link countOnPrototype}). Request bytes: the declared length, or for chunked uploads what the HTTP
 * parser pushes into the request stream — never a 'data' listener, which would switch the stream to flowing mode
 * before the app reads it. One counter per response, shared when several meters watch the same request.
 *
 * The inbound meter's call of a request is itself the counter (one object per request, not two): it extends this
 * class and calls {@link ByteCounter.countBytes} once. A second meter's call on the same response does not count
 * again: it reads the first one's counts through `counter`.
 */
export abstract class ByteCounter {
  requestBytes = 0
  responseBytes = 0
  /** True inside end(): an end() that writes its chunk through this.write() must not count it twice. */
  ending = false
  started = false
  /** The prototype whose write()/end() count for this response (nothing was changed on it), or undefined. */
  countedBy: object | undefined = undefined
  write: Write | undefined = undefined
  end: End | undefined = undefined
  push: Push | undefined = undefined
  /** The counter holding this request's counts: this one, or the one another meter's call attached first. */
  counter: ByteCounter = this
  private more: ByteCounter[] | undefined = undefined
  /** The connection whose slot holds this counter, if one does. */
  private slot: Connection | undefined = undefined

  /** Told once, when the response's first byte is written (the call's time to first byte). */
  abstract firstByte(): void

  /** Starts counting the bytes of `raw` and `res`, or joins the counter another meter attached to them. */
  protected countBytes(raw: Metered<IncomingMessage>, res: Metered<ServerResponse>): void {
    const existing = counterOf(res)
    if (existing !== undefined) {
      ;(existing.more ??= []).push(this)
      this.counter = existing
      return
    }
    const countedBy = res[COUNTING] ?? undefined
    this.countedBy = countedBy
    const socket: Connection | null = res.socket
    const served = socket?.[SLOT_RESPONSE]
    if (countedBy !== undefined && socket !== null && (served === undefined || served === null || served.writableEnded)) {
      socket[SLOT_RESPONSE] = res
      socket[SLOT_COUNTER] = this
      this.slot = socket
    } else {
      countersOnResponses = true
      res[COUNTER] = this
    }
    if (countedBy === undefined) {
      this.write = res.write
      this.end = res.end
      res.write = meteredWrite
      res.end = meteredEnd as End
    }
    const length = raw.headers['content-length']
    if (length !== undefined) this.requestBytes = Number.parseInt(length, 10) || 0
    else if (raw.headers['transfer-encoding'] !== undefined) {
      this.push = raw.push
      raw[COUNTER] = this
      raw.push = meteredPush
    }
  }

  release(): void {
    const socket = this.slot
    if (socket === undefined) return
    this.slot = undefined
    if (socket[SLOT_COUNTER] === this) {
      socket[SLOT_RESPONSE] = null
      socket[SLOT_COUNTER] = null
    }
  }

  /** The first response byte: tells this call and every call sharing the counter. */
  responseStarted(): void {
    this.started = true
    this.firstByte()
    if (this.more !== undefined) for (const call of this.more) call.firstByte()
  }
}

function chunkBytes(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string') {
    try {
      return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
    } catch {
      return Buffer.byteLength(chunk)
    }
  }
  if (chunk instanceof Uint8Array) return chunk.byteLength
  return 0
}

/** What a write() adds; an end() that writes its chunk through write() is not counted twice. */
function countWrite(bytes: ByteCounter, chunk: unknown, encoding: unknown): void {
  if (bytes.ending) return
  if (!bytes.started) bytes.responseStarted()
  bytes.responseBytes += chunkBytes(chunk, encoding)
}

function countEnd(bytes: ByteCounter, chunk: unknown, encoding: unknown): void {
  if (!bytes.started) bytes.responseStarted()
  if (typeof chunk !== 'function') bytes.responseBytes += chunkBytes(chunk, encoding)
}

// Shared (not per-request) wrappers: they find their call through the symbol, so wrapping costs no closure.
function meteredWrite(this: Metered<ServerResponse>, chunk: unknown, encoding?: unknown): boolean {
  const bytes = this[COUNTER]!
  countWrite(bytes, chunk, encoding)
  // f.apply(this, arguments) is the forwarding form V8 optimises without materialising `arguments`
  // eslint-disable-next-line prefer-rest-params
  return (bytes.write as Forward<boolean>).apply(this, arguments as never)
}

function meteredEnd(this: Metered<ServerResponse>, chunk?: unknown, encoding?: unknown): ServerResponse {
  const bytes = this[COUNTER]!
  countEnd(bytes, chunk, encoding)
  bytes.ending = true
  try {
    // eslint-disable-next-line prefer-rest-params
    return (bytes.end as Forward<ServerResponse>).apply(this, arguments as never)
  } finally {
    bytes.ending = false
  }
}

/**
 * Makes `proto` (a response prototype a framework owns, such as Express's `express.response`) count the bytes of
 * every response below it that has a counter: `write()` and `end()` are defined on it once, forwarding to the ones
 * it inherits, so a counter attached to such a response changes nothing on the response itself. Returns whether
 * `proto` counts; one that already has its own `write`/`end` (another copy of this package, or the framework's) or
 * refuses new ones is left alone, and its responses are wrapped one by one.
 *
 * @example
 * ```ts
 * countOnPrototype(Object.getPrototypeOf(app.response))   // express.response
 * ```
 */
export function countOnPrototype(proto: object): boolean {
  const marked = proto as { [COUNTING]?: object | null }
  if (Object.hasOwn(proto, COUNTING)) return marked[COUNTING] === proto
  const parent = Object.getPrototypeOf(proto) as { write?: unknown; end?: unknown } | null
  let counting = false
  if (parent !== null && typeof parent.write === 'function' && typeof parent.end === 'function' && !Object.hasOwn(proto, 'write') && !Object.hasOwn(proto, 'end')) {
    try {
      Object.defineProperty(proto, 'write', { value: prototypeWrite(proto, parent as { write: Write }), writable: true, configurable: true })
      Object.defineProperty(proto, 'end', { value: prototypeEnd(proto, parent as { end: End }), writable: true, configurable: true })
      counting = true
    } catch {
      // a frozen prototype: its responses are wrapped one by one
    }
  }
  try {
    Object.defineProperty(proto, COUNTING, { value: counting ? proto : null, configurable: true })
  } catch {
    // asked again next time, which is harmless
  }
  return counting
}

// The inherited write()/end() are looked up on each call, so a later patch of http.ServerResponse still runs. Each
// counts only for the responses it is the nearest counting prototype of.
function prototypeWrite(proto: object, parent: { write: Write }): Write {
  return function write(this: Metered<ServerResponse>, chunk: unknown, encoding?: unknown): boolean {
    const bytes = counterOf(this)
    if (bytes !== undefined && bytes.countedBy === proto) countWrite(bytes, chunk, encoding)
    // eslint-disable-next-line prefer-rest-params
    return (parent.write as Forward<boolean>).apply(this, arguments as never)
  } as Write
}

function prototypeEnd(proto: object, parent: { end: End }): End {
  return function end(this: Metered<ServerResponse>, chunk?: unknown, encoding?: unknown): ServerResponse {
    const bytes = counterOf(this)
    if (bytes === undefined || bytes.countedBy !== proto) {
      // eslint-disable-next-line prefer-rest-params
      return (parent.end as Forward<ServerResponse>).apply(this, arguments as never)
    }
    countEnd(bytes, chunk, encoding)
    bytes.ending = true
    try {
      // eslint-disable-next-line prefer-rest-params
      return (parent.end as Forward<ServerResponse>).apply(this, arguments as never)
    } finally {
      bytes.ending = false
    }
  } as End
}

function meteredPush(this: Metered<IncomingMessage>, chunk: unknown, encoding?: unknown): boolean {
  const bytes = this[COUNTER]!
  bytes.requestBytes += chunkBytes(chunk, encoding)
  // eslint-disable-next-line prefer-rest-params
  return (bytes.push as Forward<boolean>).apply(this, arguments as never)
}

