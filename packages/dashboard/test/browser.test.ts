import { mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type Server } from 'node:http'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { createMonitor, type Monitor, type StatsFilter } from '@apimeter/core'
import { apimeter } from '@apimeter/express'
import { postgresStorage } from '@apimeter/storage-postgres'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import express from 'express'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM_ARGS, chromiumPath } from '../../../scripts/chromium.js'
import { close, listen } from '../../../test/support/http.js'
import { freshSchema, testUrl } from '../../storage-postgres/test/helpers.js'
import { mountOnExpress, sampleCalls, seed, systemSamples, tempDir } from './fixtures.js'

// The dashboard in a real headless Chromium (Debian's package, installed by the test setup when missing), against
// real storages and real HTTP servers. Every run takes the screenshots; they land in docs/ for docs/dashboard.md
// when APIMETER_SCREENSHOTS=docs (so a test run leaves the checkout as it found it), in a temporary folder otherwise.
const TOKEN = 'browser-test-token'

// The functions handed to page.evaluate() run in the page; this program has Node's types, not the DOM's (adding the
// DOM library would retype Node's timers everywhere), so the page's globals are untyped here.
/* eslint-disable @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-explicit-any */
declare const document: any
declare const window: any
declare const location: any
declare const requestAnimationFrame: any
const DOCS = process.env.APIMETER_SCREENSHOTS === 'docs' ? fileURLToPath(new URL('../../../docs/', import.meta.url)) : `${mkdtempSync(join(tmpdir(), 'apimeter-screenshots-'))}/`
const LIVE_MS = 300

/** An Express app metering itself, with the dashboard at /apimeter. */
function app(monitor: Monitor): Promise<{ base: string; stop: () => Promise<void> }> {
  return mountOnExpress(express, monitor, { auth: { token: TOKEN }, liveIntervalMs: LIVE_MS }, (a) => a.use(apimeter(monitor)))
}

/** The overview as the page shows it, read in one go (a live update between two reads cannot mix ranges). */
async function shown(page: Page): Promise<{ from: number; to: number; requests: number; errorRate: number; cost: number }> {
  return page.evaluate(() => {
    const main = document.getElementById('main')!
    const value = (key: string) => Number(main.querySelector(`[data-metric="${key}"]`)!.dataset.value)
    return { from: Number(main.dataset.from), to: Number(main.dataset.to), requests: value('requests'), errorRate: value('errorRate'), cost: value('cost') }
  })
}

/** What monitor.stats.summary() says for the range the page shows (and the filter it has set). */
async function expected(monitor: Monitor, page: Page, filter: StatsFilter = {}) {
  const s = await shown(page)
  const summary = await monitor.stats.summary({ ...filter, from: s.from, to: s.to })
  return { shown: s, summary: { from: s.from, to: s.to, requests: summary.requests, errorRate: summary.errorRate, cost: summary.cost } }
}

function watchConsole(page: Page, errors: string[]): void {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`)
  })
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`))
}

describe('the dashboard in headless Chromium', () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS })
    mkdirSync(DOCS, { recursive: true })
  })
  afterAll(() => browser?.close())

  describe('one instance on SQLite, mounted in Express', () => {
    const tmp = tempDir()
    let monitor: Monitor
    let server: Awaited<ReturnType<typeof app>>
    let context: BrowserContext
    let page: Page
    let target: Server
    const errors: string[] = []

    beforeAll(async () => {
      // a probe target, so the reliability view has checks to show
      target = createServer((_req, res) => res.end('ok'))
      const targetBase = await listen(target)
      monitor = createMonitor({
        logger: false,
        flushOnExit: false,
        service: 'shop',
        storage: sqliteStorage({ filename: `${tmp.dir}/browser.db` }),
        alerts: [
          { name: 'orders-errors', kind: 'error_rate', route: '/orders/:id', window: '1h', threshold: 0.05 },
          { name: 'openai-daily-budget', kind: 'cost', api: 'openai', window: '1d', threshold: 0.001 },
        ],
        slos: [{ name: 'orders-availability', objective: 0.99, window: '30d', indicator: { kind: 'availability', filter: { route: '/orders/:id' } } }],
        probes: [
          { name: 'orders-api', url: `${targetBase}/health`, intervalMs: 3_600_000 },
          { name: 'nightly-export', heartbeat: { everyMs: 86_400_000 } },
        ],
      })
      await seed(monitor, sampleCalls(Date.now()))
      await monitor.storage.system!.write(systemSamples(Date.now())) // so the health view charts process metrics
      await monitor.probes.runOnce('orders-api')
      await monitor.probes.heartbeat('nightly-export')
      await monitor.alerts.evaluate()
      server = await app(monitor)
      context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
      page = await context.newPage()
      watchConsole(page, errors)
    })
    afterAll(async () => {
      await context?.close()
      await server?.stop()
      await monitor?.close()
      if (target) await close(target)
      tmp.remove()
    })
    afterEach(() => expect(errors).toEqual([]))

    it('shows the sign-in form without credentials, then the overview with the numbers of monitor.stats.summary()', async () => {
      const response = await page.goto(`${server.base}/apimeter/`)
      expect(response!.status()).toBe(401)
      // Chromium logs every 4xx document it loads; this one is the point of the step
      expect(errors.splice(0)).toEqual(['error: Failed to load resource: the server responded with a status of 401 (Unauthorized)'])
      await page.screenshot({ path: `${DOCS}dashboard-signin.png` })
      await page.getByLabel('Dashboard token').fill(TOKEN)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.waitForSelector('[data-metric="requests"][data-value]')
      const { shown: s, summary } = await expected(monitor, page)
      expect(s.to - s.from).toBe(86_400_000)
      expect(s).toEqual(summary)
      expect(s.requests).toBe(23) // the sample's calls of the last 24 hours
      expect(await page.locator('[data-metric="requests"]').textContent()).toBe('23')
      await waitForChartsDrawn(page)
      await page.screenshot({ path: `${DOCS}dashboard-overview.png`, fullPage: true })
    })

    it('draws every chart (non-empty canvases)', async () => {
      const canvases = await page.evaluate(() =>
        [...document.querySelectorAll('canvas')].map((c: any) => {
          const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data
          let painted = 0
          for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) painted++
          return { width: c.width, height: c.height, painted }
        }),
      )
      expect(canvases).toHaveLength(4)
      for (const c of canvases) {
        expect(c.width).toBeGreaterThan(200)
        expect(c.painted).toBeGreaterThan(500)
      }
    })

    it('changes the numbers correctly with the range and the tenant filter', async () => {
      const day = await shown(page)
      await page.selectOption('select[name="range"]', '1h')
      await page.waitForFunction(() => Number(document.getElementById('main')!.dataset.to) - Number(document.getElementById('main')!.dataset.from) === 3_600_000)
      const hour = await expected(monitor, page)
      expect(hour.shown).toEqual(hour.summary)
      expect(hour.shown.requests).toBe(18) // the 3-hour-old checkouts are out
      expect(hour.shown.requests).toBeLessThan(day.requests)
      await page.selectOption('select[name="range"]', '7d')
      await page.waitForFunction(() => Number(document.getElementById('main')!.dataset.to) - Number(document.getElementById('main')!.dataset.from) === 7 * 86_400_000)
      await page.selectOption('select[name="tenant"]', 'acme')
      await page.waitForFunction(() => new URLSearchParams(document.querySelector('select[name="tenant"]')!.value).toString() !== '' && document.getElementById('main')!.getAttribute('aria-busy') === 'false')
      await expect.poll(async () => {
        const e = await expected(monitor, page, { tenantId: 'acme' })
        return e.shown.requests === e.summary.requests && e.shown.cost === e.summary.cost && e.shown.errorRate === e.summary.errorRate
      }).toBe(true)
      const acme = await expected(monitor, page, { tenantId: 'acme' })
      expect(acme.shown.requests).toBe(16) // 8 orders, 5 checkouts and 3 LLM calls in the last 7 days
      const all = await monitor.stats.summary({ from: acme.shown.from, to: acme.shown.to })
      expect(acme.shown.requests).toBeLessThan(all.requests)
      await page.selectOption('select[name="tenant"]', '')
      await page.selectOption('select[name="range"]', '24h')
      await page.waitForFunction(() => Number(document.getElementById('main')!.dataset.to) - Number(document.getElementById('main')!.dataset.from) === 86_400_000)
    })

    it('takes a custom range typed in UTC', async () => {
      const minute = 60_000
      const to = Math.floor(Date.now() / minute) * minute - 30 * minute
      const from = to - 3 * 60 * minute
      const utc = (t: number) => new Date(t).toISOString().slice(0, 16)
      await page.selectOption('select[name="tz"]', 'utc')
      await page.selectOption('select[name="range"]', 'custom')
      await page.fill('input[name="from"]', utc(from))
      await page.fill('input[name="to"]', utc(to))
      await page.locator('input[name="to"]').dispatchEvent('change')
      await page.waitForFunction(([f, t]) => Number(document.getElementById('main').dataset.from) === f && Number(document.getElementById('main').dataset.to) === t, [from, to])
      const custom = await expected(monitor, page)
      expect(custom.shown).toEqual(custom.summary)
      expect(custom.shown.requests).toBe((await monitor.stats.summary({ from, to })).requests)
      await page.selectOption('select[name="tz"]', 'local')
      await page.selectOption('select[name="range"]', '24h')
      await page.waitForFunction(() => Number(document.getElementById('main').dataset.to) - Number(document.getElementById('main').dataset.from) === 86_400_000)
    })

    it('shows a call recorded while the page is open without a reload', async () => {
      const before = await shown(page)
      await page.evaluate(() => (window.marker = true)) // survives only without a reload
      monitor.record({ direction: 'outbound', api: 'openai', method: 'POST', route: '/v1/chat/completions', statusCode: 500, durationMs: 900, cost: 0.5, tenantId: 'acme', model: 'gpt-4o' })
      await monitor.flush()
      await page.waitForFunction((n) => Number(document.querySelector('[data-metric="requests"]')!.dataset.value) === n, before.requests + 1)
      const after = await expected(monitor, page)
      expect(after.shown).toEqual(after.summary)
      expect(after.shown.cost).toBeCloseTo(before.cost + 0.5, 9)
      expect(await page.evaluate(() => window.marker)).toBe(true)
    })

    it('works from the keyboard: views, sorting, and the drill-down to one route', async () => {
      await page.locator('nav a[href="#traffic"]').focus()
      await page.keyboard.press('Enter')
      await page.waitForSelector('#routes tbody tr')
      await waitIdle(page)
      await page.screenshot({ path: `${DOCS}dashboard-routes.png`, fullPage: true })
      const sortByP95 = page.locator('#routes thead th', { hasText: 'p95' }).getByRole('button')
      await sortByP95.focus()
      await page.keyboard.press('Enter')
      await expect.poll(() => page.locator('#routes thead th', { hasText: 'p95' }).getAttribute('aria-sort')).toBe('descending')
      const keys = await page.locator('#routes tbody th').allTextContents()
      expect(keys).toEqual(['/checkout', '/orders/:id']) // /checkout's p95 (~52 ms) is above /orders/:id's (~16 ms)
      await page.locator('#routes tbody th button', { hasText: '/orders/:id' }).focus()
      await page.keyboard.press('Enter')
      await page.waitForSelector('#drill .chip')
      await page.waitForFunction(() => location.hash === '#overview' && document.getElementById('main')!.dataset.view === 'overview')
      await expect.poll(async () => {
        const e = await expected(monitor, page, { route: '/orders/:id' })
        return e.shown.requests === e.summary.requests && e.shown.requests === 12
      }).toBe(true)
      await page.locator('#drill .chip').press('Enter')
      await page.waitForFunction(() => document.querySelector('#drill .chip') === null)
    })

    it('renders the LLM spend, reliability and health views', async () => {
      for (const [view, selector] of [['llm', '#models tbody tr'], ['reliability', '#slos'], ['health', '[data-metric="written"]']] as const) {
        await page.goto(`${server.base}/apimeter/#${view}`)
        await page.waitForSelector(selector)
        await waitIdle(page)
        await page.screenshot({ path: `${DOCS}dashboard-${view}.png`, fullPage: true })
      }
      // the reliability view shows what monitor.alerts, monitor.probes and monitor.slos say
      await page.goto(`${server.base}/apimeter/#reliability`)
      await page.waitForSelector('#slos tbody th')
      const firing = (await monitor.alerts.active()).map((a) => a.rule).sort()
      expect(firing).toEqual(expect.arrayContaining(['openai-daily-budget', 'orders-errors', 'slo:orders-availability:page']))
      expect((await page.locator('#active-alerts tbody th').allTextContents()).sort()).toEqual(firing)
      expect((await page.locator('#probes tbody th').allTextContents()).sort()).toEqual(['nightly-export', 'orders-api'])
      const checks = await monitor.probes.checks({ name: 'orders-api' })
      expect(checks.length).toBeGreaterThan(0)
      expect(await page.locator('#probes tbody tr', { hasText: 'orders-api' }).locator('.bar i.ok').count()).toBe(checks.filter((c) => c.ok).length)
      const [slo] = await monitor.slos.status()
      expect(await page.locator('#slos tbody tr td').nth(1).textContent()).toBe(`${(slo!.sli! * 100).toFixed(2)}%`)
      await page.goto(`${server.base}/apimeter/#llm`)
      await page.waitForSelector('#models tbody tr')
      const range = await page.evaluate(() => ({ from: Number(document.getElementById('main').dataset.from), to: Number(document.getElementById('main').dataset.to) }))
      const models = (await monitor.stats.breakdown({ ...range, by: 'model', orderBy: 'cost' })).filter((r) => r.key !== '(none)')
      expect(models.map((r) => r.key)).toEqual(['gpt-4o', 'gpt-4o-mini']) // the live test's $0.50 call made gpt-4o the costliest
      expect(await page.locator('#models tbody th').allTextContents()).toEqual(models.map((r) => r.key))
    })

    it('is usable on a phone: no sideways scrolling of the page, charts fit the screen', async () => {
      const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, extraHTTPHeaders: { authorization: `Bearer ${TOKEN}` } })
      try {
        const p = await phone.newPage()
        watchConsole(p, errors)
        await p.goto(`${server.base}/apimeter/`)
        await p.waitForSelector('canvas')
        await waitForChartsDrawn(p)
        const fit = await p.evaluate(() => ({ page: document.documentElement.scrollWidth, screen: window.innerWidth, widest: Math.max(...[...document.querySelectorAll('.chart')].map((c: any) => c.getBoundingClientRect().right)) }))
        expect(fit.page).toBeLessThanOrEqual(fit.screen)
        expect(fit.widest).toBeLessThanOrEqual(fit.screen)
        await p.screenshot({ path: `${DOCS}dashboard-phone.png`, fullPage: true })
      } finally {
        await phone.close()
      }
    })

    it('keeps the first load within 150 KB gzipped, every byte from its own origin', async () => {
      const fresh = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${TOKEN}` } })
      try {
        const p = await fresh.newPage()
        watchConsole(p, errors)
        const loaded: { url: string; gzipped: number }[] = []
        const pending: Promise<void>[] = []
        p.on('requestfinished', (request) => {
          pending.push(
            (async () => {
              const response = await request.response()
              const body = request.url().includes('/api/stream') ? Buffer.alloc(0) : await response!.body()
              loaded.push({ url: request.url(), gzipped: gzipSync(body, { level: 9 }).length })
            })(),
          )
        })
        await p.goto(`${server.base}/apimeter/`, { waitUntil: 'load' })
        await p.waitForSelector('[data-metric="requests"][data-value]')
        await Promise.all(pending)
        const urls = loaded.map((l) => new URL(l.url).pathname).sort()
        expect(urls).toEqual(expect.arrayContaining(['/apimeter/', '/apimeter/assets/app.css', '/apimeter/assets/app.js']))
        for (const l of loaded) expect(l.url.startsWith(`${server.base}/apimeter/`)).toBe(true) // no CDN, nothing else
        const total = loaded.reduce((sum, l) => sum + l.gzipped, 0)
        expect(total).toBeLessThanOrEqual(150 * 1024)
        expect(total).toBeGreaterThan(10 * 1024) // uPlot is in there
      } finally {
        await fresh.close()
      }
    })
  })

  describe('two instances on one PostgreSQL', () => {
    it('both pages show the fleet\'s totals', async () => {
      const { schema, drop } = await freshSchema('dash')
      const a = createMonitor({ logger: false, flushOnExit: false, service: 'web', storage: postgresStorage({ connectionString: testUrl(), schema }) })
      const b = createMonitor({ logger: false, flushOnExit: false, service: 'worker', storage: postgresStorage({ connectionString: testUrl(), schema }) })
      const servers = [await app(a), await app(b)]
      const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${TOKEN}` } })
      const errors: string[] = []
      try {
        const calls = sampleCalls(Date.now())
        await seed(a, calls.slice(0, 10))
        await seed(b, calls.slice(10))
        const pages = await Promise.all(servers.map(async (s) => {
          const p = await context.newPage()
          watchConsole(p, errors)
          await p.goto(`${s.base}/apimeter/`)
          await p.waitForSelector('[data-metric="requests"][data-value]')
          return p
        }))
        for (const [i, p] of pages.entries()) {
          const e = await expected(i === 0 ? a : b, p)
          expect(e.shown).toEqual(e.summary)
          expect(e.shown.requests).toBe(23) // 10 written by one instance, 13 by the other
        }
        // a call one instance records shows up on the other's page
        b.record({ direction: 'inbound', method: 'GET', route: '/fleet', statusCode: 200, durationMs: 2 })
        await b.flush()
        await pages[0]!.waitForFunction(() => Number(document.querySelector('[data-metric="requests"]')!.dataset.value) === 24)
        const services = await pages[0]!.locator('select[name="service"] option').allTextContents()
        expect(services).toEqual(['All', 'web', 'worker'])
        expect(errors).toEqual([])
      } finally {
        await context.close()
        for (const s of servers) await s.stop()
        await a.close()
        await b.close()
        await drop()
      }
    })
  })
})

/** Waits until uPlot has painted its canvases (it draws on the next animation frame). */
async function waitForChartsDrawn(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const canvases = [...document.querySelectorAll('canvas')]
    return canvases.length > 0 && canvases.every((c: any) => c.width > 0)
  })
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))))
}

/** Waits until the page has its data (the live stream's first event arrived). */
async function waitIdle(page: Page): Promise<void> {
  await page.waitForFunction(() => document.getElementById('main')!.getAttribute('aria-busy') === 'false')
}
