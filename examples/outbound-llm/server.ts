// npm run example:outbound — an app calling "OpenAI" and "Anthropic" through their real SDK clients with
// `fetch: monitor.fetch`, plus a plain JSON API through monitor.instrument(), all against a fake provider on
// loopback (no network, no keys). Prints what apimeter recorded: cost, tokens, cache hits, rate-limit headroom.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Anthropic from '@anthropic-ai/sdk'
import { costs, createMonitor, memoryStorage } from '@apimeter/core'
import OpenAI from 'openai'

// ---- a fake provider: OpenAI chat completions and Anthropic messages (JSON and streamed), one cached JSON API ----
const openaiUsage = { prompt_tokens: 1200, completion_tokens: 80, total_tokens: 1280, prompt_tokens_details: { cached_tokens: 200 } }
const provider = createServer((req, res) => {
  let raw = ''
  req.on('data', (chunk: Buffer) => (raw += chunk.toString()))
  req.on('end', () => {
    const body = raw ? (JSON.parse(raw) as { model?: string; stream?: boolean }) : {}
    if (req.url === '/openai/v1/chat/completions') {
      res.setHeader('x-ratelimit-limit-tokens', '30000')
      res.setHeader('x-ratelimit-remaining-tokens', '4200')
      res.setHeader('x-ratelimit-reset-tokens', '12s')
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        const chunk = (extra: object) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: body.model, ...extra })}\n\n`
        res.write(chunk({ choices: [{ index: 0, delta: { content: 'Hi!' }, finish_reason: null }] }))
        res.write(chunk({ choices: [], usage: openaiUsage }))
        return void res.end('data: [DONE]\n\n')
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      return void res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: 'Hi!' }, finish_reason: 'stop' }], usage: openaiUsage }))
    }
    if (req.url === '/anthropic/v1/messages') {
      res.writeHead(200, { 'content-type': 'application/json', 'anthropic-ratelimit-requests-limit': '50', 'anthropic-ratelimit-requests-remaining': '41' })
      return void res.end(JSON.stringify({ id: 'm1', type: 'message', role: 'assistant', model: body.model, content: [{ type: 'text', text: 'Hello' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 900, output_tokens: 120, cache_read_input_tokens: 4000 } }))
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cf-cache-status': Math.random() < 0.5 ? 'HIT' : 'MISS' })
    res.end(JSON.stringify({ symbol: 'AAPL', price: 231.5 }))
  })
})
await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve))
const base = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`

// ---- the app ----------------------------------------------------------------------------------------------------
const storage = memoryStorage()
const monitor = createMonitor({
  service: 'outbound-example',
  storage,
  apis: [
    { name: 'openai', match: `${base}/openai`, cost: costs.openai() },
    { name: 'anthropic', match: `${base}/anthropic`, cost: costs.anthropic() },
    { name: 'quotes', match: `${base}/quotes`, routes: ['/quotes/:symbol'], cost: costs.perRequest(0.0001) },
  ],
})
monitor.instrument() // the quotes API is called with axios-style plain fetch, metered through diagnostics channels

const openai = new OpenAI({ apiKey: 'sk-example', baseURL: `${base}/openai/v1`, fetch: monitor.fetch })
const anthropic = new Anthropic({ apiKey: 'sk-ant-example', baseURL: `${base}/anthropic`, fetch: monitor.fetch })

for (let i = 0; i < 3; i++) {
  await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] })
  const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true, stream_options: { include_usage: true } })
  for await (const _ of stream) void _
  await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 200, messages: [{ role: 'user', content: 'Hello' }] })
  for (const symbol of ['AAPL', 'MSFT']) await (await fetch(`${base}/quotes/${symbol}`)).json()
}
await monitor.flush()

console.log('per API:')
for (const row of await monitor.stats.breakdown({ by: 'api', from: '-1h', orderBy: 'cost' })) {
  console.log(`  ${row.key.padEnd(10)} ${String(row.requests).padStart(3)} calls  $${row.cost.toFixed(6)}  tokens in/out/cached ${row.tokens.input}/${row.tokens.output}/${row.tokens.cachedInput}  cache hits ${row.cached}  p50 ${row.latency?.p50.toFixed(1)} ms`)
}
console.log('rate-limit headroom last seen:')
for (const api of ['openai', 'anthropic']) {
  const call = storage.calls().findLast((c) => c.api === api)!
  console.log(`  ${api.padEnd(10)} ${call.rateLimitRemaining} of ${call.rateLimitLimit} ${call.rateLimitScope} left`)
}
await monitor.close()
provider.close()
