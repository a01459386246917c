import { z } from 'zod'
import type { CostSource } from '../call/fields.js'
import { parseOrThrow } from '../validation.js'
import type { HeaderSource } from './headers.js'
import { ANTHROPIC_PRICES, type ModelPrice, OPENAI_PRICES } from './prices.js'
import type { Usage, UsageFormat, UsageState } from './usage.js'

/** What a custom cost function sees of a finished call. */
export interface CostContext {
  /** The API name from the registry (or the host). */
  api: string | null
  method: string
  /** The URL as requested (unmasked; it is not stored from here). */
  url: string
  route: string
  statusCode: number | null
  /** Response headers. */
  headers: HeaderSource
  /** Usage read from the body, when the API has a token cost model. */
  usage: Usage | null
}

/** The cost fields a model puts on a call. */
export interface PricedCall {
  cost: number | null
  costSource: CostSource | null
  model?: string | null
  inputTokens?: number | null
  outputTokens?: number | null
  cachedInputTokens?: number | null
}

/**
 * How calls to an API are priced; build one with {@link costs}. Opaque: pass it as an API's `cost` option.
 */
export interface CostModel {
  /** `perRequest`, `perToken` or `custom`. */
  readonly kind: 'perRequest' | 'perToken' | 'custom'
  /** Where token counts come from (token models only); the integrations scan response bodies for it. */
  readonly usage: UsageFormat | undefined
  /** Prices a finished call. Never throws for well-formed input; a custom function that throws is reported. */
  price(context: CostContext, usageState: UsageState | null): PricedCall
}

/** Options of {@link costs.perRequest}. */
export interface PerRequestOptions {
  /**
   * Also charge responses with a 4xx/5xx status. By default only 1xx–3xx responses cost money; a call without a
   * response never does.
   * @default false
   */
  chargeErrors?: boolean
}

/** Options of {@link costs.perToken}. */
export interface PerTokenOptions {
  /** Where token counts come from: `'openai'`, `'anthropic'`, or `(body) => Usage` for your own format. */
  usage: UsageFormat
  /** Prices by model, tried in order; the first match wins. */
  models: ModelPrice[]
}

/** Options of `costs.openai()` / `costs.anthropic()`: your prices, tried before the shipped list. */
export interface ProviderCostOptions {
  /** Extra or corrected prices, tried before the shipped list. */
  models?: ModelPrice[]
}

const NOT_PRICED: PricedCall = Object.freeze({ cost: null, costSource: null })

const usdSchema = z.number({ error: 'a finite USD amount >= 0' }).min(0, { error: 'a finite USD amount >= 0' }).max(9e6, { error: 'a USD amount up to 9,000,000' })
const perMTok = (what: string) => z.number({ error: `${what} in USD per million tokens (a number >= 0)` }).min(0, { error: `${what} in USD per million tokens (a number >= 0)` }).max(1e6, { error: `${what} in USD per million tokens (at most 1,000,000)` })
const modelPriceSchema = z.strictObject({
  match: z.union([z.instanceof(RegExp), z.string().min(1)], { error: 'a RegExp or a model name' }),
  inputPerMTok: perMTok('the input price'),
  outputPerMTok: perMTok('the output price'),
  cachedInputPerMTok: perMTok('the cached-input price').optional(),
  cacheWritePerMTok: perMTok('the cache-write price').optional(),
})
const usageFormatSchema = z.union([z.literal('openai'), z.literal('anthropic'), z.custom<(body: unknown) => Usage>((v) => typeof v === 'function')], {
  error: `'openai', 'anthropic' or a function (body) => usage`,
})
const perRequestOptionsSchema = z.strictObject({ chargeErrors: z.boolean({ error: 'true or false' }).optional() }).optional()
const perTokenSchema = z.strictObject({ usage: usageFormatSchema, models: z.array(modelPriceSchema, { error: 'an array of model prices' }) })
const providerSchema = z.strictObject({ models: z.array(modelPriceSchema, { error: 'an array of model prices' }).optional() }).optional()
const customSchema = z.custom<(call: CostContext) => number | null | undefined>((v) => typeof v === 'function', { error: 'a function (call) => USD or undefined' })

/** The first price whose `match` fits the model name. */
export function findPrice(prices: readonly ModelPrice[], model: string | null | undefined): ModelPrice | undefined {
  if (!model) return undefined
  for (const price of prices) {
    const { match } = price
    if (typeof match === 'string') {
      if (model === match || model.startsWith(`${match}-`)) return price
    } else {
      match.lastIndex = 0
      if (match.test(model)) return price
    }
  }
  return undefined
}

/**
 * USD for token counts at a price, computed in integer nano-USD per part so the stored amount is exact.
 *
 * @example
 * ```ts
 * tokenCost({ inputPerMTok: 0.15, outputPerMTok: 0.6, match: 'gpt-4o-mini' }, { inputTokens: 1000, outputTokens: 100 })
 * // 0.00021
 * ```
 */
export function tokenCost(price: ModelPrice, usage: Usage): number {
  const input = usage.inputTokens ?? 0
  const write = Math.min(usage.cacheWriteTokens ?? 0, input)
  const nanos =
    nanosFor(input - write, price.inputPerMTok) +
    nanosFor(write, price.cacheWritePerMTok ?? price.inputPerMTok) +
    nanosFor(usage.cachedInputTokens ?? 0, price.cachedInputPerMTok ?? price.inputPerMTok) +
    nanosFor(usage.outputTokens ?? 0, price.outputPerMTok)
  return nanos / 1e9
}

// USD per million tokens = nano-USD per thousandth token: tokens * price * 1000 nano-USD.
function nanosFor(tokens: number, perMTok: number): number {
  return tokens > 0 ? Math.round(tokens * perMTok * 1000) : 0
}

class TokenCostModel implements CostModel {
  readonly kind = 'perToken' as const
  constructor(
    readonly usage: UsageFormat,
    private readonly prices: readonly ModelPrice[],
  ) {}

  price(context: CostContext, state: UsageState | null): PricedCall {
    if (context.statusCode === null || state === null) return NOT_PRICED
    if (state === 'none') return NOT_PRICED
    if (state === 'unknown' || context.usage === null) {
      // Priced, but usage never arrived (a cut stream): unknown, never 0.
      return context.statusCode < 400 ? { cost: null, costSource: 'unknown' } : NOT_PRICED
    }
    const usage = context.usage
    const fields = {
      model: usage.model ?? null,
      inputTokens: usage.inputTokens ?? null,
      outputTokens: usage.outputTokens ?? null,
      cachedInputTokens: usage.cachedInputTokens ?? null,
    }
    if (state === 'reported' && typeof usage.cost === 'number') return { ...fields, cost: usage.cost, costSource: 'provider' }
    const price = findPrice(this.prices, usage.model)
    if (!price) return { ...fields, cost: null, costSource: 'unknown' }
    return { ...fields, cost: tokenCost(price, usage), costSource: state === 'estimated' ? 'estimated' : 'computed' }
  }
}

class RequestCostModel implements CostModel {
  readonly kind = 'perRequest' as const
  readonly usage = undefined
  constructor(
    private readonly usd: number,
    private readonly chargeErrors: boolean,
  ) {}

  price(context: CostContext): PricedCall {
    if (context.statusCode === null) return NOT_PRICED
    if (context.statusCode >= 400 && !this.chargeErrors) return NOT_PRICED
    return { cost: this.usd, costSource: 'computed' }
  }
}

class CustomCostModel implements CostModel {
  readonly kind = 'custom' as const
  readonly usage = undefined
  constructor(private readonly fn: (call: CostContext) => number | null | undefined) {}

  price(context: CostContext): PricedCall {
    const usd = this.fn(context)
    if (usd === undefined || usd === null) return NOT_PRICED
    if (typeof usd !== 'number' || !Number.isFinite(usd) || usd < 0) {
      throw new TypeError(`costs.custom() returned ${String(usd)}; expected a USD amount >= 0 or undefined`)
    }
    return { cost: usd, costSource: 'computed' }
  }
}

/**
 * Cost models for the `apis` registry. Prices are USD; token prices are USD per million tokens.
 *
 * @example
 * ```ts
 * createMonitor({
 *   apis: [
 *     { name: 'openai', match: 'https://api.openai.com', cost: costs.openai() },
 *     { name: 'anthropic', match: 'api.anthropic.com', cost: costs.anthropic() },
 *     { name: 'finnhub', match: /finnhub\.io$/, cost: costs.perRequest(0.0001) },
 *   ],
 * })
 * ```
 */
export const costs = {
  /**
   * A flat price per call that got a 1xx–3xx response (`{ chargeErrors: true }` to charge every response).
   * @example
   * ```ts
   * { name: 'geocoder', match: 'maps.example.com', cost: costs.perRequest(0.005) }
   * ```
   */
  perRequest(usd: number, options?: PerRequestOptions): CostModel {
    const amount = parseOrThrow(usdSchema, usd, 'costs.perRequest(usd)')
    const parsed = parseOrThrow(perRequestOptionsSchema, options, 'costs.perRequest(usd, options)')
    return new RequestCostModel(amount, parsed?.chargeErrors ?? false)
  },
  /**
   * Prices by token usage read from each response (JSON or streamed), at per-model prices.
   * @example
   * ```ts
   * costs.perToken({ usage: 'openai', models: [{ match: /^my-finetune/, inputPerMTok: 0.3, outputPerMTok: 1.2 }] })
   * ```
   */
  perToken(options: PerTokenOptions): CostModel {
    const parsed = parseOrThrow(perTokenSchema, options, 'costs.perToken(options)')
    return new TokenCostModel(parsed.usage, parsed.models)
  },
  /**
   * OpenAI usage (Chat Completions, Responses, Embeddings; JSON and streamed) at the shipped, dated price list
   * ({@link PRICES_AS_OF}); your `models` are tried first.
   * @example
   * ```ts
   * costs.openai({ models: [{ match: 'gpt-4o-mini', inputPerMTok: 0.15, outputPerMTok: 0.6, cachedInputPerMTok: 0.075 }] })
   * ```
   */
  openai(options?: ProviderCostOptions): CostModel {
    const parsed = parseOrThrow(providerSchema, options, 'costs.openai(options)')
    return new TokenCostModel('openai', [...(parsed?.models ?? []), ...OPENAI_PRICES])
  },
  /**
   * Anthropic Messages usage (JSON and streamed) at the shipped, dated price list; your `models` are tried first.
   * @example
   * ```ts
   * costs.anthropic({ models: [{ match: /^claude-sonnet-4-5/, inputPerMTok: 3, outputPerMTok: 15 }] })
   * ```
   */
  anthropic(options?: ProviderCostOptions): CostModel {
    const parsed = parseOrThrow(providerSchema, options, 'costs.anthropic(options)')
    return new TokenCostModel('anthropic', [...(parsed?.models ?? []), ...ANTHROPIC_PRICES])
  },
  /**
   * Your own function of the finished call; return USD, or undefined when the call costs nothing.
   * @example
   * ```ts
   * costs.custom((call) => (call.statusCode === 200 ? Number(call.headers.get('x-credits-used') ?? 0) * 0.001 : undefined))
   * ```
   */
  custom(fn: (call: CostContext) => number | null | undefined): CostModel {
    return new CustomCostModel(parseOrThrow(customSchema, fn, 'costs.custom(fn)'))
  },
} as const

/** True when `value` was built by {@link costs}. */
export function isCostModel(value: unknown): value is CostModel {
  return value instanceof TokenCostModel || value instanceof RequestCostModel || value instanceof CustomCostModel
}
