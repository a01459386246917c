import { bucketStart, type Interval } from '../time.js'

/**
 * Process metrics (`apimeter_system_samples`): the host process's own vital signs, sampled by a monitor with the
 * `system` option, next to its API numbers. See docs/system-metrics.md.
 */

/** One sample of one process, covering the `intervalMs` before `at`. */
export interface SystemSample {
  /** End of the sampled interval, epoch ms (UTC). */
  at: number
  service: string
  /** `<host>:<pid>` of the sampled process. */
  instance: string
  /** Length of the sampled interval (ms). */
  intervalMs: number
  /** Event-loop delay over the interval (µs), from `perf_hooks.monitorEventLoopDelay`. */
  eventLoopDelayP50Us: number
  eventLoopDelayP99Us: number
  eventLoopDelayMaxUs: number
  /** Event-loop utilisation over the interval, 0 … 1. */
  eventLoopUtilization: number
  /** CPU time used during the interval (µs). */
  cpuUserUs: number
  cpuSystemUs: number
  /** Memory at the end of the interval (bytes). */
  rssBytes: number
  heapUsedBytes: number
  heapTotalBytes: number
  /** Open handles and requests (`process.getActiveResourcesInfo().length`). */
  handles: number
}

/** Which samples to read (epoch ms; `from` inclusive, `to` exclusive). */
export interface SystemSampleQuery {
  from?: number
  to?: number
  service?: string
  instance?: string
}

/** What a storage offers for process metrics (memory, SQLite and PostgreSQL storages have it as `storage.system`). */
export interface SystemStore {
  write(samples: readonly SystemSample[]): Promise<void>
  /** Samples in the range, oldest first. */
  list(query: SystemSampleQuery): Promise<SystemSample[]>
}

/** Average and largest value of a gauge over a bucket. */
export interface GaugeStats {
  avg: number
  max: number
}

/**
 * One UTC bucket of `stats.system()`.
 *
 * @example
 * ```ts
 * const [last] = (await monitor.stats.system({ from: '-1h', interval: 'minute' })).slice(-1)
 * console.log(last.eventLoopDelayUs.p99, last.cpu.percent, last.rssBytes.max)
 * ```
 */
export interface SystemBucket {
  start: Date
  /** Samples in the bucket (from every instance that matched). */
  samples: number
  /** Distinct instances sampled. */
  instances: number
  /** Event-loop delay (µs): the average of the samples' p50, the largest p99 and max. */
  eventLoopDelayUs: { p50: number; p99: number; max: number }
  /** Event-loop utilisation, 0 … 1. */
  eventLoopUtilization: GaugeStats
  /** CPU time used (µs), and as a percentage of one core over the sampled time (100 = one core busy). */
  cpu: { userUs: number; systemUs: number; percent: number }
  rssBytes: GaugeStats
  heapUsedBytes: GaugeStats
  heapTotalBytes: GaugeStats
  handles: GaugeStats
}

type Gauge = 'eventLoopUtilization' | 'rssBytes' | 'heapUsedBytes' | 'heapTotalBytes' | 'handles'

/** Buckets samples by UTC interval (oldest first); only buckets with samples are returned. */
export function bucketSystemSamples(samples: readonly SystemSample[], interval: Interval): SystemBucket[] {
  const groups = new Map<number, SystemSample[]>()
  for (const s of samples) {
    const start = bucketStart(s.at, interval)
    let list = groups.get(start)
    if (!list) groups.set(start, (list = []))
    list.push(s)
  }
  return [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([start, list]) => {
      const n = list.length
      const sum = (f: (s: SystemSample) => number): number => list.reduce((acc, s) => acc + f(s), 0)
      const max = (f: (s: SystemSample) => number): number => list.reduce((acc, s) => Math.max(acc, f(s)), -Infinity)
      const gauge = (k: Gauge): GaugeStats => ({ avg: sum((s) => s[k]) / n, max: max((s) => s[k]) })
      const userUs = sum((s) => s.cpuUserUs)
      const systemUs = sum((s) => s.cpuSystemUs)
      const sampledUs = sum((s) => s.intervalMs * 1000)
      return {
        start: new Date(start),
        samples: n,
        instances: new Set(list.map((s) => s.instance)).size,
        eventLoopDelayUs: { p50: sum((s) => s.eventLoopDelayP50Us) / n, p99: max((s) => s.eventLoopDelayP99Us), max: max((s) => s.eventLoopDelayMaxUs) },
        eventLoopUtilization: gauge('eventLoopUtilization'),
        cpu: { userUs, systemUs, percent: sampledUs > 0 ? ((userUs + systemUs) / sampledUs) * 100 : 0 },
        rssBytes: gauge('rssBytes'),
        heapUsedBytes: gauge('heapUsedBytes'),
        heapTotalBytes: gauge('heapTotalBytes'),
        handles: gauge('handles'),
      }
    })
}

/** Whether a sample matches a query. */
export function sampleMatches(s: SystemSample, q: SystemSampleQuery): boolean {
  return s.at >= (q.from ?? -Infinity) && s.at < (q.to ?? Infinity) && (q.service === undefined || s.service === q.service) && (q.instance === undefined || s.instance === q.instance)
}

/**
 * Process samples in memory (memory storage's; the fallback for a custom storage without one). Keeps at most
 * `maxRows` samples, the oldest going first.
 *
 * @example
 * ```ts
 * const myStorage: StorageAdapter = { ...myAdapter, system: memorySystemStore() }
 * ```
 */
export function memorySystemStore(maxRows = 100_000): SystemStore {
  let rows: SystemSample[] = []
  return {
    async write(samples) {
      for (const s of samples) rows.push({ ...s })
      if (rows.length > maxRows) rows = rows.slice(rows.length - maxRows)
    },
    async list(query) {
      return rows.filter((s) => sampleMatches(s, query)).sort((a, b) => a.at - b.at).map((s) => ({ ...s }))
    },
  }
}
