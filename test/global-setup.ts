import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * Builds every package once before the tests (tsup → dist), so the tests that load the built packages from a
 * separate Node process see current code, and no two test files build the same package at once.
 */
export default async function setup(): Promise<void> {
  const started = Date.now()
  try {
    await run('npm', ['run', 'build', '--workspaces', '--if-present'], { cwd: root, maxBuffer: 64 * 1024 * 1024 })
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string }
    throw new Error(`building the packages failed:\n${e.stdout ?? ''}\n${e.stderr ?? e.message}`)
  }
  process.stdout.write(`[global setup] packages built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
}
