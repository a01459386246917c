import { ApimeterError, errorMessage, PACKAGE_NAME } from '../errors.js'
import type { MonitorHealth } from '../monitor/pipeline.js'
import { type PrometheusExposition, renderPrometheus, wantsOpenMetrics } from './prometheus.js'
import { family, MetricsRegistry } from './registry.js'
import type { ResolvedMetricsOptions } from './options.js'
import type { MetricFamily, MetricPoint, MetricsSnapshot } from './snapshot.js'
import type { CallColumns } from '../call/normalize.js'

/**
 * `monitor.metrics`: this instance's live metrics, kept in memory from the moment calls are recorded (not read
 * from the database), for Prometheus and OpenTelemetry. Turned on with `createMonitor({ metrics: true })`.
 *
 * @example
 * ```ts
 * const monitor = createMonitor({ metrics: true })
 * const { contentType, body } = await monitor.metrics.prometheus({ accept: req.headers.accept })
 * ```
 */
export interface MonitorMetrics {
  /** Whether `createMonitor({ metrics })` turned them on. */
  readonly enabled: boolean
  /**
   * Every metric as it is now, in a neutral shape named per the OpenTelemetry semantic conventions (what
   * `@apimeter/otel` exports). Rejects with `INVALID_OPTIONS` when metrics are off.
   * @example
   * ```ts
   * const { families } = await monitor.metrics.collect()
   * const server = families.find((f) => f.name === 'http.server.request.duration')
   * ```
   */
  collect(): Promise<MetricsSnapshot>
  /**
   * The metrics in the Prometheus text format 0.0.4, or OpenMetrics 1.0.0 when `accept` (a request's `Accept`
   * header) asks for it or `openMetrics` is true. Rejects with `INVALID_OPTIONS` when metrics are off.
   * @example
   * ```ts
   * const { contentType, body } = await monitor.metrics.prometheus({ accept: req.headers.accept })
   * res.setHeader('Content-Type', contentType).end(body)
   * ```
   */
  prometheus(options?: { accept?: string; openMetrics?: boolean }): Promise<PrometheusExposition>
}

/** What the metrics read from the monitor besides the calls. */
export interface MetricsSources {
  now(): number
  health(): MonitorHealth
  alertRules: readonly string[]
  activeAlerts(): Promise<readonly { rule: string; state: 'pending' | 'firing' }[]>
  probeStates(): Promise<readonly { name: string; state: 'up' | 'down' | 'unknown' }[]>
  /** Makes the observer current (the pipeline's rows staged since it last drained). */
  catchUp(): void
  report(error: ApimeterError): void
}

const ALERT_STATE = { pending: 1, firing: 2 } as const

/** The monitor's `metrics`; {@link observe} is the write pipeline's observer when metrics are on. */
export class Metrics implements MonitorMetrics {
  private readonly registry: MetricsRegistry | undefined

  constructor(
    options: ResolvedMetricsOptions | undefined,
    private readonly sources: MetricsSources,
  ) {
    this.registry = options === undefined ? undefined : new MetricsRegistry(options, sources.now())
  }

  get enabled(): boolean {
    return this.registry !== undefined
  }

  /** The pipeline's observer, or undefined when metrics are off (then nothing runs on the write path). */
  get observer(): ((columns: CallColumns, from: number, to: number) => void) | undefined {
    const registry = this.registry
    if (registry === undefined) return undefined
    return (columns, from, to) => {
      try {
        registry.observe(columns, from, to)
      } catch (error) {
        this.sources.report(new ApimeterError('METRICS_FAILED', `live metrics could not count ${to - from} calls: ${errorMessage(error)}`, { cause: error }))
      }
    }
  }

  async collect(): Promise<MetricsSnapshot> {
    const registry = this.registry
    if (registry === undefined) {
      throw new ApimeterError('INVALID_OPTIONS', `${PACKAGE_NAME}: monitor.metrics is off; turn it on with createMonitor({ metrics: true })`)
    }
    this.sources.catchUp()
    const [alerts, probes] = await Promise.all([this.alertFamily(), this.probeFamily()])
    return { startTime: registry.startTime, time: this.sources.now(), families: [...registry.families(), ...this.healthFamilies(), alerts, probes] }
  }

  async prometheus(options: { accept?: string; openMetrics?: boolean } = {}): Promise<PrometheusExposition> {
    return renderPrometheus(await this.collect(), options.openMetrics ?? wantsOpenMetrics(options.accept))
  }

  private healthFamilies(): MetricFamily[] {
    const h = this.sources.health()
    const calls = (name: string, kind: 'gauge' | 'counter', description: string, value: number): MetricFamily =>
      family({ name: `apimeter.${name}.calls`, promName: `apimeter_${name}_calls`, kind, unit: '{call}', description, integer: true }, [{ attributes: {}, value }])
    return [
      calls('buffer', 'gauge', 'Calls accepted and not yet written (buffered or being written).', h.queued),
      calls('written', 'counter', 'Calls written to storage.', h.written),
      calls('dropped', 'counter', 'Calls lost: buffer overflow, recorded after close, or given up on after retries.', h.dropped),
      calls('rejected', 'counter', 'Valid calls the storage refused for good (a value it cannot hold).', h.rejected),
      calls('invalid', 'counter', 'Malformed calls record() refused.', h.invalid),
    ]
  }

  private async alertFamily(): Promise<MetricFamily> {
    const definition = { name: 'apimeter.alert.state', promName: 'apimeter_alert_state', kind: 'gauge', unit: '1', description: 'State of each alert rule: 0 ok, 1 pending, 2 firing.', integer: true } as const
    if (this.sources.alertRules.length === 0) return family(definition, [])
    const state = new Map<string, number>(this.sources.alertRules.map((rule) => [rule, 0]))
    try {
      for (const alert of await this.sources.activeAlerts()) state.set(alert.rule, Math.max(state.get(alert.rule) ?? 0, ALERT_STATE[alert.state]))
    } catch (error) {
      this.sources.report(new ApimeterError('ALERT_EVALUATION_FAILED', `alert states could not be read for the metrics: ${errorMessage(error)}`, { cause: error }))
      return family(definition, [])
    }
    return family(definition, [...state].map(([rule, value]): MetricPoint => ({ attributes: { 'apimeter.alert.rule': rule }, value })))
  }

  private async probeFamily(): Promise<MetricFamily> {
    const definition = { name: 'apimeter.probe.up', promName: 'apimeter_probe_up', kind: 'gauge', unit: '1', description: 'Whether each probe is up (1) or has an open incident (0); probes not yet checked are left out.', integer: true } as const
    try {
      const points = (await this.sources.probeStates()).filter((p) => p.state !== 'unknown').map((p): MetricPoint => ({ attributes: { 'apimeter.probe': p.name }, value: p.state === 'up' ? 1 : 0 }))
      return family(definition, points)
    } catch (error) {
      this.sources.report(new ApimeterError('PROBE_FAILED', `probe states could not be read for the metrics: ${errorMessage(error)}`, { cause: error }))
      return family(definition, [])
    }
  }
}
