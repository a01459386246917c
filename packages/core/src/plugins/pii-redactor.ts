import { z } from 'zod'
import { CALL_FIELDS, CALL_RECORD_FIELDS } from '../call/fields.js'
import { definePlugin, type PluginCall, type RedactedField } from './plugin.js'

/**
 * An example plugin, shipped and tested: masks email addresses and payment card numbers (Luhn-checked, so order
 * ids and timestamps of 13 to 19 digits stay) in the URL, route, error message and captured bodies of every call
 * before it is stored. Should it ever fail, the fields it covers are dropped rather than stored unmasked.
 */

const TEXT_FIELDS = new Set<string>(CALL_RECORD_FIELDS.filter((f) => CALL_FIELDS[f].nullable && (CALL_FIELDS[f].kind === 'text' || CALL_FIELDS[f].kind === 'id')))
const field = z.string().refine((f) => f === 'metadata' || (f.startsWith('metadata.') && f.length > 9) || TEXT_FIELDS.has(f), {
  error: `a nullable text field of a call (${[...TEXT_FIELDS].join(', ')}), 'metadata' or 'metadata.<key>'`,
})

/** The fields covered by default: the URL, the error message and the captured bodies and headers. */
export const PII_DEFAULT_FIELDS: readonly RedactedField[] = ['url', 'errorMessage', 'metadata.requestBody', 'metadata.responseBody', 'metadata.requestHeaders', 'metadata.responseHeaders']

const configSchema = z
  .strictObject({
    /** Fields to scan (and to drop should scanning fail). @default PII_DEFAULT_FIELDS */
    fields: z.array(field).min(1).optional(),
    /** Mask email addresses (also percent-encoded, `a%40b.com`). @default true */
    emails: z.boolean().optional(),
    /** Mask Luhn-valid card numbers of 13 to 19 digits, with or without spaces or dashes. @default true */
    cards: z.boolean().optional(),
  })
  .optional()

const EMAIL = /[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g
const CARD = /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g

/**
 * Whether a string of 13 or more digits passes the Luhn check (what card numbers do).
 *
 * @example
 * ```ts
 * luhnValid('4111111111111111')   // true
 * luhnValid('4111111111111112')   // false
 * ```
 */
export function luhnValid(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (d < 0 || d > 9) return false
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return digits.length >= 13 && sum % 10 === 0
}

/**
 * `text` with emails replaced by `[email]` and Luhn-valid card numbers by `[card]`.
 *
 * @example
 * ```ts
 * maskPii('jane@example.com paid with 4111 1111 1111 1111')   // '[email] paid with [card]'
 * ```
 */
export function maskPii(text: string, options: { emails?: boolean; cards?: boolean } = {}): string {
  let out = text
  if (options.emails !== false) out = out.replace(EMAIL, '[email]')
  if (options.cards !== false) out = out.replace(CARD, (m) => (luhnValid(m.replace(/[ -]/g, '')) ? '[card]' : m))
  return out
}

function maskDeep(value: unknown, options: { emails?: boolean; cards?: boolean }, depth = 0): unknown {
  if (typeof value === 'string') return maskPii(value, options)
  if (depth > 10 || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, options, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[maskPii(k, options)] = maskDeep(v, options, depth + 1)
  return out
}

/**
 * The PII redactor plugin: emails and card numbers masked in URLs, routes, error messages and captured bodies.
 *
 * @example
 * ```ts
 * import { createMonitor, piiRedactor } from '@apimeter/core'
 *
 * const monitor = createMonitor({
 *   outbound: { capture: { requestBody: true, responseBody: true } },
 *   plugins: [piiRedactor()],                       // or piiRedactor({ fields: ['url'], cards: false })
 * })
 * ```
 */
export const piiRedactor = definePlugin({
  name: 'pii-redactor',
  version: '1.0.0',
  config: configSchema,
  setup(ctx) {
    const options = { emails: ctx.config?.emails ?? true, cards: ctx.config?.cards ?? true }
    const fields = (ctx.config?.fields ?? PII_DEFAULT_FIELDS) as readonly RedactedField[]
    ctx.redact({ fields }, (call: PluginCall) => {
      call.route = maskPii(call.route, options)
      for (const f of fields) {
        if (f === 'metadata') call.metadata = call.metadata && (maskDeep(call.metadata, options) as Record<string, unknown>)
        else if (f.startsWith('metadata.')) {
          const key = f.slice('metadata.'.length)
          if (call.metadata && key in call.metadata) call.metadata[key] = maskDeep(call.metadata[key], options)
        } else {
          const record = call as unknown as Record<string, unknown>
          if (typeof record[f] === 'string') record[f] = maskPii(record[f], options)
        }
      }
    })
  },
})
