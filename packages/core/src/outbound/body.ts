import type { Readable } from 'node:stream'
import type { OutboundCall } from './meter.js'

/**
 * Watching a response body as the application consumes it, without buffering or changing it.
 *
 * Web streams (fetch `Response.body`) are read through a pass-through stream with a high-water mark of 0: a chunk
 * is pulled from the original only when the application asks for one, handed over as is, and counted on the way.
 * Node streams (node-fetch bodies, `http.IncomingMessage`) are left in place: their `push()` is wrapped to count
 * what arrives, and `end`/`close` listeners (which, unlike `data`, do not switch a stream to flowing mode) tell
 * when the body is finished or broken.
 */

/** Properties of a fetch Response that its constructor cannot set; copied onto the metered response. */
const RESPONSE_FIELDS = ['url', 'redirected', 'type'] as const

/**
 * The same response with its body metered, or the response itself when it has no body (the call ends now) or
 * cannot be rebuilt (the call ends now, its body uncounted).
 */
export function meterResponse<R>(response: R, call: OutboundCall): R {
  const body = (response as { body?: unknown }).body
  if (body === null || body === undefined) {
    call.end()
    return response
  }
  if (typeof (body as ReadableStream).getReader === 'function') return meterWebBody(response as unknown as Response, body as ReadableStream<Uint8Array>, call) as R
  if (typeof (body as Readable).push === 'function' && typeof (body as Readable).once === 'function') {
    tapNodeStream(body as Readable, [call])
    return response
  }
  call.end()
  return response
}

function meterWebBody(response: Response, body: ReadableStream<Uint8Array>, call: OutboundCall): Response {
  if (body.locked) {
    call.end()
    return response
  }
  const Ctor = response.constructor as typeof Response
  const reader = body.getReader()
  let metered: Response
  try {
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          return reader.read().then(
            (result) => {
              if (result.done) {
                controller.close()
                call.end()
              } else {
                call.chunk(result.value)
                controller.enqueue(result.value)
              }
            },
            (error: unknown) => {
              call.fail(error)
              controller.error(error)
            },
          )
        },
        cancel(reason) {
          call.cancel()
          return reader.cancel(reason)
        },
      },
      { highWaterMark: 0 },
    )
    metered = new Ctor(stream, { status: response.status, statusText: response.statusText, headers: response.headers })
  } catch {
    // A response the constructor refuses (an unusual status, a foreign Response class): give back the original.
    reader.releaseLock()
    call.end()
    return response
  }
  for (const field of RESPONSE_FIELDS) {
    const value = response[field]
    if (metered[field] !== value) Object.defineProperty(metered, field, { value, enumerable: false, configurable: true })
  }
  call.watchBody()
  return metered
}

const TAPPED = Symbol('apimeter.tap')
type Tapped = Readable & { [TAPPED]?: { calls: readonly OutboundCall[]; push: Readable['push'] } }

/** Counts what a Node readable receives and finishes the calls on `end` (or `close` before it). */
export function tapNodeStream(stream: Readable, calls: readonly OutboundCall[]): void {
  const tapped = stream as Tapped
  if (tapped[TAPPED] !== undefined) return
  tapped[TAPPED] = { calls, push: stream.push }
  // What arrived before the tap (node-fetch pipes the first chunks in before its promise resolves) still counts.
  for (const chunk of bufferedChunks(stream)) for (const call of calls) call.chunk(chunk)
  stream.push = meteredPush
  stream.once('end', () => {
    for (const call of calls) call.end()
  })
  stream.once('close', () => {
    const errored = (stream as Readable & { errored?: unknown }).errored
    for (const call of calls) {
      if (call.done) continue
      if (errored) call.fail(errored)
      else call.cancel()
    }
  })
  for (const call of calls) call.watchBody()
}

function meteredPush(this: Tapped, chunk: unknown, encoding?: BufferEncoding): boolean {
  const tap = this[TAPPED]!
  const bytes = chunk instanceof Uint8Array ? chunk : typeof chunk === 'string' ? Buffer.from(chunk, encoding) : undefined
  if (bytes !== undefined) for (const call of tap.calls) call.chunk(bytes)
  // eslint-disable-next-line prefer-rest-params
  return (tap.push as (...args: unknown[]) => boolean).apply(this, arguments as unknown as unknown[])
}

/** The chunks a readable holds unread (Node 20 keeps them in a linked list, Node 22+ in an array). */
function bufferedChunks(stream: Readable): Uint8Array[] {
  const state = (stream as Readable & { _readableState?: { buffer?: unknown; bufferIndex?: number; objectMode?: boolean } })._readableState
  const buffer = state?.buffer
  if (state === undefined || state.objectMode || buffer === undefined || stream.readableLength === 0) return []
  const out: Uint8Array[] = []
  if (Array.isArray(buffer)) {
    for (let i = state.bufferIndex ?? 0; i < buffer.length; i++) if (buffer[i] instanceof Uint8Array) out.push(buffer[i] as Uint8Array)
  } else {
    for (let node = (buffer as { head?: { data: unknown; next: unknown } | null }).head; node; node = node.next as typeof node) {
      if (node.data instanceof Uint8Array) out.push(node.data)
    }
  }
  return out
}
