import { describe, expect, it } from 'vitest'
import { type Horizons, planQuery } from '@apimeter/core/sql'

const D = 86_400_000
const at = (iso: string) => Date.parse(iso)
const NONE: Horizons = { raw: -Infinity, hour: -Infinity, day: -Infinity }
const show = (plan: ReturnType<typeof planQuery>) => ({
  resolution: plan.resolution,
  segments: plan.segments.map((s) => `${s.unit} ${Number.isFinite(s.start) ? new Date(s.start).toISOString().slice(0, 16) : s.start}…${Number.isFinite(s.end) ? new Date(s.end).toISOString().slice(0, 16) : s.end}`),
})

describe('planQuery()', () => {
  it('reads whole months, days, hours and 5 minutes from rollups and only sub-5-minute edges raw', () => {
    expect(show(planQuery(at('2026-01-30T10:32:00Z'), at('2026-03-02T05:17:00Z'), undefined, NONE, true))).toEqual({
      resolution: 'raw',
      segments: [
        'raw 2026-01-30T10:32…2026-01-30T10:35',
        '5m 2026-01-30T10:35…2026-01-30T11:00',
        'hour 2026-01-30T11:00…2026-01-31T00:00',
        'day 2026-01-31T00:00…2026-02-01T00:00',
        'month 2026-02-01T00:00…2026-03-01T00:00',
        'day 2026-03-01T00:00…2026-03-02T00:00',
        'hour 2026-03-02T00:00…2026-03-02T05:00',
        '5m 2026-03-02T05:00…2026-03-02T05:15',
        'raw 2026-03-02T05:15…2026-03-02T05:17',
      ],
    })
  })

  it('reads sub-hour edges raw before the 5-minute level existed (fine horizon)', () => {
    const horizons: Horizons = { ...NONE, fine: at('2026-01-30T12:00:00Z') }
    expect(show(planQuery(at('2026-01-30T10:32:00Z'), at('2026-01-30T13:20:00Z'), undefined, horizons, true)).segments).toEqual([
      'raw 2026-01-30T10:32…2026-01-30T11:00',
      'hour 2026-01-30T11:00…2026-01-30T13:00',
      '5m 2026-01-30T13:00…2026-01-30T13:20',
    ])
  })

  it('handles open ends, short ranges and empty ranges', () => {
    expect(show(planQuery(undefined, undefined, undefined, NONE, true)).segments).toEqual(['month -Infinity…Infinity'])
    expect(show(planQuery(at('2026-01-01T10:10:00Z'), at('2026-01-01T10:20:00Z'), undefined, NONE, true)).segments).toEqual(['5m 2026-01-01T10:10…2026-01-01T10:20'])
    expect(show(planQuery(at('2026-01-01T10:11:00Z'), at('2026-01-01T10:14:00Z'), undefined, NONE, true)).segments).toEqual(['raw 2026-01-01T10:11…2026-01-01T10:14'])
    expect(planQuery(5, 5, undefined, NONE, true).segments).toEqual([])
    expect(show(planQuery(at('2026-01-15T00:00:00Z'), undefined, undefined, NONE, true)).segments).toEqual([
      'day 2026-01-15T00:00…2026-02-01T00:00',
      'month 2026-02-01T00:00…Infinity',
    ])
  })

  it('never uses rollups coarser than the timeseries interval, and none for minutes', () => {
    expect(show(planQuery(at('2026-01-01T10:30:00Z'), at('2026-01-03T00:00:00Z'), 'hour', NONE, true)).segments).toEqual([
      '5m 2026-01-01T10:30…2026-01-01T11:00',
      'hour 2026-01-01T11:00…2026-01-03T00:00',
    ])
    expect(show(planQuery(at('2026-01-01T10:30:00Z'), at('2026-01-01T12:00:00Z'), 'minute', NONE, true)).segments).toEqual(['raw 2026-01-01T10:30…2026-01-01T12:00'])
  })

  it('reads everything raw when no rollup level fits, and says partial where raw calls expired', () => {
    expect(planQuery(0, 10 * D, undefined, NONE, false)).toEqual({ segments: [{ unit: 'raw', start: 0, end: 10 * D }], resolution: 'raw' })
    expect(planQuery(0, 10 * D, undefined, { raw: 5 * D, hour: 2 * D, day: -Infinity }, false).resolution).toBe('partial')
  })

  it('widens an edge that falls where retention removed its level, and reports the resolution', () => {
    const horizons: Horizons = { raw: at('2026-03-01T05:00:00Z'), hour: at('2026-02-20T00:00:00Z'), day: at('2026-01-01T00:00:00Z') }
    // from is before the raw horizon: widened to its hour
    expect(show(planQuery(at('2026-02-25T10:30:00Z'), at('2026-03-05T00:00:00Z'), undefined, horizons, true))).toEqual({
      resolution: 'hour',
      segments: [
        'hour 2026-02-25T10:00…2026-02-26T00:00',
        'day 2026-02-26T00:00…2026-03-01T00:00',
        // the raw horizon (05:00) splits the first of March: hours on both sides of it
        'hour 2026-03-01T00:00…2026-03-02T00:00',
        'day 2026-03-02T00:00…2026-03-05T00:00',
      ],
    })
    // before the hour horizon: widened to the day; before the day horizon: to the month
    expect(planQuery(at('2026-02-10T10:30:00Z'), at('2026-03-05T00:00:00Z'), undefined, horizons, true).resolution).toBe('day')
    expect(planQuery(at('2025-12-10T10:30:00Z'), at('2026-03-05T00:00:00Z'), undefined, horizons, true).resolution).toBe('month')
    // hourly timeseries over a region where only days are left: day segments there
    const ts = show(planQuery(at('2026-02-18T00:00:00Z'), at('2026-02-21T00:00:00Z'), 'hour', horizons, true))
    expect(ts).toEqual({ resolution: 'day', segments: ['day 2026-02-18T00:00…2026-02-20T00:00', 'hour 2026-02-20T00:00…2026-02-21T00:00'] })
    // an aligned range in an expired region stays exact
    expect(planQuery(at('2026-02-21T00:00:00Z'), at('2026-02-22T00:00:00Z'), undefined, horizons, true).resolution).toBe('raw')
  })

  it('covers the range without gaps or overlaps', () => {
    const horizons: Horizons = { raw: at('2026-03-01T05:00:00Z'), hour: at('2026-02-20T00:00:00Z'), day: at('2026-01-01T00:00:00Z'), fine: at('2026-03-01T07:00:00Z') }
    for (const [from, to] of [
      [at('2025-11-03T04:05:06Z'), at('2026-04-07T08:09:10Z')],
      [at('2026-02-28T23:59:59Z'), at('2026-03-01T06:00:01Z')],
      [at('2026-03-01T05:02:03Z'), at('2026-03-01T09:58:07Z')],
    ] as const) {
      for (const interval of [undefined, 'hour', 'day', 'month'] as const) {
        const plan = planQuery(from, to, interval, horizons, true)
        for (let i = 1; i < plan.segments.length; i++) expect(plan.segments[i]!.start).toBe(plan.segments[i - 1]!.end)
        // 5-minute rollups only where raw calls are kept and the level existed
        for (const s of plan.segments) if (s.unit === '5m') expect(s.start).toBeGreaterThanOrEqual(at('2026-03-01T07:00:00Z'))
        expect(plan.segments[0]!.start).toBeLessThanOrEqual(from)
        expect(plan.segments.at(-1)!.end).toBeGreaterThanOrEqual(to)
      }
    }
  })
})
