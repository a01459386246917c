/**
 * A tiny typed event emitter that can never throw into the caller, nor let a listener crash the process: listeners run
 * on a microtask (so a listener that calls back into the SDK cannot recurse), a throwing listener is caught, and an
 * async listener's rejection is caught too — each failure is passed to `onListenerError`. Unlike Node's
 * EventEmitter, emitting `error` with no listener does not throw.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EventMap<Events> = { [K in keyof Events]: (...args: any[]) => unknown }

interface Entry<F> {
  listener: F
  once: boolean
}

export class SafeEmitter<Events extends EventMap<Events>> {
  private readonly listeners = new Map<keyof Events, Entry<Events[keyof Events]>[]>()

  constructor(private readonly onListenerError: (error: unknown, event: keyof Events, how: 'threw' | 'rejected') => void) {}

  on<E extends keyof Events>(event: E, listener: Events[E]): void {
    this.add(event, listener, false)
  }

  /** Removes a listener added with `on()` or `once()` (every registration of it). */
  off<E extends keyof Events>(event: E, listener: Events[E]): void {
    const entries = this.listeners.get(event)
    if (!entries) return
    const kept = entries.filter((e) => e.listener !== listener)
    if (kept.length === 0) this.listeners.delete(event)
    else this.listeners.set(event, kept)
  }

  once<E extends keyof Events>(event: E, listener: Events[E]): void {
    this.add(event, listener, true)
  }

  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.length ?? 0
  }

  /** Queues the event for every current listener; returns whether there was any. */
  emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): boolean {
    const entries = this.listeners.get(event)
    if (!entries || entries.length === 0) return false
    const snapshot = [...entries]
    if (snapshot.some((e) => e.once)) {
      const kept = entries.filter((e) => !e.once)
      if (kept.length === 0) this.listeners.delete(event)
      else this.listeners.set(event, kept)
    }
    queueMicrotask(() => {
      for (const { listener } of snapshot) {
        try {
          const result = (listener as (...a: Parameters<Events[E]>) => unknown)(...args)
          if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
            ;(result as PromiseLike<unknown>).then(undefined, (error: unknown) => this.onListenerError(error, event, 'rejected'))
          }
        } catch (error) {
          this.onListenerError(error, event, 'threw')
        }
      }
    })
    return true
  }

  private add<E extends keyof Events>(event: E, listener: Events[E], once: boolean): void {
    let entries = this.listeners.get(event)
    if (!entries) {
      entries = []
      this.listeners.set(event, entries)
    }
    entries.push({ listener, once })
  }
}
