import type { CallRecord } from '@apimeter/core'
import { CALL_COLUMN_SPECS, CALL_COLUMNS, TABLES, writeCallRow } from '@apimeter/core/sql'
import type pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'

/**
 * The write path of a batch: one `COPY … FROM STDIN` in PostgreSQL's text format, in a transaction whose id it reads.
 * COPY costs the server about half of what the same rows cost as an `INSERT … SELECT FROM UNNEST(arrays)` (no array
 * parsing, no speculative insertion, multi-row heap inserts), and the text is cheaper to build here than pg's array
 * parameters.
 *
 * COPY has no `ON CONFLICT`: a batch retried after a commit whose acknowledgement was lost (or after a write that
 * timed out here and committed later) fails on the `(call_id, ts)` unique index instead; it is then written again
 * with {@link INSERT_IGNORING_DUPLICATES}, which skips the rows already there.
 */

const WIDTH = CALL_COLUMNS.length
const COPY_SQL = `COPY ${TABLES.calls} (${CALL_COLUMNS.join(', ')}) FROM STDIN`

// Column names, array element types and the JSON cast all come from the column specs (the field table).
const INSERT_IGNORING_DUPLICATES = `INSERT INTO ${TABLES.calls} (${CALL_COLUMNS.join(', ')})
SELECT ${CALL_COLUMN_SPECS.map((c) => (c.storage === 'json' ? `${c.name}::jsonb` : c.name)).join(', ')}
FROM UNNEST(${CALL_COLUMN_SPECS.map((c, i) => `$${i + 1}::${c.pgElement}[]`).join(', ')}) AS u(${CALL_COLUMNS.join(', ')})
ON CONFLICT (call_id, ts) DO NOTHING`

const SPECIAL = /[\\\n\r\t]/
const SPECIALS = /[\\\n\r\t]/g
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' }
const escapeOne = (ch: string): string => ESCAPES[ch]!

/** A text value in COPY's text format: backslash, newline, carriage return and tab escaped. */
function copyText(s: string): string {
  return SPECIAL.test(s) ? s.replace(SPECIALS, escapeOne) : s
}

/**
 * The batch as COPY text (UTF-8): one line per call, the columns in {@link CALL_COLUMNS} order, tab-separated, `\N`
 * for NULL. Numbers are written as JavaScript prints them (integers plainly, doubles in a form `float8` reads). Each
 * line is written into one growing buffer as it is made: about 40% less CPU here than building the whole batch as
 * one string and encoding it at the end (measured with the bench's calls, ~200 bytes each).
 */
export function copyRows(calls: readonly CallRecord[]): Buffer {
  const row = new Array<unknown>(WIDTH)
  let buffer = Buffer.allocUnsafe(Math.max(calls.length, 1) * 512)
  let length = 0
  for (let i = 0; i < calls.length; i++) {
    writeCallRow(calls[i]!, row, 0)
    let line = ''
    for (let c = 0; c < WIDTH; c++) {
      const v = row[c]
      // writeCallRow yields numbers, strings and nulls only
      const text = typeof v === 'number' ? String(v) : typeof v === 'string' ? copyText(v) : '\\N'
      line += c === 0 ? text : `\t${text}`
    }
    line += '\n'
    // a UTF-16 code unit takes at most 3 bytes in UTF-8
    if (buffer.length - length < line.length * 3) {
      const grown = Buffer.allocUnsafe(buffer.length * 2 + line.length * 3)
      buffer.copy(grown, 0, 0, length)
      buffer = grown
    }
    length += buffer.write(line, length)
  }
  return buffer.subarray(0, length)
}

/** The batch as one array parameter per column (for {@link INSERT_IGNORING_DUPLICATES}). */
function columnArrays(calls: readonly CallRecord[]): unknown[][] {
  const columns: unknown[][] = Array.from({ length: WIDTH }, () => new Array<unknown>(calls.length))
  const row = new Array<unknown>(WIDTH)
  for (let i = 0; i < calls.length; i++) {
    writeCallRow(calls[i]!, row, 0)
    for (let c = 0; c < WIDTH; c++) columns[c]![i] = row[c]
  }
  return columns
}

function copyInto(client: pg.PoolClient, data: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const stream = client.query(copyFrom(COPY_SQL))
    stream.on('error', reject)
    // 'finish' comes once the server has acknowledged the COPY (pg-copy-streams waits for ReadyForQuery)
    stream.on('finish', resolve)
    stream.end(data)
  })
}

const sqlState = (error: unknown): string | undefined => {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

/**
 * Writes a batch on a connection of `pool`, atomically (one transaction), and returns the id of the transaction
 * that wrote it — or undefined when it was written another way (a retry skipping rows already stored): then which of
 * its rows that transaction wrote is not known here. After a statement the server refused, the transaction is rolled
 * back and the connection goes back to the pool; after anything else (or a failed rollback) it is discarded.
 */
export async function writeBatch(pool: pg.Pool, calls: readonly CallRecord[], insertName: string): Promise<number | undefined> {
  const client = await pool.connect()
  let usable = true
  try {
    let tx: number
    try {
      // the transaction's id, assigned now: the rollup cursor's unit (see the dialect), and what tells a query whether
      // this batch is still in the not-yet-rolled tail
      const begun = (await client.query('BEGIN; SELECT pg_current_xact_id()::text AS tx')) as unknown as pg.QueryResult<{ tx: string }>[]
      tx = Number(begun[1]!.rows[0]!.tx)
      await copyInto(client, copyRows(calls))
      await client.query('COMMIT')
      return tx
    } catch (error) {
      // refused by the server: the transaction is open and aborted (or already ended: then ROLLBACK only warns)
      if (sqlState(error) === undefined) throw error
      await client.query('ROLLBACK')
      if (sqlState(error) !== '23505') throw error
    }
    // Some of these calls are stored already (a retry): write the others, skipping those row by row. A named
    // (prepared) statement: parsed and planned once per connection.
    await client.query({ name: insertName, text: INSERT_IGNORING_DUPLICATES, values: columnArrays(calls) })
    return undefined
  } catch (error) {
    usable = sqlState(error) !== undefined
    throw error
  } finally {
    client.release(!usable)
  }
}
