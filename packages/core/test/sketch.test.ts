import { describe, expect, it } from 'vitest'
import { bucketValue, LatencySketch, latencyBucket, mergeEncodedSketches, RELATIVE_ACCURACY, SKETCH_SEPARATOR, ZERO_BUCKET } from '@apimeter/core/sql'
import { exactQuantile, seededRandom } from '@apimeter/core/testing'

describe('LatencySketch', () => {
  it('represents every value of a bucket within the relative accuracy', () => {
    const random = seededRandom(1)
    for (let i = 0; i < 100_000; i++) {
      const x = Math.exp(-7 + random() * 25) // 1 µs … 70 hours
      const estimate = bucketValue(latencyBucket(x))
      expect(Math.abs(estimate - x) / x).toBeLessThanOrEqual(RELATIVE_ACCURACY + 1e-12)
    }
  })

  it('puts zero durations in the zero bucket and reads them back as 0', () => {
    const sketch = new LatencySketch()
    sketch.add(0, 3)
    sketch.add(10)
    expect(latencyBucket(0)).toBe(ZERO_BUCKET)
    expect(sketch.quantile(0.5)).toBe(0)
    expect(sketch.quantile(1, 0, 10)).toBe(10)
  })

  it('answers quantiles asked in any order, with zero durations, dense or read from stored encodings, each within the accuracy', () => {
    const random = seededRandom(5)
    const values: number[] = []
    const dense = new LatencySketch()
    // few enough values that the stored encoding is read from its pairs (the sparse path)
    for (let i = 0; i < 300; i++) {
      const x = i % 10 === 0 ? 0 : Math.exp(random() * 8)
      values.push(x)
      dense.add(x)
    }
    const stored = new LatencySketch()
    LatencySketch.decodeInto(dense.encode(), stored) // read from its pairs, without laying out counts
    const min = Math.min(...values)
    const max = Math.max(...values)
    const qs = [0.99, 0.05, 0.5, 1, 0.1, 0.9, 0]
    const ascending = [...qs].sort((a, b) => a - b)
    for (const sketch of [dense, stored]) {
      const answers = sketch.quantiles(qs, min, max)
      // the same answers as when asked in ascending order, each in its place
      expect(answers).toEqual(qs.map((q) => sketch.quantiles(ascending, min, max)[ascending.indexOf(q)]))
      qs.forEach((q, i) => {
        const exact = exactQuantile(values, q)
        if (exact === 0) expect(answers[i]).toBe(0)
        else expect(Math.abs(answers[i]! - exact) / exact).toBeLessThanOrEqual(RELATIVE_ACCURACY + 1e-12)
      })
      expect(answers[qs.indexOf(1)]).toBe(max)
    }
    expect(new LatencySketch().quantiles([0.5, 0.1])).toEqual([Number.NaN, Number.NaN])
  })

  it('merges sketches built separately into the same answer as one sketch', () => {
    const random = seededRandom(99)
    const whole = new LatencySketch()
    const parts = [new LatencySketch(), new LatencySketch(), new LatencySketch()]
    const values: number[] = []
    for (let i = 0; i < 30_000; i++) {
      const x = 1 + random() * 1000
      values.push(x)
      whole.add(x)
      parts[i % 3]!.add(x)
    }
    const merged = new LatencySketch()
    for (const p of parts) merged.merge(p)
    const qs = [0.5, 0.9, 0.95, 0.99, 0.999]
    expect(merged.quantiles(qs)).toEqual(whole.quantiles(qs))
    for (const q of qs) {
      const exact = exactQuantile(values, q)
      expect(Math.abs(merged.quantile(q) - exact) / exact).toBeLessThanOrEqual(0.01)
    }
  })

  it('encodes compactly and decodes to the same sketch', () => {
    const sketch = new LatencySketch()
    for (const x of [0, 0.001, 0.5, 1, 2, 3, 100, 100, 100, 65_000, 1e7]) sketch.add(x)
    const bytes = sketch.encode()
    expect(bytes.length).toBeLessThan(40)
    const back = LatencySketch.decode(bytes)
    expect([...back.buckets]).toEqual([...sketch.buckets].sort((a, b) => a[0] - b[0]))
    expect(back.count).toBe(sketch.count)
    expect(() => LatencySketch.decode(Uint8Array.from([0x81]))).toThrow(/truncated latency sketch/)
  })

  it('decodes encodings joined by the separator as their merge, whatever their order and ranges', () => {
    const random = seededRandom(7)
    const parts = [[0, 0, 1, 2], [1e-3, 5e6], [3], [900, 901, 902, 0.5]].map((values) => {
      const sketch = new LatencySketch()
      for (const x of values) sketch.add(x, 1 + Math.floor(random() * 300))
      return sketch
    })
    const merged = new LatencySketch()
    for (const part of parts) merged.merge(part)
    const joined: number[] = []
    for (const [i, part] of [...parts].reverse().entries()) {
      if (i > 0) joined.push(...SKETCH_SEPARATOR)
      joined.push(...part.encode())
    }
    const back = new LatencySketch()
    back.add(42) // decoding adds to what the sketch holds
    LatencySketch.decodeInto(Uint8Array.from(joined), back)
    merged.add(42)
    expect([...back.buckets]).toEqual([...merged.buckets])
    expect(back.count).toBe(merged.count)
    expect(back.quantiles([0.1, 0.5, 0.99])).toEqual(merged.quantiles([0.1, 0.5, 0.99]))
  })

  it('keeps few distinct buckets as pairs and answers, encodes and merges exactly as laid out, across the switch to dense', () => {
    const random = seededRandom(23)
    const truth = (values: number[]): [number, number][] => {
      const counts = new Map<number, number>()
      for (const x of values) counts.set(latencyBucket(x), (counts.get(latencyBucket(x)) ?? 0) + 1)
      return [...counts].sort((a, b) => a[0] - b[0])
    }
    const sketches: { sketch: LatencySketch; values: number[] }[] = []
    // 1 to 40 distinct buckets (the pairs hold 16), far apart, with repeats and zero durations
    for (let distinct = 1; distinct <= 40; distinct++) {
      const pool = Array.from({ length: distinct }, () => Math.exp(-3 + random() * 16))
      const values: number[] = []
      const sketch = new LatencySketch()
      for (let i = 0; i < distinct * 3; i++) {
        const x = i % 7 === 6 ? 0 : pool[Math.floor(random() * distinct)]!
        values.push(x)
        sketch.add(x)
      }
      sketches.push({ sketch, values })
    }
    const qs = [0, 0.1, 0.5, 0.9, 0.99, 1]
    for (const { sketch, values } of sketches) {
      const expected = truth(values)
      // ZERO_BUCKET is the lowest of these buckets: the zero bucket comes first in both
      expect([...sketch.buckets].sort((a, b) => a[0] - b[0])).toEqual(expected)
      expect(sketch.count).toBe(values.length)
      // laid out densely (decoding always does) it encodes to the same bytes and answers the same
      const dense = LatencySketch.decode(sketch.encode())
      expect([...dense.buckets].sort((a, b) => a[0] - b[0])).toEqual(expected)
      expect(dense.encode()).toEqual(sketch.encode())
      expect(sketch.quantiles(qs, Math.min(...values), Math.max(...values))).toEqual(dense.quantiles(qs, Math.min(...values), Math.max(...values)))
      const threshold = values[Math.floor(values.length / 2)]!
      expect(sketch.countAtOrBelow(threshold)).toEqual(dense.countAtOrBelow(threshold))
      expect(sketch.countAtOrBelow(threshold).atOrBelow).toBe(values.filter((x) => latencyBucket(x) <= latencyBucket(threshold)).length)
    }
    // merges of pairs into pairs, pairs into dense and dense into pairs: the buckets of all the values
    for (let i = 0; i + 1 < sketches.length; i++) {
      const a = sketches[i]!
      const b = sketches[sketches.length - 1 - i]!
      const merged = new LatencySketch()
      merged.merge(a.sketch)
      merged.merge(b.sketch)
      expect([...merged.buckets].sort((x, y) => x[0] - y[0])).toEqual(truth([...a.values, ...b.values]))
      expect(merged.encode()).toEqual(mergeEncodedSketches(a.sketch.encode(), b.sketch.encode()))
      // the sketches merged from are left as they were
      expect([...a.sketch.buckets].sort((x, y) => x[0] - y[0])).toEqual(truth(a.values))
    }
  })

  it('returns NaN quantiles for an empty sketch', () => {
    expect(new LatencySketch().quantile(0.5)).toBeNaN()
  })

  it('merges two encodings into exactly the encoding of the merged sketches (mergeEncodedSketches)', () => {
    const random = seededRandom(7)
    const sketchOf = (n: number, spread: number, zeros: number): LatencySketch => {
      const s = new LatencySketch()
      for (let i = 0; i < n; i++) s.add(random() * spread)
      for (let i = 0; i < zeros; i++) s.add(0)
      return s
    }
    const cases: [LatencySketch, LatencySketch][] = [
      [sketchOf(0, 1, 0), sketchOf(5, 10, 0)],
      [sketchOf(5, 10, 0), sketchOf(0, 1, 0)],
      [sketchOf(1, 1, 0), sketchOf(1, 1, 0)],
      [sketchOf(50, 10, 2), sketchOf(70, 10_000, 0)],
      [sketchOf(300, 0.01, 0), sketchOf(300, 3_600_000, 3)],
      [sketchOf(2000, 2000, 0), sketchOf(2000, 2000, 1)], // mostly the same buckets: counts add, some past one varint byte
    ]
    for (const [a, b] of cases) {
      const merged = new LatencySketch()
      merged.merge(a)
      merged.merge(b)
      expect(Array.from(mergeEncodedSketches(a.encode(), b.encode()))).toEqual(Array.from(merged.encode()))
    }
    expect(() => mergeEncodedSketches(Uint8Array.from([0x81]), sketchOf(3, 10, 0).encode())).toThrow('truncated latency sketch')
  })

  it('merges encodings that are not canonical, and counts past 2^32, to the same bytes as merging the sketches', () => {
    const random = seededRandom(13)
    const sketchOf = (n: number, spread: number, times = 1): LatencySketch => {
      const s = new LatencySketch()
      for (let i = 0; i < n; i++) s.add(random() * spread, times)
      return s
    }
    const join = (...parts: LatencySketch[]): Uint8Array => {
      const bytes: number[] = []
      parts.forEach((part, i) => bytes.push(...(i > 0 ? SKETCH_SEPARATOR : []), ...part.encode()))
      return Uint8Array.from(bytes)
    }
    const high = sketchOf(40, 1000)
    const low = sketchOf(40, 1)
    const big = sketchOf(30, 100, 2 ** 40 + 7) // counts of six varint bytes, still exact once added up
    const five = new LatencySketch()
    five.add(5)
    const fiveAndTen = new LatencySketch()
    fiveAndTen.add(5, 2)
    fiveAndTen.add(10)
    const cases: [Uint8Array, LatencySketch[], Uint8Array, LatencySketch[]][] = [
      // joined encodings whose buckets descend across the separator, on either side
      [join(high, low), [high, low], low.encode(), [low]],
      [big.encode(), [big], join(high, low), [high, low]],
      // joined encodings whose buckets only ascend (read as one list, equal buckets added)
      [join(low, high), [low, high], join(low, low), [low, low]],
      // one bucket on both sides of the separator: its counts are added
      [join(five, fiveAndTen), [five, fiveAndTen], low.encode(), [low]],
      [big.encode(), [big], join(five, fiveAndTen), [five, fiveAndTen]],
      [big.encode(), [big], big.encode(), [big]],
    ]
    for (const [a, partsA, b, partsB] of cases) {
      const merged = new LatencySketch()
      for (const part of [...partsA, ...partsB]) merged.merge(part)
      const bytes = mergeEncodedSketches(a, b)
      expect(Array.from(bytes)).toEqual(Array.from(merged.encode()))
      expect(LatencySketch.decode(bytes).count).toBe(merged.count)
    }
  })

  it('reads stored encodings added with decodeInto when asked, from their pairs or laid out, to the same answers', () => {
    const random = seededRandom(11)
    const qs = [0, 0.25, 0.5, 0.9, 0.95, 0.99, 1]
    // a few small encodings (read from their pairs), more than the pairs path takes (laid out), and more than a
    // sketch keeps unread (read as they come)
    for (const parts of [3, 40, 100]) {
      const sketches = Array.from({ length: parts }, () => {
        const s = new LatencySketch()
        for (let i = 0; i < 60; i++) s.add(random() < 0.1 ? 0 : Math.exp(random() * 12), 1 + Math.floor(random() * 5))
        return s
      })
      const whole = new LatencySketch()
      for (const s of sketches) whole.merge(s)
      const lazy = new LatencySketch()
      for (const s of sketches) LatencySketch.decodeInto(s.encode(), lazy)
      expect(lazy.quantiles(qs, 0, 1e6)).toEqual(whole.quantiles(qs, 0, 1e6))
      // merging a sketch still holding encodings carries them; counting lays them out
      const merged = new LatencySketch()
      merged.add(7)
      merged.merge(lazy)
      whole.add(7)
      expect(merged.count).toBe(whole.count)
      expect([...merged.buckets]).toEqual([...whole.buckets])
      expect(Array.from(merged.encode())).toEqual(Array.from(whole.encode()))
    }
  })

  it('reads the quantiles of one stored encoding from its bytes to the answers of the laid-out sketch, told its count or not', () => {
    const random = seededRandom(17)
    const qs = [0.5, 0.9, 0.95, 0.99]
    const lazyOf = (bytes: Uint8Array): LatencySketch => {
      const lazy = new LatencySketch()
      LatencySketch.decodeInto(bytes, lazy)
      return lazy
    }
    const read = (bytes: Uint8Array, min: number, max: number, known?: number): number[] => {
      const out = [0, 0, 0, 0]
      lazyOf(bytes).quantilesInto(qs, min, max, out, known)
      return out
    }
    const five = new LatencySketch()
    five.add(5)
    const big = new LatencySketch()
    for (let i = 0; i < 30; i++) big.add(random() * 100, 2 ** 40 + 7) // counts of six varint bytes
    const shapes: LatencySketch[] = [five, big]
    for (let n = 0; n < 60; n++) {
      const s = new LatencySketch()
      const size = 1 + Math.floor(random() * 400)
      for (let i = 0; i < size; i++) s.add(random() < 0.05 ? 0 : random() < 0.1 ? random() : Math.exp(random() * 14), 1 + Math.floor(random() * 3))
      shapes.push(s)
    }
    for (const s of shapes) {
      const bytes = s.encode()
      const dense = LatencySketch.decode(bytes)
      for (const [min, max] of [[-Infinity, Infinity], [0, 5e6]] as const) {
        const expected = dense.quantiles(qs, min, max)
        expect(read(bytes, min, max)).toEqual(expected)
        expect(read(bytes, min, max, dense.count)).toEqual(expected)
        // told a wrong count, the bytes decide (the general path answers)
        expect(read(bytes, min, max, dense.count + 1)).toEqual(expected)
        expect(read(bytes, min, max, Math.max(0, dense.count - 1))).toEqual(expected)
      }
    }
    // joined encodings (one stored row can hold several) and quantiles asked out of order: the general path answers
    const low = shapes[3]!
    const high = shapes[4]!
    const joined = Uint8Array.from([...high.encode(), ...SKETCH_SEPARATOR, ...low.encode()])
    const merged = new LatencySketch()
    merged.merge(high)
    merged.merge(low)
    expect(read(joined, -Infinity, Infinity)).toEqual(merged.quantiles(qs))
    expect(read(joined, -Infinity, Infinity, merged.count)).toEqual(merged.quantiles(qs))
    expect(lazyOf(low.encode()).quantiles([0.99, 0.5], 0, 1e9)).toEqual(LatencySketch.decode(low.encode()).quantiles([0.99, 0.5], 0, 1e9))
    expect(read(new LatencySketch().encode(), 0, 1, 0)).toEqual([NaN, NaN, NaN, NaN])
  })

  it('hands stored encodings on unread (encodeJoined), and encodes a sketch holding anything else', () => {
    const a = new LatencySketch()
    a.add(5, 3)
    const b = new LatencySketch()
    b.add(0)
    b.add(900, 2)
    const lazy = new LatencySketch()
    LatencySketch.decodeInto(a.encode(), lazy)
    LatencySketch.decodeInto(b.encode(), lazy)
    const joined = lazy.encodeJoined()
    expect(Array.from(joined)).toEqual([...a.encode(), ...SKETCH_SEPARATOR, ...b.encode()])
    const back = LatencySketch.decode(joined)
    expect(back.count).toBe(6)
    const whole = new LatencySketch()
    whole.merge(a)
    whole.merge(b)
    expect(Array.from(back.encode())).toEqual(Array.from(whole.encode()))
    // with values of its own, the canonical encoding
    lazy.add(1)
    whole.add(1)
    expect(Array.from(lazy.encodeJoined())).toEqual(Array.from(whole.encode()))
    // a truncated stored encoding is reported when it is read
    const broken = new LatencySketch()
    LatencySketch.decodeInto(Uint8Array.from([0x81]), broken)
    expect(() => broken.quantile(0.5)).toThrow(/truncated latency sketch/)
  })
})
