import { ApimeterError, describeValue } from '../errors.js'
import { CALL_FIELDS, CALL_RECORD_FIELDS, type CallField, type CallFields, DIRECT_INPUT_FIELDS, type FieldSpec } from './fields.js'
import { storable } from './storable.js'
import type { CallInput, CallRecord } from './types.js'

/**
 * The per-call hot paths, generated from the field table once at load: validating and staging the direct inputs of
 * `record()`, and turning a staged row into a {@link CallRecord} (`sql/call-columns.ts` does the same for SQL rows).
 *
 * Why generated: these run for every call (`record()` must take about a microsecond), and a loop over field names
 * with `input[name]` turns every property read into a megamorphic keyed load — several times slower than the
 * straight-line `input.ttfbMs` reads V8 keeps monomorphic. Writing the straight-line code by hand would restate the
 * 37 fields in more places; generating it from the one table keeps both the speed and the single definition.
 * The generated source is plain JavaScript over the helpers passed in below (see `generatedSource()` for tests).
 */

/** Staging storage of one field: float64 (NaN = null), uint8 codes, or string references. */
type ColumnArray<S> = S extends { kind: 'text' | 'id' | 'json' } ? (string | null)[] : S extends { kind: 'bool' | 'enum' } ? Uint8Array : Float64Array

/** Calls held column by column (see `CallColumns` in normalize.ts). */
export type ColumnSet = { -readonly [K in CallField]: ColumnArray<CallFields[K]> }

/** The storage kind of a field's staging column. */
export function storageOf(spec: FieldSpec): 'number' | 'code' | 'string' {
  switch (spec.kind) {
    case 'text':
    case 'id':
    case 'json':
      return 'string'
    case 'bool':
    case 'enum':
      return 'code'
    default:
      return 'number'
  }
}

/** The code of a null enum value in a uint8 column. */
export const NULL_CODE = 255

/** Enum value → code, per enum field. */
export const ENUM_CODES: Readonly<Record<string, Readonly<Record<string, number>>>> = Object.fromEntries(
  CALL_RECORD_FIELDS.filter((f) => CALL_FIELDS[f].kind === 'enum').map((f) => {
    const values = (CALL_FIELDS[f] as FieldSpec).values!
    // a plain object (fast properties); lookups check for a number, so inherited names never pass
    return [f, Object.fromEntries(values.map((v, i) => [v, i]))]
  }),
)

/** Code → enum value (null at every other index), per enum field. */
export const ENUM_VALUES: Readonly<Record<string, readonly (string | null)[]>> = Object.fromEntries(
  CALL_RECORD_FIELDS.filter((f) => CALL_FIELDS[f].kind === 'enum').map((f) => {
    const table = new Array<string | null>(256).fill(null)
    ;(CALL_FIELDS[f] as FieldSpec).values!.forEach((v, i) => (table[i] = v))
    return [f, table]
  }),
)

/** What a valid value of a direct input is, as `call.<field> must be …` messages say it. */
export function inputExpectation(spec: FieldSpec): string {
  if (spec.expected) return spec.expected
  switch (spec.kind) {
    case 'text':
      return 'a string or null'
    case 'id':
      return 'a string, a number or null'
    case 'count':
      return 'a whole number >= 0 or null'
    case 'ms':
      return 'a finite number of milliseconds >= 0 or null'
    case 'real':
      return 'a finite number >= 0 or null'
    case 'int':
      return `a whole number from ${spec.min} to ${spec.maxValue}${spec.nullable ? ' or null' : ''}`
    case 'bool':
      return 'true or false'
    case 'enum':
      return `one of ${spec.values!.join(', ')}${spec.nullable ? ' or null' : ''}`
    default:
      throw new Error(`a '${spec.kind}' field cannot be a direct input: give it input 'derived' and handle it in normalize.ts`)
  }
}

const str = (value: unknown): string => JSON.stringify(value)

/** One statement validating `input.<f>` and storing it in row `i` of `out` (throws through `invalid` when bad). */
function stageStatement(field: CallField): string {
  const spec = CALL_FIELDS[field] as FieldSpec
  const expected = str(inputExpectation(spec))
  const bad = `invalid(${str(field)}, ${expected}, v)`
  const absent = spec.default !== undefined ? 'v === undefined' : 'v === undefined || v === null'
  const orDefault = (fallback: string): string => (spec.default !== undefined ? String(Number(spec.default)) : fallback)
  const target = `out.${field}[i]`
  switch (spec.kind) {
    case 'text':
      return `v = input.${field}; ${target} = ${absent} ? null : typeof v === 'string' ? (v === '' ? null : storable(v.length > ${spec.max} ? cap(v, ${spec.max}) : v)) : ${bad};`
    case 'id':
      return `v = input.${field}; ${target} = ${absent} ? null : typeof v === 'string' ? (v === '' ? null : storable(v.length > ${spec.max} ? cap(v, ${spec.max}) : v)) : typeof v === 'number' && Number.isFinite(v) ? String(v) : ${bad};`
    case 'count':
      return `v = input.${field}; ${target} = ${absent} ? ${orDefault('NaN')} : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : ${bad};`
    case 'ms':
      return `v = input.${field}; ${target} = ${absent} ? ${orDefault('NaN')} : typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) / 1000 : ${bad};`
    case 'real':
      return `v = input.${field}; ${target} = ${absent} ? ${orDefault('NaN')} : typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : ${bad};`
    case 'int':
      return `v = input.${field}; ${target} = ${absent} ? ${orDefault('NaN')} : typeof v === 'number' && Number.isInteger(v) && v >= ${spec.min} && v <= ${spec.maxValue} ? v : ${bad};`
    case 'bool':
      return `v = input.${field}; ${target} = ${absent} ? ${orDefault('0')} : v === true ? 1 : v === false ? 0 : ${bad};`
    case 'enum':
      return `v = input.${field}; ${target} = ${absent} ? ${NULL_CODE} : typeof v === 'string' && typeof codes.${field}[v] === 'number' ? codes.${field}[v] : ${bad};`
    default:
      return inputExpectation(spec) // throws: the kind cannot be a direct input
  }
}

/** The property of a record built from row `i` of `c`. */
function readExpression(field: CallField): string {
  const spec = CALL_FIELDS[field] as FieldSpec
  if (field === 'id') return 'id'
  switch (storageOf(spec)) {
    case 'string':
      return `c.${field}[i]`
    case 'code':
      return spec.kind === 'bool' ? `c.${field}[i] === 1` : `enums.${field}[c.${field}[i]]`
    default:
      return spec.nullable ? `nn(c.${field}[i])` : `c.${field}[i]`
  }
}

/** The JavaScript source of the generated functions (their bodies), for tests and for reading. */
export function generatedSource(): { init: string; stage: string; read: string } {
  const empty = { number: 'new Float64Array(0)', code: 'new Uint8Array(0)', string: '[]' }
  // Named stores: columns added with computed keys would turn the holder into a slow dictionary-mode object.
  const init = CALL_RECORD_FIELDS.map((f) => `self.${f} = ${empty[storageOf(CALL_FIELDS[f] as FieldSpec)]};`).join('\n')
  const stage = ['let v;', ...DIRECT_INPUT_FIELDS.map(stageStatement)].join('\n')
  const read = `return {\n${CALL_RECORD_FIELDS.map((f) => `  ${f}: ${readExpression(f)},`).join('\n')}\n};`
  return { init, stage, read }
}

function invalid(field: string, expected: string, got: unknown): never {
  throw new ApimeterError('INVALID_CALL', `call.${field} must be ${expected}, got ${describeValue(got)}`, {
    details: { field },
  })
}

/** Cuts a string to `max` characters, marking the cut with an ellipsis. */
export function cap(value: string, max: number): string {
  return value.length > max ? value.slice(0, max - 1) + '…' : value
}

const nn = (n: number): number | null => (n !== n ? null : n) // NaN stands for null

/**
 * Compiles a generated function body: `name(params) { body }`, closing over `bindings` (helpers and tables it calls
 * by name). The reason for generating code at all is at the top of this file. Exported on `@apimeter/core/sql` for
 * storages with hot paths of their own over a field list.
 *
 * @example
 * ```ts
 * const fields = ['requests', 'cached']
 * const write = compileFunction<(state: AggregateState, out: Float64Array) => void>(
 *   'write', 'state, out', fields.map((f, i) => `out[${i}] = state.${f};`).join('\n'))
 * ```
 */
export function compileFunction<F>(name: string, params: string, body: string, bindings: Record<string, unknown> = {}): F {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function(...Object.keys(bindings), `'use strict'; return function ${name}(${params}) {\n${body}\n}`) as (...values: unknown[]) => F
  return factory(...Object.values(bindings))
}

const source = generatedSource()

/**
 * Validates the direct inputs of a call (fields `record()` takes under their own name) and stores them in row `i`.
 * Throws `INVALID_CALL` naming the field; the row is then partly written and must not be counted.
 */
export const stageDirectInputs = compileFunction<(input: CallInput, out: ColumnSet, i: number) => void>('stageDirectInputs', 'input, out, i', source.stage, { invalid, cap, storable, codes: ENUM_CODES })

/** Creates an empty column of every field on `self` (the staging buffer's constructor calls it). */
export const initColumns = compileFunction<(self: object) => void>('initColumns', 'self', source.init)

/** The record of row `i`. */
export const readRecord = compileFunction<(c: ColumnSet, i: number, id: string) => CallRecord>('readRecord', 'c, i, id', source.read, { nn, enums: ENUM_VALUES })

