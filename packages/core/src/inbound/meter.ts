import type { IncomingMessage, ServerResponse } from 'node:http'
import { classifyError, type Outcome } from '../call/outcome.js'
import { KNOWN_KEYS } from '../call/normalize.js'
import { UNMATCHED_ROUTE } from '../call/route.js'
import type { CallInput } from '../call/types.js'
import { MONITOR_CLOCK, type ResolvedClock, systemClock } from '../clock.js'
import { ApimeterError, describeValue, errorMessage } from '../errors.js'
import { isMeteringSkipped } from '../http/unmetered.js'
import { reportToMonitor } from '../monitor/report.js'
import { parseOrThrow } from '../validation.js'
import { ByteCounter } from './bytes.js'
import { subscribeCompletion } from './completion.js'
import { type IdentityFields, IdentityReader } from './identity.js'
import { IgnoreRules } from './ignore.js'
import { type InboundAdapterConfig, type InboundMonitor, type InboundOptions, isMonitor, optionsSchema } from './options.js'

/**
 * Inbound metering shared by the framework adapters (`@apimeter/express`, `@apimeter/fastify`): the meter of one
 * adapter instance and the call of one request. Its parts live beside it — options (`options.ts`), ignore rules
 * (`ignore.ts`), identity (`identity.ts`), byte counting (`bytes.ts`), route templates (`templates.ts`). The adapters
 * only translate their framework's lifecycle onto {@link InboundMeter}.
 */

/**
 * A request being metered. Created by {@link InboundMeter.start}; the adapter sets `route` once routing is done
 * and calls exactly one of `finish()` / `abort()` (later calls are ignored).
 */
export interface InboundCall {
  /** The route template; {@link UNMATCHED_ROUTE} until the adapter knows better. */
  route: string
  /** Remembers the error type and message of a failure the framework handled (the status still sets the outcome). */
  error(error: unknown): void
  /** Records the call with the response's status code. */
  finish(statusCode: number): void
  /** Records the call as `aborted`: the client went away before the response was complete. */
  abort(): void
}

/**
 * Meters the requests of one adapter instance. Built by {@link createInboundMeter}.
 *
 * @example
 * ```ts
 * const call = meter.start(req, req.raw, res)   // undefined when the request is ignored
 * call?.finish(res.statusCode)
 * ```
 */
export interface InboundMeter<Req> {
  /** The monitor calls are recorded on. */
  readonly monitor: InboundMonitor
  /** The validated adapter switches (see {@link InboundAdapterConfig.switches}). */
  readonly switches: Readonly<Record<string, boolean | undefined>>
  /** Starts metering a request, or returns undefined when it is ignored. Never throws. */
  start(req: Req, raw: IncomingMessage, res: ServerResponse): InboundCall | undefined
}

/**
 * Validates an adapter's arguments (throwing an `INVALID_OPTIONS` error prefixed with the adapter's package name)
 * and returns its meter.
 *
 * @example
 * ```ts
 * const meter = createInboundMeter(monitor, options, {
 *   prefix: '@apimeter/express', monitorPath: 'monitor', clientIp: (req) => req.ip,
 * })
 * ```
 */
export function createInboundMeter<Req>(
  monitor: unknown,
  options: unknown,
  config: InboundAdapterConfig<Req>,
): InboundMeter<Req> {
  if (!isMonitor(monitor)) {
    throw new ApimeterError(
      'INVALID_OPTIONS',
      `${config.prefix}: ${config.monitorPath} must be a monitor from createMonitor(), got ${describeValue(monitor)}`,
      { prefix: config.prefix },
    )
  }
  const switches = config.switches ?? []
  const parsed = parseOrThrow(optionsSchema(switches), options ?? {}, 'options', 'INVALID_OPTIONS', config.prefix) as
    InboundOptions<Req> & Record<string, boolean | undefined>
  const on: Record<string, boolean | undefined> = {}
  for (const name of switches) on[name] = parsed[name]
  return new Meter(monitor, parsed, config, on)
}

const NO_BODY_STATUS = new Set([204, 205, 304])
const ABORT_MESSAGE = 'the client closed the connection before the response was complete'
/**
 * An inbound call as recorded: every field present, so all of them share one object shape; marked as holding
 * known fields only (see `KNOWN_KEYS`).
 */
type InboundRecord = CallInput & IdentityFields & { readonly [KNOWN_KEYS]: true }

class Meter<Req> implements InboundMeter<Req> {
  private readonly ignore: IgnoreRules<Req>
  /** Reports an `ignore` predicate that threw (made once, not per request). */
  private readonly ignoreFailed: (error: unknown) => void
  readonly identity: IdentityReader<Req>
  readonly prefix: string
  /**
   * The monitor's clock, read by each call directly (no `startCall()` handle per request). A recorder that is not a
   * monitor from `createMonitor()` does not expose one: its calls are timed with the system clock.
   */
  readonly clock: ResolvedClock
  /** The record object calls are built in before record() copies them (see Call.record). */
  scratch: InboundRecord | undefined = emptyRecord()

  constructor(
    readonly monitor: InboundMonitor,
    options: InboundOptions<Req>,
    config: InboundAdapterConfig<Req>,
    readonly switches: Readonly<Record<string, boolean | undefined>>,
  ) {
    this.prefix = config.prefix
    this.clock = (monitor as { [MONITOR_CLOCK]?: ResolvedClock })[MONITOR_CLOCK] ?? systemClock
    subscribeCompletion() // so that the first request is already seen through the server's channels
    this.ignore = new IgnoreRules(options.ignore)
    this.ignoreFailed = (error) => this.callbackFailed('ignore', `threw: ${errorMessage(error)}`, error)
    this.identity = new IdentityReader(options, config.clientIp, (name, what, cause) => this.callbackFailed(name, what, cause))
  }

  start(req: Req, raw: IncomingMessage, res: ServerResponse): InboundCall | undefined {
    if (this.ignore.matches(req, raw.url, this.ignoreFailed)) return undefined
    try {
      return new Call(this, req, raw, res)
    } catch (error) {
      // Not expected to happen (a request object some framework changed beyond recognition); the request goes on.
      reportTo(this.monitor, new ApimeterError('INVALID_CALL', `${this.prefix}: a request could not be metered: ${errorMessage(error)}`, { prefix: this.prefix, cause: error }))
      return undefined
    }
  }

  private callbackFailed(name: string, what: string, cause?: unknown): void {
    reportTo(
      this.monitor,
      new ApimeterError('CALLBACK_FAILED', `${this.prefix}: options.${name}(req) ${what}; the call was recorded without it`, {
        prefix: this.prefix,
        cause,
        details: { option: name },
      }),
    )
  }
}

/** Sends an error down the monitor's error path (its `error` event, or one warning per code). */
function reportTo(monitor: InboundMonitor, error: ApimeterError): void {
  if (!reportToMonitor(monitor, error)) process.emitWarning(error.message, { type: 'ApimeterWarning', code: error.code })
}

/**
 * The metering of one request: timing, the error the framework handled, and (as the {@link ByteCounter} it extends)
 * the request's and response's bytes — one object per request.
 */
class Call<Req> extends ByteCounter implements InboundCall {
  route: string = UNMATCHED_ROUTE
  private errorType: string | null = null
  private errorMessage: string | null = null
  private ttfbMs: number | null = null
  private done = false
  /** Epoch ms at the start (the monitor's wall clock). */
  private readonly timestamp: number
  /** The monitor's monotonic clock at the start. */
  private readonly startedAt: number

  constructor(
    private readonly meter: Meter<Req>,
    private readonly req: Req,
    private readonly raw: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    super()
    const clock = meter.clock
    this.timestamp = clock.now()
    this.startedAt = clock.monotonic()
    this.countBytes(raw, res)
  }

  firstByte(): void {
    this.ttfbMs ??= this.meter.clock.monotonic() - this.startedAt
  }

  error(error: unknown): void {
    const classified = classifyError(error)
    this.errorType = classified.errorType
    this.errorMessage = classified.errorMessage || null
  }

  finish(statusCode: number): void {
    if (!this.done) this.record(statusCode, undefined)
  }

  abort(): void {
    if (this.done) return
    this.errorType ??= 'AbortError'
    this.errorMessage ??= ABORT_MESSAGE
    this.record(this.res.headersSent ? this.res.statusCode : null, 'aborted')
  }

  private record(statusCode: number | null, outcome: Outcome | undefined): void {
    this.done = true
    const raw = this.raw
    const counter = this.counter
    counter.release() // the connection's counter slot is free for its next response (the counts stay readable)
    if (isMeteringSkipped(raw)) return // an apimeter handler's own request (skipMetering): nothing is recorded
    const meter = this.meter
    const noBody = raw.method === 'HEAD' || (statusCode !== null && NO_BODY_STATUS.has(statusCode))
    // record() copies the call before it returns, so one object per meter serves every call (unless a callback
    // below records a call of this meter meanwhile: then that one gets its own).
    const call = meter.scratch ?? emptyRecord()
    meter.scratch = undefined
    call.method = raw.method ?? 'GET'
    call.route = this.route
    call.timestamp = this.timestamp
    call.durationMs = Math.max(0, meter.clock.monotonic() - this.startedAt)
    call.ttfbMs = this.ttfbMs
    call.statusCode = statusCode
    call.outcome = outcome
    call.requestBytes = counter.requestBytes
    call.responseBytes = noBody ? 0 : counter.responseBytes
    call.errorType = this.errorType
    call.errorMessage = this.errorMessage
    call.tenantId = null
    call.userId = null
    call.apiKeyId = null
    call.clientIp = null
    call.userAgent = raw.headers['user-agent'] ?? null
    try {
      meter.identity.describe(this.req, raw, call)
      meter.monitor.record(call)
    } finally {
      meter.scratch = call
    }
  }
}

/** An inbound record with every field in place (one object shape for all of them). */
function emptyRecord(): InboundRecord {
  return {
    [KNOWN_KEYS]: true,
    direction: 'inbound',
    method: 'GET',
    route: UNMATCHED_ROUTE,
    timestamp: 0,
    durationMs: 0,
    ttfbMs: null,
    statusCode: null,
    outcome: undefined,
    requestBytes: 0,
    responseBytes: 0,
    errorType: null,
    errorMessage: null,
    tenantId: null,
    userId: null,
    apiKeyId: null,
    clientIp: null,
    userAgent: null,
  }
}
