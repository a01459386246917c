import { createMonitor, type Monitor } from '@apimeter/core'
import { apimeter } from '@apimeter/express'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import express from 'express'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM_ARGS, chromiumPath } from '../../../scripts/chromium.js'
import { mountOnExpress, sampleCalls, seed, systemSamples, tempDir } from './fixtures.js'

// The service filter, the UTC / local switch, process-metric charts and budgets in a real headless Chromium whose
// time zone is far from UTC (so local times differ from UTC ones).
/* eslint-disable @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any */
declare const document: any
const TOKEN = 'browser-gaps-token'

/** The overview's numbers and range as the page shows them. */
async function shown(page: Page): Promise<{ from: number; to: number; requests: number; errorRate: number; cost: number }> {
  return page.evaluate(() => {
    const main = document.getElementById('main')
    const value = (key: string) => Number(main.querySelector(`[data-metric="${key}"]`).dataset.value)
    return { from: Number(main.dataset.from), to: Number(main.dataset.to), requests: value('requests'), errorRate: value('errorRate'), cost: value('cost') }
  })
}

async function idle(page: Page): Promise<void> {
  await page.waitForFunction(() => document.getElementById('main').getAttribute('aria-busy') === 'false')
}

describe('the dashboard in headless Chromium, in Asia/Kolkata', () => {
  const tmp = tempDir()
  let browser: Browser
  let monitor: Monitor
  let server: Awaited<ReturnType<typeof mountOnExpress>>
  let context: BrowserContext
  let page: Page
  const errors: string[] = []

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS })
    monitor = createMonitor({
      logger: false,
      flushOnExit: false,
      service: 'shop',
      storage: sqliteStorage({ filename: `${tmp.dir}/gaps.db` }),
      alertIntervalMs: 86_400_000,
      alerts: [
        { name: 'openai-daily', kind: 'cost', api: 'openai', threshold: 0.001 },
        { name: 'monthly-cap', kind: 'cost', window: 'month', threshold: 100 },
        { name: 'orders-errors', kind: 'error_rate', route: '/orders/:id', window: '1h', threshold: 0.05 },
      ],
    })
    const now = Date.now()
    const calls = sampleCalls(now)
    // calls of two services: the sample is the shop's; a worker adds its own, with errors and cost
    for (let i = 0; i < 7; i++) calls.push({ service: 'worker', direction: 'outbound', api: 'stripe', method: 'POST', route: '/v1/charges', statusCode: i < 2 ? 502 : 200, durationMs: 120 + i, timestamp: now - (i + 1) * 90_000, cost: 0.01 })
    await seed(monitor, calls)
    await monitor.alerts.evaluate()
    // process samples as the sampler stores them, every 10 minutes over the last 6 hours
    await monitor.storage.system!.write(systemSamples(now))
    server = await mountOnExpress(express, monitor, { auth: { token: TOKEN }, liveIntervalMs: 300 }, (a) => a.use(apimeter(monitor)))
    context = await browser.newContext({ timezoneId: 'Asia/Kolkata', locale: 'en-GB', viewport: { width: 1280, height: 900 }, extraHTTPHeaders: { authorization: `Bearer ${TOKEN}` } })
    page = await context.newPage()
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`)
    })
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`))
  })
  afterAll(async () => {
    await context?.close()
    await browser?.close()
    await server?.stop()
    await monitor?.close()
    tmp.remove()
  })
  afterEach(() => expect(errors).toEqual([]))

  it('the service filter changes the numbers to that service\'s monitor.stats numbers', async () => {
    await page.goto(`${server.base}/apimeter/`)
    await page.waitForSelector('[data-metric="requests"][data-value]')
    expect(await page.locator('select[name="service"] option').allTextContents()).toEqual(['All', 'shop', 'worker'])
    const all = await shown(page)
    expect(all).toMatchObject({ requests: 30 }) // 23 of the shop's in the last 24 hours, 7 of the worker's
    for (const service of ['worker', 'shop']) {
      await page.selectOption('select[name="service"]', service)
      await expect
        .poll(async () => {
          const s = await shown(page)
          const stats = await monitor.stats.summary({ service, from: s.from, to: s.to })
          return [s.requests, s.errorRate, s.cost].join() === [stats.requests, stats.errorRate, stats.cost].join() && s.requests !== all.requests
        })
        .toBe(true)
    }
    const worker = await monitor.stats.summary({ service: 'worker', from: all.from, to: all.to })
    expect([worker.requests, worker.errors]).toEqual([7, 2])
    await page.selectOption('select[name="service"]', '')
    await page.waitForFunction((n) => Number(document.querySelector('[data-metric="requests"]').dataset.value) === n, all.requests)
  })

  it('the UTC / local switch changes the times shown, not the numbers', async () => {
    await page.goto(`${server.base}/apimeter/#llm`)
    await page.waitForSelector('#budgets tbody tr')
    await idle(page)
    const budgets = await monitor.alerts.budgets()
    const daily = budgets.find((b) => b.rule === 'openai-daily')!
    const row = page.locator('#budgets tbody tr', { hasText: 'openai-daily' })
    const cells = async () => ({ window: await row.locator('[data-col="window"]').textContent(), spent: await row.locator('[data-col="spent"]').textContent(), used: await row.locator('[data-col="burn"]').textContent() })
    const local = await cells()
    // the day's window starts at 00:00 UTC, which is 05:30 in Kolkata
    expect(local.window).toBe(`day from ${daily.from.toLocaleString('en-GB', { timeZone: 'Asia/Kolkata' })}`)
    expect(local.window).toContain('05:30:00')
    await page.selectOption('select[name="tz"]', 'utc')
    const utc = await cells()
    expect(utc.window).toBe(`day from ${daily.from.toISOString().slice(0, 16).replace('T', ' ')} UTC`)
    expect(utc.window).toContain('00:00 UTC')
    expect([utc.spent, utc.used]).toEqual([local.spent, local.used])
    // the overview's range and numbers do not move either
    await page.goto(`${server.base}/apimeter/#overview`)
    await page.waitForSelector('[data-metric="requests"][data-value]')
    const before = await shown(page)
    await page.selectOption('select[name="tz"]', 'local')
    const after = await shown(page)
    expect([after.from, after.to, after.requests, after.cost]).toEqual([before.from, before.to, before.requests, before.cost])
  })

  it('lists every cost budget with its spend, threshold and share used, whatever its state', async () => {
    await page.goto(`${server.base}/apimeter/#llm`)
    await page.waitForSelector('#budgets tbody tr')
    const rows = await page.locator('#budgets tbody tr').evaluateAll((trs: any[]) => trs.map((tr) => [tr.querySelector('th').textContent, tr.querySelector('[data-col="state"]').textContent]))
    expect(rows).toEqual([
      ['openai-daily', 'firing · critical'],
      ['monthly-cap', 'inactive'],
    ])
    const cap = (await monitor.alerts.budgets()).find((b) => b.rule === 'monthly-cap')!
    expect(await page.locator('#budgets tbody tr', { hasText: 'monthly-cap' }).locator('[data-col="spent"]').textContent()).toBe(`$${cap.spent.toFixed(4)}`)
    expect(await page.locator('#budgets tbody tr', { hasText: 'monthly-cap' }).locator('[data-col="burn"]').textContent()).toBe(`${(cap.burn * 100).toFixed(2)}%`)
  })

  it('charts the process metrics over the range from the stored samples', async () => {
    await page.goto(`${server.base}/apimeter/#health`)
    await page.waitForSelector('#process-charts canvas')
    await page.evaluate(() => new Promise((resolve) => (globalThis as any).requestAnimationFrame(() => (globalThis as any).requestAnimationFrame(resolve))))
    const charts = await page.evaluate(() =>
      [...document.querySelectorAll('#process-charts .chart')].map((chart: any) => {
        const c = chart.querySelector('canvas')
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
        let painted = 0
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++
        return { title: chart.querySelector('figcaption').textContent, painted }
      }),
    )
    expect(charts.map((c) => c.title)).toEqual(['CPU (%)', 'Memory (MiB, max)', 'Event-loop delay p99 (ms)'])
    for (const c of charts) expect(c.painted).toBeGreaterThan(500)
    // the charted points are the buckets of monitor.stats.system() for the page's range
    const range = await page.evaluate(() => ({ from: Number(document.getElementById('main').dataset.from), to: Number(document.getElementById('main').dataset.to) }))
    const health = (await (await fetch(`${server.base}/apimeter/api/health?range=24h`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { query: { interval: 'hour' }; system: { series: { t: number[]; rss: number[] } } }
    const buckets = await monitor.stats.system({ ...range, interval: health.query.interval })
    expect(health.system.series.t.length).toBe(buckets.length)
    expect(buckets.filter((b) => b.samples > 0).length).toBeGreaterThanOrEqual(6)
  })
})
