/** Numbers come back as strings from PostgreSQL BIGINT/NUMERIC columns; null sums mean 0. */
export function num(value: unknown): number {
  if (value === null || value === undefined) return 0
  return typeof value === 'number' ? value : Number(value)
}
