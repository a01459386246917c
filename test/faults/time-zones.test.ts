import { describe, expect, it } from 'vitest'
import { runFixture } from '../support/run-fixture.js'

/**
 * Every time in storage and stats is UTC: a time string without an offset means UTC on every server. The same
 * queries over the same calls, in processes running in three time zones, give the same (hand-computed) answers.
 */
describe('time zones', () => {
  const expected = {
    noonOn: 12, // 12:00 ≤ t < 24:00 UTC on Jan 1: the calls of 12:00 … 23:00
    spaceForm: 2, // 06:30 ≤ t < 09:00 UTC: 07:00 and 08:00
    withOffset: 5, // 12:00+05:30 is 06:30 UTC; until 12:00 UTC: 07:00 … 11:00
    dateOnly: 24,
    days: [
      ['2025-12-31T00:00:00.000Z', 24],
      ['2026-01-01T00:00:00.000Z', 24],
      ['2026-01-02T00:00:00.000Z', 24],
    ],
  }
  for (const [tz, offsetMinutes] of [['UTC', 0], ['America/New_York', 300], ['Asia/Kolkata', -330]] as const) {
    it(`answers the same in ${tz}`, async () => {
      const result = await runFixture(new URL('./fixtures/time-zone-child.ts', import.meta.url), [], 60_000, { TZ: tz })
      expect(result.code, result.stderr).toBe(0)
      const out = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>
      expect(out.offsetMinutes).toBe(offsetMinutes) // the child really ran in that zone
      expect(out.memory).toEqual(expected)
      expect(out.sqlite).toEqual(expected)
    })
  }
})
