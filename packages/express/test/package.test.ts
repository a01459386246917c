import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { buildInstalled, packedFiles, run } from '../../../test/support/package-build.js'

// Builds the real packages (tsup → ESM + .d.ts) into a private node_modules and loads them the way an app does,
// from a separate Node process, on both Express majors.
describe('the built @apimeter/express package', () => {
  let app: string
  beforeAll(async () => {
    app = await buildInstalled('package-test-express', ['core', 'express'])
  }, 120_000)

  // Serves one request through the middleware and prints the recorded route.
  const script = (express: string) => `
    const app = express()
    const monitor = core.createMonitor({ logger: false })
    app.use(mw.apimeter(monitor))
    const router = express.Router()
    router.get('/:id', (req, res) => res.send('ok'))
    app.use('/orgs/:orgId/items', router)
    const server = app.listen(0, '127.0.0.1', async () => {
      await (await fetch('http://127.0.0.1:' + server.address().port + '/orgs/acme/items/7')).text()
      while ((await monitor.flush(), monitor.storage.calls().length === 0)) await new Promise((r) => setTimeout(r, 5))
      const [call] = monitor.storage.calls()
      console.log(JSON.stringify({ route: call.route, status: call.statusCode, exports: Object.keys(mw), express: '${express}' }))
      server.close()
      await monitor.close()
    })
  `

  it('loads through import (Express 5)', async () => {
    const code = `import * as core from '@apimeter/core'; import * as mw from '@apimeter/express'; import express from 'express'; ${script('5')}`
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd: app })
    expect(JSON.parse(stdout)).toEqual({ route: '/orgs/:orgId/items/:id', status: 200, exports: ['apimeter', 'metricsHandler'], express: '5' })
  })

  it('loads through require() (Express 4; Node >= 20.19 requires ESM natively)', async () => {
    const code = `const core = require('@apimeter/core'); const mw = require('@apimeter/express'); const express = require('express4'); ${script('4')}`
    const { stdout } = await run(process.execPath, ['--input-type=commonjs', '-e', code], { cwd: app })
    expect(JSON.parse(stdout)).toEqual({ route: '/orgs/:orgId/items/:id', status: 200, exports: ['apimeter', 'metricsHandler'], express: '4' })
  })

  it('ships types, dist and README only, with express as a peer dependency', async () => {
    const dir = join(app, 'node_modules/@apimeter/express')
    expect(readFileSync(join(dir, 'dist/index.d.ts'), 'utf8')).toMatch(/declare function apimeter\(monitor: Monitor, options\?: ApimeterExpressOptions\): RequestHandler/)
    const files = await packedFiles(dir)
    expect(files).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'package.json', 'README.md']))
    expect(files.some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false)
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    expect(manifest).toMatchObject({ type: 'module', engines: { node: '>=20.19' }, peerDependencies: { express: '^4.21 || ^5' } })
    expect(manifest.dependencies).not.toHaveProperty('express')
  })
})
