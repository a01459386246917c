import { sql } from 'kysely'
import { bucketStart } from '../../time.js'
import { TABLES } from '../schema.js'
import type { RollupContext } from './context.js'
import { LEVEL_IDS, ROLLUP_TABLES, type RollupResolution, routeTableOf } from './levels.js'
import { readCursor, readHorizons, writeState } from './state.js'

/** How long each level is kept, in milliseconds (`Infinity` = forever). */
export interface RetentionMs {
  raw: number
  hour: number
  day: number
  month: number
}

/** What one retention pass deleted. */
export interface RetentionRun {
  /** Rows deleted, all tables together. */
  deleted: number
  /** Raw calls deleted (rows of dropped partitions included). */
  calls: number
  /** Rollup rows deleted. */
  rollups: number
  /** Process metrics samples deleted (kept as long as raw calls). */
  systemSamples: number
  /** Probe checks deleted (kept as long as raw calls; incidents, a handful of rows, are kept for good). */
  probeChecks: number
  /** Partitions of the raw calls dropped whole (PostgreSQL). */
  partitions: string[]
}

/**
 * Applies retention: moves the horizons, then deletes at most `maxRows` expired rows per table. Raw calls are deleted
 * only once rolled up; process metrics samples go with the raw calls' retention. Returns what was deleted.
 */
export async function applyRetention(ctx: RollupContext, retention: RetentionMs, now: number, maxRows = 20_000, skipIfBusy = false): Promise<RetentionRun> {
  const { db, dialect } = ctx
  const removed = await dialect.writeTransaction(db, async (trx): Promise<RetentionRun> => {
    const run: RetentionRun = { deleted: 0, calls: 0, rollups: 0, systemSamples: 0, probeChecks: 0, partitions: [] }
    // the rollup rows of a resolution before `cut`: its level table's, and its route table's where it has one
    const expire = async (resolution: RollupResolution, cut: number): Promise<void> => {
      const r = await sql`DELETE FROM ${sql.table(ROLLUP_TABLES[resolution])} WHERE level IN (${sql.join(LEVEL_IDS)}) AND bucket_start < ${cut}`.execute(trx)
      run.rollups += Number(r.numAffectedRows ?? 0)
      const route = routeTableOf(resolution)
      if (route === undefined) return
      const routes = await sql`DELETE FROM ${sql.table(route.shape.table)} WHERE bucket_start < ${cut}`.execute(trx)
      run.rollups += Number(routes.numAffectedRows ?? 0)
    }
    const at = await readCursor(trx)
    const current = await readHorizons(trx)
    const cuts = {
      raw: Number.isFinite(retention.raw) ? bucketStart(now - retention.raw, 'hour') : -Infinity,
      hour: Number.isFinite(retention.hour) ? bucketStart(now - retention.hour, 'day') : -Infinity,
      day: Number.isFinite(retention.day) ? bucketStart(now - retention.day, 'month') : -Infinity,
      month: Number.isFinite(retention.month) ? bucketStart(now - retention.month, 'month') : -Infinity,
    }
    // Horizons move in the same transaction as the deletes (never backwards): a query planned after this commit no
    // longer relies on what is deleted, one planned before it still sees the rows.
    if (Number.isFinite(cuts.raw)) {
      const rolled = dialect.cursor.rolled(at)
      let horizon = cuts.raw
      if (dialect.partitions) {
        const result = await dialect.partitions.expire(trx, cuts.raw, rolled, maxRows)
        run.calls += result.deleted
        run.partitions.push(...(result.partitions ?? []))
        horizon = result.horizon
      } else {
        const r = await sql`DELETE FROM ${sql.table(TABLES.calls)} WHERE id IN (SELECT id FROM ${sql.table(TABLES.calls)} WHERE ts < ${cuts.raw} AND ${rolled} LIMIT ${maxRows})`.execute(trx)
        run.calls += Number(r.numAffectedRows ?? 0)
      }
      // probe checks and process samples are kept like raw calls
      const checks = await sql`DELETE FROM ${sql.table(TABLES.probeChecks)} WHERE id IN (SELECT id FROM ${sql.table(TABLES.probeChecks)} WHERE at < ${cuts.raw} LIMIT ${maxRows})`.execute(trx)
      run.probeChecks += Number(checks.numAffectedRows ?? 0)
      const samples = await sql`DELETE FROM ${sql.table(TABLES.systemSamples)} WHERE id IN (SELECT id FROM ${sql.table(TABLES.systemSamples)} WHERE at < ${cuts.raw} LIMIT ${maxRows})`.execute(trx)
      run.systemSamples += Number(samples.numAffectedRows ?? 0)
      if (horizon > current.raw) await writeState(trx, 'raw_horizon', horizon)
      // 5-minute rollups serve only the edges of ranges raw calls still cover: they go with the raw calls — also those
      // a run wrote after the horizon moved (late calls rolled up before retention deleted them)
      const rawHorizon = Math.max(horizon, current.raw)
      if (Number.isFinite(rawHorizon)) await expire('5m', rawHorizon)
    }
    for (const level of ['hour', 'day'] as const) {
      if (cuts[level] > current[level]) await writeState(trx, `${level}_horizon`, cuts[level])
    }
    for (const [resolution, cut] of [['hour', cuts.hour], ['day', cuts.day], ['month', cuts.month]] as const) {
      if (Number.isFinite(cut)) await expire(resolution, cut)
    }
    run.deleted = run.calls + run.rollups + run.systemSamples + run.probeChecks
    return run
  }, { skipIfBusy })
  return removed ?? { deleted: 0, calls: 0, rollups: 0, systemSamples: 0, probeChecks: 0, partitions: [] }
}

