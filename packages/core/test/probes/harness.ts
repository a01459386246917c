import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { close } from '../../../../test/support/http.js'

/** How the target answers: up (200 JSON), a status, slow (after `delayMs`), hang (never), wrong body. */
export type TargetMode = { kind: 'up' } | { kind: 'status'; status: number } | { kind: 'slow'; delayMs: number } | { kind: 'hang' } | { kind: 'body'; body: string }

/**
 * A real HTTP server on a loopback port that can go down (closed: connections are refused) and come back on the
 * same port, and answer in each {@link TargetMode}. `hits` counts the requests it received.
 */
export async function probeTarget(): Promise<{
  url: string
  hits: () => number
  mode: (m: TargetMode) => void
  down: () => Promise<void>
  up: () => Promise<void>
  close: () => Promise<void>
}> {
  let mode: TargetMode = { kind: 'up' }
  let hits = 0
  let server: Server
  let port = 0
  const start = async (): Promise<void> => {
    server = createServer((req, res) => {
      hits++
      req.resume()
      const m = mode
      if (m.kind === 'hang') return
      const answer = (status: number, body: string) => res.writeHead(status, { 'content-type': 'application/json' }).end(body)
      const healthy = JSON.stringify({ status: 'ok', checks: [{ name: 'db', status: 'pass' }] })
      if (m.kind === 'up') answer(200, healthy)
      else if (m.kind === 'status') answer(m.status, healthy)
      else if (m.kind === 'body') answer(200, m.body)
      else setTimeout(() => answer(200, healthy), m.delayMs)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => resolve())
    })
    port = (server.address() as AddressInfo).port
  }
  await start()
  let running = true
  return {
    url: `http://127.0.0.1:${port}/health`,
    hits: () => hits,
    mode: (m) => {
      mode = m
    },
    down: async () => {
      if (!running) return
      running = false
      await close(server)
    },
    up: async () => {
      if (running) return
      await start()
      running = true
    },
    close: async () => {
      if (running) await close(server)
      running = false
    },
  }
}

/** A clock tests move by hand (wall time), with real monotonic time so check durations are measured. */
export function probeClock(start: number): { now: () => number; monotonic: () => number; t: number; advance: (ms: number) => void } {
  const clock = {
    t: start,
    now: () => clock.t,
    monotonic: () => performance.now(),
    advance: (ms: number) => {
      clock.t += ms
    },
  }
  return clock
}
