import { performance } from 'node:perf_hooks'
import PQueue from 'p-queue'
import { randomBytes } from 'node:crypto'
import type { CallInput, CallRecord } from '../call/types.js'
import { checkCallRecord, markValidated } from '../call/check.js'
import { ApimeterError, type ApimeterErrorCode, errorMessage, type HealthError, isApimeterError } from '../errors.js'
import { CallColumns, type NormalizeContext, normalizeInto } from '../call/normalize.js'
import { type PackedCalls, packStaged, unpackCalls } from '../call/packed.js'
import { ensureStorageReady } from '../stats/stats.js'
import type { StorageAdapter } from '../storage/adapter.js'
import { defaultErrorClass, type StorageErrorClass } from '../storage/error-kind.js'

/** Backoff policy for failed writes. */
export interface RetryPolicy {
  /** First delay after a failed write. */
  initialDelayMs: number
  /** Largest delay between attempts. */
  maxDelayMs: number
  /** Each delay is the previous one times this. */
  multiplier: number
  /** 0 = exact delays; 1 = each delay drawn uniformly from [0, delay]. */
  jitter: number
  /** Attempts per batch before its calls are dropped (and counted). `Infinity` retries while the monitor is open. */
  maxAttempts: number
}

/** Settings of the write pipeline (resolved monitor options). */
export interface PipelineOptions {
  batchSize: number
  maxBufferSize: number
  flushIntervalMs: number
  concurrency: number
  retry: RetryPolicy
  closeTimeoutMs: number
  /** The longest one storage operation may take before it counts as a (transient) failure. */
  storageTimeoutMs: number
}

/** What `monitor.health()` returns. */
export interface MonitorHealth {
  /** Calls accepted but not yet written (buffered, or in a batch being written / retried). */
  queued: number
  /** Calls durably written. */
  written: number
  /** Calls lost: buffer overflow, recorded after close, or given up on (retries exhausted / close timeout). */
  dropped: number
  /** Calls rejected as malformed by `record()` (never stored). */
  invalid: number
  /**
   * Valid calls the storage refused for good (a value it cannot hold): isolated from their batch, counted here and
   * reported with the field the storage named; every other call of the batch was written.
   */
  rejected: number
  /** Failed write attempts (each retry counts). */
  failedWrites: number
  /** Your event listeners that threw or rejected (each is caught; the first of a kind is logged). */
  listenerFailures: number
  lastError: HealthError | null
}

/** Calls of a batch on their way to storage: packed (for `writePacked`) until they are needed one by one. */
type Calls = CallRecord[] | PackedCalls

const countOf = (calls: Calls): number => (Array.isArray(calls) ? calls.length : calls.count)

/** The records of calls (unpacked ones are this pipeline's own, so validated). */
function recordsOf(calls: Calls): CallRecord[] {
  if (Array.isArray(calls)) return calls
  const rows = unpackCalls(calls)
  markValidated(rows)
  return rows
}

interface Batch {
  calls: Calls
  /** Rows whose fate is not settled yet (counted in `pending`). */
  owed: number
  settled: boolean
  /** close() gave up on it: its owed rows were counted as dropped (a later success or refusal corrects that). */
  abandoned: boolean
}

type Settlement = 'written' | 'dropped' | 'rejected' | 'invalid'

/** About how many rows the staging columns keep room for between bursts. */
const STAGING_ROWS = 4096

/**
 * The rows the staging columns shrink back to once bursts are over: whole batches, about {@link STAGING_ROWS} (at
 * least one batch), never more than the buffer.
 *
 * Why: the columns cost ~270 bytes a row and grow by doubling to hold a burst of `record()` calls that outran the
 * drain (a loop recording 50,000 calls before yielding: 65,536 rows, ~17 MiB). They used to keep that size for the
 * life of the process. They still grow during a burst — `record()` does no extra work — and are given back on the
 * flush timer once a whole interval passed without a drain larger than this.
 */
export function stagingLimit(batchSize: number, maxBufferSize: number): number {
  return Math.min(maxBufferSize, batchSize * Math.max(1, Math.floor(STAGING_ROWS / batchSize)))
}

/** A recorder that holds calls back for a moment (see {@link WritePipeline.holdBy}). */
export interface CallHolder {
  /** Calls held back, not recorded yet. */
  readonly held: number
  /** Records the calls held back now. */
  recordHeld(): void
}

/**
 * The buffered, batched, retrying write path. `push()` is O(1) and allocation-free on the common path; batches go
 * to storage through a p-queue with bounded concurrency; failed batches retry with exponential backoff and jitter
 * and keep their place in the buffer bound, so nothing is lost while the buffer has room.
 */
export class WritePipeline {
  /** Calls accepted since the last drain, column by column (see normalize.ts for why). */
  private readonly staging: CallColumns
  private staged = 0
  /** See {@link stagingLimit}. */
  private readonly stagingRows: number
  /** The most rows one drain took since the flush timer last looked. */
  private largestDrain = 0
  private readonly idPrefix = randomBytes(6).toString('hex')
  private idSequence = 0
  private pending = 0
  private readonly inflight = new Set<Promise<void>>()
  private readonly batches = new Set<Batch>()
  private readonly queue: PQueue
  private readonly timer: NodeJS.Timeout
  private drainScheduled = false
  private state: 'open' | 'closing' | 'closed' = 'open'
  private closeDeadline = Infinity
  private closePromise: Promise<void> | undefined
  private readonly sleepers = new Set<() => void>()
  private waiters = 0
  private overflowing = false
  private failing = false
  private droppedAfterCloseReported = false
  /** Set when the storage failed for good (`fatal`): nothing more is attempted, batches are dropped and counted. */
  private fatal: string | undefined
  private readonly rejectionsReported = new Set<string>()
  /** Plugins' call hooks, run on each batch before it is written (undefined without plugins: nothing extra runs). */
  private stage: ((rows: CallRecord[]) => CallRecord[] | Promise<CallRecord[]>) | undefined
  /** Live metrics: shown each staged row once, off the request path (undefined without metrics: nothing runs). */
  private observer: ((columns: CallColumns, from: number, to: number) => void) | undefined
  /** Staged rows the observer has seen. */
  private observed = 0
  /** Calls a recorder holds back until the end of the event loop's turn (see {@link holdBy}). */
  private holder: CallHolder | undefined

  written = 0
  dropped = 0
  invalid = 0
  rejected = 0
  failedWrites = 0
  lastError: HealthError | null = null

  constructor(
    private readonly storage: StorageAdapter,
    private readonly options: PipelineOptions,
    private readonly normalize: NormalizeContext,
    private readonly report: (error: ApimeterError) => void,
  ) {
    this.stagingRows = stagingLimit(options.batchSize, options.maxBufferSize)
    this.staging = new CallColumns(Math.min(this.stagingRows, 1024))
    this.queue = new PQueue({ concurrency: options.concurrency })
    this.timer = setInterval(() => {
      this.drain()
      this.trimStaging()
    }, options.flushIntervalMs)
    this.timer.unref()
  }

  get queued(): number {
    return this.staged + this.pending + (this.holder?.held ?? 0)
  }

  /**
   * Counts the calls `holder` holds back as queued, and has them recorded before every flush and before closing:
   * nothing recorded before a `flush()` or `close()` is missed because it waited for the end of a turn.
   */
  holdBy(holder: CallHolder): void {
    this.holder = holder
  }

  get isOpen(): boolean {
    return this.state === 'open'
  }

  /** Rows the staging columns have room for now. */
  get stagingCapacity(): number {
    return this.staging.capacity
  }

  /** Shrinks the staging columns to {@link stagingLimit} when no drain of the last interval needed more (see there). */
  private trimStaging(): void {
    if (this.largestDrain <= this.stagingRows && this.staged === 0) this.staging.shrink(this.stagingRows)
    this.largestDrain = 0
  }

  /**
   * Validates and stages one call; O(1). Returns normally when the call was accepted or dropped (and counted);
   * throws an `INVALID_CALL` {@link ApimeterError} for a malformed call, which the caller counts.
   */
  push(input: CallInput): void {
    if (this.state !== 'open') {
      this.dropped++
      if (!this.droppedAfterCloseReported) {
        this.droppedAfterCloseReported = true
        this.fail('DROPPED', 'a call was recorded after close(); it was dropped and counted (further ones are counted silently)')
      }
      return
    }
    const staged = this.staged
    if (staged + this.pending >= this.options.maxBufferSize) {
      this.dropped++
      if (!this.overflowing) {
        this.overflowing = true
        this.fail(
          'BUFFER_OVERFLOW',
          `the buffer is full (maxBufferSize ${this.options.maxBufferSize}); new calls are dropped and counted until it drains${this.failing ? ' — storage writes are failing: see health().lastError' : ''}`,
        )
      }
      return
    }
    if (staged === this.staging.capacity) this.staging.ensure(staged + 1)
    normalizeInto(input, this.normalize, this.staging, staged)
    this.staged = staged + 1
    if (staged + 1 >= this.options.batchSize && !this.drainScheduled) {
      this.drainScheduled = true
      setImmediate(() => {
        this.drainScheduled = false
        this.drain(true)
      })
    }
  }

  /**
   * Sets the step each drained batch goes through before it is written (plugins' call hooks): it may change and
   * drop calls, and may be async. It must never throw or reject.
   */
  setStage(stage: (rows: CallRecord[]) => CallRecord[] | Promise<CallRecord[]>): void {
    this.stage = stage
  }

  /**
   * Sets what sees every accepted call (live metrics): it reads staged rows straight from the staging columns,
   * once each, when they are drained into batches or when {@link observeStaged} asks first. It must not throw.
   */
  setObserver(observer: (columns: CallColumns, from: number, to: number) => void): void {
    this.observer = observer
  }

  /** Shows the observer the rows staged since it last saw them (a scrape calls this to be current). */
  observeStaged(): void {
    const to = this.staged
    if (this.observer === undefined || to <= this.observed) return
    const from = this.observed
    this.observed = to
    try {
      this.observer(this.staging, from, to)
    } catch {
      // the observer catches its own errors; the write path goes on regardless
    }
  }

  /** Counts calls rejected before they reached the buffer. */
  countInvalid(error: ApimeterError): void {
    this.invalid++
    this.setLastError(error.code, error.message)
  }

  /**
   * Turns what is staged into records and puts them, in batches, on the write queue: everything, or (`wholeBatches`,
   * the drain a full batch scheduled) whole batches only. The calls staged after a batch filled and before its drain
   * ran stay staged for the next batch or the flush timer, rather than crossing to storage as a batch of their own —
   * one more hand-over and one more transaction per full batch.
   */
  drain(wholeBatches = false): void {
    const staged = this.staged
    const size = this.options.batchSize
    const count = wholeBatches ? staged - (staged % size) : staged
    if (count === 0) return
    if (count > this.largestDrain) this.largestDrain = count
    if (this.observer !== undefined) this.observeStaged()
    if (this.storage.writePacked !== undefined && this.stage === undefined) {
      // straight from the staging columns: no record object per call (plugins' call hooks need the records)
      for (let start = 0; start < count; start += size) {
        const n = Math.min(size, count - start)
        this.submit(packStaged(this.staging, start, n, this.idPrefix, this.idSequence))
        this.idSequence += n
      }
    } else {
      let batch: CallRecord[] = []
      for (let i = 0; i < count; i++) {
        batch.push(this.staging.read(i, this.idPrefix + (this.idSequence++).toString(36)))
        if (batch.length === size) {
          this.submit(batch)
          batch = []
        }
      }
      if (batch.length > 0) this.submit(batch)
    }
    // the rows left (seen by the observer already) move to the front
    const left = staged - count
    if (left > 0) this.staging.moveToFront(count, left)
    this.staged = left
    this.observed = this.observer === undefined ? 0 : left
  }

  private submit(calls: Calls): void {
    if (this.stage === undefined || !Array.isArray(calls)) {
      void this.enqueue(calls)
      return
    }
    // The rows stay counted in `queued` while the plugins' hooks run.
    const rows = calls
    this.pending += rows.length
    let staged: CallRecord[] | Promise<CallRecord[]>
    try {
      staged = this.stage(rows)
    } catch {
      staged = rows // the stage catches its hooks' errors; belt and braces
    }
    if (!(staged instanceof Promise)) {
      this.pending -= rows.length
      if (staged.length > 0) void this.enqueue(staged)
      return
    }
    const done: Promise<void> = staged
      .catch(() => rows)
      .then((kept) => {
        this.pending -= rows.length
        return kept.length > 0 ? this.enqueue(kept) : undefined
      })
      .finally(() => this.inflight.delete(done))
    this.inflight.add(done)
  }

  /** Puts one batch on the write queue; resolves when its calls are settled. */
  private enqueue(calls: Calls): Promise<void> {
    if (Array.isArray(calls)) markValidated(calls)
    const count = countOf(calls)
    const batch: Batch = { calls, owed: count, settled: false, abandoned: false }
    this.pending += count
    this.batches.add(batch)
    const done = this.queue
      .add(() => this.writeWithRetry(batch))
      .catch(() => undefined) // writeWithRetry never rejects; belt and braces
      .finally(() => {
        batch.settled = true
        this.batches.delete(batch)
        if (!batch.abandoned) this.pending -= batch.owed // zero unless a path forgot to settle
        this.inflight.delete(done)
        if (this.overflowing && this.queued < this.options.maxBufferSize / 2) this.overflowing = false
      })
    this.inflight.add(done)
    return done
  }

  private async writeWithRetry(batch: Batch): Promise<void> {
    const outcome = await this.writeRows(batch, batch.calls)
    // A permanent refusal of this batch's data: split until the refused calls are isolated; write the rest.
    if (outcome.kind === 'rejected') await this.isolate(batch, outcome.rows, outcome.error)
  }

  /** Settles `n` rows of a batch: counts them once, whatever close() already assumed about them. */
  private settle(batch: Batch, n: number, as: Settlement): void {
    if (n === 0) return
    if (as === 'written') this.written += n
    else if (as === 'rejected') this.rejected += n
    else if (as === 'invalid') this.invalid += n
    if (batch.abandoned) {
      // close() counted these as dropped; any other fate corrects that
      if (as !== 'dropped') this.dropped -= n
      return
    }
    if (as === 'dropped') this.dropped += n
    batch.owed -= n
    this.pending -= n
  }

  /**
   * Writes rows with retries: a transient failure is retried with backoff (while the monitor is open, or until
   * `close()` runs out of time), malformed rows are dropped from the batch, a fatal failure stops the pipeline's
   * writes. Returns how it ended; on `rejected`, with the records still to write, for {@link isolate}.
   */
  private async writeRows(batch: Batch, calls: Calls): Promise<{ kind: 'done' } | { kind: 'rejected'; error: unknown; rows: CallRecord[] }> {
    let attempt = 0
    let rows = calls
    for (;;) {
      const count = countOf(rows)
      if (this.fatal !== undefined) {
        // reported once when it happened; what follows is only counted
        this.settle(batch, count, 'dropped')
        this.setLastError('DROPPED', `${count} calls were not written: ${this.fatal}`)
        return { kind: 'done' }
      }
      try {
        await this.timed(ensureStorageReady(this.storage), 'connecting to')
        const written = Array.isArray(rows) ? this.storage.writeCalls(rows) : this.storage.writePacked!(rows)
        await this.timed(written, `writing ${count} calls to`)
        this.settle(batch, count, 'written')
        this.failing = false
        return { kind: 'done' }
      } catch (error) {
        attempt++
        this.failedWrites++
        if (isApimeterError(error, 'INVALID_RECORD')) {
          const valid = recordsOf(rows).filter((row) => checkCallRecord(row) === null)
          const malformed = count - valid.length
          if (malformed > 0) {
            this.settle(batch, malformed, 'invalid')
            this.fail('INVALID_RECORD', `${this.storage.name} storage rejected ${malformed} malformed call(s): ${error.message}`, error)
            rows = valid
            if (valid.length === 0) return { kind: 'done' }
            continue
          }
        }
        const kind = this.classify(error)
        if (kind.kind === 'rejected') return { kind: 'rejected', error, rows: recordsOf(rows) }
        if (kind.kind === 'fatal') {
          this.fatal = `${this.storage.name} storage cannot be used: ${errorMessage(error)}${kind.hint ? ` — ${kind.hint}` : ''}`
          this.fail('WRITE_FAILED', `${this.fatal}; calls are no longer written (counted as dropped)`, error)
          continue
        }
        const message = `writing ${count} calls to ${this.storage.name} storage failed (attempt ${attempt}): ${errorMessage(error)}`
        if (!this.failing || attempt === 1) {
          this.failing = true
          this.fail('WRITE_FAILED', `${message}; retrying with backoff`, error)
        } else {
          this.setLastError('WRITE_FAILED', message)
        }
        if (attempt >= this.options.retry.maxAttempts) {
          this.giveUp(batch, `gave up on ${count} calls after ${attempt} failed attempts: ${errorMessage(error)}`, error, count)
          return { kind: 'done' }
        }
        if (performance.now() >= this.closeDeadline) {
          this.giveUp(batch, `close() timed out with ${count} calls unwritten: ${errorMessage(error)}`, error, count)
          return { kind: 'done' }
        }
        await this.sleep(this.backoff(attempt))
      }
    }
  }

  /**
   * Splits refused rows in halves until each refused call stands alone (a few extra writes per bad call, never one
   * per row), writing every half the storage takes; counts and reports each refused call.
   */
  private async isolate(batch: Batch, rows: CallRecord[], error: unknown): Promise<void> {
    if (rows.length === 1) {
      this.reject(batch, rows[0]!, error)
      return
    }
    const middle = rows.length >> 1
    for (const half of [rows.slice(0, middle), rows.slice(middle)]) {
      const outcome = await this.writeRows(batch, half)
      if (outcome.kind === 'rejected') await this.isolate(batch, outcome.rows, outcome.error)
    }
  }

  private reject(batch: Batch, row: CallRecord, error: unknown): void {
    this.settle(batch, 1, 'rejected')
    const { field } = this.classify(error)
    const reason = `${field ? `call.${field}: ` : ''}${errorMessage(error)}`
    const message = `${this.storage.name} storage refused a call for good (${reason}); it was not stored, the other calls of its batch were (${row.direction} ${row.method} ${row.route})`
    // reported once per distinct reason (each refused call is counted in health().rejected)
    if (this.rejectionsReported.size < 100 && !this.rejectionsReported.has(reason)) {
      this.rejectionsReported.add(reason)
      this.fail('REJECTED', message, error)
    } else {
      this.setLastError('REJECTED', message)
    }
  }

  private classify(error: unknown): StorageErrorClass {
    try {
      return this.storage.classifyError?.(error) ?? defaultErrorClass(error)
    } catch {
      return defaultErrorClass(error)
    }
  }

  /** Rejects when `operation` takes longer than the storage timeout (the operation itself is abandoned, not stopped). */
  private timed<T>(operation: Promise<T> | T, what: string): Promise<T> {
    const ms = this.options.storageTimeoutMs
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new ApimeterError('STORAGE_TIMEOUT', `${what} ${this.storage.name} storage took longer than storageTimeoutMs (${ms} ms)`))
      }, ms)
      timer.unref()
      Promise.resolve(operation)
        .finally(() => clearTimeout(timer))
        .then(resolve, reject)
    })
  }

  /** Counts `count` rows of the batch as dropped. */
  private giveUp(batch: Batch, message: string, cause: unknown, count: number): void {
    this.settle(batch, count, 'dropped')
    this.fail('DROPPED', message, cause)
  }

  private backoff(attempt: number): number {
    const { initialDelayMs, maxDelayMs, multiplier, jitter } = this.options.retry
    const base = Math.min(maxDelayMs, initialDelayMs * Math.pow(multiplier, attempt - 1))
    return base * (1 - jitter * Math.random())
  }

  private sleep(ms: number): Promise<void> {
    const limit = this.closeDeadline - performance.now()
    const delay = Math.max(0, Math.min(ms, limit))
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer)
        this.sleepers.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, delay)
      // Only someone awaiting flush()/close() may keep the process alive for a retry.
      if (this.waiters === 0) timer.unref()
      this.sleepers.add(wake)
    })
  }

  private wakeSleepers(): void {
    for (const wake of [...this.sleepers]) wake()
  }

  private setLastError(code: ApimeterErrorCode, message: string): void {
    this.lastError = { code, message, at: new Date() }
  }

  private fail(code: ApimeterErrorCode, message: string, cause?: unknown): void {
    const error = new ApimeterError(code, message, { cause })
    this.setLastError(code, error.message)
    this.report(error)
  }

  /** Resolves when everything pushed before the call is written (or given up on). */
  async flush(timeoutMs?: number): Promise<void> {
    if (this.state === 'closed') return
    this.holder?.recordHeld()
    this.drain()
    const waitFor = [...this.inflight]
    if (waitFor.length === 0) return
    this.waiters++
    // Retries sleeping on unref'd timers now keep the process alive: someone is waiting.
    this.wakeSleepers()
    try {
      if (timeoutMs === undefined) {
        await Promise.all(waitFor)
        return
      }
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(
            new ApimeterError('FLUSH_TIMEOUT', `flush() timed out after ${timeoutMs} ms with ${this.queued} calls still queued (they stay buffered and keep retrying)`),
          )
        }, timeoutMs)
      })
      try {
        await Promise.race([Promise.all(waitFor), timeout])
      } finally {
        clearTimeout(timer)
      }
    } finally {
      this.waiters--
    }
  }

  /**
   * Flushes, stops the timer and closes storage, all within `closeTimeoutMs` (whatever is unwritten then is counted
   * as dropped; the storage's own closing work is cut short). Idempotent; never rejects.
   */
  close(): Promise<void> {
    this.closePromise ??= this.doClose()
    return this.closePromise
  }

  private async doClose(): Promise<void> {
    const started = performance.now()
    this.holder?.recordHeld() // while calls are still accepted
    this.state = 'closing'
    clearInterval(this.timer)
    this.closeDeadline = started + this.options.closeTimeoutMs
    this.waiters++
    this.drain()
    this.wakeSleepers()
    // A write that hangs (a black-holed connection) must not hang close(): at the deadline, whatever is still being
    // written is counted as dropped (and corrected should it land after all).
    await waitUntil(Promise.all([...this.inflight]), this.closeDeadline)
    for (const batch of this.batches) {
      if (!batch.settled && !batch.abandoned) {
        this.fail('DROPPED', `close() timed out with ${batch.owed} calls still being written`)
        this.dropped += batch.owed
        this.pending -= batch.owed
        batch.owed = 0
        batch.abandoned = true
      }
    }
    this.waiters--
    this.state = 'closed'
    // The storage gets what is left of the budget (at least a moment to release its connections).
    const left = Math.max(250, this.closeDeadline - performance.now())
    try {
      const closed = await waitUntil(Promise.resolve(this.storage.close({ timeoutMs: left })).then(() => true), performance.now() + left + 250)
      if (!closed) this.setLastError('DROPPED', `closing ${this.storage.name} storage took longer than closeTimeoutMs; it was left to finish on its own`)
    } catch (error) {
      this.setLastError('WRITE_FAILED', `closing ${this.storage.name} storage failed: ${errorMessage(error)}`)
    }
  }
}

/** Resolves with the promise's value, or with undefined at `deadline` (performance.now() time), whichever is first. */
function waitUntil<T>(promise: Promise<T>, deadline: number): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - performance.now()))
    promise.finally(() => clearTimeout(timer)).then(resolve, reject)
  })
}
