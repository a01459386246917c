import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ApimeterError, errorMessage } from '../errors.js'
import { probeStatuses } from '../probes/probe-manager.js'
import type { MigrationReport, MigrationStatus, MigrationTarget } from '../sql/migrator.js'
import type { ProbeStore } from '../storage/probe-store.js'
import type { AuditStore } from '../storage/audit-store.js'
import { VERSION } from '../version.js'
import { createMonitor, type Monitor } from '../monitor/monitor.js'
import { slosFromRecords } from '../slos/manager.js'
import { type SloStatus, sloStatus } from '../slos/status.js'
import type { StorageAdapter } from '../storage/adapter.js'
import { resolveTime } from '../time.js'

/** Where the CLI writes; replaced in tests. */
export interface CliIO {
  out(text: string): void
  err(text: string): void
  /** Ends a long-running command (`dashboard`) like Ctrl-C does, when it settles. */
  stopped?: Promise<unknown>
}

/** Exit codes of the `apimeter` CLI. */
export const EXIT = {
  /** Success. */
  ok: 0,
  /** The command ran and found a problem: pending, failed or unknown migrations, a migration that failed, an open incident. */
  problem: 1,
  /** The command line itself was wrong (unknown command or option, missing or malformed argument). */
  usage: 2,
  /** The database could not be opened or written (missing file or directory, read-only, unreachable, driver missing). */
  unavailable: 3,
} as const

const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  the command ran and found a problem (pending, failed or unknown migrations; a migration failed;
     an SLO's error budget exhausted; an open incident)
  2  the command line was wrong (unknown command or option, bad --db)
  3  the database could not be opened or written (missing, read-only, unreachable, driver not installed)`

const HELP = `apimeter ${VERSION} — meter the HTTP calls your app makes and receives

Usage:
  apimeter <command> [options]

Commands:
  migrate latest   Apply every pending migration
  migrate up       Apply the next pending migration
  migrate down     Revert the newest applied migration
  migrate status   List applied and pending migrations (exit 1 when any is pending)
  rollups rebuild  Recompute the rollups of a time range from the raw calls
  slos status      Status of the stored SLOs (exit 1 when an error budget is exhausted)
  probes status    Each probe's state, last check and open incident (exit 1 when an incident is open)
  audit            List the audit log (rule changes, migrations, rebuilds, retention, plugins)
  dashboard        Serve the dashboard of a database (needs @apimeter/dashboard)
  help             Show this help

Options:
  -h, --help       Show help (also after a command: apimeter migrate --help)
  -v, --version    Print the version

${EXIT_CODES_HELP}

Docs: docs/getting-started.md, docs/schema.md, docs/api.md
`

const MIGRATE_HELP = `Usage:
  apimeter migrate <latest|up|down|status> --db <database> [--json]

Applies or inspects apimeter's own schema migrations (tables prefixed apimeter_, see docs/schema.md).
All migrations of one run are one transaction: a failure leaves the database at its previous version.
Several processes may run this at once; each migration is applied exactly once.

Subcommands:
  latest   Apply every pending migration
  up       Apply the next pending migration
  down     Revert the newest applied migration
  status   List applied and pending migrations; exit 1 when any is pending or unknown

Options:
  --db <database>   A SQLite file path, sqlite:<path>, or a postgres:// URL (also read from APIMETER_DB)
  --json            Print the result as JSON
  -h, --help        Show this help

${EXIT_CODES_HELP}

Examples:
  apimeter migrate latest --db ./apimeter.db
  apimeter migrate status --db sqlite:/var/lib/app/apimeter.db --json
`

const ROLLUPS_HELP = `Usage:
  apimeter rollups rebuild --db <database> --from <time> --to <time> [--json]

Recomputes the hour, day and month rollups of a time range from the raw calls (after a manual fix of raw data, or
to repair rollups). The range is widened to whole UTC months. Refused for a range whose raw calls retention has
already deleted, since the rollups are then the only copy.

Options:
  --db <database>   A SQLite file path, sqlite:<path>, or a postgres:// URL (also read from APIMETER_DB)
  --from <time>     Start: an ISO-8601 date/time or a relative time such as -30d
  --to <time>       End (exclusive): the same forms, or now
  --json            Print the result as JSON
  -h, --help        Show this help

${EXIT_CODES_HELP}

Example:
  apimeter rollups rebuild --db ./apimeter.db --from 2026-01-01 --to 2026-03-01
`

const SLOS_HELP = `Usage:
  apimeter slos status --db <database> [--name <slo>]… [--at <time>] [--json]

Computes the status of the SLOs stored in the database (apimeter_slos, written by every monitor created with
slos: […]) from its exact counts: SLI, good / total, error budget consumed and remaining, burn rates over
5m, 30m, 1h, 6h, 1d and 3d, the burn-alert level (none, ticket, page) and the window's coverage.
Exits 1 when any error budget is exhausted, so a deploy pipeline can gate on it.

Options:
  --db <database>   A SQLite file path, sqlite:<path>, or a postgres:// URL (also read from APIMETER_DB)
  --name <slo>      Only this SLO (repeatable)
  --at <time>       Compute as of this time (ISO-8601 or relative such as -1d; default now)
  --json            Print the statuses as JSON
  -h, --help        Show this help

Exit codes:
  0  every selected SLO has error budget left
  1  an error budget is exhausted, no SLO is stored, or a --name is not stored
  2  the command line was wrong
  3  the database could not be opened (missing, unreachable, driver not installed)

Example:
  apimeter slos status --db ./apimeter.db --name checkout-availability || exit 1
`

const AUDIT_HELP = `Usage:
  apimeter audit --db <database> [--from <time>] [--to <time>] [--kind <kind>]... [--limit <n>] [--json]

Lists the audit log (apimeter_audit_log, see docs/audit.md), oldest first: alert rules added, changed or removed,
migrations run, rollup rebuilds, retention runs, plugins added, changed or disabled. Read-only.

Options:
  --db <database>   A SQLite file path, sqlite:<path>, or a postgres:// URL (also read from APIMETER_DB)
  --from <time>     Start: an ISO-8601 date/time or a relative time such as -7d (default: everything)
  --to <time>       End (exclusive): the same forms, or now
  --kind <kind>     Only this kind (repeatable); a prefix before a dot matches every kind under it (--kind plugin)
  --limit <n>       At most this many rows, the newest of the range (1 … 100000, default 1000)
  --json            Print the rows as JSON
  -h, --help        Show this help

${EXIT_CODES_HELP}

Examples:
  apimeter audit --db ./apimeter.db --from -7d
  apimeter audit --db postgres://localhost/app --kind alert_rule --kind plugin.disabled --json
`

const PROBES_HELP = `Usage:
  apimeter probes status --db <database> [--json]

Prints each stored probe's state (up, down, unknown), its last check and its open incident, as the monitors sharing
the database wrote them (probes are defined in createMonitor({ probes }); see docs/probes.md). A deploy pipeline can
gate on it: the exit code is 1 while any incident is open.

Options:
  --db <database>   A SQLite file path, sqlite:<path>, or a postgres:// URL (also read from APIMETER_DB)
  --json            Print the result as JSON
  -h, --help        Show this help

${EXIT_CODES_HELP}

Example:
  apimeter probes status --db ./apimeter.db
`

const DASHBOARD_HELP = `Usage:
  apimeter dashboard --db <database> [--port <port>] [--host <address>] [--token <token>]

Serves apimeter's dashboard (the @apimeter/dashboard package, installed beside @apimeter/core) for a database alone,
and prints its URL. It reads the stored calls, so a database shared by a fleet shows the whole fleet, and the alert
rules, probes, SLOs and budgets your monitors stored, with their state, without evaluating or running them. Runs
until Ctrl-C (SIGINT) or SIGTERM.

Without a token it listens only on a loopback address and serves only this machine; with one (--token or
APIMETER_TOKEN; the variable keeps it out of the process list) it may listen anywhere, and a browser signs in with
it once (or a client sends "Authorization: Bearer <token>").

Options:
  --db <database>    A SQLite file path, sqlite:<path>, or a postgres:// URL (also read from APIMETER_DB)
  --port <port>      The port (default 4318; 0 picks a free one)
  --host <address>   The address to listen on (default 127.0.0.1)
  --token <token>    The sign-in token (also read from APIMETER_TOKEN)
  -h, --help         Show this help

${EXIT_CODES_HELP}

Examples:
  apimeter dashboard --db ./apimeter.db
  APIMETER_TOKEN=… apimeter dashboard --db postgres://app@db/app --host 0.0.0.0 --port 8080
`

/** The part of a SQL storage the CLI needs (structural: core does not depend on the storage packages). */
interface MigratableStorage {
  init?(): Promise<void>
  readonly probes?: ProbeStore
  readonly audit?: AuditStore
  migrate(to?: MigrationTarget): Promise<MigrationReport>
  migrationStatus(): Promise<MigrationStatus>
  rebuildRollups(range: { from: string; to: string }): Promise<{ from: Date; to: Date; calls: number }>
  close(): Promise<void>
}

/** What `slos status` needs besides: the storage's aggregates and its SLO store. */
type SloStorage = MigratableStorage & StorageAdapter

type Target = { kind: 'sqlite'; filename: string } | { kind: 'postgres'; url: string }

class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message)
  }
}

/** Reads `--db` into a target, or throws a usage error saying what is accepted. */
export function parseDatabaseArgument(value: string): Target {
  const trimmed = value.trim()
  if (trimmed === '') throw new CliError(`--db must be a SQLite file path, sqlite:<path> or a postgres:// URL, got an empty string`, EXIT.usage)
  if (/^postgres(ql)?:\/\//i.test(trimmed)) {
    try {
      const url = new URL(trimmed)
      if (!url.hostname && !url.searchParams.get('host')) throw new Error('no host')
    } catch {
      throw new CliError(`--db must be a valid postgres:// URL (postgres://user:password@host:5432/database), got "${redact(trimmed)}"`, EXIT.usage)
    }
    return { kind: 'postgres', url: trimmed }
  }
  if (/^sqlite:/i.test(trimmed)) {
    const filename = trimmed.replace(/^sqlite:(\/\/)?/i, '')
    if (filename === '') throw new CliError(`--db sqlite:<path> needs a path after "sqlite:", got "${trimmed}"`, EXIT.usage)
    return { kind: 'sqlite', filename }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(trimmed)
  if (scheme) {
    throw new CliError(`--db scheme "${scheme[1]}" is not supported; use a SQLite file path, sqlite:<path> or a postgres:// URL`, EXIT.usage)
  }
  return { kind: 'sqlite', filename: trimmed }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):([^@]*)@/, '//$1:***@')
}

async function openStorage(target: Target, mustExist: boolean): Promise<MigratableStorage> {
  if (target.kind === 'postgres') {
    const mod = await importOptional('@apimeter/storage-postgres', 'PostgreSQL')
    const factory = (mod as { postgresStorage?: (o: object) => MigratableStorage }).postgresStorage
    if (typeof factory !== 'function') throw new CliError('@apimeter/storage-postgres does not export postgresStorage()', EXIT.unavailable)
    return factory({ connectionString: target.url, migrate: false })
  }
  if (mustExist && target.filename !== ':memory:' && !existsSync(target.filename)) {
    throw new CliError(`database file ${target.filename} does not exist (nothing to report; 'apimeter migrate latest' creates it)`, EXIT.unavailable)
  }
  const mod = await importOptional('@apimeter/storage-sqlite', 'SQLite')
  const factory = (mod as { sqliteStorage?: (o: object) => MigratableStorage }).sqliteStorage
  if (typeof factory !== 'function') throw new CliError('@apimeter/storage-sqlite does not export sqliteStorage()', EXIT.unavailable)
  return factory({ filename: target.filename, migrate: false })
}

async function importOptional(name: string, what: string): Promise<unknown> {
  try {
    return await import(name)
  } catch (error) {
    const code = (error as { code?: string }).code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new CliError(`${what} databases need ${name}: npm install ${name}`, EXIT.unavailable)
    }
    throw error
  }
}

/** Maps a storage or migration error to an exit code: unreachable/read-only databases are 3, the rest 1. */
function exitCodeOf(error: unknown): number {
  if (error instanceof CliError) return error.code
  if (error instanceof ApimeterError && error.code === 'STORAGE_UNAVAILABLE') return EXIT.unavailable
  const text = collectMessages(error)
  if (/readonly|read-only|SQLITE_CANTOPEN|SQLITE_READONLY|unable to open|ECONNREFUSED|ENOTFOUND|EACCES|permission denied|password authentication failed|does not exist/i.test(text)) {
    return EXIT.unavailable
  }
  return EXIT.problem
}

function collectMessages(error: unknown): string {
  const parts: string[] = []
  let current: unknown = error
  for (let i = 0; i < 5 && current; i++) {
    const code = (current as { code?: unknown }).code
    parts.push(errorMessage(current), typeof code === 'string' || typeof code === 'number' ? String(code) : '')
    current = (current as { cause?: unknown }).cause
  }
  return parts.join(' ')
}

/**
 * Parses `apimeter <command> <subcommand> --db … [--json] [--<name> <value>]…` for a command with one subcommand, the
 * database from --db or APIMETER_DB. Undefined when help was asked for (and printed).
 */
function parseOneSubcommand(
  argv: readonly string[],
  io: CliIO,
  command: string,
  subcommand: string,
  help: string,
  strings: readonly string[] = [],
  repeatable: readonly string[] = [],
): { values: Record<string, string | string[] | boolean | undefined>; db: string } | undefined {
  let parsed
  try {
    const options: Record<string, { type: 'string'; multiple?: boolean }> = {}
    for (const name of [...strings, 'db']) options[name] = { type: 'string' }
    for (const name of repeatable) options[name] = { type: 'string', multiple: true }
    parsed = parseArgs({ args: [...argv], allowPositionals: true, options: { ...options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } })
  } catch (error) {
    throw new CliError(`${errorMessage(error)}\nRun 'apimeter ${command} --help' for usage.`, EXIT.usage)
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>
  if (values.help) {
    io.out(help)
    return undefined
  }
  const [sub, ...extra] = parsed.positionals
  if (sub !== subcommand) {
    throw new CliError(`${sub === undefined ? `${command} needs a subcommand: ${subcommand}` : `unknown ${command} subcommand '${sub}' (expected ${subcommand})`}\nRun 'apimeter ${command} --help' for usage.`, EXIT.usage)
  }
  if (extra.length > 0) throw new CliError(`unexpected argument '${extra[0]}'\nRun 'apimeter ${command} --help' for usage.`, EXIT.usage)
  const db = (values.db as string | undefined) ?? process.env.APIMETER_DB
  if (db === undefined) throw new CliError(`${command} ${subcommand} needs --db <SQLite path | sqlite:path | postgres:// URL> (or APIMETER_DB)`, EXIT.usage)
  return { values, db }
}

async function rollupsCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseOneSubcommand(argv, io, 'rollups', 'rebuild', ROLLUPS_HELP, ['from', 'to'])
  if (!parsed) return EXIT.ok
  const values = parsed.values as { from?: string; to?: string; json?: boolean }
  if (values.from === undefined || values.to === undefined) throw new CliError(`rollups rebuild needs --from and --to (ISO-8601 or relative times such as -30d)`, EXIT.usage)
  const target = parseDatabaseArgument(parsed.db)
  const storage = await openStorage(target, true)
  try {
    let result
    try {
      result = await storage.rebuildRollups({ from: values.from, to: values.to })
    } catch (error) {
      if (error instanceof ApimeterError && error.code === 'INVALID_OPTIONS') throw new CliError(error.message.replace(/^@apimeter\/[a-z-]+: /, ''), error.message.includes('retention') ? EXIT.problem : EXIT.usage)
      throw error
    }
    if (values.json) io.out(`${JSON.stringify(result)}\n`)
    else io.out(`rebuilt the rollups of ${result.from.toISOString()} … ${result.to.toISOString()} from ${result.calls} calls\n`)
    return EXIT.ok
  } finally {
    await storage.close().catch(() => undefined)
  }
}

async function slosCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseOneSubcommand(argv, io, 'slos', 'status', SLOS_HELP, ['at'], ['name'])
  if (!parsed) return EXIT.ok
  const values = parsed.values as { name?: string[]; at?: string; json?: boolean }
  const at = values.at === undefined ? Date.now() : resolveTime(values.at, Date.now())
  if (at === undefined) throw new CliError(`--at must be an ISO-8601 date/time or a relative time such as -1d, got "${values.at}"`, EXIT.usage)
  const storage = (await openStorage(parseDatabaseArgument(parsed.db), true)) as SloStorage
  try {
    const records = await storage.slos!.list()
    const invalid: string[] = []
    let slos = slosFromRecords(records, (name, message) => invalid.push(`stored SLO '${name}' is not valid for this apimeter: ${message}`))
    for (const line of invalid) io.err(`apimeter: ${line}\n`)
    const missing = (values.name ?? []).filter((n) => !slos.some((s) => s.name === n))
    if (values.name) slos = slos.filter((s) => values.name!.includes(s.name))
    const statuses = await Promise.all(slos.map((s) => sloStatus(storage, s, at)))
    if (values.json) io.out(`${JSON.stringify(statuses, null, 2)}\n`)
    else for (const s of statuses) io.out(formatSloStatus(s))
    for (const n of missing) io.err(`apimeter: no SLO named '${n}' is stored (stored: ${records.map((r) => r.name).join(', ') || 'none'})\n`)
    if (records.length === 0) io.err(`apimeter: no SLOs are stored in this database (a monitor created with slos: […] stores them)\n`)
    const exhausted = statuses.filter((s) => s.budget.exhausted)
    if (exhausted.length > 0 && !values.json) io.err(`apimeter: error budget exhausted: ${exhausted.map((s) => s.name).join(', ')}\n`)
    return exhausted.length > 0 || missing.length > 0 || invalid.length > 0 || statuses.length === 0 ? EXIT.problem : EXIT.ok
  } finally {
    await storage.close().catch(() => undefined)
  }
}

/** Parses a command's options (and `-h`), turning a parse error into a usage error that points at its help. */
function parseCommandArgs<O extends Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>>(argv: readonly string[], command: string, options: O) {
  try {
    return parseArgs({ args: [...argv], allowPositionals: true, options: { ...options, help: { type: 'boolean', short: 'h' } } })
  } catch (error) {
    throw new CliError(`${errorMessage(error)}\nRun 'apimeter ${command} --help' for usage.`, EXIT.usage)
  }
}

async function auditCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, 'audit', {
    db: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    kind: { type: 'string', multiple: true },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  })
  if (values.help) {
    io.out(AUDIT_HELP)
    return EXIT.ok
  }
  if (positionals.length > 0) throw new CliError(`unexpected argument '${positionals[0]}'\nRun 'apimeter audit --help' for usage.`, EXIT.usage)
  const now = Date.now()
  const time = (name: 'from' | 'to'): number | undefined => {
    const v = values[name]
    if (v === undefined) return undefined
    const t = resolveTime(v, now)
    if (t === undefined) throw new CliError(`--${name} must be an ISO-8601 date/time or a relative time such as -7d, got "${v}"`, EXIT.usage)
    return t
  }
  const limit = values.limit === undefined ? undefined : Number(values.limit)
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 100_000)) throw new CliError(`--limit must be a whole number from 1 to 100000, got "${values.limit}"`, EXIT.usage)
  const range = { from: time('from'), to: time('to') }
  const db = values.db ?? process.env.APIMETER_DB
  if (db === undefined) throw new CliError(`audit needs --db <SQLite path | sqlite:path | postgres:// URL> (or APIMETER_DB)`, EXIT.usage)
  const storage = await openStorage(parseDatabaseArgument(db), true)
  try {
    if (!storage.audit) throw new CliError('this storage has no audit log', EXIT.problem)
    // with a limit, the newest rows of the range, printed oldest first
    const rows = (await storage.audit.list({ ...range, kind: values.kind, limit, order: 'desc' })).reverse()
    if (values.json) {
      io.out(`${JSON.stringify(rows.map((r) => ({ ...r, at: new Date(r.at).toISOString() })), null, 2)}\n`)
      return EXIT.ok
    }
    if (rows.length === 0) io.out('no audit rows in this range\n')
    for (const r of rows) io.out(`${new Date(r.at).toISOString()}  ${r.kind.padEnd(18)} ${r.subject}  [${r.instance}]${r.detail ? `  ${r.detail}` : ''}\n`)
    return EXIT.ok
  } finally {
    await storage.close().catch(() => undefined)
  }
}

async function probesCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseOneSubcommand(argv, io, 'probes', 'status', PROBES_HELP)
  if (!parsed) return EXIT.ok
  const { values } = parsed
  const target = parseDatabaseArgument(parsed.db)
  const where = target.kind === 'postgres' ? redact(target.url) : target.filename
  const storage = await openStorage(target, true)
  try {
    await storage.init?.()
    if (!storage.probes) throw new CliError('this storage keeps no probes', EXIT.problem)
    const statuses = await probeStatuses(storage.probes)
    const open = statuses.filter((p) => p.openIncident !== null)
    if (values.json) {
      io.out(`${JSON.stringify({ database: where, open: open.length, probes: statuses }, null, 2)}\n`)
    } else {
      io.out(`database: ${where}\n`)
      if (statuses.length === 0) io.out('no probes stored (define them in createMonitor({ probes }))\n')
      for (const p of statuses) {
        const last = p.lastCheck
        const check = last === null ? 'no check yet' : `last check ${last.at.toISOString()} ${last.ok ? 'ok' : `failed (${last.cause}${last.error ? `: ${last.error}` : ''})`}${last.statusCode === null ? '' : ` HTTP ${last.statusCode}`} ${Math.round(last.durationMs)} ms`
        io.out(`  ${p.state.padEnd(7)} ${p.name}  ${check}\n`)
        if (p.openIncident) io.out(`          incident ${p.openIncident.id} open since ${p.openIncident.openedAt.toISOString()} (${p.openIncident.cause})\n`)
      }
      io.out(open.length > 0 ? `${open.length} open incident${open.length === 1 ? '' : 's'}\n` : 'no open incident\n')
    }
    return open.length > 0 ? EXIT.problem : EXIT.ok
  } finally {
    await storage.close().catch(() => undefined)
  }
}

const pct = (v: number): string => `${(Math.round(v * 10_000) / 100).toFixed(2)}%`

/** One SLO's status as a few lines of text. */
export function formatSloStatus(s: SloStatus): string {
  const burn = Object.entries(s.burnRates).map(([w, r]) => `${w} ${Math.round(r * 100) / 100}×`).join('  ')
  const state = s.budget.exhausted ? 'EXHAUSTED' : s.alert === 'none' ? 'ok' : s.alert.toUpperCase()
  return [
    `${s.name}  ${state}`,
    `  objective ${pct(s.objective)} over ${s.window}  sli ${s.sli === null ? 'no data' : pct(s.sli)}  good ${s.good} of ${s.total}`,
    `  budget consumed ${pct(s.budget.consumed)}  remaining ${pct(s.budget.remaining)}  (allowed ${Math.round(s.budget.allowed * 100) / 100} bad calls)`,
    `  burn ${burn}  alert ${s.alert}  coverage ${pct(s.coverage)}`,
    ...(s.latencyBound ? [`  latency bound: calls up to ${Math.round(s.latencyBound.edgeMs * 100) / 100} ms may count as good (${s.latencyBound.uncertain} uncertain)`] : []),
    '',
  ].join('\n')
}

async function migrateCommand(argv: readonly string[], io: CliIO): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { db: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    })
  } catch (error) {
    throw new CliError(`${errorMessage(error)}\nRun 'apimeter migrate --help' for usage.`, EXIT.usage)
  }
  const { values, positionals } = parsed
  if (values.help) {
    io.out(MIGRATE_HELP)
    return EXIT.ok
  }
  const [sub, ...extra] = positionals
  if (sub === undefined) throw new CliError(`migrate needs a subcommand: latest, up, down or status\nRun 'apimeter migrate --help' for usage.`, EXIT.usage)
  if (!['latest', 'up', 'down', 'status'].includes(sub)) {
    throw new CliError(`unknown migrate subcommand '${sub}' (expected latest, up, down or status)\nRun 'apimeter migrate --help' for usage.`, EXIT.usage)
  }
  if (extra.length > 0) throw new CliError(`unexpected argument '${extra[0]}'\nRun 'apimeter migrate --help' for usage.`, EXIT.usage)
  const db = values.db ?? process.env.APIMETER_DB
  if (db === undefined) throw new CliError(`migrate ${sub} needs --db <SQLite path | sqlite:path | postgres:// URL> (or APIMETER_DB)`, EXIT.usage)
  const target = parseDatabaseArgument(db)
  const where = target.kind === 'postgres' ? redact(target.url) : target.filename

  const storage = await openStorage(target, sub === 'status')
  try {
    if (sub === 'status') {
      const status = await storage.migrationStatus()
      const problem = status.pending.length > 0 || status.unknown.length > 0
      if (values.json) {
        io.out(`${JSON.stringify({ database: where, current: status.current, pending: status.pending, unknown: status.unknown, migrations: status.migrations }, null, 2)}\n`)
      } else {
        io.out(`database: ${where}\n`)
        for (const m of status.migrations) io.out(`  ${m.appliedAt ? 'applied' : 'pending'}  ${m.name}${m.appliedAt ? `  (${m.appliedAt.toISOString()})` : ''}\n`)
        for (const name of status.unknown) io.out(`  unknown  ${name}  (applied by a newer apimeter; upgrade this one)\n`)
        io.out(status.pending.length > 0 ? `${status.pending.length} pending: run 'apimeter migrate latest --db ${where}'\n` : status.unknown.length > 0 ? 'the database is newer than this apimeter\n' : 'up to date\n')
      }
      return problem ? EXIT.problem : EXIT.ok
    }
    const report = await storage.migrate(sub)
    if (values.json) {
      io.out(`${JSON.stringify({ database: where, current: report.current, steps: report.steps, error: report.error?.message }, null, 2)}\n`)
    } else {
      for (const step of report.steps) io.out(`  ${step.status.padEnd(11)} ${step.name} (${step.direction})\n`)
      if (!report.error) io.out(report.steps.length === 0 ? `nothing to do; database ${where} is at ${report.current ?? 'no migration'}\n` : `database ${where} is at ${report.current ?? 'no migration'}\n`)
    }
    if (report.error) {
      io.err(`apimeter: ${report.error.message}\n`)
      return exitCodeOf(report.error)
    }
    return EXIT.ok
  } finally {
    await storage.close().catch(() => undefined)
  }
}

/** What `apimeter dashboard` needs from @apimeter/dashboard (loaded when the command runs: core does not depend on it). */
interface DashboardModule {
  serveDashboard(monitor: Monitor, options: { host: string; port: number; auth?: { token: string } }): Promise<{ url: string; close(): Promise<void> }>
}

async function dashboardCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, 'dashboard', { db: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, token: { type: 'string' } })
  if (values.help) {
    io.out(DASHBOARD_HELP)
    return EXIT.ok
  }
  if (positionals.length > 0) throw new CliError(`unexpected argument '${positionals[0]}'\nRun 'apimeter dashboard --help' for usage.`, EXIT.usage)
  const port = values.port === undefined ? 4318 : Number(values.port)
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535 && /^\d+$/.test(values.port ?? '0'))) throw new CliError(`--port must be a whole number from 0 to 65535, got "${values.port}"`, EXIT.usage)
  const token = values.token ?? process.env.APIMETER_TOKEN
  if (token !== undefined && !/^\S+$/.test(token)) throw new CliError('--token (or APIMETER_TOKEN) must be a non-empty string without whitespace', EXIT.usage)
  const db = values.db ?? process.env.APIMETER_DB
  if (db === undefined) throw new CliError(`dashboard needs --db <SQLite path | sqlite:path | postgres:// URL> (or APIMETER_DB)`, EXIT.usage)
  const target = parseDatabaseArgument(db)
  const where = target.kind === 'postgres' ? redact(target.url) : target.filename
  const mod = (await importOptional('@apimeter/dashboard', 'The dashboard')) as Partial<DashboardModule>
  if (typeof mod.serveDashboard !== 'function') throw new CliError('@apimeter/dashboard does not export serveDashboard()', EXIT.unavailable)
  const storage = (await openStorage(target, true)) as MigratableStorage & StorageAdapter
  await storage.init?.()
  // a reading monitor: no rules, probes or SLOs of its own, so it notifies nothing and checks nothing; the dashboard
  // shows the stored ones through readStored()
  const monitor = createMonitor({ storage, service: 'apimeter-dashboard', logger: false })
  let served
  try {
    served = await mod.serveDashboard(monitor, { host: values.host ?? '127.0.0.1', port, ...(token !== undefined ? { auth: { token } } : {}) })
  } catch (error) {
    await monitor.close()
    if (error instanceof ApimeterError && error.code === 'INVALID_OPTIONS') throw new CliError(`${error.message.replace(/^@apimeter\/[a-z-]+: /, '')}`, EXIT.usage)
    throw error
  }
  io.out(`apimeter dashboard for ${where} at ${served.url}${token === undefined ? ' (this machine only: no token)' : ''}; Ctrl-C stops it\n`)
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve()
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
    io.stopped?.then(stop, stop)
  })
  await served.close()
  await monitor.close()
  return EXIT.ok
}

/**
 * Runs the CLI with `argv` (without `node` and the script path) and returns the exit code. Never throws.
 *
 * @example
 * ```ts
 * const code = await runCli(['migrate', 'status', '--db', 'apimeter.db'])
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  const [first, ...rest] = argv
  try {
    if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
      io.out(HELP)
      return EXIT.ok
    }
    if (first === '-v' || first === '--version') {
      io.out(`${VERSION}\n`)
      return EXIT.ok
    }
    if (first === 'migrate') return await migrateCommand(rest, io)
    if (first === 'rollups') return await rollupsCommand(rest, io)
    if (first === 'slos') return await slosCommand(rest, io)
    if (first === 'probes') return await probesCommand(rest, io)
    if (first === 'audit') return await auditCommand(rest, io)
    if (first === 'dashboard') return await dashboardCommand(rest, io)
    if (first.startsWith('-')) throw new CliError(`unknown option '${first}'\nRun 'apimeter --help' for usage.`, EXIT.usage)
    throw new CliError(`unknown command '${first}'\nRun 'apimeter --help' for the list of commands.`, EXIT.usage)
  } catch (error) {
    const message = errorMessage(error).replace(/^@apimeter\/[a-z-]+: /, '')
    io.err(`apimeter: ${message}\n`)
    return exitCodeOf(error)
  }
}

const defaultIO: CliIO = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
}
