import { describe, expect, it } from 'vitest'
import { parsePackedSums } from '../src/sql/rollups/query.js'

// A rollup read's numbers come as one comma-separated text (see rollupAggregates); they are read character by
// character, and must give exactly what Number() gives each part.
/** How many numbers a row has. */
const WIDTH = parsePackedSums('').length

describe('parsePackedSums', () => {
  it('reads each part as Number() does: plain, negative, zero, long, decimal and odd integers', () => {
    const parts = [
      '0', '-0', '7', '-42', '007', '123456789012345', '-123456789012345', '1234567890123456', '9007199254740993',
      '99999999999999999999', '-9007199254740993', '1.5', '-2.25e3', '1e21', '', '-', '+5', ' 3', 'abc', '12a',
    ]
    for (let at = 0; at < parts.length; at++) {
      // each part in a position of its own (round the row), the rest zeros
      const row = Array.from({ length: WIDTH }, (_, i) => (i === at % WIDTH ? parts[at]! : '0'))
      const read = Array.from(parsePackedSums(row.join(',')))
      expect(read.map((n) => (Object.is(n, -0) ? '-0' : n))).toEqual(row.map((p) => Number(p)).map((n) => (Object.is(n, -0) ? '-0' : n)))
    }
  })

  it('gives NaN for the parts a shorter text lacks, and ignores parts past the row', () => {
    const short = Array.from(parsePackedSums('1,2,3'))
    expect(short.slice(0, 3)).toEqual([1, 2, 3])
    expect(short.slice(3).every((n) => Number.isNaN(n))).toBe(true)
    const long = Array.from(parsePackedSums(Array.from({ length: 30 }, (_, i) => String(i)).join(',')))
    expect(long).toEqual(Array.from({ length: WIDTH }, (_, i) => i))
  })

  it('reads one row of several joined by semicolons (a packed read of stored rows)', () => {
    const joined = '1,-2,30;4,5;-6'
    const rows = [[0, 7], [8, 11], [12, 14]].map(([from, to]) => Array.from(parsePackedSums(joined, from, to)).filter((n) => !Number.isNaN(n)))
    expect(rows).toEqual([[1, -2, 30], [4, 5], [-6]])
  })
})
