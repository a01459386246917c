/**
 * Queries first: a background rollup run of this process steps aside, between its statements, while a stats query of
 * the same process is in flight.
 *
 * On a server with a pool of connections a run and a query execute side by side, and right after a burst of writes a
 * run merges thousands of rows into the hour, day and month tables: its statements, and the JavaScript between them,
 * took the CPU the query needed (a summary that answers in 15 ms took 30–60 while a run was merging). A query never
 * waits for a run: it reads a snapshot and adds the not-yet-rolled tail itself. So the run is the one that yields,
 * and only at the points where it holds nothing a query needs: between statements, its transaction open (its row
 * locks block no reader).
 *
 * A run's pauses are bounded twice: each ends after `maxWaitMs` even if queries are still running (a query waiting for
 * a pooled connection the run's own writes hold must not wait on the run), and a run pauses at most `budgetMs` in all,
 * so a dashboard polling without rest slows the rollups down but never stops them.
 *
 * Only where runs and queries use separate connections (a pool): on one connection a query waits for the run's
 * transaction to end, and a run waiting for that query would only add its pauses to it.
 */
export class QueryGate {
  #active = 0
  #idle: (() => void)[] = []

  constructor(
    private readonly maxWaitMs = 100,
    private readonly budgetMs = 1_000,
  ) {}

  /** Runs `query` counted as in flight. */
  async around<T>(query: () => Promise<T>): Promise<T> {
    this.#active++
    try {
      return await query()
    } finally {
      // the runs go on in a later turn, not in this one's microtasks: what the caller does with the answer (the stats
      // layer's percentiles and result objects, synchronous after this resolves) runs first
      if (--this.#active === 0) setImmediate(this.#wakeIfIdle)
    }
  }

  readonly #wakeIfIdle = (): void => {
    if (this.#active > 0) return // another query began meanwhile
    const idle = this.#idle
    this.#idle = []
    for (const wake of idle) wake()
  }

  /** Queries of this process in flight now. */
  get active(): number {
    return this.#active
  }

  /**
   * The pause function of one run: await what it returns before each statement (undefined when no query is in flight
   * or the run's budget is spent).
   */
  forRun(): () => Promise<void> | undefined {
    let left = this.budgetMs
    return () => {
      if (this.#active === 0 || left <= 0) return undefined
      const started = performance.now()
      const wait = Math.min(this.maxWaitMs, left)
      return new Promise<void>((resolve) => {
        // a timer may fire a little before its time by performance.now(): a pause that timed out spent all of it
        const done = (timedOut = false): void => {
          clearTimeout(timer)
          left -= timedOut ? Math.max(wait, performance.now() - started) : performance.now() - started
          resolve()
        }
        const timer = setTimeout(() => {
          const at = this.#idle.indexOf(done)
          if (at >= 0) this.#idle.splice(at, 1)
          done(true)
        }, wait)
        this.#idle.push(done)
      })
    }
  }
}
