import { performance } from 'node:perf_hooks'
import { type Kysely, sql } from 'kysely'
import { assertCallRecords } from '../call/check.js'
import type { CallRecord } from '../call/types.js'
import { ApimeterError, errorMessage } from '../errors.js'
import type { StorageAdapter, StorageHooks } from '../storage/adapter.js'
import type { AggregateRow } from '../storage/aggregate.js'
import { defaultErrorClass, findCode } from '../storage/error-kind.js'
import { resolveTime, type TimeInput } from '../time.js'
import { createSqlAlertStore } from './alert-store-sql.js'
import { createSqlSloStore } from './slo-store-sql.js'
import { createSqlProbeStore } from './probe-store-sql.js'
import { createSqlAuditStore } from './audit-store-sql.js'
import { type AuditRecordInput, processInstance } from '../storage/audit-store.js'
import { AUDIT_MIGRATION } from './migrations.js'
import { createSqlSystemStore } from './system-store-sql.js'
import {
  getMigrationStatus,
  type MigrationReport,
  type MigrationStatus,
  type MigrationTarget,
  runMigrations,
} from './migrator.js'
import type { SqlDialect } from './dialect.js'
import { RollupAccumulator } from './rollups/accumulator.js'
import { TxTail } from './rollups/tx-tail.js'
import { RAW_DELETIONS, readState } from './rollups/state.js'
import type { RawExecutor, RollupContext } from './rollups/context.js'
import { aggregateWithRollups } from './rollups/query.js'
import { rebuildRollupRange } from './rollups/rebuild.js'
import { applyRetention, type RetentionMs, type RetentionRun } from './rollups/retention.js'
import { rollUpAll, rollUpPending } from './rollups/run.js'
import { topKeys } from './rollups/top.js'
import { QueryGate } from './rollups/query-gate.js'
import { CALL_COLUMNS, callToRow, type SqlDialectName, TABLES } from './schema.js'

/**
 * The one SQL layer, part 2: a storage adapter over any kysely connection. Writes raw calls, keeps the rollups
 * current in the background of writes, applies retention, answers stats from rollups plus raw edges.
 */

/** How often rollups and retention run (they run right after a write, never on a timer of their own). */
export interface MaintenanceSchedule {
  /** Roll up once this many calls were written since the last run. @default 20_000 */
  rollupEveryCalls: number
  /** …or once this long has passed since the last run. @default 2_000 */
  rollupIntervalMs: number
  /** Apply retention at most this often. @default 600_000 (10 minutes) */
  retentionIntervalMs: number
}

const DEFAULT_SCHEDULE: MaintenanceSchedule = { rollupEveryCalls: 20_000, rollupIntervalMs: 2_000, retentionIntervalMs: 600_000 }

/** What an adapter's insert tells of a written batch: the ids its rows got (consecutive), or its transaction's id. */
export type InsertedBatch = { firstId: number; lastId: number } | { tx: number }

/** Options of {@link createSqlStorage}: what a dialect adapter provides. */
export interface SqlStorageConfig {
  /** Adapter name for messages (`sqlite`, `postgres`). */
  name: string
  /** What differs between databases: `sqliteDialect` or `postgresDialect` from `@apimeter/core/sql`. */
  dialect: SqlDialect
  /** A kysely instance on the database; opened by the adapter. */
  db: Kysely<unknown>
  durable: boolean
  maxWriteConcurrency?: number
  /** Apply pending migrations in `init()`; otherwise `init()` fails when the schema is not current. */
  migrate: boolean
  /** How to tell a user to migrate by hand (`apimeter migrate latest --db …`). */
  migrateHint: string
  /** How long each level of detail is kept (see `resolveRetention`). */
  retention: RetentionMs
  /** Clock for retention (epoch ms). @default Date.now */
  now?: () => number
  /** When maintenance runs. */
  schedule?: Partial<MaintenanceSchedule>
  /**
   * The adapter's fast insert of an already validated batch, atomically. Defaults to kysely multi-row inserts in a
   * transaction. An adapter whose rows get consecutive ids within a batch (SQLite) returns them: the storage then
   * aggregates the batch for the next rollup run in memory instead of reading it back. An adapter whose rollup cursor
   * is a transaction id (PostgreSQL) returns the id of the transaction that wrote every row of the batch: queries then
   * take the batch from memory while it is in the not-yet-rolled tail.
   */
  insertCalls?(calls: readonly CallRecord[]): Promise<InsertedBatch | void>
  /** Executes raw SQL with positional parameters, caching prepared statements (used by rollup runs). */
  executeRaw?: RawExecutor
  /**
   * The name of a SQL function the connection provides that merges two encoded latency sketches (`(stored, added) →
   * merged`, what `mergeEncodedSketches` does): rollup runs then merge into stored rows with one upsert each, instead
   * of reading the rows out, merging in JavaScript and writing them back. The SQLite adapter registers one.
   */
  sketchMergeFunction?: string
  /**
   * The name of a SQL function beside {@link sketchMergeFunction} giving a route-by-hour row's stored percentiles
   * (`(sketch, requests, min µs, max µs) → bytes`, what `storedPercentiles` does), so that merges in the database keep
   * them current. The SQLite adapter registers one.
   */
  sketchPercentilesFunction?: string
  /**
   * Run writes, maintenance and migrations one at a time (a single-connection driver such as better-sqlite3, where a
   * raw write issued while another transaction is open would join that transaction).
   */
  serializeWrites?: boolean
  /**
   * `writeCalls()` resolves only once the maintenance run it started (rollups, retention) has finished, and its
   * failure has been reported. For a storage that runs in a worker thread: its writes are serialised anyway, and a
   * caller on the other thread then hears of a failed run before its write resolves.
   */
  awaitMaintenance?: boolean
  /** Runs before the first statement (pragmas, search_path…). */
  prepare?(): Promise<void>
  /** PostgreSQL: the schema apimeter's tables live in. */
  schema?: string
  /** Receives the storage's reporter, for background errors the adapter sees (a dropped idle connection…). */
  bindReporter?(report: (error: unknown) => void): void
  /** Releases what the adapter opened. */
  release(): Promise<void>
}

/** What one maintenance run did. */
export interface MaintenanceReport {
  /** Calls newly rolled up. */
  rolledUp: number
  /** Rows deleted by retention (raw calls and rollup rows). */
  deleted: number
}

/** A storage on the shared SQL layer, with migration and rollup control. */
export interface SqlStorage extends StorageAdapter {
  /** The kysely instance (for advanced queries over the documented schema). */
  readonly db: Kysely<unknown>
  readonly dialect: SqlDialectName
  /**
   * Applies or reverts migrations; never throws (see the report's `error`).
   * @example
   * ```ts
   * const report = await storage.migrate('latest')
   * ```
   */
  migrate(to?: MigrationTarget): Promise<MigrationReport>
  /**
   * Applied and pending migrations; read-only.
   * @example
   * ```ts
   * const { pending } = await storage.migrationStatus()
   * ```
   */
  migrationStatus(): Promise<MigrationStatus>
  /**
   * Rolls up every pending call and applies retention now (it otherwise runs after writes, on a schedule).
   * @example
   * ```ts
   * await storage.maintain()
   * ```
   */
  maintain(): Promise<MaintenanceReport>
  /**
   * Recomputes the rollups of a range (widened to whole months) from the raw calls. Refuses a range whose raw
   * calls retention already deleted.
   * @example
   * ```ts
   * await storage.rebuildRollups({ from: '2026-01-01', to: '2026-03-01' })
   * ```
   */
  rebuildRollups(range: { from: TimeInput; to: TimeInput }): Promise<{ from: Date; to: Date; calls: number }>
}

/** Node's network error codes: the connection, not the data (transient). */
const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN', 'ECONNABORTED', 'ENOTCONN'])

/** Resolves when the promise settles (its rejection is ignored) or at `deadline` (performance.now() time). */
function waitUntil(promise: Promise<unknown> | undefined, deadline: number): Promise<void> {
  if (promise === undefined) return Promise.resolve()
  if (!Number.isFinite(deadline)) return promise.then(() => undefined, () => undefined)
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, deadline - performance.now()))
    timer.unref()
    promise.then(() => undefined, () => undefined).finally(() => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** Rows per kysely INSERT in the default insert path (bounded by SQLite's 32,766 bound parameters). */
const DEFAULT_ROWS_PER_INSERT = 500

/** The most calls a run waits for when its spacing is raised (under the rollup accumulator's bound of groups). */
const SPACED_CALLS = 100_000
/** The most a run's spacing is raised. */
const MAX_SPACING = 4

/**
 * How many times the schedule's calls (and interval) the next rollup run waits for, given how many distinct hours the
 * last run's calls fell in. Live traffic falls in an hour or two: 1. History written out of order (a backfill, a
 * fleet's late uploads) falls all over it, and every run then merges into rows of every hour it touches, again and
 * again as each run brings a few more calls to each: one more for each day the run spanned, up to 4, so the same
 * rows are merged a quarter as often. The tail queries read meanwhile grows by as much.
 *
 * @example
 * ```ts
 * rollupSpacing(2, 20_000) // 1: live traffic
 * rollupSpacing(720, 20_000) // 4: calls spread over 30 days
 * ```
 */
function rollupSpacing(hours: number, everyCalls: number): number {
  const days = Math.min(MAX_SPACING, Math.floor(hours / 24))
  return Math.max(1, Math.min(days, Math.floor(SPACED_CALLS / everyCalls)))
}

/**
 * Builds a {@link StorageAdapter} on the shared SQL layer. Dialect packages call this with their connection.
 */
export function createSqlStorage(config: SqlStorageConfig): SqlStorage {
  const { db, dialect, name } = config
  const housekeeping = (t: number): Promise<void> => dialect.partitions?.ensure(db, t) ?? Promise.resolve()
  const now = config.now ?? Date.now
  const schedule = { ...DEFAULT_SCHEDULE, ...config.schedule }
  const reporters = new Set<StorageHooks['report']>()
  let closed = false
  let prepared: Promise<void> | undefined
  let ready: Promise<void> | undefined
  let sinceRollup = 0
  let lastRollupAt = now()
  /** How many times the schedule's calls and interval the next rollup run waits for (see {@link rollupSpacing}). */
  let spacing = 1
  let lastRetentionAt = -Infinity

  const ensureOpen = (): void => {
    if (closed) throw new ApimeterError('STORAGE_CLOSED', `${name} storage was used after close()`)
  }
  const prepare = (): Promise<void> => {
    prepared ??= Promise.resolve(config.prepare?.()).catch((error: unknown) => {
      prepared = undefined
      throw error
    })
    return prepared
  }

  const defaultInsert = async (calls: readonly CallRecord[]): Promise<void> => {
    await db.transaction().execute(async (trx) => {
      for (let i = 0; i < calls.length; i += DEFAULT_ROWS_PER_INSERT) {
        const chunk = calls.slice(i, i + DEFAULT_ROWS_PER_INSERT)
        const values = chunk.map((c) => sql`(${sql.join(callToRow(c))})`)
        await sql`INSERT INTO ${sql.table(TABLES.calls)} (${sql.join(CALL_COLUMNS.map((c) => sql.ref(c)))}) VALUES ${sql.join(values)}`.execute(trx)
      }
    })
  }
  const insert: (calls: readonly CallRecord[]) => Promise<InsertedBatch | void> = config.insertCalls ?? defaultInsert
  const ctx: RollupContext = {
    db,
    dialect,
    exec: config.executeRaw,
    sketchMerge: config.sketchMergeFunction,
    sketchPercentiles: config.sketchPercentilesFunction,
    accumulator: config.insertCalls && dialect.idsInCommitOrder ? new RollupAccumulator() : undefined,
    txTail: config.insertCalls && dialect.cursor.tailExcept ? new TxTail() : undefined,
  }
  // background runs step aside for this process's queries where they use separate connections (PostgreSQL's pool)
  const queries = ctx.txTail && (config.maxWriteConcurrency ?? 1) > 1 ? new QueryGate() : undefined
  // read lazily: an adapter may learn its schema only when it connects
  const migrateOptions = (): { dialect: SqlDialect; schema?: string } => ({ dialect, schema: config.schema })
  let chain: Promise<unknown> = Promise.resolve()
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    if (!config.serializeWrites) return fn()
    const next = chain.then(fn, fn)
    chain = next.catch(() => undefined)
    return next
  }

  const report = (error: unknown): void => {
    const err = error instanceof ApimeterError ? error : new ApimeterError('WRITE_FAILED', `${name} storage maintenance failed (it is retried after the next write): ${errorMessage(error)}`, { cause: error })
    for (const r of reporters) r(err)
  }
  config.bindReporter?.(report)

  // The storage's own audit rows (migrations, rebuilds, retention): written without waiting for init (migrations run
  // inside it), after the work they describe, never failing it.
  const instance = processInstance()
  const ownAudit = createSqlAuditStore({ db, dialect, exclusive, ready: async () => {} })
  const audit = async (row: Omit<AuditRecordInput, 'at' | 'instance'>): Promise<void> => {
    try {
      await ownAudit.append([{ ...row, at: now(), instance }])
    } catch (error) {
      report(new ApimeterError('WRITE_FAILED', `${name} storage could not write an audit row (${row.kind}): ${errorMessage(error)}`, { cause: error }))
    }
  }
  const auditMigrations = async (result: MigrationReport, before: string | null, trigger: 'start' | 'migrate'): Promise<void> => {
    const changed = result.steps.filter((s) => s.status === 'applied' || s.status === 'reverted')
    if (changed.length === 0 && !result.error) return
    // the log itself is gone when the run left the database before the migration that creates it
    if (result.current === null || result.current < AUDIT_MIGRATION) return
    const what = changed.map((s) => `${s.status} ${s.name}`).join(', ')
    await audit({
      kind: 'migration.run',
      subject: 'migrations',
      before: { current: before },
      after: { current: result.current, steps: result.steps },
      detail: `${what || 'nothing applied'}${result.error ? ` — failed: ${result.error.message}` : ''} (${trigger === 'start' ? 'on start' : 'migrate()'} by ${name} storage)`,
    })
  }
  const currentMigration = (): Promise<string | null> => getMigrationStatus(db, migrateOptions()).then((s) => s.current, () => null)
  const auditRetention = async (run: RetentionRun): Promise<void> => {
    if (run.deleted === 0 && run.partitions.length === 0) return
    const parts = run.partitions.length > 0 ? `, dropped partitions ${run.partitions.join(', ')}` : ''
    await audit({
      kind: 'retention.run',
      subject: 'retention',
      before: null,
      after: { calls: run.calls, rollups: run.rollups, systemSamples: run.systemSamples, probeChecks: run.probeChecks, partitions: run.partitions },
      detail: `deleted ${run.calls} raw calls, ${run.rollups} rollup rows, ${run.systemSamples} process samples and ${run.probeChecks} probe checks${parts}`,
    })
  }

  /**
   * Rollups and retention after a write, in the background: the write has already succeeded, so maintenance never
   * delays or fails it. One run at a time; on PostgreSQL a run skips when another instance is doing it.
   */
  let maintenance: Promise<void> | undefined
  const maintainAfterWrite = (written: number): Promise<void> | undefined => {
    sinceRollup += written
    if (maintenance) return maintenance
    const t = now()
    const rollupDue = sinceRollup >= schedule.rollupEveryCalls * spacing || t - lastRollupAt >= schedule.rollupIntervalMs * spacing
    const retentionDue = t - lastRetentionAt >= schedule.retentionIntervalMs
    if (!rollupDue && !retentionDue) return
    if (rollupDue) {
      sinceRollup = 0
      lastRollupAt = t
    }
    if (retentionDue) lastRetentionAt = t
    maintenance = exclusive(async () => {
      if (rollupDue) {
        const runCtx = queries ? { ...ctx, pause: queries.forRun() } : ctx
        await rollUpPending(runCtx, Math.max(schedule.rollupEveryCalls * 2 * spacing, 50_000), true, (hours) => {
          spacing = rollupSpacing(hours, schedule.rollupEveryCalls)
        })
      }
      if (retentionDue) {
        await housekeeping(t)
        return applyRetention(ctx, config.retention, t, 20_000, true)
      }
      return undefined
    })
      .then((run) => (run ? auditRetention(run) : undefined))
      .catch(report)
      .finally(() => {
        maintenance = undefined
      })
    return maintenance
  }


  // the raw-deletion count before this process writes anything: a later change tells the tail in memory that raw
  // calls it holds may be gone
  const startTail = async (): Promise<void> => {
    if (ctx.txTail) ctx.txTail.start((await readState(db, RAW_DELETIONS)) ?? 0)
  }

  const storage: SqlStorage = {
    name,
    dialect: dialect.name,
    db,
    capabilities: { durable: config.durable, maxWriteConcurrency: config.maxWriteConcurrency },
    alerts: createSqlAlertStore({ db, dialect, exclusive, ready: () => storage.init!() }),
    slos: createSqlSloStore({ db, dialect, exclusive, ready: () => storage.init!() }),
    probes: createSqlProbeStore({ db, dialect, exclusive, ready: () => storage.init!() }),
    audit: createSqlAuditStore({ db, dialect, exclusive, ready: () => storage.init!() }),
    system: createSqlSystemStore({ db, dialect, exclusive, ready: () => storage.init!() }),
    attach(hooks) {
      reporters.add(hooks.report)
    },
    init() {
      ready ??= (async () => {
        ensureOpen()
        await prepare()
        if (config.migrate) {
          const before = await currentMigration()
          const result = await exclusive(() => runMigrations(db, migrateOptions()))
          await auditMigrations(result, before, 'start')
          if (result.error) throw result.error
          await housekeeping(now())
          await startTail()
          return
        }
        const status = await getMigrationStatus(db, migrateOptions())
        if (status.pending.length > 0) {
          throw new ApimeterError(
            'MIGRATION_REQUIRED',
            `the ${name} database is at migration ${status.current ?? '(none)'} but this version of apimeter needs ${status.migrations.at(-1)!.name} (pending: ${status.pending.join(', ')}); run \`${config.migrateHint}\` or create the storage with migrate: true`,
          )
        }
        await housekeeping(now())
        await startTail()
      })().catch((error: unknown) => {
        ready = undefined
        throw error
      })
      return ready
    },
    async writeCalls(calls) {
      ensureOpen()
      assertCallRecords(calls)
      if (calls.length === 0) return
      await storage.init!()
      await exclusive(async () => {
        const batch = ctx.txTail?.writing()
        let written: InsertedBatch | void = undefined
        try {
          written = await insert(calls)
        } finally {
          if (batch && !(written && 'tx' in written)) ctx.txTail!.failed(batch)
        }
        if (!written) return
        if ('tx' in written) ctx.txTail?.add(batch!, calls, written.tx)
        else ctx.accumulator?.add(calls, written.firstId, written.lastId)
      })
      const running = maintainAfterWrite(calls.length)
      if (config.awaitMaintenance) await running
    },
    async aggregate(query) {
      ensureOpen()
      await storage.init!()
      // One consistent snapshot for the rollup rows, the raw edges and the tail: a rollup run committing between
      // those reads would otherwise count its calls twice (in the rollups and in the tail).
      // before the snapshot: every batch of these generations was acknowledged, so the snapshot sees it
      const tailGenerations = ctx.txTail?.seal()
      const read = (): Promise<AggregateRow[]> =>
        dialect.readSnapshot(
          db,
          async (snapshot) => {
            const inSnapshot = { ...ctx, db: snapshot, tailGenerations }
            // a ranked breakdown: rank the groups in SQL, then aggregate only the ones that made it
            const filter = query.top ? await topKeys(inSnapshot, query) : null
            return aggregateWithRollups(inSnapshot, filter ? { ...query, filter } : query)
          },
          exclusive,
        )
      return queries ? queries.around(read) : read()
    },
    async migrate(to = 'latest') {
      ensureOpen()
      await prepare()
      const before = await currentMigration()
      const result = await exclusive(() => runMigrations(db, { ...migrateOptions(), to }))
      await auditMigrations(result, before, 'migrate')
      return result
    },
    async migrationStatus() {
      ensureOpen()
      await prepare()
      return getMigrationStatus(db, migrateOptions())
    },
    async maintain() {
      ensureOpen()
      await storage.init!()
      await maintenance
      const result = await exclusive(async () => {
        const rolledUp = await rollUpAll(ctx)
        sinceRollup = 0
        lastRollupAt = now()
        lastRetentionAt = now()
        await housekeeping(lastRetentionAt)
        const total: RetentionRun = { deleted: 0, calls: 0, rollups: 0, systemSamples: 0, probeChecks: 0, partitions: [] }
        for (;;) {
          const run = await applyRetention(ctx, config.retention, lastRetentionAt)
          total.deleted += run.deleted
          total.calls += run.calls
          total.rollups += run.rollups
          total.systemSamples += run.systemSamples
          total.probeChecks += run.probeChecks
          total.partitions.push(...run.partitions)
          if (run.deleted === 0) break
        }
        return { rolledUp, total }
      })
      await auditRetention(result.total)
      return { rolledUp: result.rolledUp, deleted: result.total.deleted }
    },
    async rebuildRollups(range) {
      ensureOpen()
      await storage.init!()
      const from = resolveTime(range.from, now())
      const to = resolveTime(range.to, now())
      if (from === undefined || to === undefined || from >= to) {
        throw new ApimeterError('INVALID_OPTIONS', `rebuildRollups() needs from < to (Dates, epoch ms, ISO strings or relative times), got from ${String(range.from)} and to ${String(range.to)}`)
      }
      const rebuilt = await exclusive(async () => {
        await rollUpAll(ctx)
        return rebuildRollupRange(ctx, from, to)
      })
      await audit({
        kind: 'rollups.rebuild',
        subject: 'rollups',
        before: null,
        after: { from: rebuilt.from.getTime(), to: rebuilt.to.getTime(), calls: rebuilt.calls },
        detail: `rebuilt the rollups of ${rebuilt.from.toISOString()} … ${rebuilt.to.toISOString()} from ${rebuilt.calls} raw calls`,
      })
      return rebuilt
    },
    classifyError(error) {
      return dialect.classifyError(error) ?? (findCode(error, (c) => NETWORK_ERRORS.has(c)) ? { kind: 'transient' } : defaultErrorClass(error))
    },
    async close(options = {}) {
      if (closed) return
      const deadline = performance.now() + (options.timeoutMs ?? Infinity)
      // Roll up what is pending so the next reader starts from current rollups — best effort, and only while the
      // caller's time lasts (what is left is rolled up by the next run, here or in another process).
      await waitUntil(maintenance, deadline)
      if (ready) {
        await exclusive(async () => {
          while (performance.now() < deadline && (await rollUpPending(ctx)) > 0);
        }).catch(report)
      }
      closed = true
      await waitUntil(config.release(), deadline + 1000)
    },
  }
  return storage
}
