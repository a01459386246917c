import type { Kysely, RawBuilder } from 'kysely'
import type { StorageErrorClass } from '../storage/error-kind.js'
import type { ColumnTypes, SqlDialectName } from './schema.js'

/**
 * What differs between the SQL databases apimeter speaks, in one object per dialect (the way kysely gives each of
 * its dialects an object with narrow roles). The shared SQL layer asks its dialect object and never branches on a
 * dialect's name: `dialects/sqlite.ts` and `dialects/postgres.ts` are the only places that know one database from
 * the other.
 */
export interface SqlDialect {
  readonly name: SqlDialectName
  /** Column types of each storage class. */
  readonly types: ColumnTypes
  /** DDL that differs in shape, not only in types. */
  readonly ddl: DialectDdl
  /** The `n`-th positional parameter of a raw statement (1-based): `?` or `$n`. */
  param(n: number): string
  /** A parameter in a `VALUES` list, cast where the database cannot infer its type from the target column. */
  typedParam(n: number, type: 'int2' | 'int4' | 'int8' | 'text'): string
  /** A JSON text value for a JSON column. */
  json(text: string): RawBuilder<unknown>
  /** SQL for the UTC start (epoch ms) of the month holding `ts` (`ts` is never negative). */
  monthStart(): RawBuilder<number>
  /** SQL aggregating `lb:requests` pairs into one comma-separated text (the latency sketch of a group). */
  joinSketchPairs(): RawBuilder<string>
  /**
   * SQL listing the `latency_bucket` of every row of a group as one comma-separated text. Where the dialect has it, a
   * bounded stretch of raw calls (a rollup run, a query's edge of at most 50,000 calls) is aggregated in one grouping
   * instead of two (see `aggregateCalls`).
   */
  joinLatencyBuckets?(): RawBuilder<string>
  /**
   * SQL aggregating the encoded `latency_sketch` of a group's rollup rows into one binary value, the encodings joined
   * by {@link SKETCH_SEPARATOR} (`LatencySketch.decodeInto` reads the whole of it as one merged sketch). One row per
   * group then reaches the application instead of one per rollup row.
   */
  joinSketches(): RawBuilder<Uint8Array>
  /**
   * Aggregates that read many stored rows as one value each, in the same row order: `texts` a JSON array of a text
   * column, `joined` a text expression of each row joined by `;`, `blobs` a blob expression of each row, end to end. Where the dialect
   * has them, an hourly series by route reads its route-by-hour rows as one row (on SQLite, building a row object and a
   * `Buffer` for each of thousands of rows cost twice what the query did).
   */
  packRows?: { texts(column: string): RawBuilder<string>; joined(expression: RawBuilder<unknown>): RawBuilder<string>; blobs(expression: RawBuilder<unknown>): RawBuilder<Uint8Array> }
  /** Whether the `apimeter_…` table exists (read-only; `schema` on PostgreSQL). */
  tableExists(db: Kysely<unknown>, table: string, schema?: string): Promise<boolean>
  /**
   * Runs `fn` in a write transaction that serialises rollup maintenance (and migrations) across processes. With
   * `skipIfBusy`, returns undefined at once when another process holds it.
   */
  writeTransaction<T>(db: Kysely<unknown>, fn: (trx: Kysely<unknown>) => Promise<T>, options?: { skipIfBusy?: boolean }): Promise<T | undefined>
  /**
   * Runs `fn` on one consistent snapshot (rollup rows, raw edges and tail read together). `exclusive` serialises use
   * of a single-connection driver.
   */
  readSnapshot<T>(db: Kysely<unknown>, fn: (db: Kysely<unknown>) => Promise<T>, exclusive: <R>(work: () => Promise<R>) => Promise<R>): Promise<T>
  /**
   * Runs `read`, the raw read of a query's not-yet-rolled tail, inside a snapshot of {@link readSnapshot}, with planner
   * settings fit for it where the database needs them (PostgreSQL). @default runs `read` as it is
   */
  readTail?<T>(db: Kysely<unknown>, read: () => Promise<T>): Promise<T>
  /**
   * Runs a migration run (`go`): SQLite wraps it in one `BEGIN IMMEDIATE` transaction (kysely runs SQLite migrations
   * without one); PostgreSQL's kysely adapter locks and transacts by itself. Returns the run's outcome.
   */
  migrationRun<R extends { error?: unknown }>(db: Kysely<unknown>, go: () => Promise<R>): Promise<R>
  /** Which raw calls are rolled up and which are not yet. */
  readonly cursor: RollupCursor
  /**
   * Raw call ids grow in commit order (one writer at a time): a process may then aggregate the batches it wrote in
   * memory for the next rollup run instead of reading them back.
   */
  readonly idsInCommitOrder: boolean
  /**
   * What a driver error means for the write path, or undefined to use the default (see `StorageErrorKind`). `field`
   * names the call field a rejection was about, when the database said so.
   */
  classifyError(error: unknown): StorageErrorClass | undefined
  /** Monthly partitions of the raw calls (PostgreSQL). */
  readonly partitions?: PartitionUpkeep
}

/** DDL that differs between dialects in shape. */
export interface DialectDdl {
  /** The surrogate key column of `apimeter_calls` (never reused: the SQLite rollup cursor relies on it). */
  callId: string
  /** The surrogate key column of append-only tables. */
  pk: string
  /** Statements creating `apimeter_calls` from its column definitions, with its indexes. */
  callsTable(columns: readonly string[]): string[]
  /** Whether the calls table carries CHECK constraints (SQLite's hottest table does not: rows are validated). */
  callsChecks: boolean
  /** Appended to a rollup table's CREATE TABLE. */
  rollupTableOptions: string
  /** Extra statements of migration 0002 (the rollup cursor's column on PostgreSQL), and their undo. */
  rollupCursorUp: readonly string[]
  rollupCursorDown: readonly string[]
  /**
   * Statements of migration 0010 that count the statements deleting raw calls in the state row `raw_deletions` (a
   * query's tail in memory is forgotten when it moves; PostgreSQL), and their undo.
   */
  rawDeletionsUp: readonly string[]
  rawDeletionsDown: readonly string[]
}

/**
 * Where the rollups stand. `upto`: every raw call below it is rolled up, except those of `pending`; nothing at or
 * above it is. On SQLite `upto` is the calls table's id and `pending` is always empty; on PostgreSQL `upto` is a
 * transaction id and `pending` lists the transactions below it that were still running at the last run (their rows,
 * if any, are rolled up once they have committed), so one long transaction anywhere in the cluster never holds the
 * rollups back.
 */
export interface CursorPosition {
  upto: number
  pending: readonly number[]
}

/** The rollup cursor: which raw calls are already in the rollups. Stored in `apimeter_rollup_state`. */
export interface RollupCursor {
  /** The stretch to roll up after `at` (at most `maxRows` calls where the dialect can bound it), or null. */
  next(db: Kysely<unknown>, at: CursorPosition, maxRows: number): Promise<{ batch: RawBuilder<boolean>; to: CursorPosition } | null>
  /** Raw calls not yet rolled up. */
  tail(at: CursorPosition): RawBuilder<boolean>
  /**
   * Raw calls not yet rolled up, but for those of the transactions `except` (ascending, each in the tail): the ones a
   * query took from memory (PostgreSQL; see `TxTail`).
   */
  tailExcept?(at: CursorPosition, except: readonly number[]): RawBuilder<boolean>
  /**
   * How a query on the tail refers to the time column, when the plain column would mislead the planner: the tail is
   * a few thousand calls found through the cursor, while its time bounds span the whole rollup range (SQLite would
   * otherwise walk the time index over every call of that range to find them). @default `ts`
   */
  readonly tailTime?: RawBuilder<number>
  /** Raw calls already rolled up. */
  rolled(at: CursorPosition): RawBuilder<boolean>
}

/** Keeping the raw calls in monthly partitions: created ahead, and dropped whole by retention. */
export interface PartitionUpkeep {
  /** Creates the partitions around `now` (run at start and with each retention pass). */
  ensure(db: Kysely<unknown>, now: number): Promise<void>
  /**
   * Removes expired raw calls that are rolled up (`rolled`), inside the retention transaction: whole partitions
   * ending before `cut`, and at most `maxRows` rows elsewhere. Returns how many rows went and the horizon below which
   * raw calls may now be missing, and the names of the partitions dropped.
   */
  expire(trx: Kysely<unknown>, cut: number, rolled: RawBuilder<boolean>, maxRows: number): Promise<{ deleted: number; horizon: number; partitions?: string[] }>
}
