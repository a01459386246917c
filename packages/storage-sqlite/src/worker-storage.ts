import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { ApimeterError, type SqlStorage } from '@apimeter/core'
import { type AlertStore, assertCallRecords, type AuditStore, defaultErrorClass, errorMessage, isValidated, packCalls, type ProbeStore, type SloStore, sqliteDialect, type StorageHooks, type SystemStore } from '@apimeter/core/sql'
import { kyselyOn, openSqlite, PACKAGE, type SqliteSettings } from './sqlite-connection.js'
import { fromWire, kindFromWorker, type Operation, type Reply, rowsFromWire, type WireAggregateRows, type WireError, withKind } from './worker-protocol.js'

/** What the worker thread is started with (everything in it survives structured clone). */
export type WorkerSettings = Omit<SqliteSettings, 'database' | 'now' | 'awaitMaintenance'> & { filename: string }

/**
 * The worker thread's script: next to this module in the built package, or the built one when this module runs from
 * its TypeScript source (tests, tsx). Undefined when neither exists (an app bundled into one file).
 */
export function workerScript(): URL | undefined {
  for (const candidate of ['./sqlite-worker.js', '../dist/sqlite-worker.js']) {
    try {
      const url = new URL(candidate, import.meta.url)
      if (existsSync(fileURLToPath(url))) return url
    } catch {
      // import.meta.url is not a file URL here (bundled, or compiled to CommonJS)
    }
  }
  return undefined
}

/** The fatal error of a worker thread that cannot start, naming the way out. */
function cannotStart(filename: string, why: string, cause: unknown): ApimeterError {
  return withKind(new ApimeterError('STORAGE_UNAVAILABLE', `the worker thread of the SQLite storage on ${filename} cannot start (${why})`, { cause, prefix: PACKAGE }), {
    kind: 'fatal',
    hint: `the SQLite storage's worker thread cannot start in this process: create the storage with thread: 'main'`,
  })
}

/**
 * The young generation of the worker thread's heap, in MiB. V8 sizes it for throughput (32 MiB and more after bursts
 * of writes), and what it has grown to stays resident in the host's process; the worker's allocations are short-lived
 * batches, which a smaller one collects as well.
 */
const WORKER_YOUNG_GENERATION_MIB = 16

/**
 * Starts the worker thread with this process's Node options. Node refuses some in a worker (V8 flags such as
 * `--expose-gc`, process-wide ones such as `--title`) and names them in its error: the worker then starts without
 * those, which concern the process, not the storage's code.
 */
function newWorker(script: URL, settings: WorkerSettings): Worker {
  let execArgv = workerExecArgv()
  for (;;) {
    try {
      return new Worker(script, { workerData: settings, name: 'apimeter-sqlite', execArgv, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MIB } })
    } catch (error) {
      const refused = (error as { code?: unknown }).code === 'ERR_WORKER_INVALID_EXEC_ARGV' ? refusedFlags((error as Error).message) : []
      const kept = execArgv.filter((arg) => !refused.some((flag) => arg === flag || arg.startsWith(`${flag}=`)))
      if (kept.length === execArgv.length) throw error
      execArgv = kept
    }
  }
}

/** The flags named in Node's `Initiated Worker with invalid execArgv flags: --a, --b=1` message. */
function refusedFlags(message: string): string[] {
  const list = message.slice(message.indexOf(':') + 1)
  return list
    .split(/[\s,]+/)
    .filter((flag) => flag.startsWith('-'))
    .map((flag) => flag.split('=')[0]!)
}

/**
 * The Node options the worker starts with: this process's (loaders such as tsx or Yarn's PnP must resolve the worker's
 * imports too) except those a worker refuses (`--input-type`, from `node --input-type=module -e …`).
 */
function workerExecArgv(): string[] {
  const out: string[] = []
  for (let i = 0; i < process.execArgv.length; i++) {
    const arg = process.execArgv[i]!
    if (arg === '--input-type') i++
    else if (!arg.startsWith('--input-type=')) out.push(arg)
  }
  return out
}

interface Pending {
  resolve(value: unknown): void
  reject(error: unknown): void
}

/**
 * The SQLite storage run in a worker thread: this object, on the host thread, only hands requests over and hands
 * the answers back. The worker starts on first use and is unref'd while no request is outstanding (it never keeps a
 * process alive on its own); if it dies, outstanding requests reject with `STORAGE_UNAVAILABLE` and the next request
 * starts a new one. `close()` closes the storage in the worker and ends the thread.
 */
export function workerSqliteStorage(settings: WorkerSettings, script: URL): SqlStorage {
  const reporters = new Set<StorageHooks['report']>()
  const pending = new Map<number, Pending>()
  let worker: Worker | undefined
  let nextId = 0
  let closing: Promise<void> | undefined

  const closedError = (): ApimeterError => new ApimeterError('STORAGE_CLOSED', 'sqlite storage was used after close()')

  const start = (): Worker => {
    const thread = newWorker(script, settings)
    thread.unref()
    let crash: unknown
    let ready = false
    thread.on('message', (reply: Reply) => {
      if ('ready' in reply) {
        ready = true
        return
      }
      if ('report' in reply) {
        const error = fromWire(reply.report) as ApimeterError
        for (const report of reporters) report(error)
        return
      }
      const request = pending.get(reply.id)
      if (!request) return
      pending.delete(reply.id)
      if (pending.size === 0) thread.unref()
      if ('error' in reply) request.reject(fromWire(reply.error))
      else request.resolve(reply.value)
    })
    thread.on('error', (error) => {
      crash = error
    })
    thread.on('exit', (code) => {
      if (worker === thread) worker = undefined
      if (pending.size === 0) return
      const why = crash === undefined ? `exit code ${code}` : errorMessage(crash)
      // A thread that died before its code even loaded will not do better next time: say so, and stop the writes.
      const failure = closing
        ? closedError()
        : ready
          ? new ApimeterError('STORAGE_UNAVAILABLE', `the worker thread of the SQLite storage on ${settings.filename} stopped (${why}); its next operation starts a new one`, { cause: crash, prefix: PACKAGE })
          : cannotStart(settings.filename, why, crash)
      for (const request of pending.values()) request.reject(failure)
      pending.clear()
    })
    return thread
  }

  const send = <T>(op: Operation, args: unknown[]): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      let thread: Worker
      try {
        thread = worker ??= start()
      } catch (error) {
        // refused before it ran (Node's options, resource limits): no later attempt does better
        reject(cannotStart(settings.filename, errorMessage(error), error))
        return
      }
      const id = ++nextId
      thread.postMessage({ id, op, args }) // throws a DataCloneError on what cannot cross (before anything is sent)
      if (pending.size === 0) thread.ref()
      pending.set(id, { resolve: resolve, reject })
    })
  const call = <T>(op: Operation, ...args: unknown[]): Promise<T> => (closing ? Promise.reject(closedError()) : send<T>(op, args))

  // `db` for the application's own queries: a second connection on the same file, opened on first use (WAL lets it
  // read while the worker writes; a write through it waits for the file's lock like any other process would).
  const db = kyselyOn(() => openSqlite(settings), true)

  const alerts: AlertStore = {
    syncRules: (rules, now) => call('alerts.syncRules', rules, now),
    instances: (rule) => call('alerts.instances', rule),
    transition: (write) => call('alerts.transition', write),
    recordAttempt: (attempt) => call('alerts.recordAttempt', attempt),
    events: (range) => call('alerts.events', range),
    attempts: (eventId) => call('alerts.attempts', eventId),
    latestRateLimits: (filter, groupBy) => call('alerts.latestRateLimits', filter, groupBy),
    rules: () => call('alerts.rules'),
  }
  const audit: AuditStore = {
    append: (rows) => call('audit.append', rows),
    list: (query) => call('audit.list', query),
  }
  const system: SystemStore = {
    write: (samples) => call('system.write', samples),
    list: (query) => call('system.list', query),
  }

  const slos: SloStore = {
    syncSlos: (list, now) => call('slos.syncSlos', list, now),
    list: () => call('slos.list'),
  }

  const probes: ProbeStore = {
    syncProbes: (list, now) => call('probes.syncProbes', list, now),
    definitions: () => call('probes.definitions'),
    claim: (lease) => call('probes.claim', lease),
    release: (probe, holder, now) => call('probes.release', probe, holder, now),
    states: () => call('probes.states'),
    record: (write) => call('probes.record', write),
    checks: (query) => call('probes.checks', query),
    incidents: (query) => call('probes.incidents', query),
  }

  return {
    name: 'sqlite',
    dialect: 'sqlite',
    db,
    capabilities: { durable: true, maxWriteConcurrency: 2 },
    alerts,
    slos,
    probes,
    audit,
    system,
    attach(hooks) {
      reporters.add(hooks.report)
    },
    init: () => call('init'),
    async writeCalls(calls) {
      if (Array.isArray(calls) && calls.length === 0 && !closing) return
      if (closing) throw closedError()
      // The pipeline validated its batches already; any other batch is checked here, where the error can name the
      // call and field, so the worker's copy need not be checked call by call again. It crosses packed column by
      // column (a fraction of the copying of 500 records, on both threads).
      if (!isValidated(calls)) assertCallRecords(calls)
      await call('writeCalls', packCalls(calls))
    },
    // A monitor's own batches, packed from its staging columns (no record objects on the host at all).
    async writePacked(packed) {
      if (closing) throw closedError()
      if (packed.count > 0) await call('writeCalls', packed)
    },
    aggregate: async (query) => rowsFromWire(await call<WireAggregateRows>('aggregate', query)),
    async migrate(to) {
      const report = await call<Awaited<ReturnType<SqlStorage['migrate']>>>('migrate', to)
      if (report.error) report.error = fromWire(report.error as unknown as WireError) as ApimeterError
      return report
    },
    migrationStatus: () => call('migrationStatus'),
    maintain: () => call('maintain'),
    rebuildRollups: (range) => call('rebuildRollups', range),
    classifyError: (error) => kindFromWorker(error) ?? sqliteDialect.classifyError(error) ?? defaultErrorClass(error),
    close(options = {}) {
      closing ??= (async () => {
        const thread = worker
        if (thread) {
          // The storage in the worker bounds its own closing work by timeoutMs; the thread is ended regardless once
          // that time (and a second for releasing the file) has passed.
          await within(send('close', [options]), (options.timeoutMs ?? Infinity) + 1000)
          await thread.terminate()
        }
        await db.destroy().catch(() => undefined)
      })()
      return closing
    },
  }
}

/** Resolves when the promise settles (its rejection ignored) or after `ms`. */
function within(promise: Promise<unknown>, ms: number): Promise<void> {
  const settled = promise.then(() => undefined, () => undefined)
  if (!Number.isFinite(ms)) return settled
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    timer.unref()
    void settled.finally(() => {
      clearTimeout(timer)
      resolve()
    })
  })
}
