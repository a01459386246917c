// The SQLite worker thread: owns the connection and runs the whole storage (writes, rollups, retention, queries,
// migrations, alert state) off the host's event loop. `sqliteStorage()` starts it; see worker-storage.ts.
import { parentPort, workerData } from 'node:worker_threads'
import { type AggregateQuery, type AlertStore, markValidated, type ProbeStore, unpackCalls } from '@apimeter/core/sql'
import { openSqliteStorage, type SqliteSettings } from './sqlite-connection.js'
import { type Reply, type Request, rowsToWire, toWire } from './worker-protocol.js'

const port = parentPort!
const storage = openSqliteStorage({ ...(workerData as SqliteSettings), awaitMaintenance: true })
const send = (reply: Reply): void => port.postMessage(reply)
send({ ready: true })
storage.attach!({ report: (error) => send({ report: toWire(error) }) })

// each operation's arguments are what the host's proxy sent for it (worker-storage.ts)
type Args = readonly [never, never, never]
const operations: Record<Request['op'], (args: Args) => Promise<unknown>> = {
  init: () => storage.init!(),
  writeCalls: ([packed]) => {
    // validated on the host before it was packed (worker-storage.ts)
    const calls = unpackCalls(packed)
    markValidated(calls)
    return storage.writeCalls(calls)
  },
  // asked for summaries only, the rows' percentiles are read here and their sketches stay (see rowsToWire)
  aggregate: async ([query]) => rowsToWire(await storage.aggregate(query), (query as AggregateQuery).summariesOnly === true),
  migrate: async ([to]) => {
    const report = await storage.migrate(to)
    return report.error ? { ...report, error: toWire(report.error) } : report
  },
  migrationStatus: () => storage.migrationStatus(),
  maintain: () => storage.maintain(),
  rebuildRollups: ([range]) => storage.rebuildRollups(range),
  close: async ([options]) => {
    await storage.close(options)
    // nothing is left to do: let the thread end once this reply is out
    setImmediate(() => port.close())
  },
  ...alertOperations(storage.alerts!),
  'slos.syncSlos': ([list, now]) => storage.slos!.syncSlos(list, now),
  'slos.list': () => storage.slos!.list(),
  ...probeOperations(storage.probes!),
  'audit.append': ([rows]) => storage.audit!.append(rows),
  'audit.list': ([query]) => storage.audit!.list(query),
  'system.write': ([samples]) => storage.system!.write(samples),
  'system.list': ([query]) => storage.system!.list(query),
}

function alertOperations(alerts: AlertStore): Record<`alerts.${keyof AlertStore}`, (args: Args) => Promise<unknown>> {
  return {
    'alerts.rules': () => alerts.rules!(),
    'alerts.syncRules': ([rules, now]) => alerts.syncRules(rules, now),
    'alerts.instances': ([rule]) => alerts.instances(rule),
    'alerts.transition': ([write]) => alerts.transition(write),
    'alerts.recordAttempt': ([attempt]) => alerts.recordAttempt(attempt),
    'alerts.events': ([range]) => alerts.events(range),
    'alerts.attempts': ([eventId]) => alerts.attempts(eventId),
    'alerts.latestRateLimits': ([filter, groupBy]) => alerts.latestRateLimits(filter, groupBy),
  }
}

function probeOperations(probes: ProbeStore): Record<`probes.${keyof ProbeStore}`, (args: Args) => Promise<unknown>> {
  return {
    'probes.syncProbes': ([list, now]) => probes.syncProbes(list, now),
    'probes.definitions': () => probes.definitions(),
    'probes.claim': ([lease]) => probes.claim(lease),
    'probes.release': ([probe, holder, now]) => probes.release(probe, holder, now),
    'probes.states': () => probes.states(),
    'probes.record': ([write]) => probes.record(write),
    'probes.checks': ([query]) => probes.checks(query),
    'probes.incidents': ([query]) => probes.incidents(query),
  }
}

port.on('message', ({ id, op, args }: Request) => {
  // Requests run concurrently, as they would on the host thread: the storage serialises its own writes.
  operations[op](args as unknown as Args).then(
    (value) => send({ id, value }),
    (error: unknown) => send({ id, error: toWire(error, storage.classifyError!(error)) }),
  )
})
