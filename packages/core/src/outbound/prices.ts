/**
 * The price lists shipped with apimeter, in USD per million tokens (the providers' own unit).
 *
 * Taken from the providers' public pricing pages as of {@link PRICES_AS_OF}. Prices change: pass your own entries
 * to `costs.openai({ models: [...] })` / `costs.anthropic({ models: [...] })`; they are tried before these.
 * Entries are tried in order, so a more specific pattern (`gpt-4o-mini`) comes before a broader one (`gpt-4o`).
 * Standard (non-batch, non-priority) tier; for Anthropic the 5-minute cache-write price and prompts up to 200k
 * tokens.
 */
export const PRICES_AS_OF = '2025-10-15'

/** One priced model family. */
export interface ModelPrice {
  /** Which model names this price applies to: a RegExp, or a string matched exactly or as a prefix followed by `-`. */
  match: RegExp | string
  /** USD per million input tokens billed at the full price. */
  inputPerMTok: number
  /** USD per million output tokens (reasoning tokens included). */
  outputPerMTok: number
  /** USD per million input tokens read from the prompt cache; defaults to `inputPerMTok`. */
  cachedInputPerMTok?: number
  /** USD per million input tokens written to the prompt cache (Anthropic); defaults to `inputPerMTok`. */
  cacheWritePerMTok?: number
}

// A model id followed by the end or a dated / variant suffix: `gpt-4o-mini`, `gpt-4o-mini-2024-07-18`.
const id = (name: string): RegExp => new RegExp(`^${name.replace(/[.]/g, '\\.')}(-|$)`)

/** OpenAI, standard tier. */
export const OPENAI_PRICES: readonly ModelPrice[] = Object.freeze([
  { match: id('gpt-5-nano'), inputPerMTok: 0.05, cachedInputPerMTok: 0.005, outputPerMTok: 0.4 },
  { match: id('gpt-5-mini'), inputPerMTok: 0.25, cachedInputPerMTok: 0.025, outputPerMTok: 2 },
  { match: id('gpt-5'), inputPerMTok: 1.25, cachedInputPerMTok: 0.125, outputPerMTok: 10 },
  { match: id('gpt-4.1-nano'), inputPerMTok: 0.1, cachedInputPerMTok: 0.025, outputPerMTok: 0.4 },
  { match: id('gpt-4.1-mini'), inputPerMTok: 0.4, cachedInputPerMTok: 0.1, outputPerMTok: 1.6 },
  { match: id('gpt-4.1'), inputPerMTok: 2, cachedInputPerMTok: 0.5, outputPerMTok: 8 },
  { match: id('gpt-4o-mini'), inputPerMTok: 0.15, cachedInputPerMTok: 0.075, outputPerMTok: 0.6 },
  { match: id('gpt-4o'), inputPerMTok: 2.5, cachedInputPerMTok: 1.25, outputPerMTok: 10 },
  { match: id('o4-mini'), inputPerMTok: 1.1, cachedInputPerMTok: 0.275, outputPerMTok: 4.4 },
  { match: id('o3-mini'), inputPerMTok: 1.1, cachedInputPerMTok: 0.55, outputPerMTok: 4.4 },
  { match: id('o3'), inputPerMTok: 2, cachedInputPerMTok: 0.5, outputPerMTok: 8 },
  { match: id('o1-mini'), inputPerMTok: 1.1, cachedInputPerMTok: 0.55, outputPerMTok: 4.4 },
  { match: id('o1'), inputPerMTok: 15, cachedInputPerMTok: 7.5, outputPerMTok: 60 },
  { match: id('gpt-4-turbo'), inputPerMTok: 10, outputPerMTok: 30 },
  { match: id('gpt-3.5-turbo'), inputPerMTok: 0.5, outputPerMTok: 1.5 },
  { match: id('text-embedding-3-small'), inputPerMTok: 0.02, outputPerMTok: 0 },
  { match: id('text-embedding-3-large'), inputPerMTok: 0.13, outputPerMTok: 0 },
  { match: id('text-embedding-ada-002'), inputPerMTok: 0.1, outputPerMTok: 0 },
])

/** Anthropic, standard tier; cache writes at the 5-minute TTL price (1.25× input), cache reads at 0.1× input. */
export const ANTHROPIC_PRICES: readonly ModelPrice[] = Object.freeze([
  { match: /^claude-(opus-4-1|opus-4|3-opus)(-|$)/, inputPerMTok: 15, outputPerMTok: 75, cacheWritePerMTok: 18.75, cachedInputPerMTok: 1.5 },
  { match: /^claude-(sonnet-4-5|sonnet-4|3-7-sonnet|3-5-sonnet)(-|$)/, inputPerMTok: 3, outputPerMTok: 15, cacheWritePerMTok: 3.75, cachedInputPerMTok: 0.3 },
  { match: /^claude-haiku-4-5(-|$)/, inputPerMTok: 1, outputPerMTok: 5, cacheWritePerMTok: 1.25, cachedInputPerMTok: 0.1 },
  { match: /^claude-3-5-haiku(-|$)/, inputPerMTok: 0.8, outputPerMTok: 4, cacheWritePerMTok: 1, cachedInputPerMTok: 0.08 },
  { match: /^claude-3-haiku(-|$)/, inputPerMTok: 0.25, outputPerMTok: 1.25, cacheWritePerMTok: 0.3, cachedInputPerMTok: 0.03 },
])
