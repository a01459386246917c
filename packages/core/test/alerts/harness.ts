import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type AlertEvent, type ApimeterError, type CallInput, createMonitor, memoryStorage, type Monitor, type MonitorOptions, type StorageAdapter } from '@apimeter/core'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { close, listen } from '../../../../test/support/http.js'

/** A request the webhook receiver got. */
export interface Received {
  headers: IncomingHttpHeaders
  raw: string
  body: AlertEvent & { at: string; since: string | null }
}

/**
 * A real webhook receiver on a loopback port. `respond` decides each answer: a status (default 200), or 'hang' to
 * never answer (for timeouts).
 */
export async function webhookReceiver(respond: (n: number) => number | 'hang' = () => 200): Promise<{
  url: string
  received: Received[]
  /** Every request, answered or not (attempts). */
  hits: () => number
  close: () => Promise<void>
}> {
  const received: Received[] = []
  let hits = 0
  const server: Server = createServer((req, res) => {
    let raw = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (raw += c))
    req.on('end', () => {
      const answer = respond(hits++)
      if (answer === 'hang') return
      if (answer >= 200 && answer < 300) received.push({ headers: req.headers, raw, body: JSON.parse(raw) })
      res.writeHead(answer, { 'content-type': 'text/plain' }).end('ok')
    })
  })
  const url = await listen(server)
  return { url: `${url}/hook`, received, hits: () => hits, close: () => close(server) }
}

/** A controllable clock starting on a Monday at 10:00 UTC. */
export function fakeClock(start = Date.UTC(2026, 2, 2, 10, 0, 0)): { now: () => number; t: number; advance: (ms: number) => number; set: (t: number) => void } {
  const clock = {
    t: start,
    now: () => clock.t,
    advance: (ms: number) => (clock.t += ms),
    set: (t: number) => {
      clock.t = t
    },
  }
  return clock
}

export const SECOND = 1000
export const MINUTE = 60_000

/** The storages every alert behaviour is tested on: memory and a SQLite file. */
export type StorageKind = 'memory' | 'sqlite'
export const STORAGE_KINDS: readonly StorageKind[] = ['memory', 'sqlite']

const dirs: string[] = []
/** A storage of a kind; SQLite in a fresh temporary file (or `file`, to reopen one). */
export function makeStorage(kind: StorageKind, now: () => number, file?: string): { storage: StorageAdapter; file: string | undefined } {
  if (kind === 'memory') return { storage: memoryStorage({ maxCalls: Infinity }), file: undefined }
  let path = file
  if (path === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'apimeter-alerts-'))
    dirs.push(dir)
    path = join(dir, 'alerts.db')
  }
  return { storage: sqliteStorage({ filename: path, now, retention: { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' } }), file: path }
}

/** Removes the temporary files of {@link makeStorage}. */
export function removeTempFiles(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
}

/** A monitor with a fake clock that collects its `alert` and `error` events and `onAlert` calls. */
export interface Harness {
  monitor: Monitor
  clock: ReturnType<typeof fakeClock>
  alerts: AlertEvent[]
  callbacks: AlertEvent[]
  errors: ApimeterError[]
  /** Records `n` calls at the current time (outbound, api 'openai' unless given). */
  record(n: number, call?: Partial<CallInput>): void
  /** Flushes, evaluates, and lets event listeners run; resolves the notified events. */
  evaluate(): Promise<AlertEvent[]>
}

export function harness(options: MonitorOptions & { clock?: never }, clock = fakeClock()): Harness {
  const callbacks: AlertEvent[] = []
  const userOnAlert = options.onAlert
  const monitor = createMonitor({
    logger: false,
    flushOnExit: false,
    alertIntervalMs: 86_400_000, // tests drive evaluations by hand
    ...options,
    clock: { now: clock.now },
    onAlert: async (e) => {
      callbacks.push(e)
      await userOnAlert?.(e)
    },
  })
  const alerts: AlertEvent[] = []
  const errors: ApimeterError[] = []
  monitor.on('alert', (e) => alerts.push(e))
  monitor.on('error', (e) => errors.push(e))
  return {
    monitor,
    clock,
    alerts,
    callbacks,
    errors,
    record(n, call = {}) {
      for (let i = 0; i < n; i++) {
        monitor.record({ direction: 'outbound', api: 'openai', method: 'POST', route: '/v1/chat/completions', statusCode: 200, durationMs: 100, ...call })
      }
    },
    async evaluate() {
      await monitor.flush()
      const events = await monitor.alerts.evaluate()
      await new Promise((resolve) => setImmediate(resolve))
      return events
    },
  }
}

/** `state severity value` of notified events, for compact assertions. */
export const brief = (events: readonly AlertEvent[]): string[] =>
  events.map((e) => `${e.group === undefined ? '' : `${e.group} `}${e.state}${e.repeated ? ' (repeat)' : ''} ${e.severity} ${e.value === null ? 'null' : +e.value.toFixed(4)}`)
