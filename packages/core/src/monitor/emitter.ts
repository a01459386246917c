/**
 * A tiny typed event emitter that can never throw into the caller: listeners run on a microtask (so a listener that
 * calls back into the SDK cannot recurse), and a throwing listener is caught and reported to `onListenerError`.
 * Unlike Node's EventEmitter, emitting `error` with no listener does not throw.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EventMap<Events> = { [K in keyof Events]: (...args: any[]) => void }

export class SafeEmitter<Events extends EventMap<Events>> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>()

  constructor(private readonly onListenerError: (error: unknown, event: keyof Events) => void) {}

  on<E extends keyof Events>(event: E, listener: Events[E]): void {
    let set = this.listeners.get(event)
    if (!set) {
      set = new Set()
      this.listeners.set(event, set)
    }
    set.add(listener)
  }

  off<E extends keyof Events>(event: E, listener: Events[E]): void {
    this.listeners.get(event)?.delete(listener)
  }

  once<E extends keyof Events>(event: E, listener: Events[E]): void {
    const wrapper = ((...args: Parameters<Events[E]>) => {
      this.off(event, wrapper)
      listener(...args)
    }) as Events[E]
    this.on(event, wrapper)
  }

  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0
  }

  /** Queues the event for every current listener; returns whether there was any. */
  emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): boolean {
    const set = this.listeners.get(event)
    if (!set || set.size === 0) return false
    const snapshot = [...set]
    queueMicrotask(() => {
      for (const listener of snapshot) {
        try {
          listener(...args)
        } catch (error) {
          this.onListenerError(error, event)
        }
      }
    })
    return true
  }
}
