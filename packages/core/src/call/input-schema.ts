import { z } from 'zod'
import { CALL_FIELDS, COST_SOURCES, DIRECT_INPUT_FIELDS, DIRECTIONS, type FieldSpec, LIMITS } from './fields.js'
import { NO_RESPONSE_OUTCOMES, OUTCOMES } from './outcome.js'
import type { DerivedInputs } from './types.js'

/**
 * The zod schema of `record()`'s input: the direct inputs derived from the field table by kind, the derived inputs
 * written out once below. It is the readable reference of what `record()` accepts; the hot path (`normalize.ts` and
 * the generated `stageDirectInputs`) must accept and reject exactly the same calls, which a property test checks.
 */

const nullish = <T extends z.ZodType>(schema: T) => schema.nullable().optional()
const finiteAtLeast0 = z.number().refine((v) => Number.isFinite(v) && v >= 0)

function directSchema(spec: FieldSpec): z.ZodType {
  switch (spec.kind) {
    case 'text':
      return nullish(z.string())
    case 'id':
      return nullish(z.union([z.string(), z.number().refine(Number.isFinite)]))
    case 'count':
      return nullish(z.number().int().min(0))
    case 'ms':
    case 'real':
      return nullish(finiteAtLeast0)
    case 'int': {
      const n = z.number().int().min(spec.min!).max(spec.maxValue!)
      return spec.default !== undefined ? n.optional() : nullish(n)
    }
    case 'bool':
      return z.boolean().optional()
    case 'enum':
      return nullish(z.enum(spec.values as [string, ...string[]]))
    default:
      throw new Error(`a '${spec.kind}' field cannot be a direct input`)
  }
}

/** The derived inputs: every key of {@link DerivedInputs}, with its schema (the compiler checks none is missing). */
const derivedInputs = {
  direction: z.enum(DIRECTIONS),
  method: z.string().min(1).max(LIMITS.method),
  route: nullish(z.string().min(1)),
  url: nullish(z.string().min(1)),
  durationMs: finiteAtLeast0,
  statusCode: nullish(z.number().int().min(100).max(999)),
  outcome: z.enum(OUTCOMES).optional(),
  error: z.unknown().optional(),
  timestamp: z.union([z.number().refine((v) => Number.isFinite(v) && v >= 0), z.date().refine((d) => !Number.isNaN(d.getTime()))]).optional(),
  service: z.string().min(1).optional(),
  api: nullish(z.string()),
  host: nullish(z.string()),
  cost: nullish(z.number().refine((v) => Number.isFinite(v) && v >= 0 && v <= 9e6)),
  costSource: nullish(z.enum(COST_SOURCES)),
  errorType: nullish(z.string()),
  errorMessage: nullish(z.string()),
  rateLimit: nullish(
    z.object({ limit: nullish(finiteAtLeast0), remaining: nullish(finiteAtLeast0), resetMs: nullish(finiteAtLeast0), scope: nullish(z.string()) }),
  ),
  metadata: nullish(z.record(z.string(), z.unknown())),
} satisfies Record<keyof DerivedInputs, z.ZodType>

/** The zod schema of a call given to `record()`. */
export const callInputSchema = z
  .strictObject({
    ...derivedInputs,
    ...Object.fromEntries(DIRECT_INPUT_FIELDS.map((f) => [f, directSchema(CALL_FIELDS[f] as FieldSpec)])),
  })
  .superRefine((call, ctx) => {
    if ((call.route === undefined || call.route === null) && (call.url === undefined || call.url === null)) {
      ctx.addIssue({ code: 'custom', path: ['route'], message: 'a route template string (or give call.url)' })
    }
    const status = call.statusCode
    const hasStatus = status !== undefined && status !== null
    if (call.outcome !== undefined && !hasStatus && !(NO_RESPONSE_OUTCOMES as readonly string[]).includes(call.outcome)) {
      ctx.addIssue({ code: 'custom', path: ['outcome'], message: `'timeout', 'network_error' or 'aborted' when no statusCode is given` })
    }
    if (call.outcome === undefined && !hasStatus && (call.error === undefined || call.error === null)) {
      ctx.addIssue({ code: 'custom', path: ['statusCode'], message: 'an HTTP status code, or call.outcome / call.error must say why no response arrived' })
    }
    if (call.costSource === 'unknown' && call.cost !== undefined && call.cost !== null) {
      ctx.addIssue({ code: 'custom', path: ['costSource'], message: `not 'unknown' when call.cost is given` })
    }
  })

/** Every key `record()` accepts. */
export const CALL_INPUT_KEYS: readonly string[] = Object.keys(callInputSchema.shape)
