import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { close, listen } from '../../../../test/support/http.js'

/**
 * A loopback HTTP server speaking just enough of OpenAI's and Anthropic's wire formats (JSON and server-sent
 * events) for their real SDK clients, plus plain routes for timing, bytes, failures, caching and rate limits.
 * Every request it receives is kept in `requests` (method, url, headers, body) so tests can see what was sent.
 */
export interface FakeProvider {
  url: string
  requests: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[]
  /** Responses to fail with 500 before answering, per path (for retries). */
  failFirst: Map<string, number>
  close(): Promise<void>
}

const OPENAI_USAGE = { prompt_tokens: 1200, completion_tokens: 80, total_tokens: 1280, prompt_tokens_details: { cached_tokens: 200 } }
const ANTHROPIC_START_USAGE = { input_tokens: 1000, output_tokens: 1, cache_read_input_tokens: 300, cache_creation_input_tokens: 100 }

const sse = (res: ServerResponse, events: readonly string[], cut = false): void => {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  let i = 0
  const next = (): void => {
    if (i === events.length) {
      if (cut) res.socket?.destroy()
      else res.end()
      return
    }
    res.write(events[i++])
    setTimeout(next, 2)
  }
  next()
}

function openaiChat(body: Record<string, unknown>, res: ServerResponse, path: string): void {
  const model = String(body.model)
  const words = ['Hello', ' from', ' the', ' fake', ' provider']
  const headers = {
    'x-ratelimit-limit-requests': '500',
    'x-ratelimit-remaining-requests': '499',
    'x-ratelimit-reset-requests': '120ms',
    'x-ratelimit-limit-tokens': '30000',
    'x-ratelimit-remaining-tokens': '1500',
    'x-ratelimit-reset-tokens': '6m0s',
  }
  if (body.stream) {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
    const events = [chunk({ role: 'assistant', content: '' }), ...words.map((w) => chunk({ content: w })), chunk({}, 'stop')]
    const cut = path.includes('cut')
    const withUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true
    if (withUsage && !cut) {
      events.push(`data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model, choices: [], usage: OPENAI_USAGE })}\n\n`)
    }
    if (!cut) events.push('data: [DONE]\n\n')
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v)
    sse(res, cut ? events.slice(0, 3) : events, cut)
    return
  }
  const usage = path.includes('priced') ? { ...OPENAI_USAGE, cost: 0.0123 } : OPENAI_USAGE
  res.writeHead(200, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model, choices: [{ index: 0, message: { role: 'assistant', content: words.join('') }, finish_reason: 'stop' }], usage }))
}

function anthropicMessages(body: Record<string, unknown>, res: ServerResponse): void {
  const model = String(body.model)
  const headers = {
    'anthropic-ratelimit-requests-limit': '50',
    'anthropic-ratelimit-requests-remaining': '10',
    'anthropic-ratelimit-requests-reset': new Date(Date.now() + 30_000).toISOString(),
    'anthropic-ratelimit-tokens-limit': '100000',
    'anthropic-ratelimit-tokens-remaining': '90000',
    'anthropic-ratelimit-tokens-reset': new Date(Date.now() + 60_000).toISOString(),
  }
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v)
  const message = { id: 'msg_1', type: 'message', role: 'assistant', model, stop_reason: null, stop_sequence: null }
  if (body.stream) {
    const ev = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`
    sse(res, [
      ev('message_start', { message: { ...message, content: [], usage: ANTHROPIC_START_USAGE } }),
      ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
      ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hello' } }),
      ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: ' there' } }),
      ev('content_block_stop', { index: 0 }),
      ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 42 } }),
      ev('message_stop', {}),
    ])
    return
  }
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ ...message, stop_reason: 'end_turn', content: [{ type: 'text', text: 'Hello there' }], usage: { ...ANTHROPIC_START_USAGE, output_tokens: 42 } }))
}

/** Starts the fake provider on a free loopback port. */
export async function startFakeProvider(): Promise<FakeProvider> {
  const requests: FakeProvider['requests'] = []
  const failFirst = new Map<string, number>()
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      const url = new URL(req.url ?? '/', 'http://x')
      requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body })
      const failures = failFirst.get(url.pathname) ?? 0
      if (failures > 0) {
        failFirst.set(url.pathname, failures - 1)
        res.writeHead(500, { 'content-type': 'application/json', 'retry-after-ms': '1' })
        res.end(JSON.stringify({ error: { message: 'try again', type: 'server_error' } }))
        return
      }
      const p = url.pathname
      if (p.endsWith('/chat/completions')) return openaiChat(JSON.parse(body) as Record<string, unknown>, res, p)
      if (p.endsWith('/v1/messages')) return anthropicMessages(JSON.parse(body) as Record<string, unknown>, res)
      if (p === '/bytes') {
        // n chunks of 1000 bytes, chunked encoding, a pause between them
        const n = Number(url.searchParams.get('n') ?? 5)
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        let i = 0
        const next = (): void => {
          if (i++ === n) return void res.end()
          res.write(Buffer.alloc(1000, 97))
          setTimeout(next, Number(url.searchParams.get('gap') ?? 5))
        }
        return next()
      }
      if (p === '/held') {
        // the headers at once, then n bytes of body only after ms (a body that has not arrived, read or not)
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        res.flushHeaders()
        const timer = setTimeout(() => res.end(Buffer.alloc(Number(url.searchParams.get('n') ?? 3000), 97)), Number(url.searchParams.get('ms') ?? 1000))
        res.once('close', () => clearTimeout(timer))
        return
      }
      if (p === '/slow') {
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'text/plain' })
          res.end('late')
        }, Number(url.searchParams.get('ms') ?? 50))
        return
      }
      if (p === '/hang') return // never answers
      if (p === '/redirect') {
        res.writeHead(302, { location: '/v1/items/1' })
        return void res.end()
      }
      if (p === '/cut') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' })
        res.write('x'.repeat(100))
        setTimeout(() => res.socket?.destroy(), 10)
        return
      }
      if (p === '/headers') {
        // answers with the headers given in the query string
        const headers: Record<string, string> = { 'content-type': 'text/plain' }
        for (const [k, v] of url.searchParams) if (k !== 'status') headers[k] = v
        res.writeHead(Number(url.searchParams.get('status') ?? 200), headers)
        return void res.end(req.method === 'HEAD' || url.searchParams.get('status') === '304' ? undefined : 'ok')
      }
      if (p === '/cacheable') {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' })
        return void res.end('cached body')
      }
      if (p === '/echo') {
        res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'sid=secret-session; HttpOnly' })
        return void res.end(JSON.stringify({ ok: true, token: 'tok-very-secret', echo: body }))
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: true, path: p }))
    })
  })
  const url = await listen(server)
  return { url, requests, failFirst, close: () => close(server) }
}

/** A loopback port nobody listens on (bound, noted, closed). */
export async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}
