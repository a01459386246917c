import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../../core/src/cli/main.js'

/** A fresh temporary directory and a function removing it. */
export function tempDir(prefix = 'apimeter-sqlite-'): { dir: string; file: (name?: string) => string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, file: (name = 'apimeter.db') => join(dir, name), remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** Runs the `apimeter` CLI in-process; its exit code and what it printed. */
export async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await runCli(argv, { out: (t) => (out += t), err: (t) => (err += t) })
  return { code, out, err }
}
