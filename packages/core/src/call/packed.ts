import { type ColumnSet, compileFunction, ENUM_VALUES, storageOf } from './compile.js'
import { CALL_FIELDS, CALL_RECORD_FIELDS, type FieldSpec } from './fields.js'
import type { CallRecord } from './types.js'

/**
 * A batch of calls packed column by column, for handing over to another thread or process: a storage in a worker
 * thread gets this instead of an array of records.
 *
 * Why: structured clone writes every property name of every object, so a batch of 500 records of 37 fields costs
 * about 2.4 µs per call to copy and is ~570 bytes per call on the wire. A batch's values repeat (the same service,
 * direction, API, route; most optional fields null for every call), so packed it is ~45 bytes per call, and packing
 * plus copying plus unpacking costs a fraction of copying the records.
 */

/** A value a call record's field holds. */
type FieldValue = string | number | boolean | null

/**
 * One field's values across a packed batch: one value every call has (`same`), numbers in a `Float64Array` (NaN
 * for null; a field never holds NaN), a dictionary of the distinct values with each call's index into it, or the
 * values as they are.
 */
export type PackedColumn =
  | { same: FieldValue }
  | { numbers: Float64Array }
  | { dict: readonly FieldValue[]; index: Uint8Array | Uint16Array | Uint32Array }
  | { values: FieldValue[] }
  | { sequence: { prefix: string; first: number } }

/** A batch packed by {@link packCalls}: its columns in `CALL_RECORD_FIELDS` order. */
export interface PackedCalls {
  count: number
  columns: PackedColumn[]
}

/** One column of values (read from the records into `scratch[0…n)`), packed. */
function packColumn(values: FieldValue[], n: number): PackedColumn {
  const first = values[0]!
  let same = true
  let numeric = true
  for (let j = 0; j < n; j++) {
    const v = values[j]!
    if (v !== first) same = false
    if (typeof v !== 'number' && v !== null) numeric = false
  }
  if (same) return { same: first }
  if (numeric) {
    const numbers = new Float64Array(n)
    for (let j = 0; j < n; j++) numbers[j] = values[j] === null ? Number.NaN : (values[j] as number)
    return { numbers }
  }
  const positions = new Map<FieldValue, number>()
  const dict: FieldValue[] = []
  const index = n <= 0xffff ? new Uint16Array(n) : new Uint32Array(n)
  for (let j = 0; j < n; j++) {
    const v = values[j]!
    let at = positions.get(v)
    if (at === undefined) {
      // mostly distinct (ids, urls): a dictionary would only add to the copy
      if (dict.length >= n >> 1) return { values: values.slice(0, n) }
      at = dict.length
      dict.push(v)
      positions.set(v, at)
    }
    index[j] = at
  }
  return { dict, index }
}

/** Expands one packed column into `out[0…n)`. */
function unpackColumn(column: PackedColumn, n: number, out: FieldValue[]): FieldValue[] {
  if ('same' in column) {
    for (let j = 0; j < n; j++) out[j] = column.same
  } else if ('numbers' in column) {
    const numbers = column.numbers
    for (let j = 0; j < n; j++) {
      const v = numbers[j]!
      out[j] = v !== v ? null : v // NaN is null
    }
  } else if ('dict' in column) {
    const { dict, index } = column
    for (let j = 0; j < n; j++) out[j] = dict[index[j]!]!
  } else if ('sequence' in column) {
    const { prefix, first } = column.sequence
    for (let j = 0; j < n; j++) out[j] = prefix + (first + j).toString(36)
  } else {
    return column.values
  }
  return out
}

// Straight-line code per field, generated from the field table (why: see compile.ts): a read of `calls[j].<field>`
// per field keeps V8's property loads monomorphic, and one object literal gives every unpacked record one shape.
const FIELD_COUNT = CALL_RECORD_FIELDS.length
const PACK_SOURCE = [
  'const n = calls.length; const columns = new Array(FIELD_COUNT); let j;',
  'if (scratch.length < n) scratch.length = n;',
  ...CALL_RECORD_FIELDS.map((f, k) => `for (j = 0; j < n; j++) scratch[j] = calls[j].${f}; columns[${k}] = packColumn(scratch, n);`),
  'return { count: n, columns };',
].join('\n')
const UNPACK_SOURCE = [
  'const n = packed.count; const out = new Array(n);',
  ...CALL_RECORD_FIELDS.map((_, k) => `const c${k} = unpackColumn(packed.columns[${k}], n, expanded[${k}]);`),
  `for (let j = 0; j < n; j++) out[j] = { ${CALL_RECORD_FIELDS.map((f, k) => `${f}: c${k}[j]`).join(', ')} };`,
  'return out;',
].join('\n')

/** A slice of a staging column of numbers (NaN for null, as packed numbers hold it): one value, or the copy. */
function packNumbers(values: Float64Array, start: number, n: number): PackedColumn {
  const first = values[start]!
  let j = start + 1
  const end = start + n
  if (first === first) while (j < end && values[j] === first) j++
  else while (j < end && values[j] !== values[j]) j++
  if (j === end) return { same: first === first ? first : null }
  return { numbers: values.slice(start, end) }
}

/** A slice of a staging column of codes (booleans, enums), with the table turning a code into its value. */
function packCodes(codes: Uint8Array, start: number, n: number, table: readonly FieldValue[]): PackedColumn {
  const first = codes[start]!
  let j = start + 1
  const end = start + n
  while (j < end && codes[j] === first) j++
  if (j === end) return { same: table[first]! }
  return { dict: table, index: codes.slice(start, end) }
}

/**
 * A slice of a staging column of strings. Most of a batch's string columns hold one value (the service, an API, a
 * client's user agent, no tenant): that is found by one scan of the slice itself, the rest packed as any column.
 */
function packStrings(values: readonly (string | null)[], start: number, n: number): PackedColumn {
  const first = values[start]!
  const end = start + n
  let j = start + 1
  while (j < end && values[j] === first) j++
  if (j === end) return { same: first }
  for (let k = 0; k < n; k++) scratch[k] = values[start + k]!
  return packColumn(scratch, n)
}

const BOOLEANS: readonly FieldValue[] = [false, true]
/** The packing of one field's staging column (rows `start … start + n`) in the generated code below. */
function stagedColumnSource(field: (typeof CALL_RECORD_FIELDS)[number], k: number): string {
  if (field === 'id') return `columns[${k}] = { sequence: { prefix, first } };`
  const spec = CALL_FIELDS[field] as FieldSpec
  switch (storageOf(spec)) {
    case 'number':
      return `columns[${k}] = packNumbers(c.${field}, start, n);`
    case 'code':
      return `columns[${k}] = packCodes(c.${field}, start, n, ${spec.kind === 'bool' ? 'BOOLEANS' : `enums.${field}`});`
    default:
      return `columns[${k}] = packStrings(c.${field}, start, n);`
  }
}
const PACK_STAGED_SOURCE = [
  'const columns = new Array(FIELD_COUNT);',
  ...CALL_RECORD_FIELDS.map(stagedColumnSource),
  'return { count: n, columns };',
].join('\n')

const scratch: FieldValue[] = []
const expanded: FieldValue[][] = CALL_RECORD_FIELDS.map(() => [])

const packGenerated = compileFunction<(calls: readonly CallRecord[]) => PackedCalls>('packCalls', 'calls', PACK_SOURCE, { FIELD_COUNT, scratch, packColumn })
const packStagedGenerated = compileFunction<(c: ColumnSet, start: number, n: number, prefix: string, first: number) => PackedCalls>(
  'packStaged',
  'c, start, n, prefix, first',
  PACK_STAGED_SOURCE,
  { FIELD_COUNT, packNumbers, packCodes, packStrings, BOOLEANS, enums: ENUM_VALUES },
)
const unpackGenerated = compileFunction<(packed: PackedCalls) => CallRecord[]>('unpackCalls', 'packed', UNPACK_SOURCE, { expanded, unpackColumn })

/**
 * Packs a batch of call records column by column ({@link PackedCalls}): what a storage hands to a worker thread
 * instead of the records. Reads only the fields of the field table; `unpackCalls` gives the records back.
 *
 * @example
 * ```ts
 * worker.postMessage({ op: 'writeCalls', calls: packCalls(calls) })
 * // in the worker:
 * await storage.writeCalls(unpackCalls(message.calls))
 * ```
 */
export function packCalls(calls: readonly CallRecord[]): PackedCalls {
  if (calls.length === 0) return { count: 0, columns: [] }
  try {
    return packGenerated(calls)
  } finally {
    scratch.fill(null) // hold no references to the batch's strings
  }
}

/**
 * Packs rows `start … start + n` of a monitor's staging columns straight into a {@link PackedCalls}, without a record
 * object per call: what `packCalls` would give for the records those rows read as, the record of row `start + j`
 * having the id `prefix + (first + j).toString(36)`. Internal to the write pipeline.
 */
export function packStaged(columns: ColumnSet, start: number, n: number, prefix: string, first: number): PackedCalls {
  if (n === 0) return { count: 0, columns: [] }
  try {
    return packStagedGenerated(columns, start, n, prefix, first)
  } finally {
    scratch.fill(null)
  }
}

/**
 * The records of a batch packed by {@link packCalls}, equal field by field to the ones packed.
 *
 * @example
 * ```ts
 * const calls = unpackCalls(message.calls)
 * ```
 */
export function unpackCalls(packed: PackedCalls): CallRecord[] {
  if (packed.count === 0) return []
  try {
    return unpackGenerated(packed)
  } finally {
    for (const column of expanded) column.fill(null)
  }
}
