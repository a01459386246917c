import { z } from 'zod'
import { parseDuration } from '../time.js'
import { intInRange } from '../validation.js'
import type { RetentionMs } from './rollups/retention.js'
import type { MaintenanceSchedule } from './sql-storage.js'

/**
 * How long each level of detail is kept: raw calls, hour, day and month rollups. Each is a duration (`'30d'`,
 * `'12w'`, `'2y'`, milliseconds) or `'forever'`. Coarser levels must be kept at least as long as finer ones.
 *
 * @example
 * ```ts
 * sqliteStorage({ filename: 'apimeter.db', retention: { raw: '7d', hour: '30d' } })
 * ```
 */
export interface RetentionOptions {
  /** @default '30d' */
  raw?: string | number
  /** @default '90d' */
  hour?: string | number
  /** @default '2y' */
  day?: string | number
  /** @default 'forever' */
  month?: string | number
}

/** The documented defaults. */
export const DEFAULT_RETENTION = { raw: '30d', hour: '90d', day: '2y', month: 'forever' } as const

const period = z.union([z.string(), z.number()], { error: `a duration such as '30d', '12w', '2y', a number of milliseconds, or 'forever'` })
  .refine((v) => toMs(v) !== undefined, { error: `a duration such as '30d', '12w', '2y', a number of milliseconds, or 'forever'` })

/** The zod schema of {@link RetentionOptions}, for storage option schemas. */
export const retentionSchema = z
  .strictObject({ raw: period.optional(), hour: period.optional(), day: period.optional(), month: period.optional() })
  .superRefine((r, ctx) => {
    const ms = resolveRetention(r)
    const levels = ['raw', 'hour', 'day', 'month'] as const
    for (let i = 1; i < levels.length; i++) {
      if (ms[levels[i]!] < ms[levels[i - 1]!]) {
        ctx.addIssue({ code: 'custom', path: [levels[i]!], message: `at least as long as ${levels[i - 1]} (${String(r[levels[i - 1]!] ?? DEFAULT_RETENTION[levels[i - 1]!])}): coarser data must outlive finer data`, input: r[levels[i]!] ?? DEFAULT_RETENTION[levels[i]!] })
      }
    }
  })

/**
 * Options every SQL storage adapter (`sqliteStorage`, `postgresStorage`) accepts besides its connection.
 */
export interface SqlStorageOptions {
  /**
   * Apply pending migrations on first use (serialised between processes; each run in one transaction). With
   * `false`, the storage refuses to start on an outdated schema and names the command to run.
   * @default true
   * @example
   * ```ts
   * sqliteStorage({ filename: 'apimeter.db', migrate: false })   // migrations run by `apimeter migrate latest`
   * ```
   */
  migrate?: boolean
  /**
   * How long raw calls and each rollup level are kept; applied in small batches after writes (PostgreSQL drops
   * whole monthly partitions of raw calls). Ranges whose raw calls expired still answer from rollups.
   * @default { raw: '30d', hour: '90d', day: '2y', month: 'forever' }
   * @example
   * ```ts
   * postgresStorage({ connectionString, retention: { raw: '7d', hour: '30d' } })
   * ```
   */
  retention?: RetentionOptions
  /**
   * When rollups, retention (and on PostgreSQL partition upkeep) run, after writes. Mostly for tests.
   * @default { rollupEveryCalls: 20_000, rollupIntervalMs: 2_000, retentionIntervalMs: 600_000 }
   * @example
   * ```ts
   * sqliteStorage({ filename: 'apimeter.db', schedule: { rollupIntervalMs: 500 } })
   * ```
   */
  schedule?: Partial<MaintenanceSchedule>
  /**
   * Clock for retention and partition creation, epoch ms (inject one in tests).
   * @default Date.now
   * @example
   * ```ts
   * sqliteStorage({ filename: 'apimeter.db', now: () => fakeNow })
   * ```
   */
  now?: () => number
}

/**
 * The zod fields every SQL storage adapter accepts (`migrate`, `retention`, `schedule`, `now`), spread into the
 * adapter's own options schema so the rules and messages are the same everywhere.
 *
 * @example
 * ```ts
 * const optionsSchema = z.strictObject({ filename: z.string().optional(), ...sqlStorageOptionFields })
 * ```
 */
export const sqlStorageOptionFields = {
  migrate: z.boolean({ error: 'true or false' }).optional(),
  retention: retentionSchema.optional(),
  schedule: z
    .strictObject({
      rollupEveryCalls: intInRange(1, Number.MAX_SAFE_INTEGER, 'a whole number of calls, at least 1').optional(),
      rollupIntervalMs: z.number({ error: 'milliseconds, 0 or more' }).min(0, { error: 'milliseconds, 0 or more' }).optional(),
      retentionIntervalMs: z.number({ error: 'milliseconds, 0 or more' }).min(0, { error: 'milliseconds, 0 or more' }).optional(),
    })
    .optional(),
  now: z.custom<() => number>((v) => typeof v === 'function', { error: 'a function returning epoch milliseconds' }).optional(),
}

function toMs(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : value === Infinity ? Infinity : undefined
  if (value.trim() === 'forever') return Infinity
  const ms = parseDuration(value)
  return ms !== undefined && ms > 0 ? ms : undefined
}

/**
 * Retention in milliseconds (`Infinity` = forever), defaults filled in.
 *
 * @example
 * ```ts
 * resolveRetention({ raw: '7d' }).raw // 604800000
 * ```
 */
export function resolveRetention(options: RetentionOptions = {}): RetentionMs {
  return {
    raw: toMs(options.raw ?? DEFAULT_RETENTION.raw)!,
    hour: toMs(options.hour ?? DEFAULT_RETENTION.hour)!,
    day: toMs(options.day ?? DEFAULT_RETENTION.day)!,
    month: toMs(options.month ?? DEFAULT_RETENTION.month)!,
  }
}
