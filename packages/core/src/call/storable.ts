/**
 * Strings every database can hold. PostgreSQL rejects a NUL byte in text (`invalid byte sequence for encoding
 * "UTF8": 0x00`) and in JSON (`\u0000`), and a lone UTF-16 surrogate has no UTF-8 encoding at all: one such string
 * would make the database refuse its whole batch. Both become U+FFFD (the replacement character) on the way in, so
 * the call is kept and the rest of the string is unchanged.
 */

const REPLACEMENT = '\uFFFD'

/** The string unchanged when it is storable (the common case: two native scans), else a cleaned copy. */
export function storable(value: string): string {
  if (value.indexOf('\u0000') === -1 && value.isWellFormed()) return value
  return value.replaceAll('\u0000', REPLACEMENT).toWellFormed()
}

// In JSON text (JSON.stringify escapes NUL as \u0000 and a lone surrogate as \udxxx; a well-formed pair stays raw
// characters), an escape of either that is not itself escaped by a preceding backslash.
const BAD_JSON_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/gi

/** JSON text with NUL and lone-surrogate escapes replaced by `\ufffd`, so PostgreSQL's JSONB takes it. */
export function storableJson(json: string): string {
  return json.includes('\\u') ? json.replace(BAD_JSON_ESCAPE, '$1\\ufffd') : json
}
