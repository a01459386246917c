// npm run bench [-- suite…]: runs the benchmark suites, prints their figures and rewrites their sections of
// docs/benchmarks.md. Not part of npm test: timings on shared machines are noisy, so only ratios measured side by
// side carry weight.
import { fileURLToPath } from 'node:url'
import { fmt, machine, type SuiteResult, writeReport } from './lib.js'
import { runExportSuite } from './suites/export.js'
import { runPeersSuite } from './suites/peers.js'
import { runPostgresSuite } from './suites/postgres.js'
import { runRecordSuite } from './suites/record.js'
import { runRollupsSuite } from './suites/rollups.js'
import { runSqliteSuite } from './suites/sqlite.js'
import { runSystemSuite } from './suites/system.js'
import { runTenantsSuite } from './suites/tenants.js'

const suites: Record<string, () => Promise<SuiteResult>> = {
  record: runRecordSuite,
  sqlite: runSqliteSuite,
  rollups: runRollupsSuite,
  postgres: runPostgresSuite,
  tenants: runTenantsSuite,
  peers: runPeersSuite,
  system: runSystemSuite,
  export: runExportSuite,
}

const wanted = process.argv.slice(2)
const unknown = wanted.filter((w) => !(w in suites))
if (unknown.length) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; known: ${Object.keys(suites).join(', ')}`)
  process.exit(2)
}

console.log(`apimeter benchmarks on ${machine()}`)
const results: SuiteResult[] = []
for (const id of wanted.length ? wanted : Object.keys(suites)) {
  console.log(`\n▶ ${id}`)
  const result = await suites[id]!()
  for (const f of result.figures) {
    console.log(`  ${f.name.replace(/`/g, '')}: ${fmt(f.value, f.unit === 'ratio' ? 2 : 0)} ${f.unit === 'ratio' ? '' : f.unit}${f.target ? `  (target ${f.target}: ${f.met ? 'met' : 'NOT met'})` : ''}`)
  }
  results.push(result)
  // written after every suite, so a later suite that fails does not lose the figures already measured
  writeReport(fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url)), results)
}
console.log('\nwritten to docs/benchmarks.md')
