import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { errorMessage } from '../errors.js'
import { internalTraffic } from '../outbound/internal.js'
import type { ProbeCause } from '../storage/probe-store.js'
import { VERSION } from '../version.js'
import type { ResolvedProbe } from './options.js'

/** What one check found. */
export interface CheckOutcome {
  ok: boolean
  statusCode: number | null
  durationMs: number
  cause: ProbeCause | null
  error: string | null
}

/** Body bytes read for `bodyIncludes` and `jsonPath` (the rest is drained unread). */
const MAX_BODY = 1 << 20
const DAY = 86_400_000

const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NODATA', 'EAI_FAIL', 'EAI_NONAME'])
const TLS = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_OSSL_|HOSTNAME_MISMATCH)/

/** Which cause a request error is. */
export function causeOfError(error: unknown): ProbeCause {
  const raw = (error as { code?: unknown }).code
  const code = typeof raw === 'string' ? raw : ''
  if (code === 'ECONNREFUSED') return 'connection_refused'
  if (code === 'PROBE_TIMEOUT' || code === 'ETIMEDOUT') return 'timeout'
  if (DNS.has(code)) return 'dns'
  if (TLS.test(code)) return 'tls'
  return 'network'
}

/** The value at a validated path (`$.a.b[0]`), or undefined. */
export function valueAtPath(value: unknown, path: string): unknown {
  let current = value
  const steps = path.replace(/^\$\.?/, '').match(/[^.[\]]+|\[\d+\]/g) ?? []
  for (const step of steps) {
    if (current === null || typeof current !== 'object') return undefined
    current = step.startsWith('[') ? (current as unknown[])[Number(step.slice(1, -1))] : (current as Record<string, unknown>)[step]
  }
  return current
}

/** Deep equality of JSON values. */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return ka.length === kb.length && ka.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

/** Judges a complete response against the probe's expectations; the first one missed is the cause. */
function judge(p: NonNullable<ResolvedProbe['http']>, status: number, body: string, durationMs: number, certValidTo: number | null, now: number): Omit<CheckOutcome, 'statusCode' | 'durationMs'> {
  const fail = (cause: ProbeCause, error: string) => ({ ok: false, cause, error })
  if (p.status ? !p.status.includes(status) : status < 200 || status > 299) return fail('status', `HTTP ${status}, expected ${p.status ? p.status.join(', ') : '2xx'}`)
  if (p.bodyIncludes !== undefined && !body.includes(p.bodyIncludes)) return fail('body', `the body does not contain ${JSON.stringify(p.bodyIncludes)}`)
  if (p.jsonPath !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(body)
    } catch {
      return fail('json', 'the body is not JSON')
    }
    const found = valueAtPath(parsed, p.jsonPath)
    if (!jsonEqual(found, p.equals)) return fail('json', `${p.jsonPath} is ${found === undefined ? 'missing' : JSON.stringify(found)}, expected ${JSON.stringify(p.equals)}`)
  }
  if (p.maxDurationMs !== undefined && durationMs > p.maxDurationMs) return fail('slow', `took ${Math.round(durationMs)} ms, more than ${p.maxDurationMs} ms`)
  if (p.certDaysLeft !== undefined && certValidTo !== null) {
    const left = (certValidTo - now) / DAY
    if (left < p.certDaysLeft) return fail('cert_expiring', `the certificate expires in ${Math.floor(left * 10) / 10} days (${new Date(certValidTo).toISOString()}), fewer than ${p.certDaysLeft}`)
  }
  return { ok: true, cause: null, error: null }
}

/**
 * Runs one HTTP(S) check with a plain `node:http` / `node:https` request on a connection of its own (no pooling, so
 * a refused connection or a certificate is seen each time). It runs as apimeter's own traffic: `instrument()` and
 * the interceptor never meter it, and it is not a call in stats. Never rejects.
 */
export function httpCheck(probe: ResolvedProbe, clock: { now(): number; monotonic(): number }): Promise<CheckOutcome> {
  const p = probe.http!
  const started = clock.monotonic()
  const elapsed = (): number => Math.max(0, clock.monotonic() - started)
  return new Promise<CheckOutcome>((resolve) => {
    let settled = false
    const done = (outcome: CheckOutcome): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(outcome)
    }
    const failed = (error: unknown, statusCode: number | null = null): void => {
      const cause = causeOfError(error)
      done({ ok: false, statusCode, durationMs: elapsed(), cause, error: cause === 'timeout' ? `timed out after ${probe.timeoutMs} ms` : errorMessage(error).slice(0, 1024) })
    }
    const url = new URL(p.url)
    const headers: Record<string, string> = { 'user-agent': `apimeter-probe/${VERSION}`, ...p.headers }
    if (p.body !== undefined) headers['content-length'] = String(Buffer.byteLength(p.body))
    const options = { method: p.method, headers, agent: false as const, ...(url.protocol === 'https:' ? { ca: p.ca, rejectUnauthorized: p.rejectUnauthorized } : {}) }
    const onResponse = (res: IncomingMessage): void => {
      const socket = res.socket as TLSSocket | null
      const cert = typeof socket?.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined
      const certValidTo = cert?.valid_to ? Date.parse(cert.valid_to) : null
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        if (size < MAX_BODY) chunks.push(chunk)
        size += chunk.length
      })
      res.on('error', (error) => failed(error, res.statusCode ?? null))
      res.on('end', () => {
        const durationMs = elapsed()
        const body = Buffer.concat(chunks).subarray(0, MAX_BODY).toString('utf8')
        const status = res.statusCode ?? 0
        done({ statusCode: status, durationMs, ...judge(p, status, body, durationMs, certValidTo, clock.now()) })
      })
    }
    const req = internalTraffic(() => (url.protocol === 'https:' ? httpsRequest(url, options, onResponse) : httpRequest(url, options, onResponse)))
    const timer = setTimeout(() => {
      const error = Object.assign(new Error(`timed out after ${probe.timeoutMs} ms`), { code: 'PROBE_TIMEOUT' })
      failed(error)
      req.destroy(error)
    }, probe.timeoutMs)
    timer.unref()
    req.on('error', (error) => failed(error))
    req.end(p.body)
  })
}
