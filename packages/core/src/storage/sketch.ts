/**
 * A mergeable latency sketch with fixed logarithmic buckets (the DDSketch mapping with a fixed gamma).
 *
 * A positive duration `x` falls in bucket `i = ceil(log_gamma(x))`, i.e. `gamma^(i-1) < x <= gamma^i`; the bucket
 * is represented by `2 * gamma^i / (gamma + 1)`, which is within `RELATIVE_ACCURACY` (0.5%) of every value in it.
 * Because bucket boundaries are fixed, sketches from different buckets, processes and databases merge by adding
 * counts, and a quantile read from any merge stays within 0.5% of the exact nearest-rank value. Durations <= 0 go
 * to a zero bucket.
 *
 * The bucket index is a small integer (about ±2100 for 1 ns … 11 days), so SQL storage can keep it as a column
 * on raw calls and as `(bucket, count)` pairs on rollups.
 */

/** Guaranteed relative error of every quantile read from a sketch. */
export const RELATIVE_ACCURACY = 0.005
const GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
const LN_GAMMA = Math.log(GAMMA)
/**
 * Joins encoded sketches into one value that {@link LatencySketch.decodeInto} reads as their merge: a pair with a
 * count of 0, which {@link LatencySketch.encode} never writes, so it restarts the bucket deltas from 0.
 */
export const SKETCH_SEPARATOR: Uint8Array = Uint8Array.of(0, 0)
/** Bucket index used for durations of 0 ms (and anything not positive). */
export const ZERO_BUCKET = -32768

/** The bucket a duration in milliseconds falls into. */
export function latencyBucket(durationMs: number): number {
  if (!(durationMs > 0)) return ZERO_BUCKET
  return Math.ceil(Math.log(durationMs) / LN_GAMMA)
}

/** The representative value of a bucket, in milliseconds. */
export function bucketValue(bucket: number): number {
  if (bucket === ZERO_BUCKET) return 0
  return (2 * Math.pow(GAMMA, bucket)) / (GAMMA + 1)
}

/** Nearest-rank position (1-based) of quantile `q` among `count` values. */
export function quantileRank(q: number, count: number): number {
  return Math.min(count, Math.max(1, Math.ceil(q * count)))
}

/**
 * A mergeable histogram of durations; see the module comment for its accuracy. Counts live in a dense array over
 * the range of bucket indexes seen (a few hundred to ~2,000 wide), so adding, merging and encoding are plain loops
 * without hashing or sorting: rollup runs merge thousands of sketches. A sketch of a few distinct buckets keeps them
 * as pairs instead (`few`): a rollup run of history written out of order folds about one sketch per call, each of a
 * value or two far apart, which laid out densely would take kilobytes each.
 */
export class LatencySketch {
  /** Never written while empty or few: the first dense value makes `cover` allocate (shared, so an empty sketch allocates none). */
  private counts = NO_COUNTS
  /**
   * While the sketch holds at most {@link FEW_BUCKETS} distinct buckets (the zero bucket aside): its (bucket, count)
   * pairs, buckets ascending, one after the other in one array; null when empty or dense (`counts`), never both.
   */
  private few: number[] | null = null
  /** Bucket index of `counts[0]`. */
  private offset = 0
  private zero = 0
  /** Values in `counts` (or `few`) and `zero` (not those of `pending`). */
  private settled = 0
  /**
   * Encodings added and not yet read ({@link LatencySketch.decodeInto}): a query merges the stored sketches of a group
   * by keeping their bytes, and reads them once, when a quantile or count is asked for. A group that only crosses a
   * thread (the SQLite worker) is never decoded there: {@link LatencySketch.encodeJoined} hands the bytes on.
   */
  private pending: Uint8Array[] | null = null

  /** How many values the sketch holds. */
  get count(): number {
    this.settle()
    return this.settled
  }

  /** Reads the pending encodings into the counts. */
  private settle(): void {
    const pending = this.pending
    if (pending === null) return
    this.pending = null
    for (const data of pending) LatencySketch.decodeChunk(data, this)
  }

  /** Non-empty buckets as a map (index → count), ascending; for inspection and tests. */
  get buckets(): Map<number, number> {
    this.settle()
    const out = new Map<number, number>()
    if (this.zero > 0) out.set(ZERO_BUCKET, this.zero)
    const few = this.few
    if (few !== null) for (let k = 0; k < few.length; k += 2) out.set(few[k]!, few[k + 1]!)
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]! > 0) out.set(i + this.offset, this.counts[i]!)
    return out
  }

  /** Adds one duration (ms), or `times` of them. */
  add(durationMs: number, times = 1): void {
    this.addBucket(latencyBucket(durationMs), times)
  }

  /** Makes `counts` cover bucket indexes lo…hi (laying out the few pairs first, if it holds them). */
  private cover(lo: number, hi: number): void {
    if (this.few !== null) this.densify()
    const len = this.counts.length
    if (len > 0 && lo >= this.offset && hi < this.offset + len) return
    const curLo = len > 0 ? this.offset : lo
    const curHi = len > 0 ? this.offset + len - 1 : hi
    // grow with slack on the side that grew, so a spreading distribution does not reallocate on every bucket
    const newLo = lo < curLo ? Math.min(lo, curLo - Math.max(16, len >> 1)) : curLo
    const newHi = hi > curHi ? Math.max(hi, curHi + Math.max(16, len >> 1)) : curHi
    const next = new Float64Array(newHi - newLo + 1)
    if (len > 0) next.set(this.counts, this.offset - newLo)
    this.counts = next
    this.offset = newLo
  }

  /** Lays the few pairs out as dense counts. */
  private densify(): void {
    const few = this.few!
    this.few = null
    this.cover(few[0]!, few[few.length - 2]!)
    for (let k = 0; k < few.length; k += 2) this.counts[few[k]! - this.offset]! += few[k + 1]!
  }

  /** Adds `times` values to a bucket by index (used when reading sketches back from storage). */
  addBucket(bucket: number, times: number): void {
    if (times <= 0) return
    this.settled += times
    if (bucket === ZERO_BUCKET) this.zero += times
    else this.addCount(bucket, times)
  }

  /** Adds to the count of a bucket other than the zero bucket (`settled` is the caller's). */
  private addCount(bucket: number, times: number): void {
    if (this.counts.length === 0) {
      const few = this.few
      if (few === null) {
        this.few = [bucket, times]
        return
      }
      let k = 0
      while (k < few.length && few[k]! < bucket) k += 2
      if (few[k] === bucket) {
        few[k + 1]! += times
        return
      }
      if (few.length < 2 * FEW_BUCKETS) {
        // insert the pair at k: append, then move the pairs above it up
        few.push(bucket, times)
        for (let j = few.length - 2; j > k; j -= 2) {
          few[j] = few[j - 2]!
          few[j + 1] = few[j - 1]!
        }
        few[k] = bucket
        few[k + 1] = times
        return
      }
      // one bucket more than few: dense from here on
    }
    const i = bucket - this.offset
    if (i < 0 || i >= this.counts.length) this.cover(bucket, bucket)
    this.counts[bucket - this.offset]! += times
  }

  /** Adds every count of `other` into this sketch. */
  merge(other: LatencySketch): void {
    if (other.pending !== null) this.keep(other.pending)
    if (other.settled === 0) return
    this.zero += other.zero
    this.settled += other.settled
    const few = other.few
    if (few !== null) {
      for (let k = 0; k < few.length; k += 2) this.addCount(few[k]!, few[k + 1]!)
      return
    }
    const src = other.counts
    if (src.length === 0) return
    this.cover(other.offset, other.offset + src.length - 1)
    const dst = this.counts
    const shift = other.offset - this.offset
    for (let i = 0; i < src.length; i++) if (src[i] !== 0) dst[i + shift]! += src[i]!
  }

  /**
   * How many durations are at or under `thresholdMs`, as far as the buckets tell: `atOrBelow` counts every bucket up
   * to the one holding the threshold, so it includes every duration <= `thresholdMs` and possibly some of the
   * `edge` durations of that bucket, which lie in (`thresholdMs`, `edgeMs`] with `edgeMs < thresholdMs * γ`
   * (γ = 1.01005…). The exact count is therefore in [`atOrBelow - edge`, `atOrBelow`].
   */
  countAtOrBelow(thresholdMs: number): { atOrBelow: number; edge: number; edgeMs: number } {
    this.settle()
    const bucket = latencyBucket(thresholdMs)
    if (bucket === ZERO_BUCKET) return { atOrBelow: this.zero, edge: 0, edgeMs: 0 }
    let atOrBelow = this.zero
    let edge = 0
    const few = this.few
    if (few !== null) {
      for (let k = 0; k < few.length && few[k]! <= bucket; k += 2) {
        atOrBelow += few[k + 1]!
        if (few[k] === bucket) edge = few[k + 1]!
      }
    }
    for (let i = 0; i < this.counts.length && i + this.offset <= bucket; i++) {
      atOrBelow += this.counts[i]!
      if (i + this.offset === bucket) edge = this.counts[i]!
    }
    return { atOrBelow, edge, edgeMs: Math.pow(GAMMA, bucket) }
  }

  /**
   * Several quantiles at once (each 0..1), nearest-rank. `min`/`max`, when known exactly, clamp the estimates and
   * are returned as-is for the first and last rank, so p0 and p100 are exact. Returns NaN for each quantile of an
   * empty sketch.
   */
  quantiles(qs: readonly number[], min = -Infinity, max = Infinity): number[] {
    const out = new Array<number>(qs.length)
    this.quantilesInto(qs, min, max, out)
    return out
  }

  /**
   * {@link LatencySketch.quantiles} written into `out` (index i for `qs[i]`), allocating nothing when the quantiles
   * are sorted: a grouped timeseries reads the percentiles of thousands of sketches.
   */
  quantilesInto(qs: readonly number[], min: number, max: number, out: { [i: number]: number }, known = -1): void {
    // one stored encoding (a point of a grouped timeseries: one rollup row) whose count the caller knows (`known`,
    // checked against the bytes) is read straight from its bytes, in one pass
    const pending = this.pending
    if (known >= 0 && this.settled === 0 && pending !== null && pending.length === 1 && encodedQuantiles(pending[0]!, qs, min, max, out, known)) return
    // a sketch made only of a few stored encodings (a group of a grouped query) is read from their pairs, without
    // laying out its counts: thousands of groups then cost no dense arrays
    let sparse = this.settled === 0 && this.pending !== null ? sparsePairs(this.pending) : -1
    let count = 0
    if (sparse >= 0) for (let i = 0; i < sparse; i++) count += sparseCounts[i]!
    else {
      this.settle()
      count = this.settled
      // few pairs are read as sparse ones, the zero bucket (the lowest value) first
      if (this.few !== null) sparse = this.fewAsSparse()
    }
    for (let i = 0; i < qs.length; i++) out[i] = Number.NaN
    if (count === 0) return
    // the quantiles in ascending order (they usually come sorted: then no sort), read in one pass over the buckets
    let order: number[] | null = null
    for (let i = 1; i < qs.length && order === null; i++) {
      if (quantileRank(qs[i]!, count) < quantileRank(qs[i - 1]!, count)) {
        order = qs.map((_, k) => k).sort((a, b) => quantileRank(qs[a]!, count) - quantileRank(qs[b]!, count))
      }
    }
    let next = 0
    let at = order === null ? 0 : order[0]!
    let rank = qs.length === 0 ? Infinity : quantileRank(qs[at]!, count)
    let cumulative = 0
    // sparse: the pairs read; dense: the zero bucket (position -1 when it has values), then the counts
    const first = sparse < 0 && this.zero > 0 ? -1 : 0
    const last = sparse >= 0 ? sparse : this.counts.length
    for (let i = first; i < last && next < qs.length; i++) {
      const c = sparse >= 0 ? sparseCounts[i]! : i < 0 ? this.zero : this.counts[i]!
      if (c === 0) continue
      cumulative += c
      while (rank <= cumulative) {
        // The first and last ranks are the exact min and max when those are known.
        out[at] = valueAtRank(rank, count, min, max, sparse >= 0 ? sparseBuckets[i]! : i < 0 ? ZERO_BUCKET : i + this.offset)
        if (++next === qs.length) break
        at = order === null ? next : order[next]!
        rank = quantileRank(qs[at]!, count)
      }
    }
  }

  /** The zero bucket's count and the few pairs in `sparseBuckets` / `sparseCounts`; returns how many pairs. */
  private fewAsSparse(): number {
    const few = this.few!
    let pairs = 0
    if (this.zero > 0) {
      sparseBuckets[0] = ZERO_BUCKET
      sparseCounts[pairs++] = this.zero
    }
    for (let k = 0; k < few.length; k += 2) {
      sparseBuckets[pairs] = few[k]!
      sparseCounts[pairs++] = few[k + 1]!
    }
    return pairs
  }

  /** One quantile; see {@link LatencySketch.quantiles}. */
  quantile(q: number, min?: number, max?: number): number {
    return this.quantiles([q], min, max)[0]!
  }

  /**
   * Compact binary form for storage: for each bucket in ascending order, a zig-zag varint of the delta from the
   * previous bucket index, then a varint count.
   */
  encode(): Uint8Array {
    this.settle()
    const few = this.few
    const out = encodeBuffer(few !== null ? few.length / 2 + 1 : this.counts.length + 1)
    let at = 0
    let previous = 0
    if (this.zero > 0) {
      at = writeVarint(out, at, zigzag(ZERO_BUCKET))
      at = writeVarint(out, at, this.zero)
      previous = ZERO_BUCKET
    }
    if (few !== null) {
      for (let k = 0; k < few.length; k += 2) {
        at = writeVarint(out, at, zigzag(few[k]! - previous))
        at = writeVarint(out, at, few[k + 1]!)
        previous = few[k]!
      }
    }
    for (let i = 0; i < this.counts.length; i++) {
      const c = this.counts[i]!
      if (c === 0) continue
      const bucket = i + this.offset
      at = writeVarint(out, at, zigzag(bucket - previous))
      at = writeVarint(out, at, c)
      previous = bucket
    }
    return out.slice(0, at)
  }

  /** Reads what {@link LatencySketch.encode} wrote. */
  static decode(data: Uint8Array): LatencySketch {
    const sketch = new LatencySketch()
    LatencySketch.decodeChunk(data, sketch)
    return sketch
  }

  /**
   * Encodings that {@link LatencySketch.decodeInto} reads as this sketch: the pending encodings as they came, joined
   * by {@link SKETCH_SEPARATOR}, when the sketch holds nothing else (no decoding, no encoding), else
   * {@link LatencySketch.encode}. For handing a sketch on (to another thread), not for storing it: the bytes are not
   * the canonical encoding.
   *
   * @example
   * ```ts
   * const bytes = sketch.encodeJoined() // cheap after decodeInto(); LatencySketch.decode(bytes) reads it back
   * ```
   */
  encodeJoined(): Uint8Array {
    const pending = this.pending
    if (pending === null || this.settled > 0) return this.encode()
    if (pending.length === 1) return pending[0]!
    let length = 0
    for (const data of pending) length += data.length + SKETCH_SEPARATOR.length
    const out = new Uint8Array(length - SKETCH_SEPARATOR.length)
    let offset = 0
    for (const data of pending) {
      if (offset > 0) {
        out.set(SKETCH_SEPARATOR, offset)
        offset += SKETCH_SEPARATOR.length
      }
      out.set(data, offset)
      offset += data.length
    }
    return out
  }

  /**
   * Adds an encoded sketch into `sketch` (merging stored rollups). The bytes are kept as they are and read when the
   * sketch is next read (see `pending`), so a query merging thousands of stored sketches reads each once, after
   * they are grouped. Several encodings joined by {@link SKETCH_SEPARATOR} are read as their merge.
   */
  static decodeInto(data: Uint8Array, sketch: LatencySketch): void {
    if (data.length === 0) return
    sketch.keep([data])
  }

  /** Keeps encodings to read later; past {@link MAX_PENDING} of them, reads them now (bounding what is held). */
  private keep(encodings: readonly Uint8Array[]): void {
    const pending = (this.pending ??= [])
    for (const data of encodings) pending.push(data)
    if (pending.length > MAX_PENDING) this.settle()
  }

  /**
   * Adds an encoding into `sketch`'s counts at once. The pairs are read into scratch arrays first, so the target grows
   * once to cover them and the counts are added in one plain loop. Several encodings joined by
   * {@link SKETCH_SEPARATOR} are read as their merge.
   */
  private static decodeChunk(data: Uint8Array, sketch: LatencySketch): void {
    const pairs = readPairs(data, scratchBuckets, scratchCounts, 0, (full) => sketch.addPairs(scratchBuckets, scratchCounts, full))
    sketch.addPairs(scratchBuckets, scratchCounts, pairs)
  }

  /** Adds the first `pairs` (bucket, count) pairs of two arrays: grows once to cover them, then adds. */
  private addPairs(buckets: Int32Array, counts: Float64Array, pairs: number): void {
    let lo = Infinity
    let hi = -Infinity
    for (let i = 0; i < pairs; i++) {
      const b = buckets[i]!
      if (b === ZERO_BUCKET) continue
      if (b < lo) lo = b
      if (b > hi) hi = b
    }
    if (lo <= hi) this.cover(lo, hi)
    const target = this.counts
    const shift = this.offset
    let added = 0
    for (let i = 0; i < pairs; i++) {
      const c = counts[i]!
      const b = buckets[i]!
      if (b === ZERO_BUCKET) this.zero += c
      else target[b - shift]! += c
      added += c
    }
    this.settled += added
  }
}



/**
 * Two encoded sketches merged into one encoding: the same bytes as decoding both, merging and encoding. Rollup runs
 * use it to merge a stored row's sketch with the new calls' inside the database (SQLite calls it as a function in
 * an upsert), instead of reading the row out, merging and writing it back.
 *
 * @example
 * ```ts
 * const merged = mergeEncodedSketches(stored, added)
 * ```
 */
export function mergeEncodedSketches(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b
  if (b.length === 0) return a
  // Both are canonical encodings as a rule (stored rows, a run's new rows): their pairs ascend, so they merge like two
  // sorted lists, straight into the bytes, without laying either out as counts. Anything else (encodings joined by
  // the separator, more pairs than the scratch holds) goes through a sketch.
  const pairsA = ascendingPairs(a, mergeBucketsA, mergeCountsA)
  const pairsB = pairsA < 0 ? -1 : ascendingPairs(b, mergeBucketsB, mergeCountsB)
  if (pairsB < 0) {
    const merged = LatencySketch.decode(a)
    LatencySketch.decodeInto(b, merged)
    return merged.encode()
  }
  const out = encodeBuffer(pairsA + pairsB)
  let at = 0
  let previous = 0
  let i = 0
  let j = 0
  while (i < pairsA || j < pairsB) {
    const bucketA = i < pairsA ? mergeBucketsA[i]! : Infinity
    const bucketB = j < pairsB ? mergeBucketsB[j]! : Infinity
    const bucket = Math.min(bucketA, bucketB)
    let count = 0
    while (i < pairsA && mergeBucketsA[i] === bucket) count += mergeCountsA[i++]!
    while (j < pairsB && mergeBucketsB[j] === bucket) count += mergeCountsB[j++]!
    at = writeVarint(out, at, zigzag(bucket - previous))
    at = writeVarint(out, at, count)
    previous = bucket
  }
  return out.slice(0, at)
}

/** Pairs {@link mergeEncodedSketches} reads of each encoding (a canonical one has ~4,200 at most). */
const MERGE_PAIRS = 4400
const mergeBucketsA = new Int32Array(MERGE_PAIRS)
const mergeCountsA = new Float64Array(MERGE_PAIRS)
const mergeBucketsB = new Int32Array(MERGE_PAIRS)
const mergeCountsB = new Float64Array(MERGE_PAIRS)

/** The pairs of an encoding when their buckets never descend (and they fit), else -1. */
function ascendingPairs(data: Uint8Array, buckets: Int32Array, counts: Float64Array): number {
  if (data.length > 2 * buckets.length) return -1 // a pair takes 2 bytes or more: what is shorter fits
  const pairs = readPairs(data, buckets, counts, 0, NEVER_FULL)
  for (let i = 1; i < pairs; i++) if (buckets[i]! < buckets[i - 1]!) return -1
  return pairs
}

/** Distinct buckets (besides the zero bucket) a sketch keeps as pairs before it lays its counts out densely. */
const FEW_BUCKETS = 16

/** Encodings a sketch keeps unread at most (a group of a grouped query holds one per rollup read). */
const MAX_PENDING = 64

/** The counts of every sketch that holds none yet. */
const NO_COUNTS = new Float64Array(0)

/** Pairs {@link LatencySketch.decodeInto} reads before adding them (a sketch has ~2,100 buckets at most). */
const SCRATCH_PAIRS = 4096
const scratchBuckets = new Int32Array(SCRATCH_PAIRS)
const scratchCounts = new Float64Array(SCRATCH_PAIRS)

/**
 * Reads the (bucket, count) pairs of an encoding (or of several joined by {@link SKETCH_SEPARATOR}) into `buckets`
 * and `counts` from index `at`. When the arrays are full, `full` is given their length and reading restarts at 0.
 * Returns the index after the last pair read.
 */
function readPairs(data: Uint8Array, buckets: Int32Array, counts: Float64Array, at: number, full: (pairs: number) => void): number {
  const length = data.length
  const capacity = buckets.length
  let pairs = at
  let previous = 0
  // varints alternate: a bucket delta, then its count
  let value = 0
  let multiplier = 1
  let delta = -1
  for (let offset = 0; offset < length; offset++) {
    const byte = data[offset]!
    value += (byte & 0x7f) * multiplier
    if (byte >= 0x80) {
      multiplier *= 128
      continue
    }
    if (delta < 0) {
      delta = value
    } else if (value === 0) {
      previous = 0 // SKETCH_SEPARATOR: the next sketch begins
      delta = -1
    } else {
      previous += delta % 2 === 0 ? delta / 2 : -(delta + 1) / 2
      buckets[pairs] = previous
      counts[pairs++] = value
      delta = -1
      if (pairs === capacity) {
        full(pairs)
        pairs = 0
      }
    }
    value = 0
    multiplier = 1
  }
  if (delta >= 0 || multiplier !== 1) throw new Error('@apimeter/core: truncated latency sketch')
  return pairs
}

/** The value a quantile of nearest rank `rank` among `count` reads in `bucket`: the exact min or max at the ends. */
function valueAtRank(rank: number, count: number, min: number, max: number, bucket: number): number {
  if (rank === count && Number.isFinite(max)) return max
  if (rank === 1 && Number.isFinite(min)) return min
  return Math.min(max, Math.max(min, bucketValue(bucket)))
}

/**
 * {@link LatencySketch.quantilesInto} of one encoding holding `count` values, read from its bytes in one pass without
 * laying its pairs out: what a grouped timeseries asks of thousands of sketches of one stored row each (a point by
 * route and hour: ~460 bytes, ~230 pairs; 3,380 of them 14 → 7 ms against reading them as pairs first, which is
 * `readPairs`' decoding plus a second loop). The pass goes to the end: the pairs must add up to `count`, ascending,
 * with no separator. False, with `out` to be written again, for what it leaves to the general path: joined
 * encodings, buckets out of ascending order, another count, quantiles not in ascending order. Varints are read with
 * integer shifts up to 28 bits (a bucket delta takes 21 at most), past that with a multiply (a count may be any
 * integer below 2^53).
 */
function encodedQuantiles(data: Uint8Array, qs: readonly number[], min: number, max: number, out: { [i: number]: number }, count: number): boolean {
  for (let i = 1; i < qs.length; i++) if (quantileRank(qs[i]!, count) < quantileRank(qs[i - 1]!, count)) return false
  for (let i = 0; i < qs.length; i++) out[i] = Number.NaN
  const length = data.length
  if (count === 0) return length === 0
  let next = 0
  let rank = qs.length === 0 ? Infinity : quantileRank(qs[0]!, count)
  let cumulative = 0
  let bucket = 0
  let value = 0
  let shift = 0
  let delta = -1
  for (let offset = 0; offset < length; offset++) {
    const byte = data[offset]!
    value = shift < 28 ? value | ((byte & 0x7f) << shift) : value + (byte & 0x7f) * 2 ** shift
    if (byte >= 0x80) {
      shift += 7
      continue
    }
    if (delta < 0) delta = value
    else {
      // a zero count is a separator (joined encodings); an odd delta after the first pair is a step down
      if (value === 0 || (cumulative > 0 && (delta & 1) === 1)) return false
      bucket += (delta & 1) === 0 ? delta >>> 1 : -((delta + 1) >>> 1)
      cumulative += value
      while (rank <= cumulative) {
        out[next] = valueAtRank(rank, count, min, max, bucket)
        rank = ++next === qs.length ? Infinity : quantileRank(qs[next]!, count)
      }
      delta = -1
    }
    value = 0
    shift = 0
  }
  if (delta >= 0 || shift !== 0) throw new Error('@apimeter/core: truncated latency sketch')
  return cumulative === count
}

/** For a read whose arrays hold every pair it can meet (a pair takes 2 bytes or more, so bytes / 2 pairs at most). */
const NEVER_FULL = (): void => undefined

/** Encoded bytes up to which {@link LatencySketch.quantiles} reads pending encodings as pairs (a pair takes 2 or more). */
const SPARSE_BYTES = 2048
const sparseBuckets = new Int32Array(SPARSE_BYTES / 2)
const sparseCounts = new Float64Array(SPARSE_BYTES / 2)

/**
 * The pairs of a few encodings in `sparseBuckets` / `sparseCounts`, in ascending bucket order (equal buckets next to
 * each other), and how many there are; -1 when the encodings are longer than {@link SPARSE_BYTES}.
 */
function sparsePairs(pending: readonly Uint8Array[]): number {
  let bytes = 0
  for (const data of pending) bytes += data.length
  if (bytes > SPARSE_BYTES) return -1
  let pairs = 0
  for (const data of pending) pairs = readPairs(data, sparseBuckets, sparseCounts, pairs, NEVER_FULL)
  // each encoding is in ascending order already: an insertion sort only moves the pairs of the later ones
  for (let i = 1; i < pairs; i++) {
    const b = sparseBuckets[i]!
    const c = sparseCounts[i]!
    let j = i - 1
    while (j >= 0 && sparseBuckets[j]! > b) {
      sparseBuckets[j + 1] = sparseBuckets[j]!
      sparseCounts[j + 1] = sparseCounts[j]!
      j--
    }
    sparseBuckets[j + 1] = b
    sparseCounts[j + 1] = c
  }
  return pairs
}

function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1
}
/** Writes `value` as a varint at `at`; returns the offset after it. */
function writeVarint(out: Uint8Array, at: number, value: number): number {
  let v = value
  let offset = at
  while (v >= 0x80) {
    out[offset++] = (v % 128) | 0x80
    v = Math.floor(v / 128)
  }
  out[offset++] = v
  return offset
}

/**
 * Scratch room for encoding `pairs` pairs: a bucket delta takes 3 bytes at most (every bucket lies between −74,443
 * and 70,978, those of the smallest and largest doubles, so a zig-zag delta, the zero bucket's included, stays below
 * 2^21) and a count 8 (an integer below 2^53). Shared: an encoding is copied out of it.
 */
function encodeBuffer(pairs: number): Uint8Array {
  const bytes = pairs * 11
  if (encodeScratch.length < bytes) encodeScratch = new Uint8Array(Math.max(bytes, encodeScratch.length * 2))
  return encodeScratch
}
let encodeScratch = new Uint8Array(4096)
