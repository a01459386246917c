import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Anthropic from '@anthropic-ai/sdk'
import { costs, createMonitor } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordedCalls } from '../../../../test/support/calls.js'
import { testMonitor } from '../helpers/monitor.js'
import { type FakeProvider, startFakeProvider } from './fake-provider.js'

let provider: FakeProvider
let host: string
beforeAll(async () => {
  provider = await startFakeProvider()
  host = new URL(provider.url).host
})
afterAll(() => provider.close())

// gpt-4o-mini: 1,000 full-price input tokens (1,200 prompt tokens include 200 cached) at 0.15, 200 cached at 0.075,
// 80 output at 0.6 USD per million tokens.
const OPENAI_NANOS = 1000 * 150 + 200 * 75 + 80 * 600
// claude-sonnet-4-5: 1,000 input at 3, 100 cache-write at 3.75, 300 cache-read at 0.3, 42 output at 15 USD/MTok.
const ANTHROPIC_NANOS = 1000 * 3000 + 100 * 3750 + 300 * 300 + 42 * 15000

const openaiClient = (fetch: typeof globalThis.fetch, prefix = '') =>
  new OpenAI({ apiKey: 'sk-test-0123456789abcdef', baseURL: `${provider.url}${prefix}/v1`, fetch, maxRetries: 2 })
const anthropicClient = (fetch: typeof globalThis.fetch) => new Anthropic({ apiKey: 'sk-ant-test-0123456789', baseURL: provider.url, fetch, maxRetries: 0 })
const messages = [{ role: 'user' as const, content: 'Say hello' }]

describe('LLM costs with the real openai client', () => {
  const monitorFor = () => testMonitor({ apis: [{ name: 'openai', match: host, cost: costs.openai() }] })

  it('prices a JSON completion from its usage, subtracting cached tokens from the prompt count', async () => {
    const { monitor, storage } = monitorFor()
    const completion = await openaiClient(monitor.fetch).chat.completions.create({ model: 'gpt-4o-mini', messages })
    expect(completion.choices[0]!.message.content).toBe('Hello from the fake provider')
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(call).toMatchObject({
      api: 'openai',
      route: '/v1/chat/completions',
      model: 'gpt-4o-mini',
      inputTokens: 1000,
      cachedInputTokens: 200,
      outputTokens: 80,
      costNanos: OPENAI_NANOS,
      costSource: 'computed',
      attempt: 1,
    })
    await monitor.close()
  })

  it('prices a streamed completion from the final usage chunk, passing every event through', async () => {
    const { monitor, storage } = monitorFor()
    const stream = await openaiClient(monitor.fetch).chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } })
    let text = ''
    let usage: unknown
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? ''
      if (chunk.usage) usage = chunk.usage
    }
    expect(text).toBe('Hello from the fake provider')
    expect(usage).toMatchObject({ prompt_tokens: 1200, completion_tokens: 80 })
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(call).toMatchObject({ model: 'gpt-4o-mini', inputTokens: 1000, cachedInputTokens: 200, outputTokens: 80, costNanos: OPENAI_NANOS, costSource: 'computed' })
    expect(call!.ttfbMs!).toBeLessThan(call!.durationMs)
    await monitor.close()
  })

  it('marks a stream without usage as estimated and a cut stream as estimated or unknown, never $0', async () => {
    const { monitor, storage } = monitorFor()
    const client = openaiClient(monitor.fetch)
    const noUsage = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
    for await (const _ of noUsage) void _
    const cut = await openaiClient(monitor.fetch, '/cut').chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } })
    const error = await (async () => {
      for await (const _ of cut) void _
    })().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    const calls = await recordedCalls(monitor, storage)(2)
    const [complete, broken] = calls
    expect(complete).toMatchObject({ statusCode: 200, costSource: 'estimated', model: 'gpt-4o-mini' })
    expect(complete!.costNanos).toBeGreaterThan(0)
    expect(complete!.outputTokens).toBe(Math.ceil('Hello from the fake provider'.length / 4))
    expect(broken!.route).toBe('/cut/v1/chat/completions')
    expect(['estimated', 'unknown']).toContain(broken!.costSource)
    expect(broken!.costNanos === null || broken!.costNanos > 0).toBe(true)
    expect(broken!.outcome).toBe('network_error')
    await monitor.close()
  })

  it('lets a cost the provider reports win over the computed one', async () => {
    const { monitor, storage } = monitorFor()
    await openaiClient(monitor.fetch, '/priced').chat.completions.create({ model: 'gpt-4o-mini', messages })
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(call).toMatchObject({ costNanos: 12_300_000, costSource: 'provider', inputTokens: 1000 })
    await monitor.close()
  })

  it('records each SDK retry with its attempt number and one shared operation id', async () => {
    const { monitor, storage } = monitorFor()
    provider.failFirst.set('/v1/chat/completions', 2)
    const completion = await openaiClient(monitor.fetch).chat.completions.create({ model: 'gpt-4o-mini', messages })
    expect(completion.id).toBe('chatcmpl-1')
    await openaiClient(monitor.fetch).chat.completions.create({ model: 'gpt-4o-mini', messages })
    const calls = await recordedCalls(monitor, storage)(4)
    expect(calls.map((c) => [c.attempt, c.outcome, c.costNanos])).toEqual([
      [1, 'server_error', null],
      [2, 'server_error', null],
      [3, 'success', OPENAI_NANOS],
      [1, 'success', OPENAI_NANOS],
    ])
    expect(new Set(calls.slice(0, 3).map((c) => c.operationId)).size).toBe(1)
    expect(calls[0]!.operationId).not.toBeNull()
    expect(calls[3]!.operationId).not.toBe(calls[0]!.operationId)
    await monitor.close()
  })
})

describe('LLM costs with the real @anthropic-ai/sdk client', () => {
  const monitorFor = () => testMonitor({ apis: [{ name: 'anthropic', match: `${provider.url}/v1/messages`, cost: costs.anthropic() }] })

  it('prices a JSON message (cache reads and writes at their own prices)', async () => {
    const { monitor, storage } = monitorFor()
    const message = await anthropicClient(monitor.fetch).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, messages })
    expect(message.content[0]).toMatchObject({ type: 'text', text: 'Hello there' })
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(call).toMatchObject({ api: 'anthropic', model: 'claude-sonnet-4-5', inputTokens: 1100, cachedInputTokens: 300, outputTokens: 42, costNanos: ANTHROPIC_NANOS, costSource: 'computed' })
    await monitor.close()
  })

  it('prices a streamed message from message_start and message_delta', async () => {
    const { monitor, storage } = monitorFor()
    const stream = anthropicClient(monitor.fetch).messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 100, messages })
    const final = await stream.finalMessage()
    expect(final.usage.output_tokens).toBe(42)
    expect(final.content[0]).toMatchObject({ type: 'text', text: 'Hello there' })
    const [call] = await recordedCalls(monitor, storage)(1)
    expect(call).toMatchObject({ model: 'claude-sonnet-4-5', inputTokens: 1100, cachedInputTokens: 300, outputTokens: 42, costNanos: ANTHROPIC_NANOS, costSource: 'computed' })
    await monitor.close()
  })
})

describe('cost models', () => {
  it('perToken with your own models, perRequest (errors free by default) and custom, stored exactly in a SQLite file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apimeter-cost-'))
    const monitor = createMonitor({
      logger: false,
      flushOnExit: false,
      storage: sqliteStorage({ filename: join(dir, 'apimeter.db') }),
      apis: [
        { name: 'llm', match: `${provider.url}/v1/chat`, cost: costs.perToken({ usage: 'openai', models: [{ match: /^my-model/, inputPerMTok: 0.1, outputPerMTok: 0.3, cachedInputPerMTok: 0.01 }] }) },
        { name: 'quotes', match: `${provider.url}/quote`, routes: ['/quote/:symbol'], cost: costs.perRequest(0.0001) },
        { name: 'credits', match: `${provider.url}/headers`, cost: costs.custom((call) => Number(call.headers.get('x-credits') ?? 0) * 0.000_001) },
      ],
    })
    try {
      await openaiClient(monitor.fetch).chat.completions.create({ model: 'my-model-v2', messages })
      for (let i = 0; i < 3; i++) await (await monitor.fetch(`${provider.url}/quote/AAPL`)).text()
      await (await monitor.fetch(`${provider.url}/headers?x-credits=7`)).text()
      await (await monitor.fetch(`${provider.url}/headers?status=500`)).text()
      await (await monitor.fetch(`${provider.url}/quote/MSFT`, { method: 'HEAD' })).text()
      await monitor.flush()
      const byApi = await monitor.stats.breakdown({ by: 'api', from: '-1h' })
      const cost = Object.fromEntries(byApi.map((row) => [row.key, row.cost]))
      expect(cost.llm).toBe((1000 * 100 + 200 * 10 + 80 * 300) / 1e9)
      expect(cost.quotes).toBe(0.0004)
      expect(cost.credits).toBe(0.000007)
      const routes = await monitor.stats.breakdown({ by: 'route', api: 'quotes', from: '-1h' })
      expect(routes.map((r) => r.key)).toEqual(['/quote/:symbol'])
      const summary = await monitor.stats.summary({ from: '-1h' })
      expect(summary.cost).toBe(0.0004 + 0.000007 + 0.000126)
      expect(summary.tokens).toEqual({ input: 1000, output: 80, cachedInput: 200 })
    } finally {
      await monitor.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('validates cost model options with messages naming the option', () => {
    expect(() => costs.perRequest(-1)).toThrow('@apimeter/core: costs.perRequest(usd) must be a finite USD amount >= 0, got -1')
    expect(() => costs.perToken({ usage: 'openai', models: [{ match: /x/, inputPerMTok: 'a' as unknown as number, outputPerMTok: 1 }] })).toThrow(
      "@apimeter/core: costs.perToken(options).models[0].inputPerMTok must be the input price in USD per million tokens (a number >= 0), got \"a\"",
    )
    expect(() => createMonitor({ apis: [{ name: 'x', match: 'h', cost: 0.1 as never }] })).toThrow('@apimeter/core: options.apis[0].cost must be a cost model')
  })
})
