import { isApimeterError } from '../errors.js'

/**
 * What a failed storage operation means for the write path (docs/reliability.md):
 *
 * - `transient`: the storage may take the same batch later (connection refused/reset/terminated, a timeout, a busy
 *   or locked database, a server restarting): retry with backoff while the buffer has room.
 * - `rejected`: the storage refuses the data of this batch (PostgreSQL classes 22 and 23, a constraint): retrying
 *   cannot help; the batch is split until the offending calls are isolated, those are counted as rejected and every
 *   other call is written.
 * - `fatal`: the storage cannot work at all until someone acts (a driver that cannot load, a corrupt file, a schema
 *   that is missing and cannot be created): nothing is retried; calls are counted as dropped and the reason reported.
 */
export type StorageErrorKind = 'transient' | 'rejected' | 'fatal'

/** A classified storage error. */
export interface StorageErrorClass {
  kind: StorageErrorKind
  /** The call field the storage named as the cause of a rejection, when it named one. */
  field?: string
  /** What to do about a fatal error (`run npm rebuild better-sqlite3`). */
  hint?: string
}

/** An error and its causes, outermost first (at most 8 deep). */
export function errorChain(error: unknown): unknown[] {
  const chain: unknown[] = []
  let current = error
  while (current !== undefined && current !== null && chain.length < 8) {
    chain.push(current)
    current = typeof current === 'object' ? (current as { cause?: unknown }).cause : undefined
  }
  return chain
}

/** The `code` property of an error or of one of its causes that `test` accepts, if any. */
export function findCode(error: unknown, test: (code: string) => boolean): string | undefined {
  for (const e of errorChain(error)) {
    const code = typeof e === 'object' ? (e as { code?: unknown }).code : undefined
    if (typeof code === 'string' && test(code)) return code
  }
  return undefined
}

/** Whether the message of the error or of one of its causes matches. */
export function messageMatches(error: unknown, pattern: RegExp): boolean {
  return errorChain(error).some((e) => e instanceof Error && pattern.test(e.message))
}

/** A native addon that cannot load in this Node.js (built for another version, or never built). */
export const NATIVE_LOAD_FAILURE = /NODE_MODULE_VERSION|compiled against a different Node\.js version|Could not locate the bindings file|ERR_DLOPEN_FAILED|invalid ELF header|wrong ELF class/

/**
 * The kind of an error no adapter classified: the SDK's own codes, then a native driver that cannot load (fatal),
 * then everything else as transient — a storage that recovers loses nothing, one that never does fills the buffer,
 * whose drops are counted.
 *
 * @example
 * ```ts
 * const storage: StorageAdapter = { ...adapter, classifyError: (e) => myDriverClass(e) ?? defaultErrorClass(e) }
 * ```
 */
export function defaultErrorClass(error: unknown): StorageErrorClass {
  if (isApimeterError(error, 'STORAGE_CLOSED')) return { kind: 'fatal' }
  if (isApimeterError(error, 'INVALID_RECORD')) return { kind: 'rejected' }
  if (messageMatches(error, NATIVE_LOAD_FAILURE) || findCode(error, (c) => c === 'ERR_DLOPEN_FAILED')) {
    return { kind: 'fatal', hint: 'a native database driver cannot load in this Node.js: rebuild it (`npm rebuild better-sqlite3`) after changing Node versions' }
  }
  return { kind: 'transient' }
}
