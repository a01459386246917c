import { notifierLabel, resolveNotifier } from '../alerts/rules.js'
import { auditDefinitions, parseJson, type RuleAudit } from '../alerts/definition-audit.js'
import { ApimeterError, errorMessage } from '../errors.js'
import type { StorageAdapter } from '../storage/adapter.js'
import { memorySloStore, type SloStore } from '../storage/slo-store.js'
import { parseSlos, type ResolvedSlo, type SloDefinition } from './slo.js'
import { type SloStatus, sloStatus } from './status.js'

/**
 * `monitor.slos`: the status of the monitor's SLOs.
 *
 * @example
 * ```ts
 * for (const s of await monitor.slos.status()) console.log(s.name, s.sli, s.budget.remaining, s.alert)
 * ```
 */
export interface MonitorSlos {
  /** Names of the configured SLOs. */
  readonly names: readonly string[]
  /**
   * The status of every SLO (or of the named ones) now, from the storage's exact counts: SLI, good / total, error
   * budget, burn rates over 5m … 3d, the burn-alert level and the window's coverage.
   * @example
   * ```ts
   * const [checkout] = await monitor.slos.status({ name: 'checkout-availability' })
   * if (checkout.budget.exhausted) freezeDeploys()
   * ```
   */
  status(options?: { name?: string | readonly string[] }): Promise<SloStatus[]>
}

/** The JSON stored for an SLO in `apimeter_slos.definition`: the definition as given, notifier secrets left out. */
export function storedDefinition(slo: ResolvedSlo): string {
  const d: SloDefinition = { ...slo.definition }
  if (d.notify !== undefined) d.notify = d.notify.map((n) => notifierLabel(resolveNotifier(n)) as `webhook:${string}` | 'log')
  return JSON.stringify(d)
}

/** Reads stored definitions back into SLOs; one that no longer validates is reported through `onInvalid` and skipped. */
export function slosFromRecords(records: readonly { name: string; definition: string }[], onInvalid: (name: string, message: string) => void): ResolvedSlo[] {
  const out: ResolvedSlo[] = []
  for (const r of records) {
    try {
      out.push(...parseSlos([JSON.parse(r.definition) as unknown], `apimeter_slos[${r.name}]`))
    } catch (error) {
      onInvalid(r.name, errorMessage(error))
    }
  }
  return out
}

/** What the SLO manager needs from its monitor. */
export interface SloManagerConfig {
  slos: readonly ResolvedSlo[]
  storage: StorageAdapter
  now(): number
  report(error: ApimeterError): void
  /** The audit log: SLO definitions added, changed or removed (found when they are synced) are appended here. */
  audit?: RuleAudit
}

/** Keeps the monitor's SLO definitions stored (synced once at start, like alert rules) and answers `status()`. */
export class SloManager implements MonitorSlos {
  readonly names: readonly string[]
  private readonly store: SloStore
  private synced: Promise<void> | undefined

  constructor(private readonly config: SloManagerConfig) {
    this.names = config.slos.map((s) => s.name)
    this.store = config.storage.slos ?? memorySloStore()
  }

  /** Stores the definitions in the background; a failure is reported and retried on the next `status()`. */
  start(): void {
    if (this.config.slos.length === 0) return
    void this.sync().catch(() => undefined)
  }

  /** Stores the definitions (once; again after a failure). Never rejects: a failure is reported. */
  sync(): Promise<void> {
    const records = this.config.slos.map((s) => ({ name: s.name, definition: storedDefinition(s) }))
    const audited = (r: { name: string; definition: string }) => ({ name: r.name, state: parseJson(r.definition) })
    const audit = this.config.audit
    this.synced ??= (async () => {
      const stored = audit ? await this.store.list() : undefined
      await this.store.syncSlos(records, this.config.now())
      if (audit && stored) await auditDefinitions(audit, 'slo', 'SLO', stored.map(audited), records.map(audited))
    })()
      .catch((error: unknown) => {
        this.synced = undefined
        this.config.report(new ApimeterError('SLO_SYNC_FAILED', `the SLO definitions could not be stored: ${errorMessage(error)}`, { cause: error }))
      })
    return this.synced
  }

  /** Waits (at most `timeoutMs`) for a running sync, so a short-lived script still stores its definitions. */
  async close(timeoutMs: number): Promise<void> {
    if (this.synced === undefined) return
    let timer: NodeJS.Timeout | undefined
    const limit = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs)
      timer.unref()
    })
    await Promise.race([this.synced, limit])
    clearTimeout(timer)
  }

  async status(options: { name?: string | readonly string[] } = {}): Promise<SloStatus[]> {
    const wanted = options.name === undefined ? undefined : new Set(typeof options.name === 'string' ? [options.name] : options.name)
    if (wanted) {
      for (const n of wanted) {
        if (!this.names.includes(n)) throw new ApimeterError('INVALID_QUERY', `slos.status: no SLO is named '${n}' (configured: ${this.names.join(', ') || 'none'})`)
      }
    }
    await this.sync()
    const now = this.config.now()
    return Promise.all(this.config.slos.filter((s) => wanted === undefined || wanted.has(s.name)).map((s) => sloStatus(this.config.storage, s, now)))
  }
}
