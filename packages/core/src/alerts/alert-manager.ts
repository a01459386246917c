import { ApimeterError, errorMessage, type HealthError } from '../errors.js'
import { settledWithin } from '../settle.js'
import type { StorageAdapter } from '../storage/adapter.js'
import { auditDefinitions, parseJson, type RuleAudit } from './definition-audit.js'
import { queryTime, type TimeInput } from '../time.js'
import { countsZero, groupValues, measure, windowStart } from './measure.js'
import { type AlertEvent, alertText, deliverWebhook } from './notifiers.js'
import { type AlertKind, notifierLabel, type ResolvedNotifier, type ResolvedRule } from './rules.js'
import { boundOf, inactiveInstance, levelOf, type Observation, step } from './state-machine.js'
import {
  type AlertEventRecord,
  type AlertInstanceRecord,
  type AlertRuleRecord,
  type AlertSeverity,
  type AlertState,
  type AlertStore,
  memoryAlertStore,
  type NotificationAttemptRecord,
} from '../storage/alert-store.js'

/** Counters of alert evaluation and notification, in `monitor.health().alerts`. */
export interface AlertHealth {
  /** Enabled rules evaluated on each run. */
  rules: number
  /** Evaluation runs completed. */
  evaluations: number
  /** Rule evaluations that failed (storage unreachable…); each is also an `error` event. */
  failedEvaluations: number
  /** Notifications delivered (one per notifier and event). */
  notificationsSent: number
  /** Notifications that failed for good (after a webhook's retries); each is also an `error` event. */
  failedNotifications: number
  /** When the last run finished. */
  lastEvaluatedAt: Date | null
  /** The last evaluation or notification problem. */
  lastError: HealthError | null
}

/** A pending or firing alert instance, from `monitor.alerts.active()`. */
export interface ActiveAlert {
  rule: string
  kind: AlertKind
  state: 'pending' | 'firing'
  severity: AlertSeverity
  /** The last evaluated value (null: no data). */
  value: number | null
  /** The bound crossed (threshold, or threshold × warn for a warning). */
  threshold: number
  group?: string
  groups?: Record<string, string>
  /** Since when it is pending or firing. */
  since: Date
  lastEvaluatedAt: Date | null
}

/** One stored transition, from `monitor.alerts.history()`. */
export interface AlertHistoryEntry {
  id: number
  rule: string
  state: 'pending' | 'firing' | 'resolved'
  severity: AlertSeverity | null
  value: number | null
  threshold: number | null
  /** Set for a grouped rule's instance. */
  group?: string
  repeated: boolean
  at: Date
}

/**
 * `monitor.alerts`: the state and history of the monitor's alert rules.
 *
 * @example
 * ```ts
 * for (const a of await monitor.alerts.active()) console.log(a.rule, a.group, a.state, a.value)
 * const lastDay = await monitor.alerts.history({ from: '-24h' })
 * ```
 */
export interface MonitorAlerts {
  /** Names of the configured rules. */
  readonly rules: readonly string[]
  /**
   * The instances of the configured rules that are pending or firing, as stored (shared by every monitor on the
   * same database).
   * @example
   * ```ts
   * const firing = (await monitor.alerts.active()).filter((a) => a.state === 'firing')
   * ```
   */
  active(): Promise<ActiveAlert[]>
  /**
   * Stored transitions (pending, firing, resolved) with `from <= at < to`, oldest first. `from` / `to` take what
   * stats filters take (Date, epoch ms, ISO string, `'-24h'`).
   * @example
   * ```ts
   * const week = await monitor.alerts.history({ from: '-7d' })
   * ```
   */
  history(range?: { from?: TimeInput; to?: TimeInput }): Promise<AlertHistoryEntry[]>
  /**
   * Every `cost` rule (each group of a grouped one that has spend in its window) with its threshold, the spend so
   * far in its current window and the share of the threshold used, whatever its alert state. Reads the stats
   * aggregates, as an evaluation does, but changes no state and notifies nobody.
   * @example
   * ```ts
   * for (const b of await monitor.alerts.budgets()) console.log(b.rule, b.group, `${Math.round(b.burn * 100)}%`)
   * ```
   */
  budgets(): Promise<CostBudget[]>
  /**
   * Evaluates every rule now (the timer does this every `alertIntervalMs`) and resolves with the notified events
   * once their notifications are delivered or given up on. Never rejects: problems go to `health()` and `error`.
   * @example
   * ```ts
   * await monitor.flush()
   * const events = await monitor.alerts.evaluate()
   * ```
   */
  evaluate(): Promise<AlertEvent[]>
  /**
   * Stored notification attempts (of one event, or all), oldest first.
   * @example
   * ```ts
   * const attempts = await monitor.alerts.notifications(event.id!)
   * ```
   */
  notifications(eventId?: number): Promise<NotificationAttemptRecord[]>
}

/** One cost budget (a `cost` alert rule, or one group of it), from `monitor.alerts.budgets()`. */
export interface CostBudget {
  rule: string
  /** Set for a grouped rule's group. */
  group?: string
  groups?: Record<string, string>
  /** The rule's threshold (USD in the window). */
  threshold: number
  /** The warning bound (threshold × warn), when the rule has `warn`. */
  warnAt: number | null
  /** The window: `'day'` or `'month'` (calendar, UTC) or a rolling duration such as `'1h'`. */
  window: string
  /** Start of the current window. */
  from: Date
  /** Spend in the window so far (estimated costs left out when the rule says `estimates: 'exclude'`). */
  spent: number
  /** spent / threshold (1: the budget is used up). */
  burn: number
  /** The stored alert state of this budget (`inactive` when it never fired or has resolved). */
  state: AlertState
  severity: AlertSeverity | null
  enabled: boolean
}

/** The pending or firing instances of `rules`, as stored. */
export async function activeAlerts(store: AlertStore, rules: readonly ResolvedRule[]): Promise<ActiveAlert[]> {
  const out: ActiveAlert[] = []
  for (const rule of rules) {
    for (const s of await store.instances(rule.name)) {
      if (s.state === 'inactive') continue
      const severity = s.severity ?? 'critical'
      const entry: ActiveAlert = {
        rule: rule.name,
        kind: rule.kind,
        state: s.state,
        severity,
        value: s.value,
        threshold: boundOf(rule, severity),
        since: new Date((s.state === 'firing' ? s.firingSince : s.pendingSince) ?? s.lastEvaluatedAt ?? 0),
        lastEvaluatedAt: s.lastEvaluatedAt === null ? null : new Date(s.lastEvaluatedAt),
      }
      if (rule.groupBy.length > 0) Object.assign(entry, { group: s.group, groups: groupValues(rule, s.group) })
      out.push(entry)
    }
  }
  return out
}

/** Stored transitions in a range, oldest first (they need no rule definitions). */
export async function alertHistory(store: AlertStore, range: { from?: TimeInput; to?: TimeInput }, now: number): Promise<AlertHistoryEntry[]> {
  const events = await store.events({ from: queryTime(range?.from, now, 'history.from'), to: queryTime(range?.to, now, 'history.to') })
  return events.map((e) => {
    const entry: AlertHistoryEntry = { id: e.id, rule: e.rule, state: e.state, severity: e.severity, value: e.value, threshold: e.threshold, repeated: e.repeated, at: new Date(e.at) }
    if (e.group !== '') entry.group = e.group
    return entry
  })
}

/** The cost rules among `rules`, each measured now, as an evaluation would, without changing any state. */
export async function costBudgets(rules: readonly ResolvedRule[], storage: StorageAdapter, store: AlertStore, now: number): Promise<CostBudget[]> {
  const out: CostBudget[] = []
  for (const rule of rules) {
    if (rule.kind !== 'cost') continue
    const [measured, instances] = await Promise.all([measure(rule, storage, store, now), store.instances(rule.name)])
    const states = new Map(instances.map((s) => [s.group, s]))
    // an ungrouped budget is always shown, at 0 before its first spend
    if (rule.groupBy.length === 0 && measured.length === 0) measured.push({ group: '', keys: [], value: 0 })
    const window = 'calendar' in rule.window ? rule.window.calendar : typeof rule.definition.window === 'string' ? rule.definition.window : `${rule.window.rollingMs}ms`
    for (const m of measured) {
      const spent = m.value ?? 0
      // a grouped budget shows the groups that spent something in the window (calls without cost are not spend)
      if (rule.groupBy.length > 0 && spent === 0 && states.get(m.group)?.state !== 'firing') continue
      const s = states.get(m.group)
      const budget: CostBudget = {
        rule: rule.name,
        threshold: rule.threshold,
        warnAt: rule.warn === undefined ? null : rule.threshold * rule.warn,
        window,
        from: new Date(windowStart(rule, now)),
        spent,
        burn: rule.threshold === 0 ? (spent > 0 ? Infinity : 0) : spent / rule.threshold,
        state: s?.state ?? 'inactive',
        severity: s?.severity ?? null,
        enabled: rule.enabled,
      }
      if (rule.groupBy.length > 0) Object.assign(budget, { group: m.group, groups: groupValues(rule, m.group) })
      out.push(budget)
    }
  }
  return out.sort((a, b) => b.burn - a.burn)
}

/** What the alert manager needs from its monitor. */
export interface AlertManagerConfig {
  rules: readonly ResolvedRule[]
  storage: StorageAdapter
  intervalMs: number
  now(): number
  service: string
  onAlert: ((event: AlertEvent) => unknown) | undefined
  /** Emits the monitor's `alert` event. */
  emit(event: AlertEvent): void
  /** Reports through the monitor's `error` event. */
  report(error: ApimeterError): void
  /** Writes one line for the `log` notifier. */
  log(line: string): void
  /** Sends through a plugin notifier scheme; rejects when it failed. */
  pluginNotify?(scheme: string, target: string, event: AlertEvent): Promise<void>
  /** The audit log: rule changes found when rules are synced are appended here. */
  audit?: RuleAudit
}


/**
 * Evaluates alert rules on an unref'd interval, moves each instance through the state machine with compare-and-set
 * writes to the alert store, and notifies each applied transition once. Nothing here runs on the recording path.
 */
export class AlertManager implements MonitorAlerts {
  readonly rules: readonly string[]
  private readonly enabled: readonly ResolvedRule[]
  private readonly store: AlertStore
  private timer: NodeJS.Timeout | undefined
  private chain: Promise<unknown> = Promise.resolve()
  private running = false
  private closing = false
  private rulesSynced: Promise<void> | undefined
  private readonly deliveries = new Set<Promise<void>>()
  private readonly counters = { evaluations: 0, failedEvaluations: 0, notificationsSent: 0, failedNotifications: 0 }
  private lastEvaluatedAt: Date | null = null
  private lastError: HealthError | null = null

  constructor(private readonly config: AlertManagerConfig) {
    this.rules = config.rules.map((r) => r.name)
    this.enabled = config.rules.filter((r) => r.enabled)
    this.store = config.storage.alerts ?? memoryAlertStore()
  }

  /** Starts the interval (only when there are rules to evaluate). */
  start(): void {
    if (this.enabled.length === 0 || this.timer) return
    this.timer = setInterval(() => {
      if (this.running || this.closing) return // a run is skipped while the previous one is in flight
      this.enqueue().catch(() => undefined)
    }, this.config.intervalMs)
    this.timer.unref()
  }

  health(): AlertHealth {
    return { rules: this.enabled.length, ...this.counters, lastEvaluatedAt: this.lastEvaluatedAt, lastError: this.lastError }
  }

  async evaluate(): Promise<AlertEvent[]> {
    try {
      const { events, delivered } = await this.enqueue()
      await delivered
      return events
    } catch (error) {
      this.fail('ALERT_EVALUATION_FAILED', `alert evaluation failed: ${errorMessage(error)}`, error, 'failedEvaluations')
      return []
    }
  }

  active(): Promise<ActiveAlert[]> {
    return activeAlerts(this.store, this.config.rules)
  }

  history(range: { from?: TimeInput; to?: TimeInput } = {}): Promise<AlertHistoryEntry[]> {
    return alertHistory(this.store, range, this.config.now())
  }

  budgets(): Promise<CostBudget[]> {
    return costBudgets(this.config.rules, this.config.storage, this.store, this.config.now())
  }

  notifications(eventId?: number): Promise<NotificationAttemptRecord[]> {
    return this.store.attempts(eventId)
  }

  /** Stops the timer, then waits (at most `timeoutMs`) for the running evaluation and notifications. */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await settledWithin([this.chain, ...this.deliveries], timeoutMs)
  }

  /** Runs one evaluation after any running one; never rejects. */
  private enqueue(): Promise<{ events: AlertEvent[]; delivered: Promise<void> }> {
    const run = this.chain.then(() => this.runOnce())
    this.chain = run.catch(() => undefined)
    return run
  }

  private async runOnce(): Promise<{ events: AlertEvent[]; delivered: Promise<void> }> {
    this.running = true
    const events: { rule: ResolvedRule; event: AlertEvent }[] = []
    try {
      const now = this.config.now()
      try {
        await this.syncRules(now)
      } catch (error) {
        this.fail('ALERT_EVALUATION_FAILED', `alert rules could not be stored: ${errorMessage(error)}`, error, 'failedEvaluations')
        return { events: [], delivered: Promise.resolve() }
      }
      for (const rule of this.enabled) {
        try {
          for (const event of await this.evaluateRule(rule, now)) events.push({ rule, event })
        } catch (error) {
          this.fail('ALERT_EVALUATION_FAILED', `alert rule '${rule.name}' could not be evaluated: ${errorMessage(error)}`, error, 'failedEvaluations')
        }
      }
      this.counters.evaluations++
      this.lastEvaluatedAt = new Date(now)
    } finally {
      this.running = false
    }
    const delivered = Promise.all(events.map(({ rule, event }) => this.dispatch(rule, event))).then(() => undefined)
    return { events: events.map((e) => e.event), delivered }
  }

  private syncRules(now: number): Promise<void> {
    const records = this.config.rules.map((r) => ({ name: r.name, kind: r.kind, definition: JSON.stringify(r.definition), enabled: r.enabled }))
    this.rulesSynced ??= (async () => {
      const stored = this.config.audit && this.store.rules ? await this.store.rules() : undefined
      await this.store.syncRules(records, now)
      if (stored) await this.auditRules(stored, records)
    })()
      .catch((error: unknown) => {
        this.rulesSynced = undefined
        throw error
      })
    return this.rulesSynced
  }

  /**
   * Audit rows for rule changes (see `auditDefinitions`). An SLO's burn-rate rules are left out: they follow from
   * the SLO, whose changes are recorded as such.
   */
  private auditRules(stored: readonly AlertRuleRecord[], current: readonly AlertRuleRecord[]): Promise<void> {
    const own = (r: AlertRuleRecord): boolean => r.kind !== 'slo_burn'
    const audited = (r: AlertRuleRecord) => ({ name: r.name, state: { kind: r.kind, enabled: r.enabled, definition: parseJson(r.definition) } })
    return auditDefinitions(this.config.audit!, 'alert_rule', 'alert rule', stored.filter(own).map(audited), current.filter(own).map(audited))
  }

  private observe(rule: ResolvedRule, value: number | null): Observation {
    if (value !== null) return { level: levelOf(rule, value), value }
    if (rule.noData === 'keep') return { level: 'keep', value: null }
    return { level: rule.noData === 'alert' ? 2 : 0, value: null }
  }

  /** Measures one rule, steps each instance, writes the changes; returns the applied, notifiable events. */
  private async evaluateRule(rule: ResolvedRule, now: number): Promise<AlertEvent[]> {
    const [measured, stored] = await Promise.all([measure(rule, this.config.storage, this.store, now), this.store.instances(rule.name)])
    const values = new Map(measured.map((m) => [m.group, m.value]))
    const byGroup = new Map(stored.map((s) => [s.group, s]))
    const groups = new Set([...values.keys(), ...stored.filter((s) => s.state !== 'inactive').map((s) => s.group)])
    if (rule.groupBy.length === 0) groups.add('')
    const out: AlertEvent[] = []
    for (const group of groups) {
      const value = values.has(group) ? values.get(group)! : countsZero(rule) ? 0 : null
      const prev = byGroup.get(group) ?? inactiveInstance(rule.name, group)
      const s = step(prev, rule, this.observe(rule, value), now)
      if (s.next === null) continue
      const { applied, eventId } = await this.store.transition({ expectedVersion: prev.version, next: s.next, event: s.event ?? undefined })
      // Not applied: another process moved this instance first; it notifies, and we read its state next time.
      if (!applied || s.event === null || s.event.state === 'pending') continue
      out.push(this.toEvent(rule, s.event, eventId, s.event.state === 'resolved' ? prev : s.next))
    }
    return out
  }

  private toEvent(rule: ResolvedRule, e: Omit<AlertEventRecord, 'id'>, id: number | null, instance: Omit<AlertInstanceRecord, 'version'>): AlertEvent {
    const base: Omit<AlertEvent, 'text'> = {
      id,
      rule: rule.name,
      kind: rule.kind,
      state: e.state as 'firing' | 'resolved',
      severity: e.severity ?? 'critical',
      value: e.value,
      threshold: e.threshold ?? rule.threshold,
      at: new Date(e.at),
      since: instance.firingSince === null ? null : new Date(instance.firingSince),
      repeated: e.repeated,
      service: this.config.service,
    }
    if (rule.groupBy.length > 0) Object.assign(base, { group: e.group, groups: groupValues(rule, e.group) })
    return { ...base, text: alertText(rule, base) }
  }

  /** Sends one event everywhere at once; one notifier failing never holds up another. Never rejects. */
  private dispatch(rule: ResolvedRule, event: AlertEvent): Promise<void> {
    this.config.emit(event)
    const tasks: Promise<void>[] = []
    const { onAlert } = this.config
    if (onAlert) {
      tasks.push(
        this.attempt(event, 'callback', async () => {
          await onAlert(event)
        }),
      )
    }
    for (const n of rule.notify) tasks.push(this.notify(n, event))
    const all = Promise.all(tasks).then(() => undefined)
    this.deliveries.add(all)
    void all.finally(() => this.deliveries.delete(all))
    return all
  }

  private notify(n: ResolvedNotifier, event: AlertEvent): Promise<void> {
    if (n.type === 'log') return this.attempt(event, n.type, async () => this.config.log(event.text))
    if (n.type === 'plugin') {
      const { pluginNotify } = this.config
      return this.attempt(event, notifierLabel(n), async () => {
        if (!pluginNotify) throw new Error(`no plugin registers the notifier scheme '${n.scheme}'`)
        await pluginNotify(n.scheme, n.target, event)
      })
    }
    const label = notifierLabel(n)
    return deliverWebhook(n, event, (a) => this.saveAttempt(event, label, a), () => this.closing).then((ok) => {
      if (ok) this.counters.notificationsSent++
      else this.fail('ALERT_NOTIFICATION_FAILED', `alert '${event.rule}' could not be sent to ${label}; see monitor.alerts.notifications(${event.id})`, undefined, 'failedNotifications')
    })
  }

  /** One attempt of an in-process notifier (callback, log), stored either way. */
  private async attempt(event: AlertEvent, label: string, send: () => Promise<void>): Promise<void> {
    let error: string | null = null
    try {
      await send()
      this.counters.notificationsSent++
    } catch (e) {
      error = errorMessage(e).slice(0, 1024)
      this.fail('ALERT_NOTIFICATION_FAILED', `the ${label} notifier of alert '${event.rule}' threw: ${error}`, e, 'failedNotifications')
    }
    await this.saveAttempt(event, label, { attempt: 1, status: error === null ? 'sent' : 'failed', httpStatus: null, error })
  }

  private async saveAttempt(event: AlertEvent, notifier: string, a: Omit<NotificationAttemptRecord, 'eventId' | 'notifier' | 'at'>): Promise<void> {
    if (event.id === null) return
    try {
      await this.store.recordAttempt({ ...a, eventId: event.id, notifier, at: this.config.now() })
    } catch (error) {
      this.fail('ALERT_NOTIFICATION_FAILED', `a notification attempt of alert '${event.rule}' could not be stored: ${errorMessage(error)}`, error)
    }
  }

  private fail(code: 'ALERT_EVALUATION_FAILED' | 'ALERT_NOTIFICATION_FAILED', message: string, cause: unknown, counter?: 'failedEvaluations' | 'failedNotifications'): void {
    if (counter) this.counters[counter]++
    const error = new ApimeterError(code, message, { cause })
    this.lastError = { code, message: error.message, at: new Date(this.config.now()) }
    this.config.report(error)
  }
}

