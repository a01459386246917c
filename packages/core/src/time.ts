import { ApimeterError, describeValue } from './errors.js'

/** Time bucket sizes for timeseries and rollups; all aligned to UTC. */
export const INTERVALS = ['minute', 'hour', 'day', 'month'] as const
/** One of {@link INTERVALS}. */
export type Interval = (typeof INTERVALS)[number]

const MINUTE = 60_000
/** An hour in milliseconds. */
export const HOUR = 3_600_000
const DAY = 86_400_000

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: MINUTE, h: HOUR, d: DAY, w: 7 * DAY, y: 365 * DAY }

/** A relative time: `-24h`, `-30m`, `-7d`, `-2w`, `-1y`, `-90s`, `+1h`, or `now`. */
export const RELATIVE_TIME = /^(?:now|([+-])\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y))$/

/** A point in time as a stats query accepts it. */
export type TimeInput = Date | string | number

/** Parses a duration such as `'5m'`, `'2h'`, `'1d'`, `'2y'` (365 days), `'250ms'` into milliseconds; `undefined` when it does not parse. */
export function parseDuration(value: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)$/.exec(value.trim())
  if (!match) return undefined
  return Number(match[1]) * UNIT_MS[match[2]!]!
}

/**
 * Resolves a time input to epoch ms: a Date, epoch milliseconds, an ISO-8601 string (UTC unless it carries an
 * offset: `'2026-01-01T12:00:00'` is noon UTC on every server), or a relative time (`'-24h'`) counted from `now`.
 * Returns `undefined` when the input does not parse.
 */
export function resolveTime(value: TimeInput, now: number): number | undefined {
  if (value instanceof Date) {
    const t = value.getTime()
    return Number.isNaN(t) ? undefined : t
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (typeof value !== 'string') return undefined
  const trimmed = value.trim()
  const relative = RELATIVE_TIME.exec(trimmed)
  if (relative) {
    if (trimmed === 'now') return now
    const sign = relative[1] === '-' ? -1 : 1
    return now + sign * Number(relative[2]) * UNIT_MS[relative[3]!]!
  }
  // Only ISO-8601-looking strings: Date.parse accepts too many odd formats. A date-time without an offset is UTC,
  // like a bare date (Date.parse would read it in the server's time zone, so one query would answer differently on
  // servers in different zones).
  const iso = /^\d{4}-\d{2}(-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?$/.exec(trimmed)
  if (!iso) return undefined
  const hasTime = iso[2] !== undefined
  const hasOffset = iso[5] !== undefined
  const t = Date.parse(hasTime ? `${trimmed.replace(' ', 'T')}${hasOffset ? '' : 'Z'}` : trimmed)
  return Number.isNaN(t) ? undefined : t
}

/**
 * {@link resolveTime} for the `from` / `to` of a query: undefined stays undefined, and a value that does not parse
 * throws `INVALID_QUERY` naming `path` (`audit.list(query).from`).
 */
export function queryTime(value: TimeInput | undefined, now: number, path: string): number | undefined {
  if (value === undefined) return undefined
  const t = resolveTime(value, now)
  if (t === undefined) {
    throw new ApimeterError('INVALID_QUERY', `${path} must be a Date, epoch milliseconds, an ISO-8601 string or a relative time such as '-24h', got ${describeValue(value)}`, {
      details: { field: path.slice(path.lastIndexOf('.') + 1) },
    })
  }
  return t
}

/** Start (epoch ms) of the UTC bucket holding `t`. */
export function bucketStart(t: number, interval: Interval): number {
  switch (interval) {
    case 'minute':
      return Math.floor(t / MINUTE) * MINUTE
    case 'hour':
      return Math.floor(t / HOUR) * HOUR
    case 'day':
      return Math.floor(t / DAY) * DAY
    case 'month': {
      const d = new Date(t)
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
    }
  }
}

/** Start of the bucket after the one starting at `start`. */
export function nextBucket(start: number, interval: Interval): number {
  switch (interval) {
    case 'minute':
      return start + MINUTE
    case 'hour':
      return start + HOUR
    case 'day':
      return start + DAY
    case 'month': {
      const d = new Date(start)
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
    }
  }
}
