import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const packageDir = fileURLToPath(new URL('..', import.meta.url))
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url))
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

// Builds the real package (tsup → ESM + .d.ts) and loads it the way users do, from a separate Node process.
describe('the built @apimeter/core package', () => {
  beforeAll(async () => {
    await run(process.execPath, [fileURLToPath(new URL('../../../node_modules/tsup/dist/cli-default.js', import.meta.url))], { cwd: packageDir })
  }, 120_000)

  const script = `
    const record = { direction: 'inbound', method: 'GET', route: '/', statusCode: 200, durationMs: 2, cost: 0.5 }
    const m = core.createMonitor({ logger: false })
    m.record(record)
    m.flush().then(() => m.stats.summary()).then((s) => { console.log(JSON.stringify({ requests: s.requests, cost: s.cost, keys: Object.keys(core).length })); return m.close() })
  `

  it('loads through import', async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', `import * as core from '@apimeter/core'; ${script}`], { cwd: repoRoot })
    expect(JSON.parse(stdout)).toMatchObject({ requests: 1, cost: 0.5 })
  })

  it('loads through require() (Node >= 20.19 requires ESM natively)', async () => {
    const { stdout, stderr } = await run(process.execPath, ['--input-type=commonjs', '-e', `const core = require('@apimeter/core'); ${script}`], { cwd: repoRoot })
    expect(JSON.parse(stdout)).toMatchObject({ requests: 1, cost: 0.5 })
    expect(stderr).not.toMatch(/is not a constructor/)
  })

  it('exposes @apimeter/core/testing with types', async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', `import('@apimeter/core/package.json', { with: { type: 'json' } }).then((m) => console.log(JSON.stringify(m.default.exports['./testing'])))`], { cwd: repoRoot })
    expect(JSON.parse(stdout)).toEqual({ types: './dist/testing.d.ts', default: './dist/testing.js' })
    const dts = readFileSync(new URL('../dist/testing.d.ts', import.meta.url), 'utf8')
    expect(dts).toMatch(/runStorageConformance/)
    expect(readFileSync(new URL('../dist/index.d.ts', import.meta.url), 'utf8')).toMatch(/declare function createMonitor/)
  })

  it('runs the apimeter bin', async () => {
    const bin = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node')).toBe(true)
    const { stdout } = await run(process.execPath, [bin, '--version'])
    expect(stdout.trim()).toBe(pkg.version)
    const help = await run(process.execPath, [bin, '--help'])
    expect(help.stdout).toMatch(/apimeter <command>/)
  })

  it('packs dist, the bin and the README, and declares engines and exports', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: packageDir })
    const [info] = JSON.parse(stdout) as [{ files: { path: string }[] }]
    const files = info.files.map((f) => f.path)
    expect(files).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'dist/testing.js', 'dist/cli.js', 'package.json', 'README.md']))
    expect(files.some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false)
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    expect(manifest.engines).toEqual({ node: '>=20.19' })
    expect(manifest.type).toBe('module')
  })
})
