import { CompiledQuery, type Kysely } from 'kysely'
import type { SqlDialect } from '../dialect.js'
import type { RollupAccumulator } from './accumulator.js'
import type { TailGeneration, TxTail } from './tx-tail.js'

/** Runs raw SQL with positional parameters; adapters may pass one that caches prepared statements. */
export type RawExecutor = (text: string, params: readonly unknown[]) => Promise<Record<string, unknown>[]>

/** What the rollup functions work with. */
export interface RollupContext {
  db: Kysely<unknown>
  dialect: SqlDialect
  /** Faster execution of the repeated merge statements (prepared-statement cache). */
  exec?: RawExecutor
  /** Calls this process wrote since the cursor, already aggregated in memory (SQLite's fast path). */
  accumulator?: RollupAccumulator
  /** Batches this process wrote, by transaction, aggregated in memory (PostgreSQL's tail; see `TxTail`). */
  txTail?: TxTail
  /** The generations of {@link txTail} a query may read (sealed before its snapshot was taken). */
  tailGenerations?: readonly TailGeneration[]
  /**
   * The SQL function `(stored, added) → merged` over encoded latency sketches the connection provides (see
   * `SqlStorageConfig.sketchMergeFunction`): rollup merges then add into stored rows in one upsert, without reading
   * them out first.
   */
  sketchMerge?: string
  /**
   * The SQL function `(sketch, requests, min µs, max µs) → latency_percentiles` the connection provides beside
   * {@link sketchMerge} (`storedPercentiles`): a merge in the database then keeps a route-by-hour row's percentiles
   * current. Without it such a merge clears them (the row's sketch is read instead).
   */
  sketchPercentiles?: string
  /**
   * A background run's pause, awaited before each of its statements: while a query of this process is in flight it
   * returns a promise (see `QueryGate.forRun`).
   */
  pause?: () => Promise<void> | undefined
}

/** Runs a raw statement through the adapter's prepared-statement cache when it has one. */
export const execute = async (ctx: RollupContext, text: string, params: readonly unknown[]): Promise<Record<string, unknown>[]> =>
  ctx.exec ? ctx.exec(text, params) : (await ctx.db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(text, [...params]))).rows
