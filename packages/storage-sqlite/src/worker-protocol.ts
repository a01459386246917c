import { ApimeterError, type ApimeterErrorCode } from '@apimeter/core'
import { type AggregateRow, LatencySketch, type StorageErrorClass } from '@apimeter/core/sql'

/**
 * What the host thread and the SQLite worker thread say to each other. Requests carry an id; each gets one reply.
 * The worker also sends, unasked, the problems its storage handled in the background (a failed rollup run).
 */

/**
 * The storage operations the worker runs, by name (`alerts.x` is a method of the storage's alert store, `slos.x` of
 * its SLO store, `probes.x` of its probe store).
 */
export type Operation =
  | 'init'
  | 'writeCalls'
  | 'aggregate'
  | 'migrate'
  | 'migrationStatus'
  | 'maintain'
  | 'rebuildRollups'
  | 'close'
  | 'alerts.syncRules'
  | 'alerts.instances'
  | 'alerts.transition'
  | 'alerts.recordAttempt'
  | 'alerts.events'
  | 'alerts.attempts'
  | 'alerts.latestRateLimits'
  | 'slos.syncSlos'
  | 'slos.list'
  | 'probes.syncProbes'
  | 'probes.definitions'
  | 'probes.claim'
  | 'probes.release'
  | 'probes.states'
  | 'probes.record'
  | 'probes.checks'
  | 'probes.incidents'
  | 'alerts.rules'
  | 'audit.append'
  | 'audit.list'
  | 'system.write'
  | 'system.list'

/** Host → worker. */
export interface Request {
  id: number
  op: Operation
  args: unknown[]
}

/** Worker → host: `ready` once (its code loaded), then replies to requests and background problems (`report`). */
export type Reply = { ready: true } | { id: number; value: unknown } | { id: number; error: WireError } | { report: WireError }

/** An error as it crosses the thread: structured clone would keep only name, message and stack. */
export interface WireError {
  name: string
  message: string
  stack?: string
  /** The driver's or Node's code (`SQLITE_BUSY`, `ERR_DLOPEN_FAILED`), or the ApimeterError code. */
  code?: string
  /** Rebuilt as an ApimeterError. */
  apimeter?: boolean
  details?: Record<string, unknown>
  cause?: WireError
  /** What the storage in the worker made of the error (outermost error only). */
  kind?: StorageErrorClass
}

/** An error (and its causes, at most 8 deep) as plain data. */
export function toWire(error: unknown, kind?: StorageErrorClass, depth = 0): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), kind }
  const code = (error as { code?: unknown }).code
  const wire: WireError = { name: error.name, message: error.message, stack: error.stack, kind }
  if (typeof code === 'string') wire.code = code
  if (error instanceof ApimeterError) {
    wire.apimeter = true
    if (error.details) wire.details = cloneable(error.details)
  }
  if (error.cause !== undefined && depth < 8) wire.cause = toWire(error.cause, undefined, depth + 1)
  return wire
}

/** Where the class the worker gave an error is kept on the host. */
const kinds = new WeakMap<Error, StorageErrorClass>()

/** The error the worker threw, rebuilt: an ApimeterError with its code and details, or an Error with its `code`. */
export function fromWire(wire: WireError): Error {
  const cause = wire.cause ? fromWire(wire.cause) : undefined
  let error: Error
  if (wire.apimeter) {
    // prefix '' keeps the message as it was (it already starts with the package that threw it)
    error = new ApimeterError(wire.code as ApimeterErrorCode, wire.message, { cause, details: wire.details, prefix: '' })
  } else {
    error = new Error(wire.message, cause === undefined ? undefined : { cause })
    error.name = wire.name
    if (wire.code !== undefined) (error as Error & { code: string }).code = wire.code
  }
  if (wire.stack !== undefined) error.stack = wire.stack
  if (wire.kind) kinds.set(error, wire.kind)
  return error
}

/** Gives an error made on the host, about the worker, its class. */
export function withKind<E extends Error>(error: E, kind: StorageErrorClass): E {
  kinds.set(error, kind)
  return error
}

/** The class the worker's storage gave an error that crossed the thread, if it did. */
export function kindFromWorker(error: unknown): StorageErrorClass | undefined {
  return error instanceof Error ? kinds.get(error) : undefined
}

/** Details that survive structured clone; dropped when they would not. */
function cloneable(details: Readonly<Record<string, unknown>>): Record<string, unknown> | undefined {
  try {
    return structuredClone(details)
  } catch {
    return undefined
  }
}

/** Latency sketches cross as their encoding (structured clone drops the class). */
export type WireAggregateRow = Omit<AggregateRow, 'state'> & { state: Omit<AggregateRow['state'], 'sketch'> & { sketch: Uint8Array } }

/**
 * The rows with their sketches' bytes (as they were read from the rollups, when nothing else was merged in: see
 * `encodeJoined`), every one a view into one buffer, which structured clone copies once.
 */
export function rowsToWire(rows: AggregateRow[]): WireAggregateRow[] {
  const encoded = rows.map((row) => row.state.sketch.encodeJoined())
  const all = new Uint8Array(encoded.reduce((n, e) => n + e.length, 0))
  let offset = 0
  rows.forEach((row, i) => {
    const bytes = encoded[i]!
    all.set(bytes, offset)
    ;(row.state as unknown as { sketch: Uint8Array }).sketch = all.subarray(offset, offset + bytes.length)
    offset += bytes.length
  })
  return rows as unknown as WireAggregateRow[]
}

export function rowsFromWire(rows: WireAggregateRow[]): AggregateRow[] {
  for (const row of rows) {
    const sketch = new LatencySketch()
    LatencySketch.decodeInto(row.state.sketch, sketch) // read when a quantile is asked for
    ;(row.state as unknown as { sketch: LatencySketch }).sketch = sketch
  }
  return rows as unknown as AggregateRow[]
}
