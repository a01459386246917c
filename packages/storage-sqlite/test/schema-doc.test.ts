import { readFileSync } from 'node:fs'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { sqliteStorage } from '@apimeter/storage-sqlite'
import { tempDir } from './helpers.js'

/**
 * Keeps docs/schema.md true: every table, column, SQLite type and index it documents must exist in a freshly
 * migrated database, and every apimeter table of that database must be documented.
 */
interface DocTable {
  columns: Map<string, string>
  indexes: string[]
}

function parseDoc(): Map<string, DocTable> {
  const text = readFileSync(new URL('../../../docs/schema.md', import.meta.url), 'utf8')
  const tables = new Map<string, DocTable>()
  let current: DocTable | undefined
  let mode: 'columns' | 'indexes' | 'other' = 'other'
  for (const line of text.split('\n')) {
    // a section may document several identical tables: `## apimeter_a, apimeter_b`
    const heading = /^## (apimeter_\w+(?:, apimeter_\w+)*)\s*$/.exec(line) ?? /^`(apimeter_\w+)`\s*$/.exec(line)
    if (heading) {
      current = { columns: new Map(), indexes: [] }
      for (const name of heading[1]!.split(', ')) tables.set(name, current)
      mode = 'other'
      continue
    }
    if (line.startsWith('## ')) {
      current = undefined
      continue
    }
    if (line.startsWith('| column | SQLite | PostgreSQL |')) mode = 'columns'
    else if (line.startsWith('| index | columns | serves |')) mode = 'indexes'
    else if (!line.startsWith('|')) mode = mode === 'other' ? 'other' : line.trim() === '' ? 'other' : mode
    const cells = line.split('|').map((c) => c.trim())
    const name = /^`(\w+)`/.exec(cells[1] ?? '')?.[1]
    if (!current || !name) continue
    if (mode === 'columns') current.columns.set(name, (cells[2] ?? '').replace(/`/g, ''))
    if (mode === 'indexes' && !cells[1]!.includes('PostgreSQL')) current.indexes.push(name)
  }
  return tables
}

describe('docs/schema.md', () => {
  const tmp = tempDir('apimeter-schema-')
  afterAll(() => tmp.remove())

  it('documents exactly the tables, columns, SQLite types and indexes the migrations create', async () => {
    const file = tmp.file()
    const storage = sqliteStorage({ filename: file })
    await storage.init!()
    await storage.close()
    const db = new Database(file, { readonly: true })
    const doc = parseDoc()
    const actualTables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'apimeter_%' ORDER BY name`).all() as { name: string }[]).map((r) => r.name)
    expect([...doc.keys()].sort()).toEqual(actualTables)
    for (const table of actualTables) {
      const documented = doc.get(table)!
      const columns = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string; type: string; pk: number }[]
      expect([...documented.columns.keys()], `columns of ${table}`).toEqual(columns.map((c) => c.name))
      for (const column of columns) {
        const docType = documented.columns.get(column.name)!
        expect(docType.toUpperCase().startsWith(column.type.toUpperCase()), `${table}.${column.name}: doc says ${docType}, database has ${column.type}`).toBe(true)
      }
      const indexes = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`).all(table) as { name: string }[]).map((r) => r.name)
      expect([...documented.indexes].sort(), `indexes of ${table}`).toEqual(indexes)
    }
    db.close()
  })
})
