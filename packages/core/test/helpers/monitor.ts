import { type ApimeterError, createMonitor, memoryStorage, type Monitor, type MonitorOptions } from '@apimeter/core'

/** A monitor on real memory storage that collects its error events, with warnings silenced. */
export function testMonitor(options: MonitorOptions = {}): { monitor: Monitor; errors: ApimeterError[]; storage: ReturnType<typeof memoryStorage> } {
  const storage = (options.storage as ReturnType<typeof memoryStorage> | undefined) ?? memoryStorage({ maxCalls: Infinity })
  const monitor = createMonitor({ logger: false, flushOnExit: false, ...options, storage })
  const errors: ApimeterError[] = []
  monitor.on('error', (error) => errors.push(error))
  return { monitor, errors, storage }
}

/** Lets queued microtasks (event delivery) run. */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
