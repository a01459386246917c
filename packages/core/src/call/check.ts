import { ApimeterError, describeValue } from '../errors.js'
import { CALL_FIELDS, CALL_RECORD_FIELDS, type CallField, type FieldSpec } from './fields.js'
import { NO_RESPONSE_OUTCOMES } from './outcome.js'
import type { CallRecord } from './types.js'

/**
 * The check of a stored record, for batches that did not come from `record()` (a custom writer, a test): every field
 * against its kind in the field table, then the one rule between fields (no status code ⇔ a no-response outcome).
 */

/** What a field of a record must hold, for messages; null when the value is fine. */
function problemOf(spec: FieldSpec, v: unknown): string | null {
  if (v === null) return spec.nullable ? null : expectedOf(spec)
  switch (spec.kind) {
    case 'text':
    case 'id':
    case 'json':
      return typeof v === 'string' && (spec.nullable || v !== '') ? null : expectedOf(spec)
    case 'count':
    case 'nanos':
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? null : expectedOf(spec)
    case 'epochMs':
      return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? null : expectedOf(spec)
    case 'int':
      return typeof v === 'number' && Number.isInteger(v) && v >= (spec.nullable ? -Infinity : spec.min!) ? null : expectedOf(spec)
    case 'ms':
    case 'real':
      return typeof v === 'number' && Number.isFinite(v) && (spec.nullable || v >= 0) ? null : expectedOf(spec)
    case 'bool':
      return typeof v === 'boolean' ? null : expectedOf(spec)
    case 'enum':
      return spec.values!.includes(v as string) ? null : expectedOf(spec)
  }
}

function expectedOf(spec: FieldSpec): string {
  const orNull = spec.nullable ? ' or null' : ''
  switch (spec.kind) {
    case 'text':
    case 'id':
    case 'json':
      return spec.nullable ? 'a string or null' : 'a non-empty string'
    case 'count':
    case 'nanos':
      return `a whole number >= 0${orNull}`
    case 'epochMs':
      return 'integer epoch milliseconds'
    case 'int':
      return spec.nullable ? 'an integer or null' : `a whole number >= ${spec.min}`
    case 'ms':
    case 'real':
      return spec.nullable ? 'a finite number or null' : 'a finite number >= 0'
    case 'bool':
      return 'a boolean'
    case 'enum':
      return `one of ${spec.values!.map((v) => `'${v}'`).join(', ')}${orNull}`
  }
}

/**
 * Checks that a row is a well-formed {@link CallRecord}; returns a description of the first problem, or null.
 * Storage adapters run it over a whole batch before writing, so a bad row never lands half a batch.
 *
 * @example
 * ```ts
 * const problem = checkCallRecord(row)
 * if (problem) throw new ApimeterError('INVALID_RECORD', problem)
 * ```
 */
export function checkCallRecord(record: unknown): string | null {
  if (typeof record !== 'object' || record === null) return `record must be an object, got ${describeValue(record)}`
  const r = record as Record<CallField, unknown>
  for (const field of CALL_RECORD_FIELDS) {
    const problem = problemOf(CALL_FIELDS[field], r[field])
    if (problem !== null) return `record.${field} must be ${problem}, got ${describeValue(r[field])}`
  }
  if (r.statusCode === null && !(NO_RESPONSE_OUTCOMES as readonly unknown[]).includes(r.outcome)) {
    return `record.outcome must be timeout, network_error or aborted when statusCode is null, got ${describeValue(r.outcome)}`
  }
  return null
}

// Batches built by the write pipeline from calls it has just validated; storages need not check them again.
const validatedBatches = new WeakSet<readonly CallRecord[]>()

/** Marks a batch as built from validated calls (the write pipeline does this), so storages skip re-validation. */
export function markValidated(batch: readonly CallRecord[]): void {
  validatedBatches.add(batch)
}

/**
 * Whether a batch was built from validated calls ({@link markValidated}): a storage that hands the batch on (to a
 * worker thread, say) passes this along, so the copy is not checked again.
 *
 * @example
 * ```ts
 * worker.postMessage({ calls, validated: isValidated(calls) })
 * ```
 */
export function isValidated(batch: readonly CallRecord[]): boolean {
  return validatedBatches.has(batch)
}

/**
 * Throws `INVALID_RECORD` naming the row and field when any row of a batch is malformed.
 *
 * @example
 * ```ts
 * async writeCalls(rows) { assertCallRecords(rows); await insert(rows) }
 * ```
 */
export function assertCallRecords(records: readonly CallRecord[]): void {
  if (!Array.isArray(records)) {
    throw new ApimeterError('INVALID_RECORD', `writeCalls() expects an array of call records, got ${describeValue(records)}`)
  }
  if (validatedBatches.has(records)) return
  for (let i = 0; i < records.length; i++) {
    const problem = checkCallRecord(records[i])
    if (problem !== null) {
      throw new ApimeterError('INVALID_RECORD', `batch row ${i}: ${problem}; nothing of this batch was written`, {
        details: { index: i },
      })
    }
  }
}
