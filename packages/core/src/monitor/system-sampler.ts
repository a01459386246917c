import { type IntervalHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { ApimeterError, errorMessage } from '../errors.js'
import type { SystemSample, SystemStore } from '../storage/system-store.js'

/**
 * Opt-in process metrics (`createMonitor({ system: { intervalMs } })`): every interval, one sample of this process —
 * event-loop delay and utilisation, CPU, memory, open handles — is written to the storage. Sampling reads a few
 * counters Node keeps anyway (the event-loop delay histogram is Node's own, sampled by libuv), on an unref'd timer,
 * never on the request path.
 */

/**
 * The `system` option.
 *
 * @example
 * ```ts
 * createMonitor({ storage, system: { intervalMs: 15_000 } })
 * ```
 */
export interface SystemOptions {
  /** How often a sample is taken and stored (ms, 100 … 3,600,000). @default 10_000 */
  intervalMs?: number
}

/** Default sampling interval. */
export const SYSTEM_INTERVAL_MS = 10_000

/** What the sampler needs from its monitor. */
export interface SystemSamplerConfig {
  intervalMs: number
  service: string
  instance: string
  store: SystemStore
  now(): number
  report(error: ApimeterError): void
}

/** Samples the process on an unref'd interval into the system store. */
export class SystemSampler {
  private readonly histogram: IntervalHistogram
  private lastElu = performance.eventLoopUtilization()
  private lastCpu = process.cpuUsage()
  private lastPerf = performance.now()
  private readonly timer: NodeJS.Timeout
  private readonly writes = new Set<Promise<void>>()
  private failing = false
  samples = 0
  failures = 0

  constructor(private readonly config: SystemSamplerConfig) {
    this.histogram = monitorEventLoopDelay({ resolution: 10 })
    this.histogram.enable()
    this.timer = setInterval(() => void this.sampleAndStore(), config.intervalMs)
    this.timer.unref()
  }

  /** Takes one sample of the interval since the last one (and starts the next interval). */
  take(): SystemSample {
    const h = this.histogram
    const elu = performance.eventLoopUtilization(this.lastElu)
    const cpu = process.cpuUsage(this.lastCpu)
    const perfNow = performance.now()
    const mem = process.memoryUsage()
    const us = (ns: number): number => (Number.isFinite(ns) && ns > 0 ? Math.round(ns / 100) / 10 : 0)
    const sample: SystemSample = {
      at: this.config.now(),
      service: this.config.service,
      instance: this.config.instance,
      intervalMs: Math.max(1, Math.round(perfNow - this.lastPerf)),
      eventLoopDelayP50Us: h.count > 0 ? us(h.percentile(50)) : 0,
      eventLoopDelayP99Us: h.count > 0 ? us(h.percentile(99)) : 0,
      eventLoopDelayMaxUs: h.count > 0 ? us(h.max) : 0,
      eventLoopUtilization: Number.isFinite(elu.utilization) ? Math.min(1, Math.max(0, elu.utilization)) : 0,
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      heapTotalBytes: mem.heapTotal,
      handles: activeHandles(),
    }
    h.reset()
    this.lastElu = performance.eventLoopUtilization()
    this.lastCpu = process.cpuUsage()
    this.lastPerf = perfNow
    return sample
  }

  /** Takes a sample and writes it; never rejects (a failure is reported once per failing streak). */
  sampleAndStore(): Promise<void> {
    let write: Promise<void>
    try {
      const sample = this.take()
      write = this.config.store.write([sample]).then(
        () => {
          this.samples++
          this.failing = false
        },
        (error: unknown) => this.fail(error),
      )
    } catch (error) {
      this.fail(error)
      return Promise.resolve()
    }
    const tracked = write.finally(() => this.writes.delete(tracked))
    this.writes.add(tracked)
    return tracked
  }

  private fail(error: unknown): void {
    this.failures++
    if (this.failing) return
    this.failing = true
    this.config.report(new ApimeterError('SYSTEM_SAMPLE_FAILED', `a process metrics sample could not be stored: ${errorMessage(error)} (retried at the next interval)`, { cause: error }))
  }

  /** Stops sampling; waits for the writes in flight. */
  async stop(): Promise<void> {
    clearInterval(this.timer)
    this.histogram.disable()
    await Promise.allSettled([...this.writes])
  }
}

function activeHandles(): number {
  try {
    return typeof process.getActiveResourcesInfo === 'function' ? process.getActiveResourcesInfo().length : 0
  } catch {
    return 0
  }
}
