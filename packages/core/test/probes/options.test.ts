import { describe, expect, it } from 'vitest'
import { createMonitor } from '@apimeter/core'
import { valueAtPath } from '../../src/probes/http-check.js'
import { lengthOutside, resolveMaintenance } from '../../src/probes/maintenance.js'

const H = 3_600_000
const D = 24 * H

describe('probe options', () => {
  it('rejects bad probes naming the field and what was expected', () => {
    const bad = (probes: unknown, message: RegExp) => expect(() => createMonitor({ probes: probes as never, logger: false })).toThrow(message)
    bad([{ name: 'a', url: 'ftp://x' }], /^@apimeter\/core: options\.probes\[0\]\.url must be an http:\/\/ or https:\/\/ URL, got "ftp:\/\/x"/)
    bad([{ name: 'a', url: 'http://x', intervalMs: 5 }], /options\.probes\[0\]\.intervalMs must be a whole number of milliseconds from 100 to 86,400,000, got 5/)
    bad([{ name: 'a', url: 'http://x', expect: { jsonPath: 'a..b', equals: 1 } }], /options\.probes\[0\]\.expect\.jsonPath must be a path such as 'data\.items\[0\]\.status'/)
    bad([{ name: 'a', url: 'http://x', expect: { jsonPath: 'a.b' } }], /options\.probes\[0\]\.expect\.equals must be given together with jsonPath/)
    bad([{ name: 'a', url: 'http://x', notify: ['email:x'] }], /options\.probes\[0\]\.notify\[0\] must be 'log', 'webhook:https:\/\/…'/)
    bad([{ name: 'a', heartbeat: { everyMs: 0 } }], /options\.probes\[0\]\.heartbeat\.everyMs must be a whole number of milliseconds >= 1, got 0/)
    bad([{ name: 'a', url: 'http://x', maintenance: [{ daily: '25:00', duration: '1h' }] }], /options\.probes\[0\]\.maintenance\[0\]\.daily must be a time of day 'HH:MM' \(UTC\) such as '02:00', got "25:00"/)
    bad([{ name: 'a', url: 'http://x', maintenance: [{ at: 1 }] }], /options\.probes\[0\]\.maintenance\[0\] must be/)
    bad([{ name: 'a', url: 'http://x' }, { name: 'a', heartbeat: { everyMs: 1000 } }], /options\.probes\[1\]\.name must be a name no other probe has/)
    bad([{ name: 'a', url: 'http://x', intervl: 5 }], /options\.probes\[0\]\.intervl is not a known option/)
    expect(() => createMonitor({ probes: [{ name: 'a', url: 'http://x', intervalMs: 1000, expect: { status: [200], jsonPath: '$.a[0].b', equals: { ok: true } } }], logger: false, runProbes: false })).not.toThrow()
  })

  it('reads dotted and indexed JSON paths', () => {
    const doc = { data: { items: [{ status: 'a' }, { status: 'b' }] }, 'x-y': 1 }
    expect(valueAtPath(doc, 'data.items[1].status')).toBe('b')
    expect(valueAtPath(doc, '$.data.items[0]')).toEqual({ status: 'a' })
    expect(valueAtPath(doc, 'x-y')).toBe(1)
    expect(valueAtPath(doc, 'data.items[5].status')).toBeUndefined()
    expect(valueAtPath(doc, 'data.items.status')).toBeUndefined()
  })
})

describe('maintenance windows (UTC, whatever the local time zone)', () => {
  const monday = Date.UTC(2026, 2, 2) // a Monday
  it('daily and weekly windows recur at their UTC times; overlapping windows merge', () => {
    const m = resolveMaintenance([{ daily: '02:00', duration: '30m' }, { weekly: 'tue 01:45', duration: '1h' }, { from: new Date(monday + 10 * H), to: monday + 11 * H }])
    expect(m.within(monday, monday + 2 * D)).toEqual([
      [monday + 2 * H, monday + 2.5 * H],
      [monday + 10 * H, monday + 11 * H],
      [monday + D + 1.75 * H, monday + D + 2.75 * H], // Tuesday: the weekly window holds the daily one
    ])
    expect(m.covers(monday + 2 * H)).toBe(true)
    expect(m.covers(monday + 2.5 * H)).toBe(false)
    expect(m.covers(monday - D + 2 * H + 1)).toBe(true) // Sunday's daily window
    expect(lengthOutside(m, monday, monday + D)).toBe(D - 1.5 * H)
    // a window that began before the range is clipped to it
    expect(m.within(monday + 2.25 * H, monday + 3 * H)).toEqual([[monday + 2.25 * H, monday + 2.5 * H]])
  })
})
