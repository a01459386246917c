/**
 * The headless Chromium the dashboard's browser tests drive (through playwright-core, which downloads no browser of
 * its own here): Debian's `chromium` package. Where it is missing it is installed with apt-get when possible (root),
 * as scripts/pg-cluster.ts does for PostgreSQL; otherwise the error says exactly what to install.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

/** Where Debian's package puts the browser. */
export const CHROMIUM = '/usr/bin/chromium'

/**
 * The flags every test launch uses: headless without a sandbox (tests run as root in a container), and without the
 * background networking (component updates, sync, QUIC probes) that a closed network refuses.
 */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/**
 * The browser's path, installing Debian's `chromium` first when it is missing and this process may (root with
 * apt-get). Throws, naming the package, when it cannot.
 *
 * @example
 * ```ts
 * const browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS })
 * ```
 */
export function chromiumPath(): string {
  if (existsSync(CHROMIUM)) return CHROMIUM
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    process.stderr.write('[chromium] /usr/bin/chromium not found: installing Debian package chromium with apt-get…\n')
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    const update = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=900', 'update'], { stdio: 'inherit', env })
    const install = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=900', 'install', '-y', 'chromium'], { stdio: 'inherit', env })
    if (update.status === 0 && install.status === 0 && existsSync(CHROMIUM)) return CHROMIUM
  }
  throw new Error(`headless Chromium (${CHROMIUM}) was not found: install it (Debian/Ubuntu: apt-get install -y chromium)`)
}
