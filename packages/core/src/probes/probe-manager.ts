import { hostname } from 'node:os'
import { auditDefinitions, parseJson, type RuleAudit } from '../alerts/definition-audit.js'
import { randomBytes } from 'node:crypto'
import { ApimeterError, errorMessage, type HealthError } from '../errors.js'
import { settledWithin } from '../settle.js'
import { deliverWebhookBody } from '../alerts/notifiers.js'
import { notifierLabel, type ResolvedNotifier } from '../alerts/rules.js'
import type { CallInput } from '../call/types.js'
import type { StorageAdapter } from '../storage/adapter.js'
import {
  type IncidentRecord,
  memoryProbeStore,
  type ProbeCause,
  type ProbeCheckRecord,
  type ProbeCheckWrite,
  type ProbeStateRecord,
  type ProbeStore,
} from '../storage/probe-store.js'
import { queryTime, type TimeInput } from '../time.js'
import { httpCheck } from './http-check.js'
import { lengthOutside, type ResolvedMaintenance } from './maintenance.js'
import type { ResolvedProbe } from './options.js'

/**
 * An incident notification: what `monitor.on('incident')`, the `onIncident` callback, webhooks (as JSON) and the
 * log receive. Sent once per transition across every monitor sharing the storage.
 *
 * @example
 * ```ts
 * monitor.on('incident', (e) => {
 *   if (e.state === 'opened') pager.open(`probe/${e.probe}`, e.text)
 *   else pager.close(`probe/${e.probe}`)
 * })
 * ```
 */
export interface IncidentEvent {
  /** Id of the stored incident (`apimeter_incidents.id`); the same in every process. */
  id: number
  probe: string
  state: 'opened' | 'resolved'
  /** Why the probe failed (the check that opened the incident). */
  cause: ProbeCause
  /** The error of that check, for people. */
  error: string | null
  /** When the first failed check of the run that opened it started. */
  openedAt: Date
  /** Resolved: when the first passed check of the run that resolved it started. */
  resolvedAt: Date | null
  /** Resolved: resolvedAt − openedAt. */
  durationMs: number | null
  /** The check that made the transition. */
  at: Date
  /** The monitor's service. */
  service: string
  /** A one-line summary, also the Slack-compatible `text` of webhook bodies. */
  text: string
}

/** One stored check, from `monitor.probes.checks()` (see `ProbeCheckRecord` in '@apimeter/core/sql'). */
export type ProbeCheck = Omit<ProbeCheckRecord, 'at'> & {
  /** When the check started; for a late heartbeat, when the beat was due. */
  at: Date
}

/** One incident, from `monitor.probes.incidents()`. */
export interface Incident {
  id: number
  probe: string
  openedAt: Date
  /** Null while open. */
  resolvedAt: Date | null
  /** Null while open. */
  durationMs: number | null
  cause: ProbeCause
  error: string | null
}

/** One probe's state, from `monitor.probes.status()`. */
export interface ProbeStatus {
  name: string
  kind: 'http' | 'heartbeat'
  /** `down` while an incident is open, `unknown` before the first check, `up` otherwise. */
  state: 'up' | 'down' | 'unknown'
  /** Consecutive failed and passed checks so far. */
  failures: number
  successes: number
  lastCheck: ProbeCheck | null
  openIncident: Incident | null
}

/** Uptime of one probe over a range, from `monitor.probes.uptime()`. */
export interface ProbeUptime {
  /** Checks in the range, outside maintenance. */
  checks: number
  /** …of which passed. */
  ok: number
  /** ok / checks; null without checks. */
  ratio: number | null
  /**
   * Time-weighted: (observed − downtime) / observed, where observed is the range from the probe's first check on
   * (up to now) and downtime the part of it inside incidents, maintenance windows left out of both; null when
   * nothing was observed.
   */
  timeRatio: number | null
  /** Time inside incidents in the range, maintenance left out. */
  downtimeMs: number
  /** Time observed in the range, maintenance left out. */
  observedMs: number
  /** Incidents open at some point of the range. */
  incidents: number
}

/** What one probe did in a {@link MonitorProbes.runOnce} round. */
export interface ProbeRoundResult {
  probe: string
  /** False when another instance holds this round (or already ran it). */
  ran: boolean
  /** The checks this round stored (a heartbeat round stores one per missed beat, or none). */
  checks: ProbeCheck[]
  /** The transitions this round made (notified by this instance). */
  events: IncidentEvent[]
}

/** Counters of the probe runner, in `monitor.health().probes`. */
export interface ProbeHealth {
  probes: number
  /** Rounds this instance ran (held the lease for). */
  rounds: number
  /** Checks this instance stored. */
  checks: number
  /** Rounds or heartbeats that could not be stored (each is also an `error` event). */
  failedRounds: number
  notificationsSent: number
  failedNotifications: number
  lastError: HealthError | null
}

/** A query range: Date, epoch ms, ISO string or a relative time such as `'-24h'`. */
export interface ProbeRange {
  name?: string
  from?: TimeInput
  to?: TimeInput
}

/**
 * `monitor.probes`: checks, incidents, uptime and heartbeats of the monitor's probes.
 *
 * @example
 * ```ts
 * for (const p of await monitor.probes.status()) console.log(p.name, p.state, p.openIncident?.cause)
 * const day = await monitor.probes.uptime({ name: 'payments', from: '-24h' })
 * ```
 */
export interface MonitorProbes {
  /** Names of the configured probes. */
  readonly names: readonly string[]
  /**
   * Each configured probe's state, last check and open incident, as stored (shared by every monitor on the
   * database).
   * @example
   * ```ts
   * const down = (await monitor.probes.status()).filter((p) => p.state === 'down')
   * ```
   */
  status(): Promise<ProbeStatus[]>
  /**
   * Stored checks with `from <= at < to` (default: the last 24 hours), of one probe or all, oldest first.
   * @example
   * ```ts
   * const failed = (await monitor.probes.checks({ name: 'payments', from: '-1h' })).filter((c) => !c.ok)
   * ```
   */
  checks(range?: ProbeRange): Promise<ProbeCheck[]>
  /**
   * Incidents open at some point of `[from, to)` (default: the last 24 hours), oldest first.
   * @example
   * ```ts
   * const week = await monitor.probes.incidents({ name: 'payments', from: '-7d' })
   * ```
   */
  incidents(range?: ProbeRange): Promise<Incident[]>
  /**
   * Uptime of one probe over `[from, to)` (default: the last 24 hours; `to` is capped at now), as a check ratio and
   * time-weighted, maintenance windows excluded.
   * @example
   * ```ts
   * const { ratio, timeRatio, downtimeMs } = await monitor.probes.uptime({ name: 'payments', from: '-30d' })
   * ```
   */
  uptime(range: ProbeRange & { name: string }): Promise<ProbeUptime>
  /**
   * Records a beat of a heartbeat probe now (a passed check; it resolves a `heartbeat_late` incident). Never
   * rejects: a storage problem goes to `error` and `health().probes`; resolves false then, or for an unknown name.
   * @example
   * ```ts
   * await runNightlyExport()
   * await monitor.probes.heartbeat('nightly-export')
   * ```
   */
  heartbeat(name: string): Promise<boolean>
  /**
   * Runs the current round of every probe (or of `name`) now, through the same lease as the timer: on a fleet, a
   * round another instance already ran is not run again. Resolves once checks are stored and notifications
   * delivered. For tests with an injected clock, and for a "check now" button. Never rejects.
   * @example
   * ```ts
   * const [result] = await monitor.probes.runOnce('payments')
   * ```
   */
  runOnce(name?: string): Promise<ProbeRoundResult[]>
}

/** What the probe runner needs from its monitor. */
export interface ProbeManagerConfig {
  probes: readonly ResolvedProbe[]
  storage: StorageAdapter
  clock: { now(): number; monotonic(): number }
  service: string
  onIncident: ((event: IncidentEvent) => unknown) | undefined
  emit(event: IncidentEvent): void
  /** Records a call (probes with `recordCall`). */
  record(call: CallInput): void
  report(error: ApimeterError): void
  log(line: string): void
  /** The audit log: probe definitions added, changed or removed (found when they are synced) are appended here. */
  audit?: RuleAudit
}

const DAY = 86_400_000
/** Tries of a compare-and-set write before the round gives up (only concurrent heartbeats race for a state). */
const CAS_TRIES = 20

const emptyState = (probe: string): ProbeStateRecord => ({
  probe,
  status: 'unknown',
  failures: 0,
  failingSince: null,
  successes: 0,
  recoveringSince: null,
  lastCheckAt: null,
  lastOkAt: null,
  firstCheckAt: null,
  incidentId: null,
  version: 0,
})

const toCheck = (c: ProbeCheckRecord): ProbeCheck => ({ ...c, at: new Date(c.at) })
const toIncident = (i: IncidentRecord): Incident => ({ ...i, openedAt: new Date(i.openedAt), resolvedAt: i.resolvedAt === null ? null : new Date(i.resolvedAt) })

/**
 * The next state after a check, and the incident it opens or resolves. Inside a maintenance window the check is
 * stored but counts toward nothing: the runs of failures and successes start again after it.
 */
export function stepProbe(prev: ProbeStateRecord, probe: Pick<ResolvedProbe, 'failuresToOpen' | 'successesToClose'>, check: ProbeCheckRecord, inMaintenance: boolean): Omit<ProbeCheckWrite, 'check' | 'expectedVersion'> {
  const base = {
    probe: prev.probe,
    lastCheckAt: Math.max(prev.lastCheckAt ?? -Infinity, check.at),
    lastOkAt: check.ok ? Math.max(prev.lastOkAt ?? -Infinity, check.at) : prev.lastOkAt,
    firstCheckAt: Math.min(prev.firstCheckAt ?? Infinity, check.at),
  }
  const open = prev.incidentId !== null
  const status = open ? 'down' : 'up'
  if (inMaintenance) return { next: { ...base, status, failures: 0, failingSince: null, successes: 0, recoveringSince: null } }
  if (check.ok) {
    const successes = prev.successes + 1
    const recoveringSince = prev.successes === 0 ? check.at : prev.recoveringSince
    if (open && successes >= probe.successesToClose) {
      return { next: { ...base, status: 'up', failures: 0, failingSince: null, successes, recoveringSince }, resolve: { id: prev.incidentId!, resolvedAt: recoveringSince! } }
    }
    return { next: { ...base, status, failures: 0, failingSince: null, successes, recoveringSince } }
  }
  const failures = prev.failures + 1
  const failingSince = prev.failures === 0 ? check.at : prev.failingSince
  if (!open && failures >= probe.failuresToOpen) {
    return { next: { ...base, status: 'down', failures, failingSince, successes: 0, recoveringSince: null }, open: { openedAt: failingSince!, cause: check.cause ?? 'status', error: check.error } }
  }
  return { next: { ...base, status, failures, failingSince, successes: 0, recoveringSince: null } }
}

/**
 * Runs the probes on an unref'd timer: each round of each probe is claimed through a lease in the storage (one
 * instance of a fleet runs it), its check and state change are one compare-and-set write, and the instance whose
 * write opened or resolved an incident notifies it. Nothing here runs on the recording path.
 */
export class ProbeManager implements MonitorProbes {
  readonly names: readonly string[]
  /** This monitor instance, as lease holder and in stored checks. */
  readonly instance = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
  private readonly byName: Map<string, ResolvedProbe>
  private readonly store: ProbeStore
  private timer: NodeJS.Timeout | undefined
  private closing = false
  private synced: Promise<void> | undefined
  private readonly inFlight = new Map<string, Promise<ProbeRoundResult>>()
  /** The last round each probe was settled for on this instance (ran here, or found taken). */
  private readonly settledRound = new Map<string, number>()
  private readonly deliveries = new Set<Promise<void>>()
  private readonly counters = { rounds: 0, checks: 0, failedRounds: 0, notificationsSent: 0, failedNotifications: 0 }
  private lastError: HealthError | null = null

  constructor(private readonly config: ProbeManagerConfig) {
    this.names = config.probes.map((p) => p.name)
    this.byName = new Map(config.probes.map((p) => [p.name, p]))
    this.store = config.storage.probes ?? memoryProbeStore()
  }

  /** Starts the timer (only when there are probes): it looks for due rounds several times per interval. */
  start(): void {
    if (this.config.probes.length === 0 || this.timer) return
    const shortest = Math.min(...this.config.probes.map((p) => p.intervalMs))
    this.timer = setInterval(() => this.tick(), Math.min(5000, Math.max(25, Math.floor(shortest / 4))))
    this.timer.unref()
  }

  health(): ProbeHealth {
    return { probes: this.config.probes.length, ...this.counters, lastError: this.lastError }
  }

  /** Stops the timer, then waits (at most `timeoutMs`) for running rounds and notifications. */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await settledWithin([...this.inFlight.values(), ...this.deliveries], timeoutMs)
  }

  private roundOf(probe: ResolvedProbe, now: number): number {
    return Math.floor(now / probe.intervalMs)
  }

  private tick(): void {
    if (this.closing) return
    const now = this.config.clock.now()
    for (const probe of this.config.probes) {
      if (this.inFlight.has(probe.name) || (this.settledRound.get(probe.name) ?? -Infinity) >= this.roundOf(probe, now)) continue
      void this.round(probe, now).then((r) => this.deliveredOf(r))
    }
  }

  async runOnce(name?: string): Promise<ProbeRoundResult[]> {
    const probes = name === undefined ? this.config.probes : this.byName.has(name) ? [this.byName.get(name)!] : []
    const results = await Promise.all(
      probes.map(async (probe) => {
        await this.inFlight.get(probe.name)
        return this.round(probe, this.config.clock.now())
      }),
    )
    await Promise.all(results.map((r) => this.deliveredOf(r)))
    return results
  }

  private readonly pendingDelivery = new WeakMap<ProbeRoundResult, Promise<void>>()
  private deliveredOf(result: ProbeRoundResult): Promise<void> {
    return this.pendingDelivery.get(result) ?? Promise.resolve()
  }

  /** One round of one probe at `now`: claim the lease, check, store, notify. Never rejects. */
  private round(probe: ResolvedProbe, now: number): Promise<ProbeRoundResult> {
    const running = this.runRound(probe, now).finally(() => this.inFlight.delete(probe.name))
    this.inFlight.set(probe.name, running)
    return running
  }

  private async runRound(probe: ResolvedProbe, now: number): Promise<ProbeRoundResult> {
    const result: ProbeRoundResult = { probe: probe.name, ran: false, checks: [], events: [] }
    const round = this.roundOf(probe, now)
    try {
      await this.sync(now)
      // a crashed holder's lease lapses after its longest possible run
      const expiresAt = now + (probe.kind === 'http' ? probe.timeoutMs + 5000 : probe.intervalMs)
      const claim = await this.store.claim({ probe: probe.name, holder: this.instance, round, now, expiresAt })
      if (claim !== 'claimed') {
        if (claim === 'taken') this.settledRound.set(probe.name, round)
        return result
      }
      this.settledRound.set(probe.name, round)
      result.ran = true
      this.counters.rounds++
      try {
        const checks = probe.kind === 'http' ? [await this.runHttp(probe, now)] : await this.lateBeats(probe, now)
        for (const check of checks) {
          const applied = await this.apply(probe, check)
          if (applied === false) continue
          result.checks.push(toCheck(check))
          if (applied) result.events.push(applied)
        }
      } finally {
        await this.store.release(probe.name, this.instance, this.config.clock.now()).catch(() => undefined)
      }
    } catch (error) {
      // tried again next round, not on every tick of this one
      this.settledRound.set(probe.name, round)
      this.fail('PROBE_FAILED', `probe '${probe.name}' could not run its round: ${errorMessage(error)}`, error, 'failedRounds')
    }
    this.pendingDelivery.set(result, Promise.all(result.events.map((e) => this.dispatch(probe, e))).then(() => undefined))
    return result
  }

  private async runHttp(probe: ResolvedProbe, at: number): Promise<ProbeCheckRecord> {
    const outcome = await httpCheck(probe, this.config.clock)
    const { http } = probe
    if (http!.recordCall) {
      const failure = outcome.statusCode !== null ? {} : { outcome: outcome.cause === 'timeout' ? ('timeout' as const) : ('network_error' as const), errorType: outcome.cause, errorMessage: outcome.error }
      this.config.record({ timestamp: at, direction: 'outbound', api: `probe:${probe.name}`, method: http!.method, url: http!.url, durationMs: outcome.durationMs, ...(outcome.statusCode === null ? failure : { statusCode: outcome.statusCode }) })
    }
    return { probe: probe.name, at, ...outcome, instance: this.instance }
  }

  /** The beats a heartbeat probe missed by `now`: one failed check at each missed deadline, until it is down. */
  private async lateBeats(probe: ResolvedProbe, now: number): Promise<ProbeCheckRecord[]> {
    const { everyMs, graceMs } = probe.heartbeat!
    const state = (await this.store.states()).find((s) => s.probe === probe.name)
    if (state?.status === 'down') return []
    let base: number
    let wait: number
    if (state && state.lastCheckAt !== null) {
      const lastWasLate = state.lastOkAt !== state.lastCheckAt
      base = state.lastCheckAt
      wait = lastWasLate ? everyMs : everyMs + graceMs
    } else {
      const def = (await this.store.definitions()).find((d) => d.name === probe.name)
      base = def?.createdAt ?? now
      wait = everyMs + graceMs
    }
    const out: ProbeCheckRecord[] = []
    let failures = state?.failures ?? 0
    for (let due = base + wait; due <= now && failures < probe.failuresToOpen; due += everyMs, failures++) {
      out.push({ probe: probe.name, at: due, ok: false, statusCode: null, durationMs: 0, cause: 'heartbeat_late', error: `no heartbeat since ${new Date(base).toISOString()} (expected every ${everyMs} ms, grace ${graceMs} ms)`, instance: this.instance })
    }
    return out
  }

  async heartbeat(name: string): Promise<boolean> {
    const probe = this.byName.get(name)
    if (!probe || probe.kind !== 'heartbeat') {
      this.fail('PROBE_FAILED', `heartbeat('${name}'): no heartbeat probe has that name (configured: ${this.names.join(', ') || 'none'})`, undefined)
      return false
    }
    try {
      const now = this.config.clock.now()
      await this.sync(now)
      const event = await this.apply(probe, { probe: name, at: now, ok: true, statusCode: null, durationMs: 0, cause: null, error: null, instance: this.instance })
      if (event) await this.dispatch(probe, event)
      return true
    } catch (error) {
      this.fail('PROBE_FAILED', `the heartbeat of '${name}' could not be stored: ${errorMessage(error)}`, error, 'failedRounds')
      return false
    }
  }

  /**
   * Stores a check with its state change (compare-and-set, retried on a concurrent write); the transition made, if
   * any, or false when the check turned out moot and was not stored.
   */
  private async apply(probe: ResolvedProbe, check: ProbeCheckRecord): Promise<IncidentEvent | null | false> {
    for (let attempt = 1; ; attempt++) {
      const prev = (await this.store.states()).find((s) => s.probe === probe.name) ?? emptyState(probe.name)
      // a beat stored (by another process) since the lateness was computed: it was not late after all
      if (check.cause === 'heartbeat_late' && prev.lastOkAt !== null && prev.lastOkAt > check.at - probe.heartbeat!.everyMs - probe.heartbeat!.graceMs) return false
      const step = stepProbe(prev, probe, check, probe.maintenance.covers(check.at))
      const { applied, incidentId } = await this.store.record({ check, expectedVersion: prev.version, ...step })
      if (!applied) {
        if (attempt >= CAS_TRIES) throw new Error(`the state of probe '${probe.name}' kept changing under this write`)
        continue
      }
      this.counters.checks++
      if (step.open) return this.toEvent(probe, 'opened', incidentId!, step.open.openedAt, null, step.open.cause, step.open.error, check.at)
      if (step.resolve) {
        const incident = (await this.store.incidents({ probe: probe.name, from: step.resolve.resolvedAt - 1, to: step.resolve.resolvedAt + 1 })).find((i) => i.id === step.resolve!.id)
        return this.toEvent(probe, 'resolved', step.resolve.id, incident?.openedAt ?? step.resolve.resolvedAt, step.resolve.resolvedAt, incident?.cause ?? 'status', incident?.error ?? null, check.at)
      }
      return null
    }
  }

  private toEvent(probe: ResolvedProbe, state: 'opened' | 'resolved', id: number, openedAt: number, resolvedAt: number | null, cause: ProbeCause, error: string | null, at: number): IncidentEvent {
    const durationMs = resolvedAt === null ? null : resolvedAt - openedAt
    const text =
      state === 'opened'
        ? `DOWN ${probe.name}: ${cause}${error ? ` (${error})` : ''}, since ${new Date(openedAt).toISOString()}`
        : `UP ${probe.name}: resolved after ${formatDuration(durationMs!)} (${cause})`
    return { id, probe: probe.name, state, cause, error, openedAt: new Date(openedAt), resolvedAt: resolvedAt === null ? null : new Date(resolvedAt), durationMs, at: new Date(at), service: this.config.service, text }
  }

  /** Sends one transition everywhere at once; one notifier failing never holds up another. Never rejects. */
  private dispatch(probe: ResolvedProbe, event: IncidentEvent): Promise<void> {
    this.config.emit(event)
    const tasks: Promise<void>[] = []
    const { onIncident } = this.config
    if (onIncident) tasks.push(this.attempt(event, 'callback', async () => void (await onIncident(event))))
    for (const n of probe.notify) tasks.push(this.notify(n, event))
    const all = Promise.all(tasks).then(() => undefined)
    this.deliveries.add(all)
    void all.finally(() => this.deliveries.delete(all))
    return all
  }

  private notify(n: ResolvedNotifier, event: IncidentEvent): Promise<void> {
    if (n.type === 'log') return this.attempt(event, 'log', async () => this.config.log(event.text))
    if (n.type === 'plugin') return Promise.resolve() // refused when the probe is validated (probes/options.ts)
    const body = JSON.stringify({ ...event, openedAt: event.openedAt.toISOString(), resolvedAt: event.resolvedAt?.toISOString() ?? null, at: event.at.toISOString() })
    return deliverWebhookBody(n, body, async () => undefined, () => this.closing).then((ok) => {
      if (ok) this.counters.notificationsSent++
      else this.fail('PROBE_NOTIFICATION_FAILED', `incident ${event.id} of probe '${event.probe}' (${event.state}) could not be sent to ${notifierLabel(n)}`, undefined, 'failedNotifications')
    })
  }

  private async attempt(event: IncidentEvent, what: 'callback' | 'log', send: () => Promise<void>): Promise<void> {
    try {
      await send()
      this.counters.notificationsSent++
    } catch (error) {
      this.fail('PROBE_NOTIFICATION_FAILED', `the ${what} notifier of probe '${event.probe}' threw: ${errorMessage(error)}`, error, 'failedNotifications')
    }
  }

  private sync(now: number): Promise<void> {
    const records = this.config.probes.map((p) => ({ name: p.name, kind: p.kind, definition: JSON.stringify(p.definition) }))
    const audited = (r: { name: string; kind: string; definition: string }) => ({ name: r.name, state: { kind: r.kind, definition: parseJson(r.definition) } })
    const audit = this.config.audit
    this.synced ??= (async () => {
      const stored = audit ? await this.store.definitions() : undefined
      await this.store.syncProbes(records, now)
      if (audit && stored) await auditDefinitions(audit, 'probe', 'probe', stored.map(audited), records.map(audited))
    })()
      .catch((error: unknown) => {
        this.synced = undefined
        throw error
      })
    return this.synced
  }

  private range(range: ProbeRange | undefined, what: string): { from: number; to: number } {
    const now = this.config.clock.now()
    const to = queryTime(range?.to, now, `${what}.to`) ?? now
    return { from: queryTime(range?.from, now, `${what}.from`) ?? to - DAY, to }
  }

  async checks(range?: ProbeRange): Promise<ProbeCheck[]> {
    const { from, to } = this.range(range, 'checks()')
    return (await this.store.checks({ probe: range?.name, from, to })).map(toCheck)
  }

  async incidents(range?: ProbeRange): Promise<Incident[]> {
    const { from, to } = this.range(range, 'incidents()')
    return (await this.store.incidents({ probe: range?.name, from, to })).map(toIncident)
  }

  async status(): Promise<ProbeStatus[]> {
    return probeStatuses(this.store, this.config.probes.map((p) => ({ name: p.name, kind: p.kind })))
  }

  async uptime(range: ProbeRange & { name: string }): Promise<ProbeUptime> {
    const probe = this.byName.get(range?.name)
    if (!probe) throw new ApimeterError('INVALID_QUERY', `uptime() needs the name of a configured probe (${this.names.join(', ') || 'none configured'}), got ${String(range?.name)}`)
    const { from } = this.range(range, 'uptime()')
    const to = Math.min(this.range(range, 'uptime()').to, this.config.clock.now())
    return probeUptime(this.store, probe, from, to)
  }

  private fail(code: 'PROBE_FAILED' | 'PROBE_NOTIFICATION_FAILED', message: string, cause: unknown, counter?: 'failedRounds' | 'failedNotifications'): void {
    if (counter) this.counters[counter]++
    const error = new ApimeterError(code, message, { cause })
    this.lastError = { code, message: error.message, at: new Date(this.config.clock.now()) }
    this.config.report(error)
  }
}

/** "2 h 5 min", "41 s". */
function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${s % 60} s`
  return `${Math.floor(m / 60)} h ${m % 60} min`
}

/** Uptime of one probe over `[from, to)` from a probe store (`monitor.probes.uptime()` and the stored reader). */
export async function probeUptime(store: ProbeStore, probe: { name: string; maintenance: ResolvedMaintenance }, from: number, to: number): Promise<ProbeUptime> {
  const [checks, incidents, states] = await Promise.all([store.checks({ probe: probe.name, from, to }), store.incidents({ probe: probe.name, from, to }), store.states()])
  const counted = checks.filter((c) => !probe.maintenance.covers(c.at))
  const ok = counted.filter((c) => c.ok).length
  const first = states.find((s) => s.probe === probe.name)?.firstCheckAt ?? null
  const start = first === null ? to : Math.max(from, first)
  const observedMs = lengthOutside(probe.maintenance, start, to)
  let downtimeMs = 0
  for (const i of incidents) downtimeMs += lengthOutside(probe.maintenance, Math.max(i.openedAt, start), Math.min(i.resolvedAt ?? to, to))
  return {
    checks: counted.length,
    ok,
    ratio: counted.length === 0 ? null : ok / counted.length,
    timeRatio: observedMs > 0 ? (observedMs - downtimeMs) / observedMs : null,
    downtimeMs,
    observedMs,
    incidents: incidents.length,
  }
}

/**
 * The state, last check and open incident of each probe, read from a probe store (`monitor.probes.status()` and
 * `apimeter probes status`). `probes`: which, in order; default: every stored definition.
 */
export async function probeStatuses(store: ProbeStore, probes?: readonly { name: string; kind: 'http' | 'heartbeat' }[]): Promise<ProbeStatus[]> {
  const list = probes ?? (await store.definitions()).map((d) => ({ name: d.name, kind: d.kind }))
  const states = new Map((await store.states()).map((s) => [s.probe, s]))
  return Promise.all(
    list.map(async ({ name, kind }): Promise<ProbeStatus> => {
      const s = states.get(name)
      const last = s?.lastCheckAt == null ? [] : await store.checks({ probe: name, from: s.lastCheckAt, to: s.lastCheckAt + 1 })
      const open = s?.incidentId == null ? [] : (await store.incidents({ probe: name, from: s.lastCheckAt ?? undefined })).filter((i) => i.id === s.incidentId)
      return {
        name,
        kind,
        state: s === undefined || s.lastCheckAt === null ? 'unknown' : s.incidentId !== null ? 'down' : 'up',
        failures: s?.failures ?? 0,
        successes: s?.successes ?? 0,
        lastCheck: last.length > 0 ? toCheck(last.at(-1)!) : null,
        openIncident: open.length > 0 ? toIncident(open[0]!) : null,
      }
    }),
  )
}
