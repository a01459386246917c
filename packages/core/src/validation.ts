import { z } from 'zod'
import { ApimeterError, type ApimeterErrorCode, describeValue, PACKAGE_NAME, suggest } from './errors.js'

/**
 * Parses `input` with a zod schema and turns the first problems into one readable error (used by every apimeter
 * package for its options, with its own package name as `prefix`):
 * `@apimeter/core: options.flushIntervalMs must be a whole number of milliseconds >= 10, got -5`.
 *
 * Custom messages on schemas are the *expected* phrase ("a whole number of milliseconds >= 10"); the field path
 * and the received value are added here, so every message has the same shape.
 */
export function parseOrThrow<T>(
  schema: z.ZodType<T>,
  input: unknown,
  root: string,
  code: ApimeterErrorCode = 'INVALID_OPTIONS',
  prefix: string = PACKAGE_NAME,
): T {
  const result = schema.safeParse(input, { reportInput: true })
  if (result.success) return result.data
  const lines = result.error.issues.slice(0, 5).map((issue) => formatIssue(issue, root, schema))
  const more = result.error.issues.length > 5 ? ` (and ${result.error.issues.length - 5} more problems)` : ''
  throw new ApimeterError(code, `${prefix}: ${lines.join('; ')}${more}`, {
    prefix,
    details: { issues: result.error.issues.map((i) => ({ path: [root, ...i.path.map(String)].join('.'), message: i.message })) },
  })
}

function formatIssue(issue: z.core.$ZodIssue, root: string, schema: z.ZodType): string {
  const path = [root, ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))].join('.').replace(/\.\[/g, '[')
  if (issue.code === 'unrecognized_keys') {
    const known = keysAt(schema, issue.path)
    return issue.keys
      .map((key) => {
        const hint = known ? suggest(key, known) : undefined
        return `${path}.${key} is not a known option${hint ? ` (did you mean ${hint}?)` : ''}`
      })
      .join('; ')
  }
  const got = describeValue((issue as { input?: unknown }).input)
  let expected = issue.message
  if (expected.startsWith('Invalid input')) {
    if (issue.code === 'invalid_type') expected = `${article(issue.expected)} ${issue.expected}`
    else if (issue.code === 'invalid_value') expected = `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`
    else if (issue.code === 'invalid_union') expected = 'one of the accepted forms'
  }
  return `${path} must be ${expected}, got ${got}`
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a'
}

/** Keys of the object schema found at `path` inside `schema` (unwrapping optional/default/nullable). */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): readonly string[] | undefined {
  let current: unknown = schema
  const steps = [...path]
  for (;;) {
    current = unwrap(current)
    // a list of objects (alert rules): step into the element schema
    if (current instanceof z.ZodArray && typeof steps[0] === 'number') {
      steps.shift()
      current = unwrap(current.element)
    }
    if (!(current instanceof z.ZodObject)) return undefined
    if (steps.length === 0) return Object.keys(current.shape)
    current = current.shape[String(steps.shift())]
  }
}

function unwrap(schema: unknown): unknown {
  let current = schema as { _zod?: { def?: { innerType?: unknown; in?: unknown } } } | undefined
  for (let i = 0; i < 10 && current?._zod?.def; i++) {
    const def = current._zod.def
    const next = def.innerType ?? def.in
    if (!next) break
    current = next
  }
  return current
}

/** `z.number()` for a whole number in `[min, max]`, with one "expected" phrase for every failure. */
export function intInRange(min: number, max: number, expected: string) {
  return z
    .number({ error: expected })
    .int({ error: expected })
    .min(min, { error: expected })
    .max(max, { error: expected })
}

/** `z.number()` for a finite number in `[min, max]`. */
export function numberInRange(min: number, max: number, expected: string) {
  return z.number({ error: expected }).min(min, { error: expected }).max(max, { error: expected })
}

/** A whole number >= `min`, or `Infinity` (zod's number rejects Infinity). */
export function wholeOrInfinity(min: number, expected: string) {
  return z.custom<number>((v) => v === Infinity || (typeof v === 'number' && Number.isInteger(v) && v >= min), { error: expected })
}
