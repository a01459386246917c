import type { CallRecord } from '../../call/types.js'
import type { CursorPosition } from '../dialect.js'
import { GrainAggregates } from './accumulator.js'
import type { GrainRows } from './levels.js'

/**
 * The not-yet-rolled tail of PostgreSQL from memory: the batches this process wrote, aggregated at the rollup grains
 * as they were committed, each known by the transaction that wrote it. Ids there do not grow in commit order (several
 * connections and processes write at once), but the rollup cursor is a transaction id, so whether a batch is still
 * in the tail is a question about its transaction alone.
 *
 * Batches are aggregated into generations, which a rollup run of this process usually takes all or none of:
 * - The generation being written is closed when a query begins ({@link seal}): every batch of a closed generation was
 *   acknowledged before the query's snapshot was taken, so the snapshot sees all of its rows.
 * - It is closed too when a rollup run of this process begins ({@link runStarting}), and a batch that was being
 *   written while the run took its snapshot (until it has read its snapshot) is a generation of its own: the
 *   run may or may not take it. A batch acknowledged before is one the run may take (unless the run stops short, see
 *   the dialect's bound); one that began after gets a transaction id the run's snapshot does not reach.
 * - And when it holds 128 batches or passes its bound of groups.
 *
 * A query takes from memory the closed generations whose transactions are all still in the tail; their rows are then
 * excluded from its raw read of the tail by transaction id, and every other row of the tail (other processes' batches,
 * batches acknowledged later, retried ones) is read from the database as before. A generation whose transactions
 * are all rolled up is dropped; one a rollup run of another process split is left to the database until it is
 * dropped. A statement deleting raw calls (counted in the state table) makes it forget every generation, and the
 * batches in flight then. Only ever a shortcut, never a second source of truth.
 */

/** One generation: batches of this process, and their aggregates. */
export interface TailGeneration {
  readonly txids: number[]
  readonly aggregates: GrainAggregates
  /** Forgotten after a deletion: some of its calls may be gone (a query that sealed it before must not read it). */
  forgotten?: boolean
}

/** What a query takes from memory: the rows of each generation taken, and their transactions, ascending. */
export interface TakenTail {
  rows: GrainRows[]
  txids: number[]
}

/** A batch being written (see {@link TxTail.writing}). */
export interface BatchInFlight {
  /** Being written while a rollup run of this process took its snapshot. */
  uncertain: boolean
  /** How many times the memory was forgotten when the batch began (a later forget may have deleted its calls). */
  readonly forgets: number
}

/** Generations kept at most (see {@link TxTail.add}). */
const MAX_GENERATIONS = 64
/** Batches a generation holds at most (so one always fits under {@link MAX_TAKEN_TRANSACTIONS}). */
const MAX_GENERATION_TRANSACTIONS = 128
/**
 * Transactions a query or run takes from memory at most: each one it takes splits its raw read of the rest of the
 * tail into one more index range. Generations past it are left to that raw read.
 */
const MAX_TAKEN_TRANSACTIONS = 256

/**
 * Whether a generation's rows may be used: complete (not past the bound), and no call before `rawFrom`, the raw
 * horizon the reader sees (retention drops a whole expired partition, and a batch written into it while it was
 * dropped went with it).
 */
function usable(generation: TailGeneration, rawFrom: number): boolean {
  return !generation.aggregates.overflowed && generation.aggregates.earliest >= rawFrom
}

/** Whether a transaction is still in the tail with the cursor at `at`. */
function tailTest(at: CursorPosition): (tx: number) => boolean {
  const pending = new Set(at.pending)
  return (tx) => tx >= at.upto || pending.has(tx)
}

export class TxTail {
  private generations: TailGeneration[] = []
  private current: TailGeneration | undefined
  private readonly inFlight = new Set<BatchInFlight>()
  private runsStarting = 0
  private forgets = 0
  /** The count of statements that deleted raw calls, as of the generations held (undefined: not known yet). */
  private deletions: number | undefined

  /** `maxEntries`: how many groups all generations together may hold. */
  constructor(private readonly maxEntries = 200_000) {}

  /** The raw-deletion count read before this process wrote anything (see {@link take}). */
  start(deletions: number): void {
    this.deletions ??= deletions
  }

  /** Marks a batch whose transaction begins now; pass the mark to {@link add} or {@link failed}. */
  writing(): BatchInFlight {
    const batch = { uncertain: this.runsStarting > 0, forgets: this.forgets }
    this.inFlight.add(batch)
    return batch
  }

  /** A batch that was not written by one known transaction (an error, or a retry that skipped stored rows). */
  failed(batch: BatchInFlight): void {
    this.inFlight.delete(batch)
  }

  /** Adds a batch committed by transaction `tx`. */
  add(batch: BatchInFlight, calls: readonly CallRecord[], tx: number): void {
    this.inFlight.delete(batch)
    // committed before a deletion this process has since seen (and forgotten everything for): some of its calls may
    // be gone; the database answers for it
    if (batch.forgets !== this.forgets) return
    let generation = batch.uncertain ? undefined : this.current
    if (generation === undefined) {
      // a process that never queries, in a fleet whose rollups another instance runs, would otherwise keep every
      // generation: the oldest go first (they only ever save reading)
      if (this.generations.length >= MAX_GENERATIONS) {
        const oldest = new Set(this.generations.slice(0, this.generations.length - MAX_GENERATIONS + 1))
        this.keep((g) => !oldest.has(g))
      }
      let used = 0
      for (const g of this.generations) used += g.aggregates.size
      generation = { txids: [], aggregates: new GrainAggregates(Math.max(0, this.maxEntries - used)) }
      this.generations.push(generation)
      if (!batch.uncertain) this.current = generation
    }
    generation.txids.push(tx)
    generation.aggregates.add(calls)
    // a full generation closes: one that never closed (a process that only writes) would grow without bound
    if (generation === this.current && (generation.aggregates.overflowed || generation.txids.length >= MAX_GENERATION_TRANSACTIONS)) {
      this.current = undefined
    }
  }

  /**
   * A rollup run of this process begins. Returns what to call once it knows what it takes, or has ended without a
   * snapshot (calling it again does nothing).
   */
  runStarting(): () => void {
    this.current = undefined
    this.runsStarting++
    for (const batch of this.inFlight) batch.uncertain = true
    let open = true
    return () => {
      if (open) this.runsStarting--
      open = false
    }
  }

  /**
   * What a rollup run of this process moving the cursor from `from` to `to` may take from memory: the generations
   * whose transactions it all rolls up (none it leaves). Closes the generation being written (a batch added later
   * must not change rows the run is folding). `deletions` as in {@link take}, read in the run's transaction.
   */
  forRun(from: CursorPosition, to: CursorPosition, deletions: number, rawFrom: number): TakenTail {
    this.current = undefined
    if (!this.sameDeletions(deletions)) return { rows: [], txids: [] }
    const before = tailTest(from)
    const after = tailTest(to)
    return collect(this.generations, rawFrom, (tx) => before(tx) && !after(tx))
  }

  /** Whether `deletions` is the count the generations were aggregated under; forgets them when it moved on. */
  private sameDeletions(deletions: number): boolean {
    if (this.deletions === deletions) return true
    // an older snapshot than one already seen (a query that began earlier) changes nothing
    if (this.deletions === undefined || deletions > this.deletions) {
      for (const generation of this.generations) generation.forgotten = true
      this.keep(() => false)
      this.deletions = deletions
      this.forgets++
    }
    return false
  }

  /** The cursor is at `at` (a rollup run of this process committed, or a query saw it): drops the generations it passed. */
  rolledUp(at: CursorPosition): void {
    const inTail = tailTest(at)
    this.keep((g) => g.txids.some(inTail))
  }

  /** Keeps the generations `wanted` says to keep (the one being written too, or it is closed). */
  private keep(wanted: (generation: TailGeneration) => boolean): void {
    this.generations = this.generations.filter(wanted)
    if (this.current && !this.generations.includes(this.current)) this.current = undefined
  }

  /**
   * Closes the generation being written and returns the closed ones. Call it before the query's snapshot is taken
   * (synchronously, before its first statement is sent).
   */
  seal(): readonly TailGeneration[] {
    this.current = undefined
    return [...this.generations]
  }

  /**
   * Of the generations `sealed` returned, the ones a query whose snapshot shows the cursor at `at` may take from
   * memory: every transaction still in the tail, no group past the bound, no call before the raw horizon `rawFrom`.
   * Drops the generations the cursor has passed. `deletions`: the snapshot's count of statements that deleted raw
   * calls; when it moved, raw calls of the tail may be gone, and every generation is forgotten.
   */
  take(sealed: readonly TailGeneration[], at: CursorPosition, deletions: number, rawFrom: number): TakenTail {
    if (!this.sameDeletions(deletions)) return { rows: [], txids: [] }
    this.rolledUp(at)
    // A generation forgotten since this query sealed its list is not read either. One dropped since because a rollup
    // run of this process committed past it is: this query's snapshot was taken before that commit (the list was
    // sealed first), so the cursor it sees still has every transaction of it in the tail, and the run left its rows
    // as they were (a fold copies a row's state before adding into it).
    return collect(sealed.filter((g) => !g.forgotten), rawFrom, tailTest(at))
  }
}

/**
 * The usable generations every transaction of which `taken` says is taken, up to {@link MAX_TAKEN_TRANSACTIONS}
 * transactions in all, with those transactions, ascending.
 */
function collect(generations: readonly TailGeneration[], rawFrom: number, taken: (tx: number) => boolean): TakenTail {
  const out: TakenTail = { rows: [], txids: [] }
  for (const generation of generations) {
    if (out.txids.length + generation.txids.length > MAX_TAKEN_TRANSACTIONS) continue
    if (!usable(generation, rawFrom) || !generation.txids.every(taken)) continue
    out.rows.push(generation.aggregates.rows())
    for (const tx of generation.txids) out.txids.push(tx)
  }
  out.txids.sort((a, b) => a - b)
  return out
}
