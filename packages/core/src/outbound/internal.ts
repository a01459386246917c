import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * apimeter's own HTTP traffic (alert webhooks): run inside {@link internalTraffic} so that `instrument()` and the
 * interceptor, which see every request of the process, leave it alone — the SDK never meters or stores its own
 * notifications (whose URLs often carry secrets).
 */
const store = new AsyncLocalStorage<true>()

/** Runs `fn` as apimeter's own traffic. */
export function internalTraffic<T>(fn: () => T): T {
  return store.run(true, fn)
}

/** Whether the current request is apimeter's own traffic. */
export function isInternalTraffic(): boolean {
  return store.getStore() === true
}
