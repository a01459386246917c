import { performance } from 'node:perf_hooks'
import PQueue from 'p-queue'
import { randomBytes } from 'node:crypto'
import type { CallInput, CallRecord } from '../call/types.js'
import { checkCallRecord, markValidated } from '../call/check.js'
import { ApimeterError, type ApimeterErrorCode, errorMessage, type HealthError, isApimeterError } from '../errors.js'
import { CallColumns, type NormalizeContext, normalizeInto } from '../call/normalize.js'
import { ensureStorageReady } from '../stats/stats.js'
import type { StorageAdapter } from '../storage/adapter.js'

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
}

/** What `monitor.health()` returns. */
export interface MonitorHealth {
  /** Calls accepted but not yet written (buffered, or in a batch being written / retried). */
  queued: number
  /** Calls durably written. */
  written: number
  /** Calls lost: buffer overflow, recorded after close, or given up on (retries exhausted / close timeout). */
  dropped: number
  /** Calls rejected as malformed (never stored). */
  invalid: number
  /** Failed write attempts (each retry counts). */
  failedWrites: number
  lastError: HealthError | null
}

interface Batch {
  rows: CallRecord[]
  settled: boolean
  abandoned: boolean
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

  written = 0
  dropped = 0
  invalid = 0
  failedWrites = 0
  lastError: HealthError | null = null

  constructor(
    private readonly storage: StorageAdapter,
    private readonly options: PipelineOptions,
    private readonly normalize: NormalizeContext,
    private readonly report: (error: ApimeterError) => void,
  ) {
    this.staging = new CallColumns(Math.min(options.maxBufferSize, 1024))
    this.queue = new PQueue({ concurrency: options.concurrency })
    this.timer = setInterval(() => this.drain(), options.flushIntervalMs)
    this.timer.unref()
  }

  get queued(): number {
    return this.staged + this.pending
  }

  get isOpen(): boolean {
    return this.state === 'open'
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
        this.drain()
      })
    }
  }

  /** Counts calls rejected before they reached the buffer. */
  countInvalid(error: ApimeterError): void {
    this.invalid++
    this.setLastError(error.code, error.message)
  }

  /** Turns everything staged into records and puts them, in batches, on the write queue. */
  drain(): void {
    const count = this.staged
    if (count === 0) return
    const size = this.options.batchSize
    let batch: CallRecord[] = []
    for (let i = 0; i < count; i++) {
      batch.push(this.staging.read(i, this.idPrefix + (this.idSequence++).toString(36)))
      if (batch.length === size) {
        this.submit(batch)
        batch = []
      }
    }
    this.staged = 0
    if (batch.length > 0) this.submit(batch)
  }

  private submit(rows: CallRecord[]): void {
    markValidated(rows)
    const batch: Batch = { rows, settled: false, abandoned: false }
    this.pending += rows.length
    this.batches.add(batch)
    const done = this.queue
      .add(() => this.writeWithRetry(batch))
      .catch(() => undefined) // writeWithRetry never rejects; belt and braces
      .finally(() => {
        batch.settled = true
        this.batches.delete(batch)
        if (!batch.abandoned) this.pending -= batch.rows.length
        this.inflight.delete(done)
        if (this.overflowing && this.queued < this.options.maxBufferSize / 2) this.overflowing = false
      })
    this.inflight.add(done)
  }

  private async writeWithRetry(batch: Batch): Promise<void> {
    let attempt = 0
    for (;;) {
      try {
        await ensureStorageReady(this.storage)
        await this.storage.writeCalls(batch.rows)
        if (batch.abandoned) {
          // close() already counted these as dropped; they made it after all.
          this.dropped -= batch.rows.length
        }
        this.written += batch.rows.length
        this.failing = false
        // close() gives up only when the storage stops making progress, not while it is working through a backlog
        if (this.state === 'closing') this.closeDeadline = performance.now() + this.options.closeTimeoutMs
        return
      } catch (error) {
        attempt++
        this.failedWrites++
        if (isApimeterError(error, 'INVALID_RECORD')) {
          const valid = batch.rows.filter((row) => checkCallRecord(row) === null)
          const rejected = batch.rows.length - valid.length
          if (rejected > 0) {
            this.invalid += rejected
            if (!batch.abandoned) this.pending -= rejected
            this.fail('INVALID_RECORD', `${this.storage.name} storage rejected ${rejected} malformed call(s): ${error.message}`, error)
            batch.rows = valid
            if (valid.length === 0) return
            continue
          }
          this.giveUp(batch, `${this.storage.name} storage refused a batch of ${batch.rows.length} calls that passed validation; they were dropped: ${error.message}`, error)
          return
        }
        const message = `writing ${batch.rows.length} calls to ${this.storage.name} storage failed (attempt ${attempt}): ${errorMessage(error)}`
        if (!this.failing || attempt === 1) {
          this.failing = true
          this.fail('WRITE_FAILED', `${message}; retrying with backoff`, error)
        } else {
          this.setLastError('WRITE_FAILED', message)
        }
        if (attempt >= this.options.retry.maxAttempts) {
          this.giveUp(batch, `gave up on ${batch.rows.length} calls after ${attempt} failed attempts: ${errorMessage(error)}`, error)
          return
        }
        if (performance.now() >= this.closeDeadline) {
          this.giveUp(batch, `close() timed out with ${batch.rows.length} calls unwritten: ${errorMessage(error)}`, error)
          return
        }
        await this.sleep(this.backoff(attempt))
      }
    }
  }

  private giveUp(batch: Batch, message: string, cause: unknown): void {
    if (!batch.abandoned) {
      this.dropped += batch.rows.length
      this.pending -= batch.rows.length
      batch.abandoned = true
    }
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

  /** Flushes within `closeTimeoutMs`, stops the timer, closes storage. Idempotent; never rejects. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose()
    return this.closePromise
  }

  private async doClose(): Promise<void> {
    this.state = 'closing'
    clearInterval(this.timer)
    this.closeDeadline = performance.now() + this.options.closeTimeoutMs
    this.waiters++
    this.drain()
    this.wakeSleepers()
    const all = Promise.all([...this.inflight])
    let timer: NodeJS.Timeout | undefined
    const stalled = new Promise<void>((resolve) => {
      // A write that hangs (a black-holed connection) must not hang close(): once no batch has completed for
      // closeTimeoutMs (plus a grace second), whatever is still unwritten is counted as dropped.
      const check = (): void => {
        const left = this.closeDeadline + 1000 - performance.now()
        if (left <= 0) resolve()
        else timer = setTimeout(check, Math.min(left, 1000))
      }
      check()
    })
    await Promise.race([all, stalled])
    clearTimeout(timer)
    for (const batch of this.batches) {
      if (!batch.settled) this.giveUp(batch, `close() timed out with ${batch.rows.length} calls still being written`, undefined)
    }
    this.waiters--
    this.state = 'closed'
    try {
      await this.storage.close()
    } catch (error) {
      this.setLastError('WRITE_FAILED', `closing ${this.storage.name} storage failed: ${errorMessage(error)}`)
    }
  }
}
