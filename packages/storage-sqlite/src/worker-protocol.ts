import { ApimeterError, type ApimeterErrorCode, OUTCOMES, type Resolution } from '@apimeter/core'
import { type AggregateRow, type AggregateState, compileFunction, emptyAggregate, LatencySketch, type StorageErrorClass, SUMMARY_PERCENTILES, summaryPercentiles } from '@apimeter/core/sql'

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

/**
 * Aggregate rows as they cross the thread: column by column. A grouped timeseries returns thousands of rows, and
 * structured clone writes (and reads back) every property name of every object; here the numbers of all rows are one
 * `Float64Array` and their sketches one buffer of bytes (each as it was read from the rollups when nothing else was
 * merged into it, see `encodeJoined`), so the copy is a few buffers and the host builds the objects once.
 */
export interface WireAggregateRows {
  count: number
  /** Bucket starts; NaN for none. */
  starts: Float64Array
  /** The rows' keys, `width` per row. */
  keys: (string | null)[]
  width: number
  /** {@link NUMBER_FIELDS} of each row, one after the other. */
  numbers: Float64Array
  /** Every row's sketch bytes, one after the other; row i's end at `sketchEnds[i]`. */
  sketches: Uint8Array
  sketchEnds: Uint32Array
  /** Per row; absent when no row has one. */
  resolutions?: (Resolution | undefined)[]
  /**
   * Asked for summaries only (`AggregateQuery.summariesOnly`): each row's summary percentiles,
   * {@link SUMMARY_PERCENTILES} per row (NaN for a row without requests), read here from the sketches, which then do
   * not cross (`sketches` is empty).
   */
  percentiles?: Float64Array
}

/** The number fields of an aggregate, in wire order; the outcomes follow them, in {@link OUTCOMES} order. */
const NUMBER_FIELDS = [
  'requests', 'cached', 'costNanos', 'costUnknown', 'costEstimatedNanos', 'inputTokens', 'outputTokens', 'cachedInputTokens', 'requestBytes',
  'responseBytes', 'durationSumUs', 'durationMin', 'durationMax',
] as const satisfies readonly (keyof AggregateState)[]
const STRIDE = NUMBER_FIELDS.length + OUTCOMES.length

export function rowsToWire(rows: AggregateRow[], summariesOnly = false): WireAggregateRows {
  const count = rows.length
  const width = count === 0 ? 0 : rows[0]!.keys.length
  const starts = new Float64Array(count)
  const keys: (string | null)[] = []
  const numbers = new Float64Array(count * STRIDE)
  const percentiles = summariesOnly ? new Float64Array(count * SUMMARY_PERCENTILES).fill(Number.NaN) : undefined
  const encoded = summariesOnly ? [] : rows.map((row) => row.state.sketch.encodeJoined())
  const sketches = new Uint8Array(encoded.reduce((n, e) => n + e.length, 0))
  const sketchEnds = new Uint32Array(count)
  let resolutions: (Resolution | undefined)[] | undefined
  let at = 0
  for (let i = 0; i < count; i++) {
    const row = rows[i]!
    starts[i] = row.start ?? Number.NaN
    for (const key of row.keys) keys.push(key)
    stateToWire(row.state, numbers, i)
    if (percentiles !== undefined) {
      // read from the sketch, or as the storage read them already (a route-by-hour row's stored percentiles)
      if (row.percentiles !== undefined) percentiles.set(row.percentiles, i * SUMMARY_PERCENTILES)
      else if (row.state.requests > 0) summaryPercentiles(row.state, percentiles, i * SUMMARY_PERCENTILES)
    } else {
      sketches.set(encoded[i]!, at)
      at += encoded[i]!.length
    }
    sketchEnds[i] = at
    if (row.resolution !== undefined) (resolutions ??= new Array<Resolution | undefined>(count))[i] = row.resolution
  }
  return { count, starts, keys, width, numbers, sketches, sketchEnds, ...(resolutions ? { resolutions } : {}), ...(percentiles ? { percentiles } : {}) }
}

/** The fields of a row's numbers, in wire order: {@link NUMBER_FIELDS}, then the outcomes. */
const WIRE_FIELDS = [...NUMBER_FIELDS.map((f) => `state.${f}`), ...OUTCOMES.map((o) => `state.outcomes.${o}`)]

/**
 * Writes the numbers of row `i` into `numbers`, and {@link stateFromWire} reads them back: straight-line code per
 * field, generated from the field lists (a grouped timeseries hands over thousands of rows, and a loop over the field
 * names would look each of them up by name; see `compileFunction`).
 */
const stateToWire = compileFunction<(state: AggregateState, numbers: Float64Array, i: number) => void>(
  'stateToWire',
  'state, numbers, i',
  ['const k = i * STRIDE;', ...WIRE_FIELDS.map((field, at) => `numbers[k + ${at}] = ${field};`)].join('\n'),
  { STRIDE },
)

/** The state of row `i`, read as {@link stateToWire} wrote it. */
const stateFromWire = compileFunction<(numbers: Float64Array, i: number) => AggregateState>(
  'stateFromWire',
  'numbers, i',
  ['const k = i * STRIDE;', 'const state = emptyAggregate();', ...WIRE_FIELDS.map((field, at) => `${field} = numbers[k + ${at}];`), 'return state;'].join('\n'),
  { STRIDE, emptyAggregate },
)

export function rowsFromWire(wire: WireAggregateRows): AggregateRow[] {
  const rows: AggregateRow[] = []
  const { width, percentiles } = wire
  let from = 0
  for (let i = 0; i < wire.count; i++) {
    const state = stateFromWire(wire.numbers, i)
    const end = wire.sketchEnds[i]!
    if (end > from) LatencySketch.decodeInto(wire.sketches.subarray(from, end), state.sketch) // read when a quantile is asked for
    from = end
    const start = wire.starts[i]!
    const keys = width === 1 ? [wire.keys[i]!] : wire.keys.slice(i * width, (i + 1) * width)
    const row: AggregateRow = { start: Number.isNaN(start) ? null : start, keys, state }
    const resolution = wire.resolutions?.[i]
    if (resolution !== undefined) row.resolution = resolution
    if (percentiles !== undefined) {
      const list: number[] = []
      for (let k = i * SUMMARY_PERCENTILES; k < (i + 1) * SUMMARY_PERCENTILES; k++) list.push(percentiles[k]!)
      row.percentiles = list
    }
    rows.push(row)
  }
  return rows
}
