import { createHash } from 'node:crypto'
import type { CallInput, RateLimitInfo } from '../call/types.js'
import { ApimeterError, errorMessage } from '../errors.js'
import type { CallRecorder } from '../call/handle.js'
import { MONITOR_CLOCK, type ResolvedClock, systemClock } from '../clock.js'
import type { SecretPathPatterns } from '../call/route.js'
import { classifyError, type Outcome } from '../call/outcome.js'
import { KNOWN_KEYS } from '../call/normalize.js'
import { resolveCache } from './cache.js'
import { BodyPrefix, maskBody, maskHeaders, type ResolvedCapture, resolveCapture } from './capture.js'
import type { PricedCall } from './cost.js'
import { CACHE_SIGNAL, type HeaderSource, lookupHeaders, type ObjectHeaders, RATE_LIMIT_SIGNAL } from './headers.js'
import { OUTBOUND_DEFAULTS, type OutboundCallOptions, type OutboundOptions } from './options.js'
import { parseRateLimit } from './rate-limit.js'
import { type ApiDefinition, ApiRegistry, type CompiledApi, type Resolved, type Target, toTarget } from './registry.js'
import { stopListeningForFetch } from './instrument.js'
import { createUsageScanner, type UsageScanner } from './usage.js'

/** One outbound request as a layer (fetch wrapper, interceptor, diagnostics channel) sees it. */
export interface OutboundRequest {
  method: string
  /** Absolute URL. */
  url: string
  /** Request headers. */
  headers: HeaderSource
  /** Request body size when known. */
  requestBytes: number | null
  /** The request body when it is text or bytes (read only when capture is on). */
  requestBody: string | Uint8Array | null
  options: OutboundCallOptions | undefined
}

/** How a body ended, when it did not end normally (stored as `metadata.body`). */
type BodyEnd = 'cancelled' | 'unread' | 'stalled'

const MAX_RETRY_LINKS = 1000
const FIRST_ATTEMPT = Object.freeze({ attempt: 1, operationId: null })
const MAX_REMEMBERED_URLS = 1000
const MAX_REMEMBERED_URL = 512
const METADATA_BUDGET = 7_600

/** Outbound metering of one monitor: resolves requests against the registry and records finished calls. */
export class OutboundMeter {
  readonly registry: ApiRegistry
  readonly bodyTimeoutMs: number
  readonly capture: ResolvedCapture | null
  readonly cacheDetector: OutboundOptions['cacheDetector']
  /** The monitor's clock (an injected one in tests), read by each call directly. */
  readonly clock: ResolvedClock
  /** The record object calls are written into before record() copies them (see OutboundCall.record). */
  scratch: OutboundRecord | undefined = emptyRecord()
  /** Operation ids of SDK requests that may be retried, by method + URL (bounded, oldest dropped first). */
  private readonly retryLinks = new Map<string, string>()
  private readonly idPrefix = Math.random().toString(36).slice(2, 8)
  /** The registry's answers for recent URLs (see `resolveUrl`). */
  private readonly resolved = new Map<string, Resolved | null>()
  private operations = 0
  /** Calls whose response arrived and whose body is still being waited for. */
  /**
   * The calls whose bodies are watched for stalls, each holding its own index here (see {@link OutboundCall.watchIndex}):
   * adding and removing one allocates nothing, where a Set's table was reallocated as it grew and shrank around a
   * few calls in flight.
   */
  private readonly watching: OutboundCall[] = []
  /**
   * One timer for all of them, while there are any: it looks at each call's progress a few times per `bodyTimeoutMs`,
   * so a call costs a set insertion instead of a timer of its own (armed, unref'd and cleared per call).
   */
  private sweeper: NodeJS.Timeout | undefined
  /** Whether this meter's `monitor.fetch` listens to undici's diagnostics channels (from its first call on). */
  listensForFetch = false
  /**
   * Calls that ended inside undici's parser callback (the `trailers` channel: see {@link OutboundCall.endSoon}), or
   * whose body had ended when their fetch resolved ({@link OutboundCall.endAt}), timed then and waiting to be recorded
   * at the end of the event loop's turn. Recording a call inside that callback cost the fetch more than the recording
   * itself: paired with plain fetch, a minimal timer calling `record()` there read 0.92 of its CPU and 0.95 recording
   * from one `setImmediate` per turn; `instrument()` went from 0.83 to 0.87 and `monitor.fetch` from 0.82 to 0.85 with
   * this queue (same run; the SQLite storage then worked on the fetching thread). The monitor's write pipeline counts
   * them as queued and has them recorded before a flush or close (it is held by this meter: `WritePipeline.holdBy`).
   */
  private ended: OutboundCall[] = []
  private endedScheduled = false
  private readonly recordHeldNow = () => this.recordHeld()

  constructor(
    readonly monitor: CallRecorder,
    readonly report: (error: ApimeterError) => void,
    apis: readonly ApiDefinition[],
    options: OutboundOptions,
    secretPaths?: SecretPathPatterns,
  ) {
    this.registry = new ApiRegistry(apis, options.maxHosts ?? OUTBOUND_DEFAULTS.maxHosts, options.ignore ?? [], secretPaths)
    this.bodyTimeoutMs = options.bodyTimeoutMs ?? OUTBOUND_DEFAULTS.bodyTimeoutMs
    this.capture = resolveCapture(options.capture)
    this.cacheDetector = options.cacheDetector
    this.clock = (monitor as { [MONITOR_CLOCK]?: ResolvedClock })[MONITOR_CLOCK] ?? systemClock
  }

  /** Starts metering a request; undefined when it is ignored or not an http(s) URL. Never throws. */
  start(request: OutboundRequest): OutboundCall | undefined {
    try {
      const options = request.options
      const resolved = options?.api === undefined ? this.resolveUrl(request.url) : this.resolveTarget(toTarget(request.url), options.api)
      if (resolved === null) return undefined
      return new OutboundCall(this, request, resolved.api, options?.route ?? resolved.route, resolved.host, resolved.definition)
    } catch (error) {
      this.failed('a request could not be metered', error)
      return undefined
    }
  }

  /**
   * The registry's answer for a URL (null: ignored, or not http(s)), remembered for the URLs called most recently:
   * parsing a URL and folding its path cost more than the rest of starting a call. The answer for a URL never
   * changes (an unregistered host, once given its name or `(other)`, keeps it), so remembering it is exact; the
   * memory is bounded (short URLs only, emptied when full), so a URL-scanning caller only empties it more often.
   */
  private resolveUrl(url: string): Resolved | null {
    const known = this.resolved.get(url)
    if (known !== undefined) return known
    const resolved = this.resolveTarget(toTarget(url), undefined)
    if (url.length <= MAX_REMEMBERED_URL) {
      if (this.resolved.size >= MAX_REMEMBERED_URLS) this.resolved.clear()
      this.resolved.set(url, resolved)
    }
    return resolved
  }

  private resolveTarget(target: Target | null, api: string | undefined): Resolved | null {
    if (target === null || this.registry.isIgnored(target)) return null
    return this.registry.resolve(target, api)
  }

  /** Reports an unexpected metering error; the request itself goes on. */
  failed(what: string, error: unknown): void {
    this.report(new ApimeterError('INSTRUMENTATION_FAILED', `${what}: ${errorMessage(error)}`, { cause: error }))
  }

  /** Attempt number and operation id from the request (explicit options, SDK retry headers, idempotency keys). */
  retryInfo(request: OutboundRequest): { attempt: number; operationId: string | null } {
    const options = request.options
    let attempt = options?.attempt ?? 1
    let operationId = options?.operationId ?? null
    const idempotencyKey = request.headers.get('idempotency-key')
    // the usual call: a first attempt of no operation (one shared answer, no object per call)
    if (options === undefined && idempotencyKey === null && request.headers.get('x-stainless-retry-count') === null) return FIRST_ATTEMPT
    if (operationId === null && idempotencyKey !== null) {
      operationId = `idem-${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 16)}`
    }
    // OpenAI's and Anthropic's SDKs (Stainless clients) number their attempts: 0 for the first, 1 for the first retry…
    const retryCount = request.headers.get('x-stainless-retry-count')
    if (retryCount !== null) {
      const n = Number.parseInt(retryCount, 10)
      if (Number.isInteger(n) && n >= 0 && n < 1000) {
        if (options?.attempt === undefined) attempt = n + 1
        const key = `${request.method} ${request.url}`
        if (operationId === null) {
          operationId = (n > 0 ? this.retryLinks.get(key) : undefined) ?? this.newOperationId()
        }
        this.retryLinks.delete(key)
        this.retryLinks.set(key, operationId)
        if (this.retryLinks.size > MAX_RETRY_LINKS) this.retryLinks.delete(this.retryLinks.keys().next().value!)
      }
    }
    return { attempt, operationId }
  }

  /**
   * Records every call still waiting for its body now (marked `unread`, or `stalled` when part of it was read), so
   * `close()` never loses a call whose body the application did not read. Called as the monitor closes: its
   * `monitor.fetch` also stops listening to undici's channels.
   */
  finishWatched(): void {
    for (const call of [...this.watching]) call.finishNow()
    this.stopSweeping()
    if (this.listensForFetch) {
      this.listensForFetch = false
      stopListeningForFetch(this)
    }
  }

  /** Queues an ended call to be recorded at the end of this turn (see {@link ended}). */
  endLater(call: OutboundCall): void {
    this.ended.push(call)
    if (this.endedScheduled) return
    this.endedScheduled = true
    setImmediate(this.recordHeldNow)
  }

  /** Records the ended calls waiting now (the turn's end, or a flush or close that cannot wait for it). */
  recordHeld(): void {
    this.endedScheduled = false
    const calls = this.ended
    if (calls.length === 0) return
    this.ended = []
    for (const call of calls) call.recordEnd()
  }

  /** Ended calls not recorded yet. */
  get held(): number {
    return this.ended.length
  }

  /** Watches a call's body for progress (see {@link OutboundCall.watchBody}). */
  watch(call: OutboundCall): void {
    call.watchIndex = this.watching.length
    this.watching.push(call)
    if (this.sweeper !== undefined) return
    // a body is finished between bodyTimeoutMs and 9/8 of it after its last progress (at least 25 ms after)
    this.sweeper = setInterval(() => this.sweep(), Math.max(25, Math.min(1000, Math.floor(this.bodyTimeoutMs / 8))))
    this.sweeper.unref()
  }

  /** Stops watching a call (it has ended). */
  unwatch(call: OutboundCall): void {
    const at = call.watchIndex
    if (at < 0) return
    call.watchIndex = -1
    const last = this.watching.pop()!
    if (last !== call) {
      this.watching[at] = last
      last.watchIndex = at
    }
  }

  private sweep(): void {
    // from the end: a call that finishes here moves the last one into its place, which has been checked already
    for (let at = this.watching.length - 1; at >= 0; at--) this.watching[at]?.checkProgress()
    if (this.watching.length === 0) this.stopSweeping()
  }

  private stopSweeping(): void {
    if (this.sweeper === undefined) return
    clearInterval(this.sweeper)
    this.sweeper = undefined
  }

  private newOperationId(): string {
    return `op-${this.idPrefix}-${(++this.operations).toString(36)}`
  }
}

/** The reason undici's fetch gives when it cancels the body of a Response that was garbage-collected unread. */
const RESPONSE_COLLECTED = 'Response object has been garbage collected'

/**
 * One outbound call in flight. Layers report what they see — `response()`, `chunk()`, then one of `end()`,
 * `fail()`, `cancel()` — and the call is recorded once, with one `record()` of an object built at the end.
 * A body nobody reads is finished after `bodyTimeoutMs` without progress.
 */
export class OutboundCall {
  /** When the call started: wall-clock epoch ms, and the monotonic clock's reading its durations count from. */
  private readonly timestamp: number
  private readonly startedAt: number
  private statusCode: number | null = null
  private headers: ObjectHeaders | null = null
  private ttfbMs: number | null = null
  private responseBytes = 0
  private lastActivityMs = 0
  private fromUndiciCache = false
  private scanner: UsageScanner | null = null
  private bodyPrefix: BodyPrefix | null = null
  /** Whether its body is watched for progress (by the meter's sweeper). */
  /** Where the meter keeps this call while its body is watched for stalls; -1 while it is not. */
  watchIndex = -1
  private watched = false
  private readonly attempt: number
  private readonly operationId: string | null
  done = false
  /** When the body ended, for a call {@link endAt} queued (on {@link elapsedMs}'s clock). */
  private endedAtMs = 0

  constructor(
    private readonly meter: OutboundMeter,
    private readonly request: OutboundRequest,
    private readonly api: string,
    private readonly route: string,
    private readonly host: string,
    private readonly definition: CompiledApi | undefined,
  ) {
    this.timestamp = meter.clock.now()
    this.startedAt = meter.clock.monotonic()
    // At the start, not the end: a retry links to the attempt before it, which has ended by then.
    const retry = meter.retryInfo(request)
    this.attempt = retry.attempt
    this.operationId = retry.operationId
  }

  /**
   * Whether metering this call needs its response body: a usage reader (token counts for a cost model) or response
   * body capture. A call that needs nothing from the body can be watched without touching it.
   */
  needsBody(): boolean {
    return this.definition?.cost?.usage !== undefined || this.meter.capture?.responseBody === true
  }

  /** Milliseconds since the call started (the call's own monotonic clock). */
  elapsedMs(): number {
    return this.meter.clock.monotonic() - this.startedAt
  }

  /** The response headers arrived (`atMs`: when, on {@link elapsedMs}'s clock, if not now). */
  response(statusCode: number, headers: HeaderSource, atMs?: number): void {
    if (this.done || this.statusCode !== null) return
    this.statusCode = statusCode
    this.headers = lookupHeaders(headers)
    this.ttfbMs = this.lastActivityMs = atMs ?? this.elapsedMs()
    const usage = this.definition?.cost?.usage
    if (usage !== undefined && statusCode < 400) this.scanner = createUsageScanner(usage, this.headers.get('content-type'))
    if (this.meter.capture?.responseBody) this.bodyPrefix = new BodyPrefix(this.meter.capture.maxBodyBytes)
  }

  /** The body will be read: finish it if it makes no progress for `bodyTimeoutMs`. */
  watchBody(): void {
    if (this.done || this.watched) return
    this.watched = true
    this.meter.watch(this)
  }

  /** Records the call now, as the body bound would (the monitor is closing). */
  finishNow(): void {
    if (!this.done) this.record(null, this.responseBytes === 0 ? 'unread' : 'stalled', false)
  }

  /** Finishes the call if its body made no progress for `bodyTimeoutMs` (the meter's sweeper asks). */
  checkProgress(): void {
    if (this.done) return
    if (this.elapsedMs() - this.lastActivityMs + 1 >= this.meter.bodyTimeoutMs) this.record(null, this.responseBytes === 0 ? 'unread' : 'stalled', false)
  }

  /** A piece of the response body passed to the application. */
  chunk(chunk: Uint8Array): void {
    if (this.done) return
    this.responseBytes += chunk.byteLength
    if (this.scanner !== null || this.bodyPrefix !== null) {
      this.lastActivityMs = this.elapsedMs()
      try {
        this.scanner?.push(chunk)
        this.bodyPrefix?.push(chunk)
      } catch (error) {
        this.scanner = null
        this.meter.failed('a response body could not be scanned for usage', error)
      }
    } else if (this.watched) {
      this.lastActivityMs = this.elapsedMs()
    }
  }

  /** `bytes` of the response body arrived (counted where they arrive; nothing is scanned). */
  received(bytes: number): void {
    if (this.done) return
    this.responseBytes += bytes
    if (this.watched) this.lastActivityMs = this.elapsedMs()
  }

  /** Undici's cache interceptor answered the request. */
  servedFromCache(): void {
    this.fromUndiciCache = true
  }

  /** The body ended normally, or there was none (`atMs`: when, on {@link elapsedMs}'s clock, if not now). */
  end(atMs?: number): void {
    if (!this.done) this.record(null, undefined, true, atMs)
  }

  /**
   * The body ended now, heard inside undici's parser callback (its `trailers` channel): the call is over from now on
   * (later events are ignored) and timed now, and it is recorded at the end of the turn (see the meter's `ended`).
   */
  endSoon(): void {
    if (!this.done) this.endAt(this.elapsedMs())
  }

  /**
   * The body ended at `atMs` (on {@link elapsedMs}'s clock), heard before the fetch resolved: as {@link endSoon},
   * the call is over from now on and recorded at the end of the turn rather than in the middle of the fetch's own
   * continuation (paired with the previous version both ways, `monitor.fetch` read 1.6–1.8% less main-thread CPU per
   * request this way).
   */
  endAt(atMs: number): void {
    if (this.done) return
    this.done = true // the sweeper and later events leave it alone; record() unwatches it
    this.endedAtMs = atMs
    this.meter.endLater(this)
  }

  /** Records a call {@link endAt} queued. */
  recordEnd(): void {
    this.record(null, undefined, true, this.endedAtMs)
  }

  /**
   * The request or the body failed. Undici's fetch cancels the body of a Response the application let go of unread
   * (garbage-collected before its body ended) with {@link RESPONSE_COLLECTED}: that call did not fail, its body was
   * not read, and it is recorded as such (`metadata.body: 'unread'`, the status deciding the outcome).
   */
  fail(error: unknown): void {
    if (this.done) return
    if (error === RESPONSE_COLLECTED) this.record(null, 'unread', false)
    else this.record(error, undefined, false)
  }

  /** The application cancelled the body before its end. */
  cancel(): void {
    if (!this.done) this.record(null, 'cancelled', false)
  }

  private record(error: unknown, bodyEnd: BodyEnd | undefined, complete: boolean, atMs?: number): void {
    this.done = true
    if (this.watched) this.meter.unwatch(this)
    const meter = this.meter
    // record() copies the call before it returns, so one object per meter serves every call (unless something below
    // records a call of this meter meanwhile: then that one gets its own).
    const out = meter.scratch ?? emptyRecord()
    meter.scratch = undefined
    try {
      this.fill(out, error, bodyEnd, complete, atMs)
      meter.monitor.record(out)
    } catch (err) {
      meter.failed('an outbound call could not be recorded', err)
    } finally {
      meter.scratch = out
    }
  }

  /** Writes the finished call into `out`, every field of it. */
  private fill(out: OutboundRecord, error: unknown, bodyEnd: BodyEnd | undefined, complete: boolean, atMs: number | undefined): void {
    const meter = this.meter
    const request = this.request
    const statusCode = this.statusCode
    const headers = this.headers
    const durationMs = bodyEnd === 'unread' || bodyEnd === 'stalled' ? this.lastActivityMs : (atMs ?? this.elapsedMs())
    let outcome: Outcome | undefined
    let errorType: string | null = null
    let errorMessageText: string | null = null
    if (error !== null && error !== undefined) {
      const classified = classifyError(error)
      outcome = classified.outcome
      errorType = classified.errorType
      errorMessageText = classified.errorMessage || null
    }
    let cached = false
    let cacheSignal: string | null = null
    let rateLimit: RateLimitInfo | null = null
    if (statusCode !== null && headers !== null) {
      // Most responses carry none of these headers: one pass over the names skips both rule sets.
      const signals = headers.signals()
      if (meter.cacheDetector !== undefined || this.fromUndiciCache || statusCode === 304 || (signals & CACHE_SIGNAL) !== 0) {
        try {
          const verdict = resolveCache(meter.cacheDetector, { url: request.url, method: request.method, statusCode, headers }, this.fromUndiciCache)
          cached = verdict.cached
          cacheSignal = verdict.signal
        } catch (err) {
          meter.failed('options.outbound.cacheDetector threw', err)
        }
      }
      if ((signals & RATE_LIMIT_SIGNAL) !== 0) rateLimit = parseRateLimit(headers, Date.now(), statusCode)
    }
    const priced = this.price(complete, bodyEnd === undefined && error == null)
    const options = request.options
    out.method = request.method
    out.route = this.route
    out.url = request.url
    out.api = this.api
    out.host = this.host
    out.timestamp = this.timestamp
    out.durationMs = durationMs
    out.ttfbMs = this.ttfbMs
    out.statusCode = statusCode
    out.outcome = outcome
    out.errorType = errorType
    out.errorMessage = errorMessageText
    out.requestBytes = request.requestBytes
    out.responseBytes = statusCode === null ? null : this.responseBytes
    out.cached = cached
    out.cacheSignal = cacheSignal
    out.cost = priced?.cost ?? null
    out.costSource = priced?.costSource ?? null
    out.model = priced?.model ?? null
    out.inputTokens = priced?.inputTokens ?? null
    out.outputTokens = priced?.outputTokens ?? null
    out.cachedInputTokens = priced?.cachedInputTokens ?? null
    out.tenantId = options?.tenantId ?? null
    out.userId = options?.userId ?? null
    out.rateLimit = rateLimit
    out.attempt = this.attempt
    out.operationId = this.operationId
    out.metadata = this.metadata(bodyEnd)
  }

  private price(complete: boolean, clean: boolean): PricedCall | null {
    const model = this.definition?.cost
    if (model === undefined) return null
    const statusCode = this.statusCode
    let state = null
    let usage = null
    if (this.scanner !== null) {
      const result = this.scanner.finish(complete && clean, this.request.requestBytes)
      state = result.state
      usage = result.usage
    } else if (model.kind === 'perToken' && statusCode !== null && statusCode < 400) {
      state = clean ? ('none' as const) : ('unknown' as const)
    }
    try {
      return model.price(
        { api: this.api, method: this.request.method, url: this.request.url, route: this.route, statusCode, headers: this.headers ?? EMPTY, usage },
        state,
      )
    } catch (error) {
      this.meter.failed(`the cost model of API '${this.api}' failed`, error)
      return null
    }
  }

  private metadata(bodyEnd: BodyEnd | undefined): Record<string, unknown> | null {
    const given = this.request.options?.metadata
    const capture = this.meter.capture
    if (bodyEnd === undefined && capture === null) return given ?? null
    const out: Record<string, unknown> = { ...given }
    if (bodyEnd !== undefined) out.body = bodyEnd
    if (capture !== null) {
      try {
        if (capture.requestHeaders) out.requestHeaders = maskHeaders(this.request.headers, capture.mask)
        if (capture.responseHeaders && this.headers !== null) out.responseHeaders = maskHeaders(this.headers, capture.mask)
        const body = this.request.requestBody
        if (capture.requestBody && body !== null) {
          const prefix = new BodyPrefix(capture.maxBodyBytes)
          prefix.push(typeof body === 'string' ? Buffer.from(body) : body)
          out.requestBody = maskBody(prefix.text(), prefix.truncated, capture.mask)
        }
        if (this.bodyPrefix !== null) out.responseBody = maskBody(this.bodyPrefix.text(), this.bodyPrefix.truncated, capture.mask)
      } catch (error) {
        this.meter.failed('headers or bodies could not be captured', error)
      }
      // Stay under the metadata cap (8 KiB serialised): drop the least useful parts first.
      for (const key of ['requestBody', 'requestHeaders', 'responseBody', 'responseHeaders']) {
        if (Buffer.byteLength(JSON.stringify(out)) <= METADATA_BUDGET) break
        if (key in out) out[key] = '(dropped: over the metadata size cap)'
      }
    }
    return out
  }
}

/** An outbound record with every field in place (one object shape for all of them), filled by {@link OutboundCall}. */
type OutboundRecord = CallInput & { [KNOWN_KEYS]: true }

function emptyRecord(): OutboundRecord {
  return {
    direction: 'outbound',
    method: 'GET',
    route: '/',
    url: '',
    api: null,
    host: null,
    timestamp: 0,
    durationMs: 0,
    ttfbMs: null,
    statusCode: null,
    outcome: undefined,
    errorType: null,
    errorMessage: null,
    requestBytes: null,
    responseBytes: null,
    cached: false,
    cacheSignal: null,
    cost: null,
    costSource: null,
    model: null,
    inputTokens: null,
    outputTokens: null,
    cachedInputTokens: null,
    tenantId: null,
    userId: null,
    rateLimit: null,
    attempt: 1,
    operationId: null,
    metadata: null,
    // a fixed literal of known fields; the computed key comes last, so that V8 builds the object from one template
    [KNOWN_KEYS]: true,
  }
}

const EMPTY: HeaderSource = { get: () => null, entries: () => [][Symbol.iterator]() as IterableIterator<[string, string]> }
