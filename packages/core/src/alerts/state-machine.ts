import type { ResolvedRule } from './rules.js'
import type { AlertEventRecord, AlertInstanceRecord, AlertSeverity } from '../storage/alert-store.js'

/**
 * What one evaluation saw for an instance: `level` 0 (condition does not hold), 1 (past the warn fraction),
 * 2 (past the threshold), or `'keep'` (no data, and the rule says to leave the state alone).
 */
export interface Observation {
  level: 0 | 1 | 2 | 'keep'
  value: number | null
}

/** The outcome of one step: the row to write (null: nothing changed) and the event it causes, if any. */
export interface Step {
  next: Omit<AlertInstanceRecord, 'version'> | null
  event: Omit<AlertEventRecord, 'id'> | null
}

const RANK: Record<AlertSeverity, number> = { warning: 1, critical: 2 }

/** The level of a value for a rule: 2 past the threshold, 1 past the warn fraction, else 0. */
export function levelOf(rule: ResolvedRule, value: number): 0 | 1 | 2 {
  if (rule.slo?.severity === 'ticket') return value >= rule.threshold ? 1 : 0
  if (rule.when === 'below') return value < rule.threshold ? 2 : 0
  if (value >= rule.threshold) return 2
  if (rule.warn !== undefined && value >= rule.threshold * rule.warn) return 1
  return 0
}

/** The bound a severity crossed: the threshold, or threshold × warn for a warning. */
export function boundOf(rule: ResolvedRule, severity: AlertSeverity | null): number {
  return severity === 'warning' && rule.warn !== undefined ? rule.threshold * rule.warn : rule.threshold
}

/** The state of an instance that has no row yet. */
export function inactiveInstance(rule: string, group: string): AlertInstanceRecord {
  return {
    rule,
    group,
    state: 'inactive',
    severity: null,
    value: null,
    pendingSince: null,
    firingSince: null,
    activeAt: null,
    lastEvaluatedAt: null,
    lastNotifiedAt: null,
    resolvedAt: null,
    version: 0,
  }
}

/**
 * One step of the state machine (pure, so every transition can be tested on its own):
 *
 * - inactive → pending when the condition holds and the rule has a `for`; straight to firing without one;
 * - pending → firing once the condition has held for `for`; pending → inactive (silently) when it stops holding;
 * - firing → firing again (escalation) when a warning becomes critical; a repeat once `cooldown` has passed since
 *   the last notification; severity never drops while firing;
 * - firing → resolved (inactive) once the condition has not held for `keepFiringFor`.
 *
 * Only firing and resolved events are notified; pending events are kept in the history.
 */
export function step(prev: AlertInstanceRecord, rule: ResolvedRule, obs: Observation, now: number): Step {
  const none: Step = { next: null, event: null }
  if (obs.level === 'keep') return none
  const holds = obs.level > 0
  const severity: AlertSeverity = obs.level === 2 ? 'critical' : 'warning'
  const base = { ...prev, value: obs.value, lastEvaluatedAt: now }
  delete (base as Partial<AlertInstanceRecord>).version
  const event = (state: AlertEventRecord['state'], sev: AlertSeverity, repeated = false): Omit<AlertEventRecord, 'id'> => ({
    rule: prev.rule,
    group: prev.group,
    state,
    severity: sev,
    value: obs.value,
    threshold: boundOf(rule, sev),
    repeated,
    at: now,
  })
  const fire = (sev: AlertSeverity): Step => ({
    next: { ...base, state: 'firing', severity: sev, firingSince: now, activeAt: now, lastNotifiedAt: now, pendingSince: prev.pendingSince ?? null, resolvedAt: null },
    event: event('firing', sev),
  })

  switch (prev.state) {
    case 'inactive': {
      if (!holds) return none
      if (rule.forMs > 0) {
        return { next: { ...base, state: 'pending', severity, pendingSince: now, activeAt: now, firingSince: null }, event: event('pending', severity) }
      }
      return fire(severity)
    }
    case 'pending': {
      if (!holds) return { next: { ...base, state: 'inactive', severity: null, pendingSince: null }, event: null }
      const sev = maxSeverity(prev.severity, severity)
      if (now - (prev.pendingSince ?? now) >= rule.forMs) return fire(sev)
      return { next: { ...base, severity: sev, activeAt: now }, event: null }
    }
    case 'firing': {
      const current = prev.severity ?? 'critical'
      if (holds) {
        const sev = maxSeverity(current, severity)
        if (sev !== current) return { next: { ...base, severity: sev, activeAt: now, lastNotifiedAt: now }, event: event('firing', sev) }
        if (now - (prev.lastNotifiedAt ?? now) >= rule.cooldownMs) {
          return { next: { ...base, activeAt: now, lastNotifiedAt: now }, event: event('firing', sev, true) }
        }
        return { next: { ...base, activeAt: now }, event: null }
      }
      if (now - (prev.activeAt ?? now) < rule.keepFiringForMs) return { next: base, event: null }
      return {
        next: { ...base, state: 'inactive', severity: null, pendingSince: null, firingSince: null, resolvedAt: now, lastNotifiedAt: now },
        event: event('resolved', current),
      }
    }
  }
}

function maxSeverity(a: AlertSeverity | null, b: AlertSeverity): AlertSeverity {
  return a !== null && RANK[a] >= RANK[b] ? a : b
}
