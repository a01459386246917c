import { type RawBuilder, sql } from 'kysely'
import { type AuditRecord, type AuditStore, auditLimit } from '../storage/audit-store.js'
import type { SqlAlertStoreContext } from './alert-store-sql.js'
import { TABLES } from './schema.js'

interface AuditRow {
  id: number | string
  at: number | string
  kind: string
  subject: string
  instance: string
  before_json: string | null
  after_json: string | null
  detail: string | null
}

const parse = (text: string | null): unknown => {
  if (text === null) return null
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

/** JSON text of a value for a JSON column, or null (undefined and null both store SQL NULL). */
export function jsonText(value: unknown): string | null {
  if (value === undefined || value === null) return null
  try {
    return JSON.stringify(value) ?? null
  } catch {
    // a cycle, a BigInt: the row still says something was there
    return JSON.stringify('(not serialisable)')
  }
}

/** Conditions on `at` (`from` inclusive, `to` exclusive) and on text columns equal to a value (when given). */
export function whereAt(range: { from?: number; to?: number }, equal: Record<string, string | undefined>): RawBuilder<unknown>[] {
  const where = [sql`1 = 1`]
  if (range.from !== undefined) where.push(sql`at >= ${range.from}`)
  if (range.to !== undefined) where.push(sql`at < ${range.to}`)
  for (const [column, value] of Object.entries(equal)) if (value !== undefined) where.push(sql`${sql.ref(column)} = ${value}`)
  return where
}

/** The audit log of the SQL storages, over `apimeter_audit_log` (docs/schema.md). Append and read only. */
export function createSqlAuditStore(ctx: SqlAlertStoreContext): AuditStore {
  const { db, dialect, exclusive } = ctx
  const json = (v: unknown) => {
    const text = jsonText(v)
    return text === null ? null : dialect.json(text)
  }
  return {
    async append(rows) {
      if (rows.length === 0) return
      await ctx.ready()
      await exclusive(async () => {
        const values = rows.map((r) => sql`(${r.at}, ${r.kind}, ${r.subject}, ${r.instance}, ${json(r.before)}, ${json(r.after)}, ${r.detail})`)
        await sql`INSERT INTO ${sql.table(TABLES.auditLog)} (at, kind, subject, instance, "before", "after", detail) VALUES ${sql.join(values)}`.execute(db)
      })
    },
    async list(query) {
      await ctx.ready()
      const where = whereAt(query, { subject: query.subject })
      if (query.kind !== undefined) {
        const kinds = typeof query.kind === 'string' ? [query.kind] : [...query.kind]
        // `x` matches kind x and every kind x.…; LIKE's wildcards in a kind are escaped
        const one = kinds.map((k) => sql`(kind = ${k} OR kind LIKE ${`${k.replace(/[\\%_]/g, (c) => `\\${c}`)}.%`} ESCAPE '\\')`)
        where.push(sql`(${sql.join(one, sql` OR `)})`)
      }
      const direction = query.order === 'desc' ? sql`DESC` : sql`ASC`
      return exclusive(async () => {
        const r = await sql<AuditRow>`SELECT id, at, kind, subject, instance, CAST("before" AS TEXT) AS before_json,
            CAST("after" AS TEXT) AS after_json, detail
          FROM ${sql.table(TABLES.auditLog)} WHERE ${sql.join(where, sql` AND `)}
          ORDER BY at ${direction}, id ${direction} LIMIT ${auditLimit(query)}`.execute(db)
        return r.rows.map(
          (row): AuditRecord => ({
            id: Number(row.id),
            at: Number(row.at),
            kind: row.kind,
            subject: row.subject,
            instance: row.instance,
            before: parse(row.before_json),
            after: parse(row.after_json),
            detail: row.detail,
          }),
        )
      })
    },
  }
}
