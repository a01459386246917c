import { execFile } from 'node:child_process'
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

// The `apimeter` bin of @apimeter/core is the committed shim packages/core/bin/apimeter.js: npm links a bin only
// when its file exists at install time, and a fresh clone has no dist/ then. These check that npm linked it, that
// `npx apimeter` works from the repository root, that it runs without any dist/ (what a fresh clone has right
// after `npm install`), and that the bin in the published tarball runs the built CLI.
const run = promisify(execFile)
const repoRoot = fileURLToPath(new URL('..', import.meta.url))
const shim = join(repoRoot, 'packages/core/bin/apimeter.js')
const version = (JSON.parse(readFileSync(join(repoRoot, 'packages/core/package.json'), 'utf8')) as { version: string }).version
const tmp = mkdtempSync(join(tmpdir(), 'apimeter-bin-'))
const scratch = join(repoRoot, '.tmp', `bin-test-${process.pid}`)
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true })
  rmSync(scratch, { recursive: true, force: true })
})

describe('the apimeter bin in this repository', () => {
  it('is the committed shim, linked by npm into node_modules/.bin', async () => {
    await run('git', ['ls-files', '--error-unmatch', 'packages/core/bin/apimeter.js'], { cwd: repoRoot })
    expect(lstatSync(shim).mode & 0o111, 'bin/apimeter.js is executable').not.toBe(0)
    expect(readFileSync(shim, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true)
    const link = join(repoRoot, 'node_modules/.bin/apimeter')
    expect(existsSync(link), 'node_modules/.bin/apimeter is missing: run npm install').toBe(true)
    expect(realpathSync(link), 'node_modules/.bin/apimeter links an old target: run npm rebuild @apimeter/core').toBe(realpathSync(shim))
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'packages/core/package.json'), 'utf8')) as { bin: unknown; files: string[] }
    expect(manifest.bin).toEqual({ apimeter: './bin/apimeter.js' })
  })

  it('runs through npx from the repository root', async () => {
    // offline: when the bin is not linked, npx must fail rather than fetch some registry package named apimeter
    const env = { ...process.env, npm_config_offline: 'true' }
    expect((await run('npx', ['apimeter', '--version'], { cwd: repoRoot, env })).stdout.trim()).toBe(version)
    const db = join(tmp, 'npx.db')
    expect((await run('npx', ['apimeter', 'migrate', 'latest', '--db', db], { cwd: repoRoot, env })).stdout).toMatch(/applied\s+0001_initial/)
    expect((await run('npx', ['apimeter', 'migrate', 'status', '--db', db], { cwd: repoRoot, env })).stdout).toMatch(/up to date/)
  })

  it('runs the TypeScript source when no package is built, as in a fresh clone right after npm install', async () => {
    // A copy of the parts of a checkout the CLI needs, without any dist/; dependencies resolve from the repository.
    const checkout = join(scratch, 'checkout')
    for (const path of ['tsconfig.json', 'tsconfig.base.json', 'packages/core/package.json', 'packages/core/bin', 'packages/core/src', 'packages/storage-sqlite/package.json', 'packages/storage-sqlite/src']) {
      cpSync(join(repoRoot, path), join(checkout, path), { recursive: true })
    }
    expect(existsSync(join(checkout, 'packages/core/dist')) || existsSync(join(checkout, 'packages/storage-sqlite/dist'))).toBe(false)
    const bin = join(checkout, 'packages/core/bin/apimeter.js')
    const db = join(tmp, 'unbuilt.db')
    expect((await run(process.execPath, [bin, '--version'], { cwd: tmp })).stdout.trim()).toBe(version)
    expect((await run(process.execPath, [bin, 'migrate', 'latest', '--db', db], { cwd: tmp })).stdout).toMatch(/applied\s+0003_alerts/)
    expect((await run(process.execPath, [bin, 'migrate', 'status', '--db', db], { cwd: tmp })).stdout).toMatch(/up to date/)
  })
})

describe('the apimeter bin of the published @apimeter/core', () => {
  it('is in the tarball and runs the built CLI (dist/cli.js; the tarball has no src/)', async () => {
    const packDir = join(scratch, 'pack')
    mkdirSync(packDir, { recursive: true })
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: join(repoRoot, 'packages/core') })
    const [info] = JSON.parse(stdout) as [{ filename: string; files: { path: string; mode: number }[] }]
    const files = new Map(info.files.map((f) => [f.path, f.mode]))
    expect(files.get('bin/apimeter.js')! & 0o111).not.toBe(0)
    expect(files.has('dist/cli.js')).toBe(true)
    expect([...files.keys()].some((f) => f.startsWith('src/'))).toBe(false)
    // installed as an app would have it; its dependencies (and @apimeter/storage-sqlite) resolve from the repository
    const installed = join(scratch, 'app/node_modules/@apimeter/core')
    mkdirSync(installed, { recursive: true })
    await run('tar', ['-xzf', join(packDir, info.filename), '-C', installed, '--strip-components=1'])
    const bin = join(installed, 'bin/apimeter.js')
    expect((await run(bin, ['--version'], { cwd: tmp })).stdout.trim()).toBe(version)
    expect((await run(bin, ['--help'], { cwd: tmp })).stdout).toMatch(/apimeter <command>/)
    const db = join(tmp, 'published.db')
    expect((await run(bin, ['migrate', 'latest', '--db', db], { cwd: tmp })).stdout).toMatch(/applied\s+0001_initial/)
  })
})
