import type { IncomingMessage, ServerResponse } from 'node:http'

// Byte counting state lives on the request and response under this symbol (read by the shared wrappers below).
const COUNTER = Symbol('apimeter.inboundBytes')
type Metered<T> = T & { [COUNTER]?: ByteCounter }
type Write = ServerResponse['write']
type End = ServerResponse['end']
type Push = IncomingMessage['push']
type Forward<R> = (this: unknown, ...args: unknown[]) => R
/** What a counter tells when the response starts (the call's time to first byte). */
export interface FirstByteListener {
  firstByte(): void
}

/**
 * Counts the bytes of one request and its response. Response bytes: what goes through `write()`/`end()` (exact
 * for fixed-length and chunked bodies alike). Request bytes: the declared length, or for chunked uploads what the
 * HTTP parser pushes into the request stream — never a 'data' listener, which would switch the stream to flowing
 * mode before the app reads it. One counter per response, shared when several meters watch the same request.
 */
export class ByteCounter {
  requestBytes: number
  responseBytes = 0
  /** True inside end(): an end() that writes its chunk through this.write() must not count it twice. */
  ending = false
  started = false
  readonly write: Write
  readonly end: End
  readonly push: Push | undefined
  private more: FirstByteListener[] | undefined = undefined

  static attach(raw: Metered<IncomingMessage>, res: Metered<ServerResponse>, call: FirstByteListener): ByteCounter {
    const existing = res[COUNTER]
    if (existing === undefined) return new ByteCounter(raw, res, call)
    ;(existing.more ??= []).push(call)
    return existing
  }

  private constructor(
    raw: Metered<IncomingMessage>,
    res: Metered<ServerResponse>,
    private readonly call: FirstByteListener,
  ) {
    this.write = res.write
    this.end = res.end
    res[COUNTER] = this
    res.write = meteredWrite
    res.end = meteredEnd as End
    const length = raw.headers['content-length']
    this.requestBytes = length === undefined ? 0 : Number.parseInt(length, 10) || 0
    if (length === undefined && raw.headers['transfer-encoding'] !== undefined) {
      this.push = raw.push
      raw[COUNTER] = this
      raw.push = meteredPush
    } else this.push = undefined
  }

  /** The first write: the response headers are on their way. */
  firstByte(): void {
    this.started = true
    this.call.firstByte()
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

// Shared (not per-request) wrappers: they find their call through the symbol, so wrapping costs no closure.
function meteredWrite(this: Metered<ServerResponse>, chunk: unknown, encoding?: unknown): boolean {
  const bytes = this[COUNTER]!
  if (!bytes.ending) {
    if (!bytes.started) bytes.firstByte()
    bytes.responseBytes += chunkBytes(chunk, encoding)
  }
  // f.apply(this, arguments) is the forwarding form V8 optimises without materialising `arguments`
  // eslint-disable-next-line prefer-rest-params
  return (bytes.write as Forward<boolean>).apply(this, arguments as never)
}

function meteredEnd(this: Metered<ServerResponse>, chunk?: unknown, encoding?: unknown): ServerResponse {
  const bytes = this[COUNTER]!
  if (!bytes.started) bytes.firstByte()
  if (typeof chunk !== 'function') bytes.responseBytes += chunkBytes(chunk, encoding)
  bytes.ending = true
  try {
    // eslint-disable-next-line prefer-rest-params
    return (bytes.end as Forward<ServerResponse>).apply(this, arguments as never)
  } finally {
    bytes.ending = false
  }
}

function meteredPush(this: Metered<IncomingMessage>, chunk: unknown, encoding?: unknown): boolean {
  const bytes = this[COUNTER]!
  bytes.requestBytes += chunkBytes(chunk, encoding)
  // eslint-disable-next-line prefer-rest-params
  return (bytes.push as Forward<boolean>).apply(this, arguments as never)
}

