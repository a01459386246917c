import { type Kysely, type Migration, type MigrationResult, Migrator, NO_MIGRATIONS, sql } from 'kysely'
import { ApimeterError, errorMessage } from '../errors.js'
import { apimeterMigrations, type NamedMigration } from './migrations.js'
import type { SqlDialect } from './dialect.js'
import { dialectOf } from './dialects/index.js'
import { type SqlDialectName, TABLES } from './schema.js'

/** Where to migrate: the newest migration, one step up or down, a migration by name, or `'zero'` (nothing applied). */
export type MigrationTarget = 'latest' | 'up' | 'down' | 'zero' | (string & {})

/** What happened to one migration in a run. */
export interface MigrationStep {
  name: string
  direction: 'up' | 'down'
  /**
   * `applied` / `reverted`: done and committed. `failed`: this migration threw. `rolled-back`: it ran but a later
   * migration of the same run failed, so the whole run was undone. `not-run`: never started.
   */
  status: 'applied' | 'reverted' | 'failed' | 'rolled-back' | 'not-run'
}

/** The result of {@link runMigrations}. It never throws: a failure is in `error`. */
export interface MigrationReport {
  steps: MigrationStep[]
  /** The newest applied migration after the run, or null when none is applied. */
  current: string | null
  error?: ApimeterError
}

/** One migration and when it was applied. */
export interface MigrationState {
  name: string
  appliedAt: Date | null
}

/** The result of {@link getMigrationStatus}. */
export interface MigrationStatus {
  migrations: MigrationState[]
  pending: string[]
  current: string | null
  /** Migrations recorded in the database that this version of apimeter does not know (a newer version ran). */
  unknown: string[]
}

/** Options of {@link runMigrations} and {@link getMigrationStatus}. */
export interface MigrateOptions {
  /** The database's dialect: its object (`sqliteDialect`, `postgresDialect`) or name. */
  dialect: SqlDialect | SqlDialectName
  /** @default 'latest' */
  to?: MigrationTarget
  /** Replaces apimeter's own migrations (for tests of the runner itself). */
  migrations?: readonly NamedMigration[]
  /** PostgreSQL: the schema apimeter's tables live in (the connection's search_path must lead to it). */
  schema?: string
}

function migratorFor(db: Kysely<unknown>, migrations: readonly NamedMigration[], schema?: string): Migrator {
  return new Migrator({
    // On PostgreSQL the bookkeeping tables are looked up in apimeter's own schema, not in any schema that has them.
    ...(schema ? { migrationTableSchema: schema } : {}),
    db,
    provider: {
      async getMigrations() {
        const out: Record<string, Migration> = {}
        for (const m of migrations) out[m.name] = { up: m.up, down: m.down }
        return out
      },
    },
    // Never kysely's default names: a host app that also uses kysely keeps its own migration tables.
    migrationTableName: TABLES.migrations,
    migrationLockTableName: TABLES.migrationLock,
  })
}

/**
 * Applies (or reverts) apimeter's migrations. All migrations of one run are one transaction: a failure — or a crash
 * of the process — leaves the database at the version it had before the run. Concurrent runs are serialised: on
 * SQLite by `BEGIN IMMEDIATE` (the others wait for the write lock, then find nothing to do), on PostgreSQL by an
 * advisory lock held for the run. Never throws; the report says what happened.
 *
 * @example
 * ```ts
 * const report = await runMigrations(db, { dialect: 'sqlite' })
 * if (report.error) throw report.error
 * ```
 */
export async function runMigrations(db: Kysely<unknown>, options: MigrateOptions): Promise<MigrationReport> {
  const migrations = options.migrations ?? apimeterMigrations(options.dialect)
  const to = options.to ?? 'latest'
  if (to !== 'latest' && to !== 'up' && to !== 'down' && to !== 'zero' && !migrations.some((m) => m.name === to)) {
    return {
      steps: [],
      current: await currentOf(db, options).catch(() => null),
      error: new ApimeterError('INVALID_OPTIONS', `migration target must be 'latest', 'up', 'down', 'zero' or one of ${migrations.map((m) => m.name).join(', ')}, got "${to}"`),
    }
  }
  const migrator = migratorFor(db, migrations, options.schema)
  const go = (): Promise<{ error?: unknown; results?: MigrationResult[] }> =>
    to === 'latest'
      ? migrator.migrateToLatest()
      : to === 'up'
        ? migrator.migrateUp()
        : to === 'down'
          ? migrator.migrateDown()
          : migrator.migrateTo(to === 'zero' ? NO_MIGRATIONS : to)

  let outcome: { error?: unknown; results?: MigrationResult[] }
  try {
    outcome = await dialectOf(options.dialect).migrationRun(db, go)
  } catch (error) {
    return { steps: [], current: null, error: new ApimeterError('MIGRATION_FAILED', `could not lock the database for migration: ${errorMessage(error)}`, { cause: error }) }
  }

  const failed = outcome.error !== undefined
  const steps: MigrationStep[] = (outcome.results ?? []).map((r) => ({
    name: r.migrationName,
    direction: r.direction === 'Up' ? 'up' : 'down',
    status:
      r.status === 'Error'
        ? 'failed'
        : r.status === 'NotExecuted'
          ? 'not-run'
          : failed
            ? 'rolled-back'
            : r.direction === 'Up'
              ? 'applied'
              : 'reverted',
  }))
  const current = await currentOf(db, options).catch(() => null)
  if (!failed) return { steps, current }
  const failedStep = steps.find((s) => s.status === 'failed')
  return {
    steps,
    current,
    error: new ApimeterError(
      'MIGRATION_FAILED',
      `${failedStep ? `migration ${failedStep.name} failed` : 'migration failed'}: ${errorMessage(outcome.error)}; the run was rolled back, the database stays at ${current ?? 'no migration'}`,
      { cause: outcome.error },
    ),
  }
}

async function appliedNames(db: Kysely<unknown>, options: Pick<MigrateOptions, 'dialect' | 'schema'>): Promise<{ name: string; timestamp: string }[] | null> {
  const table = options.schema ? sql.table(`${options.schema}.${TABLES.migrations}`) : sql.table(TABLES.migrations)
  if (!(await dialectOf(options.dialect).tableExists(db, TABLES.migrations, options.schema))) return null
  const rows = await sql<{ name: string; timestamp: string }>`SELECT name, timestamp FROM ${table} ORDER BY name`.execute(db)
  return rows.rows
}

async function currentOf(db: Kysely<unknown>, options: Pick<MigrateOptions, 'dialect' | 'schema'>): Promise<string | null> {
  const applied = await appliedNames(db, options)
  return applied && applied.length > 0 ? applied[applied.length - 1]!.name : null
}

/**
 * Which migrations are applied and which are pending. Read-only: it creates nothing, so it works on a read-only
 * database.
 *
 * @example
 * ```ts
 * const { pending } = await getMigrationStatus(db, { dialect: 'sqlite' })
 * ```
 */
export async function getMigrationStatus(db: Kysely<unknown>, options: Omit<MigrateOptions, 'to'>): Promise<MigrationStatus> {
  const migrations = options.migrations ?? apimeterMigrations(options.dialect)
  const applied = (await appliedNames(db, options)) ?? []
  const appliedAt = new Map(applied.map((a) => [a.name, new Date(a.timestamp)]))
  const known = new Set(migrations.map((m) => m.name))
  return {
    migrations: migrations.map((m) => ({ name: m.name, appliedAt: appliedAt.get(m.name) ?? null })),
    pending: migrations.filter((m) => !appliedAt.has(m.name)).map((m) => m.name),
    current: applied.length > 0 ? applied[applied.length - 1]!.name : null,
    unknown: applied.filter((a) => !known.has(a.name)).map((a) => a.name),
  }
}
