import { createHmac } from 'node:crypto'
import { errorMessage } from '../errors.js'
import { internalTraffic } from '../outbound/internal.js'
import { VERSION } from '../version.js'
import type { AlertKind, ResolvedRule, ResolvedWebhook } from './rules.js'
import type { AlertSeverity, NotificationAttemptRecord } from '../storage/alert-store.js'

/**
 * One alert notification: what `monitor.on('alert')`, the `onAlert` callback, webhooks (as JSON) and the log
 * receive. Sent once per transition: when an alert fires (or escalates from warning to critical, or repeats after
 * its cooldown) and when it resolves.
 *
 * @example
 * ```ts
 * monitor.on('alert', (e) => {
 *   if (e.state === 'firing') pager.open(`${e.rule}/${e.group ?? ''}`, e.text)
 *   else pager.close(`${e.rule}/${e.group ?? ''}`)
 * })
 * ```
 */
export interface AlertEvent {
  /** Id of the stored event (`apimeter_alert_events.id`); the same in every process. */
  id: number | null
  rule: string
  kind: AlertKind
  state: 'firing' | 'resolved'
  severity: AlertSeverity
  /** The value that caused the transition; null when there was no data. */
  value: number | null
  /** The bound crossed: the rule's threshold, or threshold × warn for a warning. */
  threshold: number
  /** The group of a grouped rule (its value, or a JSON list for several dimensions). */
  group?: string
  /** The group as dimension → value. */
  groups?: Record<string, string>
  /** When the transition happened. */
  at: Date
  /** Firing: since when it fires; resolved: when it had started firing. */
  since: Date | null
  /** True when this repeats the notification of a still-firing alert after its cooldown. */
  repeated: boolean
  /** The monitor's service. */
  service: string
  /** A one-line summary, also the Slack-compatible `text` of webhook bodies. */
  text: string
}

/** Formats a value of a rule kind for people. */
export function formatValue(kind: AlertKind, value: number | null): string {
  if (value === null) return 'no data'
  switch (kind) {
    case 'error_rate':
      return `${round(value * 100)}% errors`
    case 'rate_limit':
      return `${round(value * 100)}% of the rate limit used`
    case 'latency':
      return `${round(value)} ms`
    case 'cost':
      return `$${round(value, 4)}`
    case 'requests':
      return `${value} requests`
    case 'status':
      return `${value} matching responses`
    case 'slo_burn':
      return `error budget burning at ${round(value)}× its alert bound`
  }
}

function formatBound(kind: AlertKind, bound: number): string {
  if (kind === 'error_rate' || kind === 'rate_limit') return `${round(bound * 100)}%`
  if (kind === 'latency') return `${round(bound)} ms`
  if (kind === 'cost') return `$${round(bound, 4)}`
  if (kind === 'slo_burn') return `${round(bound)}×`
  return String(bound)
}

function round(v: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(v * f) / f
}

/** The one-line text of an event. */
export function alertText(rule: ResolvedRule, e: Omit<AlertEvent, 'text'>): string {
  const where = e.group !== undefined ? ` [${Object.entries(e.groups ?? {}).map(([k, v]) => `${k}=${v}`).join(', ')}]` : ''
  const cmp = rule.when === 'below' ? 'below' : 'at or above'
  if (e.state === 'resolved') {
    return `RESOLVED ${e.rule}${where}: ${formatValue(rule.kind, e.value)} (${e.severity} bound ${formatBound(rule.kind, e.threshold)})`
  }
  const head = e.repeated ? 'STILL FIRING' : 'FIRING'
  return `${head} [${e.severity}] ${e.rule}${where}: ${formatValue(rule.kind, e.value)}, ${cmp} ${formatBound(rule.kind, e.threshold)}`
}

/** The JSON body a webhook receives: the event, with `at` / `since` as ISO strings and Slack's `text`. */
export function webhookBody(e: AlertEvent): string {
  return JSON.stringify({ ...e, at: e.at.toISOString(), since: e.since?.toISOString() ?? null })
}

/** Header carrying the HMAC-SHA256 of the body, hex, as `sha256=<hex>`. */
export const SIGNATURE_HEADER = 'x-apimeter-signature'

/**
 * The signature a webhook receiver should compute to check a body: `sha256=` + hex HMAC-SHA256 of the raw body
 * with the shared secret (compare with `crypto.timingSafeEqual`).
 *
 * @example
 * ```ts
 * const expected = signWebhookBody(rawBody, process.env.HOOK_SECRET!)
 * const ok = timingSafeEqual(Buffer.from(expected), Buffer.from(req.headers['x-apimeter-signature'] ?? ''))
 * ```
 */
export function signWebhookBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
}

/** Outcome of one webhook attempt. */
interface AttemptResult {
  ok: boolean
  retry: boolean
  httpStatus: number | null
  error: string | null
}

async function postOnce(hook: ResolvedWebhook, body: string): Promise<AttemptResult> {
  const headers: Record<string, string> = {
    ...hook.headers,
    'content-type': 'application/json',
    'user-agent': `apimeter/${VERSION}`,
  }
  if (hook.secret) headers[SIGNATURE_HEADER] = signWebhookBody(body, hook.secret)
  try {
    // apimeter's own traffic: instrument() and the interceptor leave it alone (it is never metered or stored)
    const res = await internalTraffic(() => fetch(hook.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(hook.timeoutMs), redirect: 'manual' }))
    await res.arrayBuffer().catch(() => undefined)
    if (res.status >= 200 && res.status < 300) return { ok: true, retry: false, httpStatus: res.status, error: null }
    return { ok: false, retry: res.status === 429 || res.status >= 500, httpStatus: res.status, error: `HTTP ${res.status}` }
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')
    return { ok: false, retry: true, httpStatus: null, error: timedOut ? `timed out after ${hook.timeoutMs} ms` : errorMessage(error).slice(0, 1024) }
  }
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms).unref()
  })

/**
 * Posts an event to a webhook, retrying network errors, timeouts, 429 and 5xx with exponential backoff; each
 * attempt goes to `onAttempt`. Resolves true when one attempt succeeded; never rejects.
 */
export function deliverWebhook(
  hook: ResolvedWebhook,
  event: AlertEvent,
  onAttempt: (attempt: Omit<NotificationAttemptRecord, 'eventId' | 'notifier' | 'at'>) => Promise<void>,
  isClosing: () => boolean,
): Promise<boolean> {
  return deliverWebhookBody(hook, webhookBody(event), onAttempt, isClosing)
}

/** {@link deliverWebhook} for any JSON body (incident notifications use it too). Never rejects. */
export async function deliverWebhookBody(
  hook: ResolvedWebhook,
  body: string,
  onAttempt: (attempt: Omit<NotificationAttemptRecord, 'eventId' | 'notifier' | 'at'>) => Promise<void>,
  isClosing: () => boolean,
): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    const r = await postOnce(hook, body)
    await onAttempt({ attempt, status: r.ok ? 'sent' : 'failed', httpStatus: r.httpStatus, error: r.error })
    if (r.ok) return true
    if (!r.retry || attempt > hook.retries || isClosing()) return false
    await sleep(Math.min(60_000, hook.backoffMs * 2 ** (attempt - 1)))
  }
}
