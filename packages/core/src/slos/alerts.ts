import { resolveNotifier, type ResolvedRule } from '../alerts/rules.js'
import type { StorageAdapter } from '../storage/adapter.js'
import { ensureStorageReady } from '../stats/stats.js'
import type { ResolvedSlo } from './slo.js'
import { burnAlertValue, burnAlertWindows, burnRates } from './status.js'

/** The alert rule name of an SLO's page or ticket alert: `slo:<name>:page`, `slo:<name>:ticket`. */
export function sloAlertName(slo: string, severity: 'page' | 'ticket'): string {
  return `slo:${slo}:${severity}`
}

/**
 * The burn-rate alerts of SLOs as internal alert rules of kind `slo_burn`, so the alert manager evaluates them
 * with every other rule: the same state machine, stored state with compare-and-set transitions (one notification
 * per transition across a fleet), history and notifiers. Per SLO, a page rule (critical) and a ticket rule
 * (warning); each one's value is how far its strongest window pair is past its bound (>= 1 fires, see
 * `burnAlertValue`), and it resolves at the first evaluation where it no longer holds.
 */
export function sloBurnRules(slos: readonly ResolvedSlo[]): ResolvedRule[] {
  return slos
    .filter((s) => s.alerts)
    .flatMap((slo) =>
      (['page', 'ticket'] as const).map(
        (severity): ResolvedRule => ({
          name: sloAlertName(slo.name, severity),
          kind: 'slo_burn',
          threshold: 1,
          window: { rollingMs: slo.periodMs },
          forMs: 0,
          keepFiringForMs: 0,
          cooldownMs: Infinity,
          groupBy: [],
          notify: slo.notify.map(resolveNotifier),
          noData: 'ok',
          warn: undefined,
          estimates: 'include',
          percentile: 'p95',
          when: 'above',
          codes: [],
          limit: undefined,
          minRequests: 1,
          enabled: true,
          filter: {},
          definition: { kind: 'slo_burn', slo: slo.name, severity, objective: slo.objective, window: slo.window.label },
          slo: { slo, severity },
        }),
      ),
    )
}

/** The value of an SLO's page or ticket rule at `now` (see {@link sloBurnRules}). */
export async function measureSloBurn(storage: StorageAdapter, slo: ResolvedSlo, severity: 'page' | 'ticket', now: number): Promise<number> {
  await ensureStorageReady(storage)
  const rates = await burnRates(storage, slo, now, burnAlertWindows(severity))
  return burnAlertValue(slo, rates, severity)
}
