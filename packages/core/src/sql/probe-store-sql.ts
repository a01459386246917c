import { sql } from 'kysely'
import type { IncidentRecord, ProbeCause, ProbeCheckRecord, ProbeDefinitionRecord, ProbeStateRecord, ProbeStore } from '../storage/probe-store.js'
import { readDefinitions, type SqlAlertStoreContext, upsertDefinitions } from './alert-store-sql.js'
import { TABLES } from './schema.js'

type Num = number | string
type NumOrNull = Num | null

interface StateRow {
  probe: string
  status: string
  failures: Num
  failing_since: NumOrNull
  successes: Num
  recovering_since: NumOrNull
  last_check_at: NumOrNull
  last_ok_at: NumOrNull
  first_check_at: NumOrNull
  incident_id: NumOrNull
  version: Num
}

interface CheckRow {
  probe: string
  at: Num
  ok: Num
  status_code: NumOrNull
  duration_ms: Num
  cause: string | null
  error: string | null
  instance: string
}

interface IncidentRow {
  id: Num
  probe: string
  opened_at: Num
  resolved_at: NumOrNull
  duration_ms: NumOrNull
  cause: string
  error: string | null
}

const orNull = (v: NumOrNull): number | null => (v === null ? null : Number(v))

const toIncident = (r: IncidentRow): IncidentRecord => ({
  id: Number(r.id),
  probe: r.probe,
  openedAt: Number(r.opened_at),
  resolvedAt: orNull(r.resolved_at),
  durationMs: orNull(r.duration_ms),
  cause: r.cause as ProbeCause,
  error: r.error,
})

/**
 * The probe store of the SQL storages, over the documented probe tables (docs/schema.md). A round's lease is one
 * conditional upsert (taken only when nobody ran that round and the last lease lapsed), and a check's state change is
 * a compare-and-set on `version` in one transaction with the check and the incident it opens or resolves, so with
 * several processes on one database each probe runs once per round and each incident transition is written (and
 * therefore notified) once. The same SQL runs on SQLite and PostgreSQL.
 */
export function createSqlProbeStore(ctx: SqlAlertStoreContext): ProbeStore {
  const { db, dialect, exclusive } = ctx
  const run = async <T>(fn: () => Promise<T>): Promise<T> => {
    await ctx.ready()
    return exclusive(fn)
  }
  const range = (query: { probe?: string; from?: number; to?: number }, column: string) =>
    sql.join(
      [
        query.probe === undefined ? sql`1 = 1` : sql`probe = ${query.probe}`,
        query.from === undefined ? sql`1 = 1` : sql`${sql.ref(column)} >= ${query.from}`,
        query.to === undefined ? sql`1 = 1` : sql`${sql.ref(column)} < ${query.to}`,
      ],
      sql` AND `,
    )

  return {
    syncProbes: (probes, now) => run(() => upsertDefinitions(db, dialect, TABLES.probes, probes, ['kind'], now)),

    definitions: () =>
      run(async () =>
        (await readDefinitions(db, TABLES.probes, ['kind'])).map(
          ({ name, kind, definition, createdAt, updatedAt }): ProbeDefinitionRecord => ({ name, kind: kind as ProbeDefinitionRecord['kind'], definition, createdAt, updatedAt }),
        ),
      ),

    claim({ probe, holder, round, now, expiresAt }) {
      return run(async () => {
        const r = await sql`INSERT INTO ${sql.table(TABLES.probeLeases)} (probe, holder, lease_round, expires_at)
          VALUES (${probe}, ${holder}, ${round}, ${expiresAt})
          ON CONFLICT (probe) DO UPDATE SET holder = excluded.holder, lease_round = excluded.lease_round, expires_at = excluded.expires_at
          WHERE ${sql.table(TABLES.probeLeases)}.lease_round < excluded.lease_round
            AND (${sql.table(TABLES.probeLeases)}.expires_at <= ${now} OR ${sql.table(TABLES.probeLeases)}.holder = excluded.holder)`.execute(db)
        if (Number(r.numAffectedRows ?? 0) === 1) return 'claimed'
        const held = await sql<{ lease_round: Num }>`SELECT lease_round FROM ${sql.table(TABLES.probeLeases)} WHERE probe = ${probe}`.execute(db)
        return Number(held.rows[0]?.lease_round ?? -Infinity) >= round ? 'taken' : 'busy'
      })
    },

    release(probe, holder, now) {
      return run(async () => {
        await sql`UPDATE ${sql.table(TABLES.probeLeases)} SET expires_at = ${now} WHERE probe = ${probe} AND holder = ${holder} AND expires_at > ${now}`.execute(db)
      })
    },

    states() {
      return run(async () => {
        const r = await sql<StateRow>`SELECT * FROM ${sql.table(TABLES.probeState)} ORDER BY probe`.execute(db)
        return r.rows.map(
          (s): ProbeStateRecord => ({
            probe: s.probe,
            status: s.status as ProbeStateRecord['status'],
            failures: Number(s.failures),
            failingSince: orNull(s.failing_since),
            successes: Number(s.successes),
            recoveringSince: orNull(s.recovering_since),
            lastCheckAt: orNull(s.last_check_at),
            lastOkAt: orNull(s.last_ok_at),
            firstCheckAt: orNull(s.first_check_at),
            incidentId: orNull(s.incident_id),
            version: Number(s.version),
          }),
        )
      })
    },

    record({ check: c, expectedVersion, next: n, open, resolve }) {
      return run(() =>
        db.transaction().execute(async (trx) => {
          // the current incident id: kept unless this write opens or resolves one (set below, in this transaction)
          const written =
            expectedVersion === 0
              ? await sql`INSERT INTO ${sql.table(TABLES.probeState)} (probe, status, failures, failing_since, successes,
                  recovering_since, last_check_at, last_ok_at, first_check_at, incident_id, version)
                  VALUES (${c.probe}, ${n.status}, ${n.failures}, ${n.failingSince}, ${n.successes}, ${n.recoveringSince},
                    ${n.lastCheckAt}, ${n.lastOkAt}, ${n.firstCheckAt}, NULL, 1)
                  ON CONFLICT (probe) DO NOTHING`.execute(trx)
              : await sql`UPDATE ${sql.table(TABLES.probeState)} SET status = ${n.status}, failures = ${n.failures},
                  failing_since = ${n.failingSince}, successes = ${n.successes}, recovering_since = ${n.recoveringSince},
                  last_check_at = ${n.lastCheckAt}, last_ok_at = ${n.lastOkAt}, first_check_at = ${n.firstCheckAt},
                  version = version + 1
                  WHERE probe = ${c.probe} AND version = ${expectedVersion}`.execute(trx)
          if (Number(written.numAffectedRows ?? 0) !== 1) return { applied: false, incidentId: null }
          await sql`INSERT INTO ${sql.table(TABLES.probeChecks)} (probe, at, ok, status_code, duration_ms, cause, error, instance)
            VALUES (${c.probe}, ${c.at}, ${c.ok ? 1 : 0}, ${c.statusCode}, ${c.durationMs}, ${c.cause}, ${c.error}, ${c.instance})`.execute(trx)
          let incidentId: number | null = null
          if (resolve) {
            await sql`UPDATE ${sql.table(TABLES.incidents)} SET resolved_at = ${resolve.resolvedAt}, duration_ms = ${resolve.resolvedAt} - opened_at
              WHERE id = ${resolve.id} AND resolved_at IS NULL`.execute(trx)
            await sql`UPDATE ${sql.table(TABLES.probeState)} SET incident_id = NULL WHERE probe = ${c.probe}`.execute(trx)
            incidentId = resolve.id
          }
          if (open) {
            const inserted = await sql<{ id: Num }>`INSERT INTO ${sql.table(TABLES.incidents)} (probe, opened_at, resolved_at, duration_ms, cause, error)
              VALUES (${c.probe}, ${open.openedAt}, NULL, NULL, ${open.cause}, ${open.error}) RETURNING id`.execute(trx)
            incidentId = Number(inserted.rows[0]!.id)
            await sql`UPDATE ${sql.table(TABLES.probeState)} SET incident_id = ${incidentId} WHERE probe = ${c.probe}`.execute(trx)
          }
          return { applied: true, incidentId }
        }),
      )
    },

    checks(query) {
      return run(async () => {
        const r = await sql<CheckRow>`SELECT probe, at, ok, status_code, duration_ms, cause, error, instance FROM ${sql.table(TABLES.probeChecks)}
          WHERE ${range(query, 'at')} ORDER BY at, id`.execute(db)
        return r.rows.map(
          (row): ProbeCheckRecord => ({
            probe: row.probe,
            at: Number(row.at),
            ok: Number(row.ok) === 1,
            statusCode: orNull(row.status_code),
            durationMs: Number(row.duration_ms),
            cause: row.cause as ProbeCause | null,
            error: row.error,
            instance: row.instance,
          }),
        )
      })
    },

    incidents({ probe, from, to }) {
      return run(async () => {
        const r = await sql<IncidentRow>`SELECT id, probe, opened_at, resolved_at, duration_ms, cause, error FROM ${sql.table(TABLES.incidents)}
          WHERE ${range({ probe, to }, 'opened_at')} ${from === undefined ? sql`` : sql`AND (resolved_at IS NULL OR resolved_at > ${from})`}
          ORDER BY opened_at, id`.execute(db)
        return r.rows.map(toIncident)
      })
    },
  }
}
