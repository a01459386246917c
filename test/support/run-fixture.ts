import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** What a fixture process did. */
export interface FixtureResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * Runs a TypeScript file in a child Node process (through tsx, so the repository's tsconfig paths resolve packages to
 * their sources) and collects its output. Rejects when it does not finish within `timeoutMs` (the child is killed).
 * `env` adds to (or overrides) this process's environment; `nodeArgs` are Node options given before the file.
 */
export function runFixture(file: string | URL, args: readonly string[], timeoutMs = 120_000, env: NodeJS.ProcessEnv = {}, nodeArgs: readonly string[] = []): Promise<FixtureResult> {
  const path = typeof file === 'string' ? file : fileURLToPath(file)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', path, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${path} did not finish within ${timeoutMs} ms; stderr: ${stderr}`))
    }, timeoutMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}
