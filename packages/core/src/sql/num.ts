/** A database value as the text of a group key: null for SQL NULL, numbers and strings as text. */
export function keyText(value: unknown): string | null {
  if (value === null || value === undefined) return null
  return typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'bigint' ? String(value) : JSON.stringify(value)
}

/** Numbers come back as strings from PostgreSQL BIGINT/NUMERIC columns; null sums mean 0. */
export function num(value: unknown): number {
  if (value === null || value === undefined) return 0
  return typeof value === 'number' ? value : Number(value)
}
