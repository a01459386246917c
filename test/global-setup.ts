import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { chromiumPath } from '../scripts/chromium.js'
import { type PgCluster, startPgCluster } from '../scripts/pg-cluster.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * Runs once for the whole test run:
 * - builds every package (tsup → dist), so tests that load the built packages from a separate Node process see
 *   current code, and no two test files build the same package at once;
 * - makes sure headless Chromium is installed for the dashboard's browser tests (apt-get when missing);
 * - starts a throwaway PostgreSQL cluster on a free loopback port for the PostgreSQL tests
 *   (`APIMETER_TEST_PG_URL`), and stops and deletes it afterwards, also when tests fail.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const started = Date.now()
  chromiumPath()
  const [, cluster] = await Promise.all([build(), startPg()])
  process.stdout.write(`[global setup] packages built, PostgreSQL ${cluster.url} up, in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
  return async () => {
    cluster.destroy()
  }
}

async function build(): Promise<void> {
  try {
    await run('npm', ['run', 'build', '--workspaces', '--if-present'], { cwd: root, maxBuffer: 64 * 1024 * 1024 })
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string }
    throw new Error(`building the packages failed:\n${e.stdout ?? ''}\n${e.stderr ?? e.message}`, { cause: error })
  }
}

async function startPg(): Promise<PgCluster> {
  const cluster = await startPgCluster()
  process.env.APIMETER_TEST_PG_URL = cluster.url
  return cluster
}
