import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { buildInstalled, packedFiles, run } from '../../../test/support/package-build.js'

// Builds the real packages (tsup → ESM + .d.ts) into a private node_modules and loads them the way an app does,
// from a separate Node process.
describe('the built @apimeter/fastify package', () => {
  let app: string
  beforeAll(async () => {
    app = await buildInstalled('package-test-fastify', ['core', 'fastify'])
  }, 120_000)

  // Serves one request through the plugin and prints the recorded route.
  const script = `
    const monitor = core.createMonitor({ logger: false })
    const app = Fastify()
    app.register(plugin.apimeterFastify, { monitor, closeMonitor: true })
    app.get('/orgs/:orgId/items/:id', async () => 'ok')
    app.inject({ url: '/orgs/acme/items/7' }).then(async (res) => {
      await monitor.flush()
      const [call] = monitor.storage.calls()
      console.log(JSON.stringify({ route: call.route, status: call.statusCode, exports: Object.keys(plugin) }))
      await app.close()
    })
  `

  it('loads through import', async () => {
    const code = `import * as core from '@apimeter/core'; import * as plugin from '@apimeter/fastify'; import Fastify from 'fastify'; ${script}`
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd: app })
    expect(JSON.parse(stdout)).toEqual({ route: '/orgs/:orgId/items/:id', status: 200, exports: ['apimeterFastify', 'apimeterMetrics'] })
  })

  it('loads through require() (Node >= 20.19 requires ESM natively)', async () => {
    const code = `const core = require('@apimeter/core'); const plugin = require('@apimeter/fastify'); const Fastify = require('fastify'); ${script}`
    const { stdout } = await run(process.execPath, ['--input-type=commonjs', '-e', code], { cwd: app })
    expect(JSON.parse(stdout)).toEqual({ route: '/orgs/:orgId/items/:id', status: 200, exports: ['apimeterFastify', 'apimeterMetrics'] })
  })

  it('ships types (with the route config augmentation), dist and README only, with fastify as a peer dependency', async () => {
    const dir = join(app, 'node_modules/@apimeter/fastify')
    const dts = readFileSync(join(dir, 'dist/index.d.ts'), 'utf8')
    expect(dts).toMatch(/interface FastifyContextConfig \{[\s\S]*apimeter\?: boolean/)
    expect(dts).toMatch(/declare const apimeterFastify: FastifyPluginCallback<ApimeterFastifyOptions/)
    const files = await packedFiles(dir)
    expect(files).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'package.json', 'README.md']))
    expect(files.some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false)
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    expect(manifest).toMatchObject({ type: 'module', engines: { node: '>=20.19' }, peerDependencies: { fastify: '^5' }, dependencies: { 'fastify-plugin': '^5.1.0' } })
  })
})
