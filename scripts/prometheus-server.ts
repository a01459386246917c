/**
 * A throwaway Prometheus server for tests: a temporary config and data directory, started on a free loopback port
 * with a short scrape interval, stopped and deleted afterwards. Uses the `prometheus` binary on the machine
 * (Debian's package); where it is missing it installs it with apt-get when it can (root), and otherwise says
 * exactly what to install. Only the test files that need it start one (it is not part of the global setup).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './pg-cluster.js'

/** A running Prometheus. */
export interface PrometheusServer {
  /** `http://127.0.0.1:<port>` */
  url: string
  /** Runs an instant query through the HTTP API (`/api/v1/query`) and returns its vector's samples. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: number }[]>
  /** Stops the server and deletes its directory. Idempotent. */
  destroy(): Promise<void>
}

/** What to scrape. */
export interface ScrapeTarget {
  /** `127.0.0.1:<port>` */
  target: string
  path?: string
  /** Sent as `Authorization: Bearer <token>`. */
  bearerToken?: string
  /** @default 1000 */
  intervalMs?: number
}

const HINT = 'install Prometheus (Debian/Ubuntu: apt-get install -y prometheus; the prometheus binary must be on PATH)'

function findBinary(): string | undefined {
  try {
    const path = execFileSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    return path !== '' && existsSync(path) ? path : undefined
  } catch {
    return existsSync('/usr/bin/prometheus') ? '/usr/bin/prometheus' : undefined
  }
}

/** The prometheus binary, installing Debian's package when possible. */
export function prometheusBinary(): string {
  let bin = findBinary()
  if (bin) return bin
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    process.stderr.write('[prometheus] prometheus not found: installing it with apt-get (prometheus)…\n')
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    const update = spawnSync('apt-get', ['update'], { stdio: 'inherit' })
    const install = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=900', 'install', '-y', '--no-install-recommends', 'prometheus'], { stdio: 'inherit', env })
    if (update.status === 0 && install.status === 0) bin = findBinary()
  }
  if (!bin) throw new Error(`the prometheus binary was not found: ${HINT}`)
  return bin
}

/**
 * Starts Prometheus scraping `target`, and resolves once it is ready. The caller must `destroy()` it.
 *
 * @example
 * ```ts
 * const prom = await startPrometheus({ target: '127.0.0.1:3000', bearerToken: 't' })
 * try { await prom.query('up') } finally { await prom.destroy() }
 * ```
 */
export async function startPrometheus(scrape: ScrapeTarget): Promise<PrometheusServer> {
  const bin = prometheusBinary()
  const dir = mkdtempSync(join(tmpdir(), 'apimeter-prom-'))
  const port = await freePort()
  const interval = `${scrape.intervalMs ?? 1000}ms`
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  scrape_timeout: ${interval}`,
    'scrape_configs:',
    '  - job_name: app',
    `    metrics_path: ${JSON.stringify(scrape.path ?? '/metrics')}`,
    ...(scrape.bearerToken ? ['    authorization:', '      type: Bearer', `      credentials: ${JSON.stringify(scrape.bearerToken)}`] : []),
    '    static_configs:',
    `      - targets: [${JSON.stringify(scrape.target)}]`,
    '',
  ].join('\n')
  writeFileSync(join(dir, 'prometheus.yml'), config)
  const child: ChildProcess = spawn(
    bin,
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let log = ''
  child.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)))
  let exited = false
  child.on('exit', () => (exited = true))
  const url = `http://127.0.0.1:${port}`
  const destroy = async (): Promise<void> => {
    if (!exited) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await gone
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 30_000
  for (;;) {
    if (exited) {
      await destroy()
      throw new Error(`prometheus exited before it was ready:\n${log}`)
    }
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false)
    if (ready) break
    if (Date.now() > deadline) {
      await destroy()
      throw new Error(`prometheus was not ready within 30 s:\n${log}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    url,
    destroy,
    async query(promql) {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`)
      const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } }
      if (body.status !== 'success' || body.data === undefined) throw new Error(`query ${promql} failed: ${body.error ?? response.status}`)
      if (body.data.resultType !== 'vector') throw new Error(`query ${promql} returned a ${body.data.resultType}, not a vector`)
      return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }))
    },
  }
}
