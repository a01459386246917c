import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { testUrl } from '../packages/storage-postgres/test/helpers.js'

// Loads the built packages (dist, built by the global setup) the way users do, from a separate Node process,
// through both `import` and `require()` (Node >= 20.19 requires ES modules natively).
const run = promisify(execFile)
const repoRoot = fileURLToPath(new URL('..', import.meta.url))
const manifest = (pkg: string) => JSON.parse(readFileSync(new URL(`../packages/${pkg}/package.json`, import.meta.url), 'utf8'))

const node = (args: string[]) => run(process.execPath, args, { cwd: repoRoot })

describe('@apimeter/core (built)', () => {
  const script = `
    const record = { direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 2, cost: 0.5 }
    const m = core.createMonitor({ logger: false })
    m.record(record)
    m.flush().then(() => m.stats.summary()).then((s) => { console.log(JSON.stringify({ requests: s.requests, cost: s.cost })); return m.close() })
  `

  it('loads through import', async () => {
    const { stdout } = await node(['--input-type=module', '-e', `import * as core from '@apimeter/core'; ${script}`])
    expect(JSON.parse(stdout)).toEqual({ requests: 1, cost: 0.5 })
  })

  it('loads through require()', async () => {
    const { stdout, stderr } = await node(['--input-type=commonjs', '-e', `const core = require('@apimeter/core'); ${script}`])
    expect(JSON.parse(stdout)).toEqual({ requests: 1, cost: 0.5 })
    expect(stderr).not.toMatch(/is not a constructor/)
  })

  it('exposes the @apimeter/core/sql and /inbound subpaths through import and require(), with types', async () => {
    const probe = `console.log(JSON.stringify([typeof sql.createSqlStorage, typeof sql.sqliteDialect.writeTransaction, typeof inbound.createInboundMeter, 'createSqlStorage' in core]))`
    const expected = ['function', 'function', 'function', false]
    const esm = await node(['--input-type=module', '-e', `import * as core from '@apimeter/core'; import * as sql from '@apimeter/core/sql'; import * as inbound from '@apimeter/core/inbound'; ${probe}`])
    expect(JSON.parse(esm.stdout)).toEqual(expected)
    const cjs = await node(['--input-type=commonjs', '-e', `const core = require('@apimeter/core'); const sql = require('@apimeter/core/sql'); const inbound = require('@apimeter/core/inbound'); ${probe}`])
    expect(JSON.parse(cjs.stdout)).toEqual(expected)
    expect(manifest('core').exports['./sql']).toEqual({ types: './dist/sql.d.ts', default: './dist/sql.js' })
    expect(manifest('core').exports['./inbound']).toEqual({ types: './dist/inbound.d.ts', default: './dist/inbound.js' })
    expect(readFileSync(new URL('../packages/core/dist/sql.d.ts', import.meta.url), 'utf8')).toMatch(/createSqlStorage/)
  })

  it('exposes @apimeter/core/testing with types', () => {
    expect(manifest('core').exports['./testing']).toEqual({ types: './dist/testing.d.ts', default: './dist/testing.js' })
    expect(readFileSync(new URL('../packages/core/dist/testing.d.ts', import.meta.url), 'utf8')).toMatch(/runStorageConformance/)
    expect(readFileSync(new URL('../packages/core/dist/index.d.ts', import.meta.url), 'utf8')).toMatch(/declare function createMonitor/)
  })

  it('runs the apimeter bin', async () => {
    const bin = fileURLToPath(new URL('../packages/core/dist/cli.js', import.meta.url))
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node')).toBe(true)
    const { stdout } = await node([bin, '--version'])
    expect(stdout.trim()).toBe(manifest('core').version)
    expect((await node([bin, '--help'])).stdout).toMatch(/apimeter <command>/)
  })
})

describe('@apimeter/storage-sqlite (built)', () => {
  const script = `
    const monitor = core.createMonitor({ logger: false, storage: sqlite.sqliteStorage({ filename: ':memory:' }) })
    monitor.record({ direction: 'outbound', api: 'x', method: 'GET', route: '/', statusCode: 200, durationMs: 3, cost: 0.25 })
    monitor.flush().then(() => monitor.stats.summary()).then((s) => { console.log(JSON.stringify({ requests: s.requests, cost: s.cost })); return monitor.close() })
  `
  it('loads through import', async () => {
    const { stdout } = await node(['--input-type=module', '-e', `import * as core from '@apimeter/core'; import * as sqlite from '@apimeter/storage-sqlite'; ${script}`])
    expect(JSON.parse(stdout)).toEqual({ requests: 1, cost: 0.25 })
  })

  it('loads through require()', async () => {
    const { stdout } = await node(['--input-type=commonjs', '-e', `const core = require('@apimeter/core'); const sqlite = require('@apimeter/storage-sqlite'); ${script}`])
    expect(JSON.parse(stdout)).toEqual({ requests: 1, cost: 0.25 })
  })

  it('lets the built apimeter bin migrate a SQLite file', async () => {
    const bin = fileURLToPath(new URL('../packages/core/dist/cli.js', import.meta.url))
    const file = `${repoRoot}/.tmp-cli-${process.pid}.db`
    try {
      const { stdout } = await node([bin, 'migrate', 'latest', '--db', file])
      expect(stdout).toMatch(/applied\s+0001_initial/)
      expect((await node([bin, 'migrate', 'status', '--db', file])).stdout).toMatch(/up to date/)
    } finally {
      for (const suffix of ['', '-wal', '-shm']) await run('rm', ['-f', `${file}${suffix}`])
    }
  })
})

describe('@apimeter/storage-sqlite (built) in its worker thread', () => {
  // thread: 'worker' throws unless dist/sqlite-worker.js is found beside the module; the script never calls close():
  // the idle worker must not keep the process alive (execFile resolves only when the process has exited).
  const script = (file: string) => `
    const storage = sqlite.sqliteStorage({ filename: ${JSON.stringify(file)}, thread: 'worker' })
    const monitor = core.createMonitor({ logger: false, storage })
    monitor.record({ direction: 'outbound', api: 'x', method: 'GET', route: '/', statusCode: 200, durationMs: 3, cost: 0.25 })
    monitor.flush().then(() => monitor.stats.summary()).then((s) => console.log(JSON.stringify({ requests: s.requests, cost: s.cost })))
  `
  it.each([
    ['import', 'module', `import * as core from '@apimeter/core'; import * as sqlite from '@apimeter/storage-sqlite';`],
    ['require()', 'commonjs', `const core = require('@apimeter/core'); const sqlite = require('@apimeter/storage-sqlite');`],
  ])('writes and reads a file through %s, and the process exits without close()', async (loader, type, load) => {
    const file = `${repoRoot}/.tmp-worker-${type}-${process.pid}.db`
    try {
      const { stdout } = await run(process.execPath, [`--input-type=${type}`, '-e', `${load} ${script(file)}`], { cwd: repoRoot, timeout: 30_000 })
      expect(JSON.parse(stdout)).toEqual({ requests: 1, cost: 0.25 })
      expect(existsSync(`${repoRoot}/packages/storage-sqlite/dist/sqlite-worker.js`)).toBe(true)
    } finally {
      for (const suffix of ['', '-wal', '-shm']) await run('rm', ['-f', `${file}${suffix}`])
    }
  })
})

describe('@apimeter/storage-postgres (built)', () => {
  // A schema of its own per loader, so the two checks never see each other's rows.
  const script = (schema: string) => `
    const storage = pg.postgresStorage({ connectionString: process.env.APIMETER_TEST_PG_URL, schema: '${schema}' })
    const monitor = core.createMonitor({ logger: false, storage })
    monitor.record({ direction: 'outbound', api: 'x', method: 'GET', route: '/', statusCode: 200, durationMs: 3, cost: 0.125 })
    monitor.flush().then(() => monitor.stats.summary()).then((s) => { console.log(JSON.stringify({ requests: s.requests, cost: s.cost })); return monitor.close() })
  `
  const nodePg = (args: string[]) => run(process.execPath, args, { cwd: repoRoot, env: { ...process.env, APIMETER_TEST_PG_URL: testUrl() } })
  const schema = (loader: string) => `built_${loader}_${process.pid}`

  it('loads through import and writes to a real server', async () => {
    const { stdout } = await nodePg(['--input-type=module', '-e', `import * as core from '@apimeter/core'; import * as pg from '@apimeter/storage-postgres'; ${script(schema('esm'))}`])
    expect(JSON.parse(stdout)).toEqual({ requests: 1, cost: 0.125 })
  })

  it('loads through require() and writes to a real server', async () => {
    const { stdout } = await nodePg(['--input-type=commonjs', '-e', `const core = require('@apimeter/core'); const pg = require('@apimeter/storage-postgres'); ${script(schema('cjs'))}`])
    expect(JSON.parse(stdout)).toEqual({ requests: 1, cost: 0.125 })
  })
})

describe('@apimeter/dashboard (built)', () => {
  // Serves the page and its built assets (dist/assets, found beside the built module) from a separate process.
  const script = `
    const monitor = core.createMonitor({ logger: false })
    dash.serveDashboard(monitor, { port: 0 }).then(async (served) => {
      const page = await fetch(served.url)
      const js = await fetch(served.url + 'assets/app.js')
      const css = await fetch(served.url + 'assets/app.css')
      console.log(JSON.stringify({ page: page.status, js: [js.status, (await js.text()).length > 10000], css: css.status, exports: Object.keys(dash).sort() }))
      await served.close()
      await monitor.close()
    })
  `
  const exports = ['RANGES', 'VIEWS', 'createDashboardHandler', 'dashboard', 'dashboardFastify', 'isLoopback', 'serveDashboard']
  it.each([
    ['import', 'module', `import * as core from '@apimeter/core'; import * as dash from '@apimeter/dashboard';`],
    ['require()', 'commonjs', `const core = require('@apimeter/core'); const dash = require('@apimeter/dashboard');`],
  ])('loads through %s and serves its page and assets', async (_loader, type, load) => {
    const { stdout } = await node([`--input-type=${type}`, '-e', `${load} ${script}`])
    expect(JSON.parse(stdout)).toEqual({ page: 200, js: [200, true], css: 200, exports })
  })

  it('packs its page assets', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: `${repoRoot}/packages/dashboard` })
    const files = (JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((f) => f.path)
    expect(files).toEqual(expect.arrayContaining(['dist/assets/app.js', 'dist/assets/app.css']))
  })
})

describe('@apimeter/otel (built)', () => {
  const script = `
    const monitor = core.createMonitor({ logger: false, metrics: true })
    monitor.record({ direction: 'inbound', method: 'GET', route: '/a/:id', statusCode: 200, durationMs: 12 })
    const exporter = new sdk.InMemoryMetricExporter(sdk.AggregationTemporality.CUMULATIVE)
    const reader = new sdk.PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3600000, metricProducers: [otel.apimeterMetricProducer(monitor)] })
    const provider = new sdk.MeterProvider({ readers: [reader] })
    reader.forceFlush().then(() => {
      const metric = exporter.getMetrics()[0].scopeMetrics[0].metrics.find((m) => m.descriptor.name === 'http.server.request.duration')
      console.log(JSON.stringify({ route: metric.dataPoints[0].attributes['http.route'], count: metric.dataPoints[0].value.count }))
      return provider.shutdown().then(() => monitor.close())
    })
  `
  const expected = { route: '/a/:id', count: 1 }

  it('loads through import', async () => {
    const { stdout } = await node(['--input-type=module', '-e', `import * as core from '@apimeter/core'; import * as otel from '@apimeter/otel'; import * as sdk from '@opentelemetry/sdk-metrics'; ${script}`])
    expect(JSON.parse(stdout)).toEqual(expected)
  })

  it('loads through require()', async () => {
    const { stdout } = await node(['--input-type=commonjs', '-e', `const core = require('@apimeter/core'); const otel = require('@apimeter/otel'); const sdk = require('@opentelemetry/sdk-metrics'); ${script}`])
    expect(JSON.parse(stdout)).toEqual(expected)
  })
})

describe('package manifests', () => {
  it.each(['core', 'storage-sqlite', 'storage-postgres', 'otel', 'dashboard'])('%s packs dist and README only, declares engines, ESM and exports', async (pkg) => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: `${repoRoot}/packages/${pkg}` })
    const files = (JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((f) => f.path)
    expect(files).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'package.json', 'README.md']))
    expect(files.some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false)
    const m = manifest(pkg)
    expect(m.engines).toEqual({ node: '>=20.19' })
    expect(m.type).toBe('module')
    expect(m.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' })
  })
})
