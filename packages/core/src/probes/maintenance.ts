import type { DurationInput } from '../alerts/rules.js'
import { parseDuration, resolveTime, type TimeInput } from '../time.js'

/**
 * A maintenance window of a probe, in one of three forms (times of day are UTC):
 * - `{ from, to }`: once (Dates, epoch ms or ISO strings);
 * - `{ daily: 'HH:MM', duration }`: every day from HH:MM;
 * - `{ weekly: 'sun HH:MM', duration }`: every week on that day (sun … sat) from HH:MM.
 *
 * @example
 * ```ts
 * maintenance: [{ from: '2026-03-01T10:00:00Z', to: '2026-03-01T12:00:00Z' }, { daily: '02:00', duration: '15m' }, { weekly: 'sun 03:00', duration: '2h' }]
 * ```
 */
export type MaintenanceWindow = { from: TimeInput; to: TimeInput } | { daily: string; duration: DurationInput } | { weekly: string; duration: DurationInput }

const DAY = 86_400_000
const WEEK = 7 * DAY
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']
// 1970-01-01 was a Thursday: the first Sunday 00:00 UTC is day 3
const FIRST_SUNDAY = 3 * DAY

/** A window repeating every `periodMs` from `offsetMs` past `originMs` (once: period Infinity). */
interface Repeating {
  originMs: number
  periodMs: number
  lengthMs: number
}

/** The maintenance windows of a probe, resolved: ask which parts of a range they cover. */
export interface ResolvedMaintenance {
  /** Whether `t` is inside a window. */
  covers(t: number): boolean
  /** The windows intersecting `[from, to)`, clipped to it, merged and sorted. */
  within(from: number, to: number): [number, number][]
}

const toMs = (v: DurationInput): number => (typeof v === 'number' ? v : parseDuration(v)!)
const hhmm = (text: string): number => Number(text.slice(0, 2)) * 3_600_000 + Number(text.slice(3, 5)) * 60_000

/** Resolves validated windows. */
export function resolveMaintenance(windows: readonly MaintenanceWindow[]): ResolvedMaintenance {
  const list: Repeating[] = windows.map((w) => {
    if ('from' in w) {
      const from = resolveTime(w.from, 0)!
      return { originMs: from, periodMs: Infinity, lengthMs: resolveTime(w.to, 0)! - from }
    }
    if ('daily' in w) return { originMs: hhmm(w.daily), periodMs: DAY, lengthMs: toMs(w.duration) }
    const [day, time] = w.weekly.toLowerCase().split(' ') as [string, string]
    return { originMs: FIRST_SUNDAY + DAYS.indexOf(day) * DAY + hhmm(time), periodMs: WEEK, lengthMs: toMs(w.duration) }
  })
  const within = (from: number, to: number): [number, number][] => {
    const spans: [number, number][] = []
    for (const w of list) {
      if (!Number.isFinite(w.periodMs)) {
        spans.push([w.originMs, w.originMs + w.lengthMs])
        continue
      }
      // the first occurrence that can still reach `from`
      let start = w.originMs + Math.floor((from - w.lengthMs - w.originMs) / w.periodMs) * w.periodMs
      for (; start < to; start += w.periodMs) spans.push([start, start + w.lengthMs])
    }
    const clipped = spans
      .map(([a, b]): [number, number] => [Math.max(a, from), Math.min(b, to)])
      .filter(([a, b]) => a < b)
      .sort((x, y) => x[0] - y[0])
    const merged: [number, number][] = []
    for (const span of clipped) {
      const last = merged.at(-1)
      if (last && span[0] <= last[1]) last[1] = Math.max(last[1], span[1])
      else merged.push(span)
    }
    return merged
  }
  return {
    covers: (t) => within(t, t + 1).length > 0,
    within,
  }
}

/** The length of `[from, to)` outside the windows. */
export function lengthOutside(maintenance: ResolvedMaintenance, from: number, to: number): number {
  if (to <= from) return 0
  let covered = 0
  for (const [a, b] of maintenance.within(from, to)) covered += b - a
  return to - from - covered
}
