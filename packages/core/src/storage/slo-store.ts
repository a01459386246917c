/** An SLO as stored in `apimeter_slos`. */
export interface SloRecord {
  name: string
  /** JSON text of the SLO definition as given (notifier secrets masked). */
  definition: string
  createdAt: number
  updatedAt: number
}

/**
 * Where SLO definitions are kept, so tools that only have the database (`apimeter slos status`) can compute their
 * status. Storages offer it as `storage.slos`; memory, SQLite and PostgreSQL storages do. Every method may reject.
 */
export interface SloStore {
  /** Inserts or updates definitions (by name); `createdAt` / `updatedAt` of the records are ignored. */
  syncSlos(slos: readonly Pick<SloRecord, 'name' | 'definition'>[], now: number): Promise<void>
  /** Every stored definition, by name. */
  list(): Promise<SloRecord[]>
}

/**
 * An SLO store in memory: what memory storage offers, and the fallback for a custom storage without one.
 *
 * @example
 * ```ts
 * const myStorage: StorageAdapter = { ...myAdapter, slos: memorySloStore() }
 * ```
 */
export function memorySloStore(): SloStore {
  const rows = new Map<string, SloRecord>()
  return {
    async syncSlos(slos, now) {
      for (const s of slos) rows.set(s.name, { name: s.name, definition: s.definition, createdAt: rows.get(s.name)?.createdAt ?? now, updatedAt: now })
    },
    async list() {
      return [...rows.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((r) => ({ ...r }))
    },
  }
}
