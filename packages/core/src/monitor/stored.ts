import { type ActiveAlert, activeAlerts, alertHistory, type AlertHistoryEntry, type CostBudget, costBudgets } from '../alerts/alert-manager.js'
import { alertRuleSchema, resolveRule, type ResolvedRule } from '../alerts/rules.js'
import { type Clock, resolveClock } from '../clock.js'
import { errorMessage } from '../errors.js'
import { resolveMaintenance } from '../probes/maintenance.js'
import { probeStatuses, type ProbeStatus, type ProbeUptime, probeUptime } from '../probes/probe-manager.js'
import { sloBurnRules } from '../slos/alerts.js'
import { slosFromRecords } from '../slos/manager.js'
import type { ResolvedSlo } from '../slos/slo.js'
import { type SloStatus, sloStatus } from '../slos/status.js'
import { ensureStorageReady } from '../stats/stats.js'
import type { StorageAdapter } from '../storage/adapter.js'
import { memoryAlertStore } from '../storage/alert-store.js'
import { queryTime, type TimeInput } from '../time.js'

/** A stored definition the reader could not use, and why (an older or newer apimeter wrote it, or a custom store keeps none). */
export interface StoredProblem {
  /** What kind of definition: an alert rule, a probe or an SLO. */
  what: 'alert_rule' | 'probe' | 'slo'
  /** Its name; `'*'` when the storage keeps no list of that kind at all. */
  name: string
  message: string
}

/** Names to leave out of a list (typically the definitions the caller has itself). */
export interface StoredExcept {
  /**
   * Rule, probe or SLO names not to read (an SLO's burn-rate rules are named `slo:<name>:page` / `:ticket`).
   * @example
   * ```ts
   * await readStored(monitor.storage).slos.status({ except: ['checkout-availability'] })
   * ```
   */
  except?: readonly string[]
}

/**
 * What {@link readStored} returns: the alert rules, probes and SLOs every monitor on a database has stored, with
 * their state, read from the storage alone. Nothing is evaluated, run or notified: no timer, no probe check, no
 * state write. Every method reads afresh and may reject when the storage does.
 */
export interface StoredReader {
  readonly alerts: {
    /**
     * Pending and firing instances of every stored rule (SLO burn-rate rules included).
     * @example
     * ```ts
     * const firing = (await readStored(storage).alerts.active()).filter((a) => a.state === 'firing')
     * ```
     */
    active(options?: StoredExcept): Promise<ActiveAlert[]>
    /**
     * Stored transitions with `from <= at < to`, oldest first (as `monitor.alerts.history()`).
     * @example
     * ```ts
     * const day = await readStored(storage).alerts.history({ from: '-24h' })
     * ```
     */
    history(range?: { from?: TimeInput; to?: TimeInput }): Promise<AlertHistoryEntry[]>
    /**
     * Every stored `cost` rule with its threshold, spend in its current window and burn (as `monitor.alerts.budgets()`).
     * @example
     * ```ts
     * for (const b of await readStored(storage).alerts.budgets()) console.log(b.rule, b.spent, b.threshold)
     * ```
     */
    budgets(options?: StoredExcept): Promise<CostBudget[]>
  }
  readonly probes: {
    /**
     * Each stored probe's state, last check and open incident.
     * @example
     * ```ts
     * const down = (await readStored(storage).probes.status()).filter((p) => p.state === 'down')
     * ```
     */
    status(options?: StoredExcept): Promise<ProbeStatus[]>
    /**
     * Uptime of a stored probe over a range (default: the last 24 hours), its stored maintenance windows left out.
     * @example
     * ```ts
     * const { timeRatio } = await readStored(storage).probes.uptime({ name: 'payments', from: '-30d' })
     * ```
     */
    uptime(range: { name: string; from?: TimeInput; to?: TimeInput }): Promise<ProbeUptime>
  }
  readonly slos: {
    /**
     * The status of every stored SLO now (as `monitor.slos.status()`), from the storage's exact counts.
     * @example
     * ```ts
     * const exhausted = (await readStored(storage).slos.status()).filter((s) => s.budget.exhausted)
     * ```
     */
    status(options?: StoredExcept): Promise<SloStatus[]>
  }
  /**
   * The stored definitions that could not be read (each is left out of the lists above), and the kinds the storage
   * keeps no list of.
   * @example
   * ```ts
   * for (const p of await readStored(storage).problems()) console.warn(`${p.what} ${p.name}: ${p.message}`)
   * ```
   */
  problems(): Promise<StoredProblem[]>
}

const DAY = 86_400_000

/**
 * A read-only view of the alert rules, probes and SLOs stored in a database by the monitors that use it, for tools
 * that have the storage but not the definitions in code: the dashboard served by `apimeter dashboard`, or an
 * instance of a fleet that defines none itself. It starts nothing (no evaluation, probe or notifier) and writes
 * nothing.
 *
 * @example
 * ```ts
 * const stored = readStored(monitor.storage)
 * for (const a of await stored.alerts.active()) console.log(a.rule, a.state, a.value)
 * for (const s of await stored.slos.status()) console.log(s.name, s.sli, s.budget.remaining)
 * ```
 */
export function readStored(storage: StorageAdapter, options: { clock?: Clock } = {}): StoredReader {
  const clock = resolveClock(options.clock)
  const alertStore = storage.alerts ?? memoryAlertStore()

  const slos = async (problems?: StoredProblem[]): Promise<ResolvedSlo[]> => {
    await ensureStorageReady(storage)
    if (!storage.slos) {
      problems?.push({ what: 'slo', name: '*', message: 'this storage keeps no SLO definitions' })
      return []
    }
    return slosFromRecords(await storage.slos.list(), (name, message) => problems?.push({ what: 'slo', name, message }))
  }
  const rules = async (problems?: StoredProblem[]): Promise<ResolvedRule[]> => {
    await ensureStorageReady(storage)
    if (!alertStore.rules) {
      problems?.push({ what: 'alert_rule', name: '*', message: 'this storage keeps no list of alert rules' })
      return []
    }
    const out: ResolvedRule[] = []
    for (const record of await alertStore.rules()) {
      // an SLO's burn-rate rules are rebuilt from the stored SLO below, exactly as the monitor builds them
      if (record.kind === 'slo_burn') continue
      try {
        // notifiers are stored masked (and are not needed to read): left out
        const { notify: _notify, ...definition } = JSON.parse(record.definition) as Record<string, unknown>
        const parsed = alertRuleSchema.safeParse({ ...definition, name: record.name, enabled: record.enabled })
        if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || 'rule'}: ${i.message}`).join('; '))
        out.push(resolveRule(parsed.data))
      } catch (error) {
        problems?.push({ what: 'alert_rule', name: record.name, message: errorMessage(error) })
      }
    }
    const stored = await slos()
    const burnRules = sloBurnRules(stored)
    return [...out, ...burnRules]
  }
  const probeDefinitions = async (problems?: StoredProblem[]) => {
    await ensureStorageReady(storage)
    if (!storage.probes) {
      problems?.push({ what: 'probe', name: '*', message: 'this storage keeps no probes' })
      return undefined
    }
    return storage.probes.definitions()
  }

  const without = <T>(list: readonly T[], name: (item: T) => string, options: StoredExcept | undefined): T[] => {
    const except = new Set(options?.except ?? [])
    return list.filter((item) => !except.has(name(item)))
  }
  return {
    alerts: {
      active: async (options) => activeAlerts(alertStore, without(await rules(), (r) => r.name, options)),
      history: async (range = {}) => {
        await ensureStorageReady(storage)
        return alertHistory(alertStore, range, clock.now())
      },
      budgets: async (options) => costBudgets(without(await rules(), (r) => r.name, options), storage, alertStore, clock.now()),
    },
    probes: {
      status: async (options) => {
        const definitions = await probeDefinitions()
        return definitions === undefined ? [] : probeStatuses(storage.probes!, without(definitions, (d) => d.name, options))
      },
      uptime: async (range) => {
        const definitions = (await probeDefinitions()) ?? []
        const record = definitions.find((d) => d.name === range?.name)
        if (!record) throw new Error(`uptime() needs the name of a stored probe (${definitions.map((d) => d.name).join(', ') || 'none stored'}), got ${String(range?.name)}`)
        const now = clock.now()
        const to = Math.min(queryTime(range.to, now, 'uptime().to') ?? now, now)
        const from = queryTime(range.from, now, 'uptime().from') ?? to - DAY
        return probeUptime(storage.probes!, { name: record.name, maintenance: storedMaintenance(record.definition) }, from, to)
      },
    },
    slos: {
      status: async (options) => {
        const now = clock.now()
        return Promise.all(without(await slos(), (s) => s.name, options).map((s) => sloStatus(storage, s, now)))
      },
    },
    problems: async () => {
      const problems: StoredProblem[] = []
      const [, , probes] = await Promise.all([rules(problems), slos(problems), probeDefinitions(problems)])
      for (const d of probes ?? []) {
        try {
          resolveMaintenance(maintenanceOf(d.definition))
        } catch (error) {
          problems.push({ what: 'probe', name: d.name, message: `its maintenance windows could not be read (uptime counts them as observed): ${errorMessage(error)}` })
        }
      }
      return problems.sort((a, b) => (a.what === b.what ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.what < b.what ? -1 : 1))
    },
  }
}

function maintenanceOf(definition: string): never[] {
  const parsed = JSON.parse(definition) as { maintenance?: never[] }
  return parsed.maintenance ?? []
}

/** A stored probe's maintenance windows; none when they cannot be read (reported by `problems()`). */
function storedMaintenance(definition: string): ReturnType<typeof resolveMaintenance> {
  try {
    return resolveMaintenance(maintenanceOf(definition))
  } catch {
    return resolveMaintenance([])
  }
}
