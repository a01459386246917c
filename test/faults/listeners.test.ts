import { describe, expect, it } from 'vitest'
import { createMonitor } from '@apimeter/core'
import { runFixture } from '../support/run-fixture.js'

/** The host's event listeners: whatever they do, apimeter never lets them crash the process. */
describe('event listeners', () => {
  it('catches async listeners that reject (no unhandled rejection ends the process), counts them and warns once', async () => {
    const result = await runFixture(new URL('./fixtures/rejecting-listener.ts', import.meta.url), [], 60_000)
    expect(result.stderr).not.toMatch(/listener bug/) // Node prints an unhandled rejection and exits 1
    expect(result.code).toBe(0)
    const report = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { alive: boolean; listenerFailures: number; warnings: string[] }
    expect(report).toMatchObject({ alive: true, listenerFailures: 2 })
    expect(report.warnings.filter((w) => w.includes("'error' listener rejected: listener bug"))).toHaveLength(1)
  })

  it('removes a once() listener with off() before it ever runs', async () => {
    const monitor = createMonitor({ logger: false, flushOnExit: false })
    const seen: string[] = []
    const listener = (e: { code: string }) => {
      seen.push(e.code)
    }
    monitor.once('error', listener)
    monitor.off('error', listener)
    const other = (e: { code: string }) => {
      seen.push(`other:${e.code}`)
    }
    monitor.once('error', other)
    monitor.record({} as never)
    monitor.record({} as never)
    await new Promise((resolve) => setImmediate(resolve))
    expect(seen).toEqual(['other:INVALID_CALL']) // once: the second error reached nobody
    await monitor.close()
  })
})
