/**
 * A throwaway PostgreSQL cluster for tests, benchmarks and examples: initdb into a temporary directory, start on a
 * free loopback port, stop and delete afterwards. Uses the server binaries on the machine (Debian's packages:
 * `pg_config --bindir`); where they are missing it installs them with apt-get when it can (root), and otherwise
 * says exactly what to install. initdb refuses to run as root, so as root the cluster runs as the `postgres` system
 * user.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A running cluster. */
export interface PgCluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  url: string
  port: number
  dir: string
  /** Stops the server (fast shutdown) without deleting the data directory. */
  stop(mode?: 'fast' | 'immediate'): void
  /** Starts it again on the same port. */
  start(): void
  /** Stops the server and deletes the data directory. Idempotent. */
  destroy(): void
}

const HINT = 'install the PostgreSQL server binaries (Debian/Ubuntu: apt-get install -y postgresql; then pg_config --bindir must print their directory)'

function findBinDir(): string | undefined {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    if (existsSync(join(dir, 'initdb'))) return dir
  } catch {
    // no pg_config: look where Debian puts the versions
  }
  const base = '/usr/lib/postgresql'
  if (!existsSync(base)) return undefined
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))
  return versions[0] ? join(base, versions[0], 'bin') : undefined
}

/** The directory of initdb/pg_ctl, installing the server when possible. */
export function postgresBinDir(): string {
  let dir = findBinDir()
  if (dir) return dir
  const isRoot = process.getuid?.() === 0
  if (isRoot && existsSync('/usr/bin/apt-get')) {
    process.stderr.write('[pg-cluster] PostgreSQL server binaries not found: installing them with apt-get (postgresql)…\n')
    const update = spawnSync('apt-get', ['update'], { stdio: 'inherit' })
    const install = spawnSync('apt-get', ['install', '-y', 'postgresql'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
    if (update.status === 0 && install.status === 0) dir = findBinDir()
  }
  if (!dir) throw new Error(`PostgreSQL server binaries (initdb, pg_ctl) were not found: ${HINT}`)
  return dir
}

/** A free TCP port on 127.0.0.1 (the OS picks it; the listener is closed before it returns). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

/**
 * Creates and starts a cluster. The caller must `destroy()` it (tests do so in their teardown, also on failure).
 *
 * @example
 * ```ts
 * const pg = await startPgCluster()
 * try { … pg.url … } finally { pg.destroy() }
 * ```
 */
export async function startPgCluster(options: { port?: number; durable?: boolean; sharedBuffers?: string } = {}): Promise<PgCluster> {
  const bin = postgresBinDir()
  const asRoot = process.getuid?.() === 0
  const dir = mkdtempSync(join(tmpdir(), 'apimeter-pg-'))
  const data = join(dir, 'data')
  const port = options.port ?? (await freePort())
  if (asRoot) {
    try {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
      chownSync(dir, uid, gid)
    } catch {
      throw new Error('running as root, but there is no postgres system user to run the cluster as (initdb refuses root)')
    }
  }
  chmodSync(dir, 0o700)

  const run = (program: string, args: string[]): void => {
    const command = join(bin, program)
    const result = asRoot
      ? spawnSync('su', ['postgres', '-s', '/bin/sh', '-c', [command, ...args].map(shellQuote).join(' ')], { encoding: 'utf8' })
      : spawnSync(command, args, { encoding: 'utf8' })
    if (result.status !== 0) {
      throw new Error(`${program} ${args.join(' ')} failed (exit ${result.status}): ${result.stderr || result.stdout}`)
    }
  }

  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-locale', '--no-sync'])
  const serverOptions = [
    `-p ${port}`,
    `-k ${dir}`,
    `-c listen_addresses=127.0.0.1`,
    // a throwaway test cluster: durability off unless asked (benchmarks keep PostgreSQL's durable defaults)
    ...(options.durable ? [] : [`-c fsync=off`, `-c synchronous_commit=off`, `-c full_page_writes=off`]),
    `-c max_connections=200`,
    `-c shared_buffers=${options.sharedBuffers ?? '128MB'}`,
  ].join(' ')
  const start = (): void => run('pg_ctl', ['-D', data, '-o', serverOptions, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start'])
  start()
  let destroyed = false
  let running = true
  const cluster: PgCluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    stop(mode = 'fast') {
      if (!running) return
      run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop'])
      running = false
    },
    start() {
      if (running) return
      start()
      running = true
    },
    destroy() {
      if (destroyed) return
      destroyed = true
      try {
        if (running) run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
      } catch {
        // already down
      }
      running = false
      rmSync(dir, { recursive: true, force: true })
    },
  }
  // Never leave a server behind, even when the process ends abruptly.
  process.once('exit', () => cluster.destroy())
  return cluster
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`
}
