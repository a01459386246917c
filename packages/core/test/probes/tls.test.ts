import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMonitor } from '@apimeter/core'
import { tempDir } from '../../../storage-sqlite/test/helpers.js'
import { probeClock } from './harness.js'

const DAY = 86_400_000

describe('probes over https', () => {
  const tmp = tempDir('apimeter-probes-tls-')
  let url = ''
  let cert = ''
  let server: ReturnType<typeof createServer>
  beforeAll(async () => {
    // a real certificate for 127.0.0.1, valid 30 days from now
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tmp.file('key.pem'), '-out', tmp.file('cert.pem'), '-days', '30', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
    cert = readFileSync(tmp.file('cert.pem'), 'utf8')
    server = createServer({ key: readFileSync(tmp.file('key.pem')), cert }, (_req, res) => res.end('ok'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/health`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    tmp.remove()
  })

  it('an untrusted certificate fails with tls; a trusted one passes until fewer than certDaysLeft days are left', async () => {
    const clock = probeClock(Date.now())
    const monitor = createMonitor({
      clock,
      runProbes: false,
      logger: false,
      flushOnExit: false,
      probes: [
        { name: 'untrusted', url, intervalMs: DAY },
        { name: 'trusted', url, intervalMs: DAY, tls: { ca: cert }, expect: { bodyIncludes: 'ok', certDaysLeft: 14 } },
      ],
    })
    try {
      const first = await monitor.probes.runOnce()
      expect(first.map((r) => [r.probe, r.checks[0]!.ok, r.checks[0]!.cause])).toEqual([
        ['untrusted', false, 'tls'],
        ['trusted', true, null],
      ])
      // 20 days on, the certificate has about 10 days left
      clock.advance(20 * DAY)
      const [later] = await monitor.probes.runOnce('trusted')
      expect(later!.checks[0]).toMatchObject({ ok: false, statusCode: 200, cause: 'cert_expiring', error: expect.stringMatching(/^the certificate expires in (9|10)(\.\d)? days \(.*\), fewer than 14$/) })
    } finally {
      await monitor.close()
    }
  })
})
