import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { runCli } from '../../packages/core/src/cli/main.js'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const bin = fileURLToPath(new URL('../../packages/core/src/cli/bin.ts', import.meta.url))
const execFileP = promisify(execFile)

/** Runs the CLI in this process, capturing what it writes. */
export async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await runCli(argv, { out: (t) => (out += t), err: (t) => (err += t) })
  return { code, out, err }
}

/** Runs the `apimeter` bin (its TypeScript source through tsx) as a child process; resolves its exit code. */
export function binExitCode(...argv: string[]): Promise<number> {
  return execFileP(process.execPath, ['--import', 'tsx', bin, ...argv], { cwd: repoRoot, env: { ...process.env, TSX_TSCONFIG_PATH: `${repoRoot}/tsconfig.json` } }).then(
    () => 0,
    (e: { code: number }) => e.code,
  )
}
