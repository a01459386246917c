import type { SqlDialect } from '../dialect.js'
import type { SqlDialectName } from '../schema.js'
import { postgresDialect } from './postgres.js'
import { sqliteDialect } from './sqlite.js'

const DIALECTS: Record<SqlDialectName, SqlDialect> = { sqlite: sqliteDialect, postgres: postgresDialect }

/** The dialect object of a name (functions taking a dialect accept either). */
export function dialectOf(dialect: SqlDialect | SqlDialectName): SqlDialect {
  return typeof dialect === 'string' ? DIALECTS[dialect] : dialect
}
