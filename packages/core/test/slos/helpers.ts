import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type CallInput, memoryStorage, type Monitor, type StorageAdapter } from '@apimeter/core'
import { postgresStorage } from '@apimeter/storage-postgres'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { freshSchema, query, testUrl } from '../../../storage-postgres/test/helpers.js'

/** Every storage the SLO behaviour is tested on. */
export const SLO_STORAGES = ['memory', 'sqlite', 'postgres'] as const
export type SloStorageKind = (typeof SLO_STORAGES)[number]

const FOREVER = { raw: 'forever', hour: 'forever', day: 'forever', month: 'forever' } as const
const cleanups: (() => Promise<void> | void)[] = []

/** A fresh storage of a kind (a temporary SQLite file, a fresh PostgreSQL schema), keeping every call. */
export async function makeSloStorage(kind: SloStorageKind, now: () => number, options: { ownDatabase?: boolean } = {}): Promise<{ storage: StorageAdapter; db: string | undefined; schema?: string }> {
  if (kind === 'memory') return { storage: memoryStorage({ maxCalls: Infinity }), db: undefined }
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'apimeter-slos-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const filename = join(dir, 'slos.db')
    return { storage: sqliteStorage({ filename, now, retention: FOREVER }), db: filename }
  }
  if (options.ownDatabase) {
    // a database of its own, for the CLI, whose --db URL names no schema
    const name = `slos_${randomBytes(5).toString('hex')}`
    await query(`CREATE DATABASE ${name}`)
    cleanups.push(() => query(`DROP DATABASE ${name} WITH (FORCE)`).then(() => undefined))
    const url = testUrl().replace(/\/postgres$/, `/${name}`)
    return { storage: postgresStorage({ connectionString: url, now, retention: FOREVER }), db: url }
  }
  const { schema, drop } = await freshSchema('slos')
  cleanups.push(drop)
  return { storage: postgresStorage({ connectionString: testUrl(), schema, now, retention: FOREVER }), db: testUrl(), schema }
}

/** Removes the temporary files and schemas of {@link makeSloStorage}. */
export async function removeSloStorages(): Promise<void> {
  for (const c of cleanups.splice(0)) await c()
}

/** A controllable clock. */
export function testClock(start: number): { now: () => number; t: number; set(t: number): void; advance(ms: number): void } {
  const c = {
    t: start,
    now: () => c.t,
    set: (t: number) => {
      c.t = t
    },
    advance: (ms: number) => {
      c.t += ms
    },
  }
  return c
}

export const MINUTE = 60_000
export const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR

/** Records `n` inbound calls at `timestamp`. */
export function recordAt(monitor: Monitor, timestamp: number, n: number, call: Partial<CallInput> = {}): void {
  for (let i = 0; i < n; i++) {
    monitor.record({ direction: 'inbound', method: 'POST', route: '/checkout', statusCode: 200, durationMs: 20, timestamp, ...call })
  }
}
