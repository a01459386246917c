/**
 * Token usage read from LLM responses, incrementally: the integrations feed every body chunk as it passes to the
 * application (never altered, never buffered whole) and ask for the usage when the body ends.
 *
 * - Server-sent events are split into lines as they arrive; only the last usage seen is kept (OpenAI sends it in
 *   its final chunk when `stream_options.include_usage` is set; Anthropic in `message_start` and `message_delta`).
 * - A JSON body is kept whole only while small (128 KiB); beyond that only its first and last 64 KiB are kept and
 *   the `usage` object is cut out of the tail (providers put it last) and the `model` out of the head.
 */

/** Token counts and cost of one LLM response, normalised across providers. */
export interface Usage {
  model?: string | null
  /** Input tokens billed at (at least) the full input price: cached reads excluded, cache writes included. */
  inputTokens?: number | null
  outputTokens?: number | null
  /** Input tokens read from the provider's prompt cache. */
  cachedInputTokens?: number | null
  /** Of `inputTokens`, those written to the prompt cache (Anthropic bills them at `cacheWritePerMTok`). */
  cacheWriteTokens?: number | null
  /** A cost the provider reported itself (USD); it wins over a computed one. */
  cost?: number | null
}

/** What a custom usage reader gets: the parsed JSON body, or the last server-sent event that carried usage. */
export type UsageReader = (body: unknown) => Usage | undefined | null

/** Where token counts come from: a provider's format or your own reader. */
export type UsageFormat = 'openai' | 'anthropic' | UsageReader

/** How complete the usage of a response is. */
export type UsageState =
  /** The provider reported usage. */
  | 'reported'
  /** The body ended normally and reports no usage: nothing token-billed happened. */
  | 'none'
  /** Usage never (fully) arrived; the counts are a lower-bound estimate. */
  | 'estimated'
  /** Usage never arrived and nothing could be estimated. */
  | 'unknown'

export interface UsageResult {
  state: UsageState
  usage: Usage | null
}

/** Scans one response body for usage. */
export interface UsageScanner {
  push(chunk: Uint8Array): void
  /** `complete`: the body ended normally (not cut, not cancelled). */
  finish(complete: boolean, requestBytes: number | null): UsageResult
}

const MAX_LINE = 1 << 20
const WHOLE_JSON = 128 * 1024
const HEAD = 64 * 1024
const TAIL = 64 * 1024

/** A scanner for a response of this content type, or null when it carries no usage (not JSON or SSE). */
export function createUsageScanner(format: UsageFormat, contentType: string | null): UsageScanner | null {
  const type = (contentType ?? '').toLowerCase()
  if (type.includes('text/event-stream')) return new SseScanner(format)
  if (type.includes('json') || type === '') return new JsonScanner(format)
  return null
}

interface StreamState {
  model: string | null
  usage: Usage | null
  /** Characters of generated text seen in deltas (for estimates when usage never arrives). */
  textChars: number
  /** The provider's own end-of-stream marker was seen. */
  done: boolean
  /** The provider's final usage arrived (OpenAI's usage chunk, Anthropic's `message_delta`). */
  final: boolean
  /** Exact input usage known early (Anthropic `message_start`). */
  early: Usage | null
  lastUsageEvent: unknown
}

class SseScanner implements UsageScanner {
  private readonly decoder = new TextDecoder()
  private pending = ''
  private overflow = false
  private readonly state: StreamState = { model: null, usage: null, textChars: 0, done: false, final: false, early: null, lastUsageEvent: undefined }

  constructor(private readonly format: UsageFormat) {}

  push(chunk: Uint8Array): void {
    this.feed(this.decoder.decode(chunk, { stream: true }))
  }

  private feed(text: string): void {
    let start = 0
    for (;;) {
      const nl = text.indexOf('\n', start)
      if (nl === -1) break
      const piece = text.slice(start, nl)
      const line = this.pending === '' ? piece : this.pending + piece
      this.pending = ''
      if (this.overflow) this.overflow = false
      else this.line(line.endsWith('\r') ? line.slice(0, -1) : line)
      start = nl + 1
    }
    if (start < text.length && !this.overflow) {
      this.pending += text.slice(start)
      if (this.pending.length > MAX_LINE) {
        // A runaway line: drop it rather than grow without bound.
        this.pending = ''
        this.overflow = true
      }
    }
  }

  private line(line: string): void {
    if (!line.startsWith('data:')) return
    const payload = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5)
    if (payload === '[DONE]') {
      this.state.done = true
      return
    }
    if (payload.charCodeAt(0) !== 123 /* { */) return
    let event: unknown
    try {
      event = JSON.parse(payload)
    } catch {
      return
    }
    if (typeof event !== 'object' || event === null) return
    if (this.format === 'openai') openaiEvent(event as Record<string, unknown>, this.state)
    else if (this.format === 'anthropic') anthropicEvent(event as Record<string, unknown>, this.state)
    else if (payload.includes('"usage"')) this.state.lastUsageEvent = event
  }

  finish(complete: boolean, requestBytes: number | null): UsageResult {
    if (complete) this.feed(this.decoder.decode() + '\n')
    const s = this.state
    if (typeof this.format === 'function') {
      const usage = s.lastUsageEvent === undefined ? null : safeRead(this.format, s.lastUsageEvent)
      return usage ? { state: 'reported', usage } : { state: 'unknown', usage: null }
    }
    if (s.usage && s.final) {
      return { state: 'reported', usage: { ...s.usage, model: s.usage.model ?? s.model } }
    }
    return estimate(s, this.format, requestBytes)
  }
}

function estimate(s: StreamState, format: 'openai' | 'anthropic', requestBytes: number | null): UsageResult {
  const outputGuess = s.textChars > 0 ? Math.ceil(s.textChars / 4) : 0
  if (format === 'anthropic' && s.early) {
    const seen = s.usage?.outputTokens ?? s.early.outputTokens ?? 0
    return { state: 'estimated', usage: { ...s.early, outputTokens: Math.max(seen, outputGuess), model: s.model } }
  }
  if (s.model !== null && (outputGuess > 0 || requestBytes)) {
    return {
      state: 'estimated',
      usage: { model: s.model, inputTokens: requestBytes ? Math.ceil(requestBytes / 4) : null, outputTokens: outputGuess, cachedInputTokens: null },
    }
  }
  return { state: 'unknown', usage: null }
}

function openaiEvent(event: Record<string, unknown>, s: StreamState): void {
  // Chat Completions chunks.
  if (typeof event.model === 'string') s.model = event.model
  if (Array.isArray(event.choices)) {
    for (const choice of event.choices as { delta?: { content?: unknown; refusal?: unknown; tool_calls?: { function?: { arguments?: unknown } }[] } }[]) {
      const delta = choice?.delta
      if (!delta) continue
      if (typeof delta.content === 'string') s.textChars += delta.content.length
      if (typeof delta.refusal === 'string') s.textChars += delta.refusal.length
      if (Array.isArray(delta.tool_calls)) {
        for (const call of delta.tool_calls) if (typeof call?.function?.arguments === 'string') s.textChars += call.function.arguments.length
      }
    }
  }
  if (event.usage && typeof event.usage === 'object') {
    s.usage = fromOpenai(event.usage as Record<string, unknown>, s.model)
    s.final = true
  }
  // Responses API events.
  const type = event.type
  if (typeof type === 'string') {
    if (type.endsWith('.delta') && typeof event.delta === 'string') s.textChars += event.delta.length
    const response = event.response as Record<string, unknown> | undefined
    if (response && typeof response === 'object') {
      if (typeof response.model === 'string') s.model = response.model
      if (response.usage && typeof response.usage === 'object') {
        s.usage = fromOpenai(response.usage as Record<string, unknown>, s.model)
        s.final = true
      }
      if (type === 'response.completed' || type === 'response.incomplete') s.done = true
    }
  }
}

function anthropicEvent(event: Record<string, unknown>, s: StreamState): void {
  switch (event.type) {
    case 'message_start': {
      const message = event.message as Record<string, unknown> | undefined
      if (message && typeof message.model === 'string') s.model = message.model
      if (message?.usage && typeof message.usage === 'object') {
        s.early = fromAnthropic(message.usage as Record<string, unknown>, s.model)
        s.usage = s.early
      }
      break
    }
    case 'message_delta': {
      const usage = event.usage as Record<string, unknown> | undefined
      if (usage && typeof usage === 'object') {
        // The delta's output count is cumulative; input counts appear here only in newer API versions.
        const delta = fromAnthropic(usage, s.model)
        const base = s.usage ?? {}
        s.usage = {
          ...base,
          outputTokens: delta.outputTokens ?? base.outputTokens ?? null,
          inputTokens: usage.input_tokens !== undefined ? delta.inputTokens : base.inputTokens ?? null,
          cachedInputTokens: usage.cache_read_input_tokens !== undefined ? delta.cachedInputTokens : base.cachedInputTokens ?? null,
          cacheWriteTokens: usage.cache_creation_input_tokens !== undefined ? delta.cacheWriteTokens : base.cacheWriteTokens ?? null,
        }
        s.final = true
      }
      break
    }
    case 'content_block_delta': {
      const delta = event.delta as Record<string, unknown> | undefined
      if (delta) {
        for (const key of ['text', 'partial_json', 'thinking']) if (typeof delta[key] === 'string') s.textChars += (delta[key]).length
      }
      break
    }
    case 'message_stop':
      s.done = true
      break
  }
}

class JsonScanner implements UsageScanner {
  private head: Uint8Array[] = []
  private headBytes = 0
  private tail: Uint8Array[] = []
  private tailBytes = 0
  private truncated = false

  constructor(private readonly format: UsageFormat) {}

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return
    // Copies: the chunk belongs to the application (and a byte stream may transfer its buffer).
    if (!this.truncated && this.headBytes + chunk.byteLength <= WHOLE_JSON) {
      this.head.push(chunk.slice())
      this.headBytes += chunk.byteLength
      return
    }
    if (!this.truncated) {
      // Switch to head + tail: keep the first HEAD bytes, move the rest to the tail.
      this.truncated = true
      const all = concat(this.head, this.headBytes)
      this.head = [all.subarray(0, Math.min(HEAD, all.byteLength))]
      this.headBytes = this.head[0]!.byteLength
      if (all.byteLength > HEAD) this.appendTail(all.subarray(HEAD))
    }
    this.appendTail(chunk.byteLength > TAIL ? chunk.slice(chunk.byteLength - TAIL) : chunk.slice())
  }

  private appendTail(chunk: Uint8Array): void {
    this.tail.push(chunk)
    this.tailBytes += chunk.byteLength
    while (this.tailBytes - this.tail[0]!.byteLength >= TAIL) this.tailBytes -= this.tail.shift()!.byteLength
  }

  finish(complete: boolean): UsageResult {
    if (!complete) return { state: 'unknown', usage: null }
    let body: unknown
    const decoder = new TextDecoder()
    if (!this.truncated) {
      const text = decoder.decode(concat(this.head, this.headBytes)).trim()
      if (text === '') return { state: 'none', usage: null }
      try {
        body = JSON.parse(text)
      } catch {
        return { state: 'none', usage: null }
      }
    } else {
      body = extractFromEdges(decoder.decode(concat(this.head, this.headBytes)), new TextDecoder().decode(concat(this.tail, this.tailBytes)))
      if (body === undefined) return { state: 'none', usage: null }
    }
    const usage = readBody(this.format, body)
    return usage ? { state: 'reported', usage } : { state: 'none', usage: null }
  }
}

function readBody(format: UsageFormat, body: unknown): Usage | null {
  if (typeof body !== 'object' || body === null) return null
  const b = body as Record<string, unknown>
  if (typeof format === 'function') return safeRead(format, body)
  const model = typeof b.model === 'string' ? b.model : null
  if (!b.usage || typeof b.usage !== 'object') return null
  return format === 'openai' ? fromOpenai(b.usage as Record<string, unknown>, model) : fromAnthropic(b.usage as Record<string, unknown>, model)
}

function safeRead(reader: UsageReader, body: unknown): Usage | null {
  const usage = reader(body)
  return usage && typeof usage === 'object' ? usage : null
}

/** The `model` from the head and the last top-level-looking `"usage": {…}` from the tail of a large JSON body. */
function extractFromEdges(head: string, tail: string): unknown {
  const model = /"model"\s*:\s*"((?:[^"\\]|\\.){1,200})"/.exec(head)?.[1]
  const at = tail.lastIndexOf('"usage"')
  if (at === -1) return undefined
  const open = tail.indexOf('{', at)
  if (open === -1) return undefined
  const close = matchBrace(tail, open)
  if (close === -1) return undefined
  try {
    return { model, usage: JSON.parse(tail.slice(open, close + 1)) as unknown }
  } catch {
    return undefined
  }
}

function matchBrace(text: string, open: number): number {
  let depth = 0
  let inString = false
  for (let i = open; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92 /* \ */) i++
      else if (c === 34 /* " */) inString = false
    } else if (c === 34) inString = true
    else if (c === 123) depth++
    else if (c === 125 && --depth === 0) return i
  }
  return -1
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}

function count(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : null
}

/**
 * OpenAI usage (Chat Completions, Responses, Embeddings). `prompt_tokens` / `input_tokens` already include the
 * cached tokens, so they are subtracted: `inputTokens` counts only what is billed at the full price.
 */
export function fromOpenai(u: Record<string, unknown>, model: string | null): Usage {
  const details = (u.prompt_tokens_details ?? u.input_tokens_details) as Record<string, unknown> | undefined
  const cached = count(details?.cached_tokens) ?? 0
  const input = count(u.prompt_tokens ?? u.input_tokens)
  const output = count(u.completion_tokens ?? u.output_tokens)
  const cost = typeof u.cost === 'number' && Number.isFinite(u.cost) && u.cost >= 0 ? u.cost : null
  return {
    model,
    inputTokens: input === null ? null : Math.max(0, input - cached),
    outputTokens: output ?? (input !== null ? 0 : null),
    cachedInputTokens: cached,
    cacheWriteTokens: null,
    cost,
  }
}

/**
 * Anthropic usage. `input_tokens` excludes both cache reads and cache writes; cache writes are billed above the
 * input price, so they are added to `inputTokens` (and priced with `cacheWritePerMTok`).
 */
export function fromAnthropic(u: Record<string, unknown>, model: string | null): Usage {
  const input = count(u.input_tokens)
  const write = count(u.cache_creation_input_tokens) ?? 0
  const read = count(u.cache_read_input_tokens) ?? 0
  return {
    model,
    inputTokens: input === null ? (write > 0 ? write : null) : input + write,
    outputTokens: count(u.output_tokens),
    cachedInputTokens: read,
    cacheWriteTokens: write,
    cost: null,
  }
}
