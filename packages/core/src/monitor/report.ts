import type { ApimeterError } from '../errors.js'

/**
 * Where a monitor from `createMonitor()` takes errors from apimeter's own packages (the dashboard, framework
 * adapters) to emit as its `error` event (or warn once, when nobody listens), as its own background work does.
 * A registered symbol, so a package built against another copy of core finds it too. Internal: use
 * {@link reportToMonitor}.
 */
export const MONITOR_REPORT: unique symbol = Symbol.for('apimeter.monitorReport')

/**
 * Reports `error` on `monitor`'s `error` event, the way the monitor reports its own background errors. For
 * apimeter's packages that run beside a monitor (the dashboard, framework adapters); false when `monitor` is not a
 * monitor from `createMonitor()` (nothing is reported then).
 *
 * @example
 * ```ts
 * reportToMonitor(monitor, new ApimeterError('CALLBACK_FAILED', '@apimeter/dashboard: the overview could not be read'))
 * ```
 */
export function reportToMonitor(monitor: unknown, error: ApimeterError): boolean {
  const report = (monitor as { [MONITOR_REPORT]?: unknown } | null | undefined)?.[MONITOR_REPORT]
  if (typeof report !== 'function') return false
  ;(report as (error: ApimeterError) => void).call(monitor, error)
  return true
}
