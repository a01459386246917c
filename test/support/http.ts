import { request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Listens on a free port of 127.0.0.1 and returns the base URL. */
export async function listen(server: Server): Promise<string> {
  if (!server.listening) {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
  }
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Closes a server, dropping kept-alive connections. */
export async function close(server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

/**
 * Waits until `check()` holds (polling the event loop), or fails naming what it waited for. Not a timing
 * assertion: the limit only keeps a broken test from hanging.
 */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Sends a request body in chunks without a content-length (`transfer-encoding: chunked`); resolves the reply. */
export function sendChunked(url: string, chunks: readonly string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'text/plain' } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    for (const chunk of chunks) req.write(chunk)
    req.end()
  })
}

/**
 * Starts a GET and destroys the connection once `ready()` resolves (the server has the request, or has begun
 * answering): a client that goes away.
 */
export function abortWhen(url: string, ready: Promise<unknown>, onHeaders?: () => void): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, (res) => {
      onHeaders?.()
      res.on('data', () => undefined)
    })
    req.on('error', () => resolve())
    req.on('close', () => resolve())
    req.end()
    void ready.then(() => req.destroy())
  })
}

/** Runs `task` over `items` with at most `concurrency` in flight. */
export async function inBatches<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++]!)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

/** `count` random request paths: garbage, ids, traversal attempts, long and encoded segments. */
export function scanPaths(count: number, random: () => number, known: readonly ((r: () => number) => string)[]): string[] {
  const word = (): string => Math.floor(random() * 36 ** 6).toString(36)
  const garbage = [
    () => `/${word()}`,
    () => `/${word()}/${word()}/${Math.floor(random() * 1e9)}`,
    () => `/wp-admin/${word()}.php`,
    () => `/.env.${word()}`,
    () => `/api/v${Math.floor(random() * 100)}/${word()}?id=${word()}`,
    () => `/${encodeURIComponent(`${word()} ${word()}`)}/${'x'.repeat(Math.floor(random() * 300))}`,
  ]
  const all = [...garbage, ...known]
  return Array.from({ length: count }, () => all[Math.floor(random() * all.length)]!(random))
}
