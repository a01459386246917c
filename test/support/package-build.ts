import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

export const run = promisify(execFile)
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const tsup = join(repoRoot, 'node_modules/tsup/dist/cli-default.js')

/**
 * Builds workspace packages with tsup (their own tsup.config.ts) into `.tmp/<name>/node_modules/<package>`, with
 * their package.json and README, and returns `.tmp/<name>`. A Node process started there resolves the built
 * packages as an installed app would, and everything else (frameworks, zod) from the repository's node_modules.
 * Building into a private directory keeps parallel package tests from racing on a shared `dist/`.
 */
export async function buildInstalled(name: string, packages: readonly string[]): Promise<string> {
  const root = join(repoRoot, '.tmp', name)
  rmSync(root, { recursive: true, force: true })
  for (const dir of packages) {
    const packageDir = join(repoRoot, 'packages', dir)
    const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { name: string }
    const target = join(root, 'node_modules', manifest.name)
    mkdirSync(target, { recursive: true })
    await run(process.execPath, [tsup, '--out-dir', join(target, 'dist')], { cwd: packageDir })
    copyFileSync(join(packageDir, 'package.json'), join(target, 'package.json'))
    copyFileSync(join(packageDir, 'README.md'), join(target, 'README.md'))
  }
  return root
}

/** Files `npm pack` would publish from a built package directory. */
export async function packedFiles(packageDir: string): Promise<string[]> {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: packageDir })
  const [info] = JSON.parse(stdout) as [{ files: { path: string }[] }]
  return info.files.map((f) => f.path)
}
