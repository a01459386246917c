import { z } from 'zod'
import { DIRECTIONS } from '../call/fields.js'
import { OUTCOMES } from '../call/outcome.js'

// The zod fields of a stats filter, apart from stats.ts so that modules stats.ts depends on (SLOs, for health) can
// build schemas from them while stats.ts itself is still loading.

/** A time a query takes: a Date, epoch ms, ISO-8601 or relative. */
export const timeInput = z.union([z.date(), z.number(), z.string()], {
  error: `a Date, epoch milliseconds, an ISO-8601 string or a relative time such as '-24h'`,
})
function listOf<T extends z.ZodType>(item: T, expected: string) {
  return z.union([item, z.array(item)], { error: expected }).optional()
}
/** A non-empty string. */
export const nonEmpty = z.string().min(1)
/** The zod fields of a stats filter; alert rules accept the same ones (but `from` / `to`). */
export const filterShape = {
  from: timeInput.optional(),
  to: timeInput.optional(),
  service: listOf(nonEmpty, 'a service name or a list of them'),
  direction: listOf(z.enum(DIRECTIONS), `'inbound', 'outbound' or a list of them`),
  api: listOf(nonEmpty.nullable(), 'an API name, null, or a list of them'),
  route: listOf(nonEmpty, 'a route template or a list of them'),
  method: listOf(nonEmpty, 'an HTTP method or a list of them'),
  tenantId: listOf(nonEmpty.nullable(), 'a tenant id, null, or a list of them'),
  userId: listOf(nonEmpty.nullable(), 'a user id, null, or a list of them'),
  outcome: listOf(z.enum(OUTCOMES), `an outcome (${OUTCOMES.join(', ')}) or a list of them`),
  model: listOf(nonEmpty.nullable(), 'a model name, null, or a list of them'),
  statusCode: listOf(z.number().int().min(100).max(999).nullable(), 'an HTTP status code, null, or a list of them'),
}
