/** Why a probe check failed (null when it passed). See docs/probes.md for what each means. */
export const PROBE_CAUSES = ['connection_refused', 'network', 'timeout', 'dns', 'tls', 'status', 'body', 'json', 'slow', 'cert_expiring', 'heartbeat_late'] as const
/** One of {@link PROBE_CAUSES}. */
export type ProbeCause = (typeof PROBE_CAUSES)[number]

/** A probe as stored in `apimeter_probes` (kept current from the monitor's options, like alert rules). */
export interface ProbeDefinitionRecord {
  name: string
  kind: 'http' | 'heartbeat'
  /** JSON text of the probe, secrets (header values, body) masked. */
  definition: string
  /** Epoch ms of the first sync (a heartbeat is late counted from here until its first beat). */
  createdAt: number
  updatedAt: number
}

/** One stored check (`apimeter_probe_checks`). */
export interface ProbeCheckRecord {
  probe: string
  /** When the check started (epoch ms); for a late heartbeat, when the beat was due. */
  at: number
  ok: boolean
  statusCode: number | null
  durationMs: number
  cause: ProbeCause | null
  /** What went wrong, for people (null when ok). */
  error: string | null
  /** The monitor instance that ran it (`host:pid:random`). */
  instance: string
}

/** The incident state of one probe (`apimeter_probe_state`). */
export interface ProbeStateRecord {
  probe: string
  status: 'unknown' | 'up' | 'down'
  /** Consecutive failed checks, and the `at` of the first of them. */
  failures: number
  failingSince: number | null
  /** Consecutive passed checks, and the `at` of the first of them. */
  successes: number
  recoveringSince: number | null
  lastCheckAt: number | null
  lastOkAt: number | null
  firstCheckAt: number | null
  /** The open incident's id, if any. */
  incidentId: number | null
  /** Compare-and-set counter: 0 means "no row yet". */
  version: number
}

/** One incident (`apimeter_incidents`). */
export interface IncidentRecord {
  id: number
  probe: string
  /** The `at` of the first failed check of the run that opened it. */
  openedAt: number
  /** The `at` of the first passed check of the run that resolved it; null while open. */
  resolvedAt: number | null
  /** resolvedAt − openedAt; null while open. */
  durationMs: number | null
  cause: ProbeCause
  error: string | null
}

/** One check with the state change it causes, written in one transaction if the state is still `expectedVersion`. */
export interface ProbeCheckWrite {
  check: ProbeCheckRecord
  expectedVersion: number
  next: Omit<ProbeStateRecord, 'version' | 'incidentId'>
  /** Open an incident (its id becomes the state's `incidentId`). */
  open?: { openedAt: number; cause: ProbeCause; error: string | null }
  /** Resolve the state's open incident. */
  resolve?: { id: number; resolvedAt: number }
}

/** A claim of one round of one probe (see {@link ProbeStore.claim}). */
export interface ProbeLeaseClaim {
  probe: string
  holder: string
  /** The round: floor(now / intervalMs). */
  round: number
  now: number
  /** When the lease lapses if the holder never releases it (a crashed holder). */
  expiresAt: number
}

/**
 * What probes need from a storage: definitions, per-probe leases (one runner per round across a fleet), the
 * incident state with compare-and-set writes, checks and incidents. Storages offer it as `storage.probes`; memory,
 * SQLite and PostgreSQL storages do. Every method may reject (the probe runner reports it and carries on).
 */
export interface ProbeStore {
  /** Inserts or updates probe definitions (created_at is kept). */
  syncProbes(probes: readonly Omit<ProbeDefinitionRecord, 'createdAt' | 'updatedAt'>[], now: number): Promise<void>
  /** Every stored definition, by name. */
  definitions(): Promise<ProbeDefinitionRecord[]>
  /**
   * Takes the lease of a probe for `round` when no one ran that round yet and the previous lease has lapsed (or is
   * the claimer's). `taken`: someone already ran this round; `busy`: an earlier round's run still holds the lease.
   */
  claim(lease: ProbeLeaseClaim): Promise<'claimed' | 'taken' | 'busy'>
  /** Ends a lease early (its run finished at `now`), so the next round needs no wait. */
  release(probe: string, holder: string, now: number): Promise<void>
  /** The state of every probe that has one. */
  states(): Promise<ProbeStateRecord[]>
  /**
   * Writes a check, its state change and the incident it opens or resolves, if the stored state is still
   * `expectedVersion` (0: no row). `applied` false: another writer changed the state first (nothing was written).
   */
  record(write: ProbeCheckWrite): Promise<{ applied: boolean; incidentId: number | null }>
  /** Checks with `from <= at < to`, oldest first. */
  checks(query: { probe?: string; from?: number; to?: number }): Promise<ProbeCheckRecord[]>
  /** Incidents open at some time in `[from, to)` (opened before `to`, not resolved before `from`), oldest first. */
  incidents(query: { probe?: string; from?: number; to?: number }): Promise<IncidentRecord[]>
}

/**
 * Whether an incident overlaps `[from, to)` (what {@link ProbeStore.incidents} returns; a custom store may use it).
 *
 * @example
 * ```ts
 * const open = all.filter((i) => incidentOverlaps(i, from, to))
 * ```
 */
export function incidentOverlaps(i: Pick<IncidentRecord, 'openedAt' | 'resolvedAt'>, from: number, to: number): boolean {
  return i.openedAt < to && (i.resolvedAt === null || i.resolvedAt > from)
}

/**
 * A probe store in memory: what memory storage offers, and the fallback for a custom storage without one (state
 * then lasts as long as the process). At most `maxChecks` checks are kept (the oldest go first).
 *
 * @example
 * ```ts
 * const myStorage: StorageAdapter = { ...myAdapter, probes: memoryProbeStore() }
 * ```
 */
export function memoryProbeStore(maxChecks = 100_000): ProbeStore {
  const defs = new Map<string, ProbeDefinitionRecord>()
  const leases = new Map<string, { holder: string; round: number; expiresAt: number }>()
  const states = new Map<string, ProbeStateRecord>()
  const incidents: IncidentRecord[] = []
  let checks: ProbeCheckRecord[] = []
  return {
    async syncProbes(list, now) {
      for (const p of list) defs.set(p.name, { ...p, createdAt: defs.get(p.name)?.createdAt ?? now, updatedAt: now })
    },
    async definitions() {
      return [...defs.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((d) => ({ ...d }))
    },
    async claim({ probe, holder, round, now, expiresAt }) {
      const held = leases.get(probe)
      if (held && held.round >= round) return 'taken'
      if (held && held.expiresAt > now && held.holder !== holder) return 'busy'
      leases.set(probe, { holder, round, expiresAt })
      return 'claimed'
    },
    async release(probe, holder, now) {
      const held = leases.get(probe)
      if (held && held.holder === holder && held.expiresAt > now) held.expiresAt = now
    },
    async states() {
      return [...states.values()].sort((a, b) => (a.probe < b.probe ? -1 : 1)).map((s) => ({ ...s }))
    },
    async record({ check, expectedVersion, next, open, resolve }) {
      const current = states.get(check.probe)
      if ((current?.version ?? 0) !== expectedVersion) return { applied: false, incidentId: null }
      let incidentId = current?.incidentId ?? null
      if (resolve) {
        const i = incidents.find((x) => x.id === resolve.id)
        if (i) Object.assign(i, { resolvedAt: resolve.resolvedAt, durationMs: resolve.resolvedAt - i.openedAt })
        incidentId = null
      }
      let opened: number | null = null
      if (open) {
        opened = incidents.length + 1
        incidents.push({ id: opened, probe: check.probe, openedAt: open.openedAt, resolvedAt: null, durationMs: null, cause: open.cause, error: open.error })
        incidentId = opened
      }
      states.set(check.probe, { ...next, incidentId, version: expectedVersion + 1 })
      checks.push({ ...check })
      if (checks.length > maxChecks) checks = checks.slice(checks.length - maxChecks)
      return { applied: true, incidentId: opened ?? resolve?.id ?? null }
    },
    async checks({ probe, from = -Infinity, to = Infinity }) {
      return checks
        .filter((c) => (probe === undefined || c.probe === probe) && c.at >= from && c.at < to)
        .sort((a, b) => a.at - b.at)
        .map((c) => ({ ...c }))
    },
    async incidents({ probe, from = -Infinity, to = Infinity }) {
      return incidents.filter((i) => (probe === undefined || i.probe === probe) && incidentOverlaps(i, from, to)).map((i) => ({ ...i }))
    },
  }
}
