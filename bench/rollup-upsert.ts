// The floor under a rollup run's merges on SQLite: plain multi-row upserts (200 rows per statement, the run's chunk)
// of rows shaped like apimeter's rollup rows, at random keys, into a WITHOUT ROWID table with the same primary key.
// No JavaScript merging, no sketch function: what the database alone costs per rollup row.
//   node --import tsx bench/rollup-upsert.ts [sketchBytes=60] [rounds=10]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'

const sketchBytes = Number(process.argv[2] ?? 60)
const rounds = Number(process.argv[3] ?? 10)
const ROWS = 200
const STATEMENTS = 250
const KEY_COLUMNS = ['level', 'bucket_start', 'service', 'direction', 'api', 'status_code', 'outcome', 'method', 'route', 'tenant_id', 'model']
const INTEGER_KEYS = new Set(['level', 'bucket_start', 'status_code'])
const VALUE_COLUMNS = ['requests', 'cached', 'cost_nanos', 'cost_unknown', 'input_tokens', 'output_tokens', 'cached_input_tokens', 'request_bytes', 'response_bytes', 'duration_sum_us', 'duration_min_us', 'duration_max_us', 'latency_sketch', 'cost_estimated_nanos']

const dir = mkdtempSync(join(tmpdir(), 'apimeter-upsert-'))
const db = new Database(join(dir, 'upsert.db'))
db.pragma('journal_mode = WAL')
db.pragma('synchronous = NORMAL')
db.pragma('cache_size = -32768')
const columns = [...KEY_COLUMNS, ...VALUE_COLUMNS]
db.exec(
  `CREATE TABLE t (${KEY_COLUMNS.map((k) => `${k} ${INTEGER_KEYS.has(k) ? 'INTEGER' : 'TEXT'} NOT NULL`).join(', ')}, ` +
    `${VALUE_COLUMNS.map((v) => `${v} ${v === 'latency_sketch' ? 'BLOB' : 'INTEGER'} NOT NULL`).join(', ')}, PRIMARY KEY (${KEY_COLUMNS.join(', ')})) WITHOUT ROWID`,
)
const upsert = db.prepare(
  `INSERT INTO t (${columns.join(', ')}) VALUES ${Array(ROWS).fill(`(${columns.map(() => '?').join(', ')})`).join(', ')} ` +
    `ON CONFLICT (${KEY_COLUMNS.join(', ')}) DO UPDATE SET requests = requests + excluded.requests`,
)
const sketch = Buffer.alloc(sketchBytes, 3)
const run = db.transaction((batches: unknown[][]) => {
  for (const params of batches) upsert.run(params)
})
let written = 0
for (let round = 0; round < rounds; round++) {
  const batches: unknown[][] = []
  for (let b = 0; b < STATEMENTS; b++) {
    const params: unknown[] = []
    for (let r = 0; r < ROWS; r++) {
      // 3 levels × 720 hours × 5 APIs × 12 statuses × 20 routes × 50 tenants: mostly new keys, like a backfill
      const i = Math.floor(Math.random() * 3_000_000)
      params.push(i % 3, Date.UTC(2026, 0, 1) + (i % 720) * 3_600_000, 'svc', 'outbound', `api${i % 5}`, 200 + (i % 12), 'success', 'GET', `/route/${i % 20}`, `tenant-${i % 50}`, '')
      params.push(1, 0, 5, 0, 1, 1, 0, 0, 100, 1000, 1000, 1000, sketch, 0)
    }
    batches.push(params)
  }
  const started = performance.now()
  run(batches)
  const us = ((performance.now() - started) * 1000) / (ROWS * STATEMENTS)
  written += ROWS * STATEMENTS
  console.log(`${written.toLocaleString('en-US')} rows: ${us.toFixed(2)} µs per upserted row`)
}
db.close()
rmSync(dir, { recursive: true, force: true })
