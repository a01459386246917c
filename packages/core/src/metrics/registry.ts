import { ENUM_CODES } from '../call/compile.js'
import type { CallColumns } from '../call/normalize.js'
import { OVERFLOW_ROUTE } from '../call/route.js'
import type { ResolvedMetricsOptions } from './options.js'
import { HTTP_DURATION_BUCKETS, type HistogramValue, type MetricFamily, type MetricPoint, TOKEN_USAGE_BUCKETS } from './snapshot.js'

/**
 * The in-memory aggregation behind `monitor.metrics`: histograms and counters per label set, fed from the write
 * pipeline's staging columns (see {@link MetricsRegistry.observe}) — never from the database, and never per call on
 * the request path: `record()` does nothing more when metrics are on; the rows it staged are folded in by the
 * pipeline when it drains them, or when a scrape asks first.
 */

const SEP = '\u0001'
const OUTBOUND = ENUM_CODES.direction!.outbound!
/** Methods the HTTP semantic conventions name; any other becomes `_OTHER` (a custom method is not a label value). */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY'])
const OTHER_METHOD = '_OTHER'
/** The value every label of a metric's overflow series takes (the route guard's own overflow value). */
const OVERFLOW = OVERFLOW_ROUTE

/** The definition of one metric: its names, kind, unit and description (a family without its points). */
type Definition = Omit<MetricFamily, 'points'>

/** A histogram series: non-cumulative bucket counts, sum, count, min and max. */
class HistogramSeries {
  readonly counts: Float64Array
  sum = 0
  count = 0
  min = Infinity
  max = -Infinity

  constructor(
    readonly attributes: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe(value: number): void {
    const bounds = this.bounds
    let i = 0
    // bucket i holds values <= bounds[i] (Prometheus `le`, OpenTelemetry's inclusive upper bounds)
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count++
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }

  value(): HistogramValue {
    return { boundaries: this.bounds, counts: Array.from(this.counts), sum: this.sum, count: this.count, min: this.min, max: this.max }
  }
}

/** A counter or gauge series. */
class ValueSeries {
  value = 0
  constructor(readonly attributes: Readonly<Record<string, string>>) {}
}

/**
 * The series of one metric by label key, at most `maxSeries` of them: past that, new label sets share one
 * overflow series (every label `(other)`), so a scan of random hosts or models cannot grow memory.
 */
class SeriesMap<S extends { attributes: Readonly<Record<string, string>> }> {
  readonly series = new Map<string, S>()
  private overflow: S | undefined

  constructor(
    readonly definition: Definition,
    private readonly maxSeries: number,
    private readonly create: (attributes: Readonly<Record<string, string>>) => S,
  ) {}

  /** The series of `key`, created from `attributes()` when new. */
  get(key: string, attributes: () => Record<string, string>): S {
    return this.series.get(key) ?? this.add(key, attributes())
  }

  /** The series of `key` if it exists (with {@link add}: no closure per row on the busiest families). */
  find(key: string): S | undefined {
    return this.series.get(key)
  }

  /** Creates the series of a `key` not found, or the overflow series once `maxSeries` are held. */
  add(key: string, attributes: Record<string, string>): S {
    if (this.series.size >= this.maxSeries) {
      if (this.overflow === undefined) {
        for (const name of Object.keys(attributes)) attributes[name] = OVERFLOW
        this.overflow = this.create(attributes)
      }
      return this.overflow
    }
    const created = this.create(attributes)
    this.series.set(key, created)
    return created
  }

  all(): S[] {
    const list = [...this.series.values()]
    if (this.overflow !== undefined) list.push(this.overflow)
    return list
  }
}

/** The metrics kept from calls, with their names per the OpenTelemetry semantic conventions. */
export const CALL_METRICS = {
  server: {
    name: 'http.server.request.duration',
    promName: 'http_server_request_duration_seconds',
    kind: 'histogram',
    unit: 's',
    description: 'Duration of HTTP server requests.',
    integer: false,
  },
  client: {
    name: 'http.client.request.duration',
    promName: 'http_client_request_duration_seconds',
    kind: 'histogram',
    unit: 's',
    description: 'Duration of HTTP client requests.',
    integer: false,
  },
  tokens: {
    name: 'gen_ai.client.token.usage',
    promName: 'gen_ai_client_token_usage',
    kind: 'histogram',
    unit: '{token}',
    description: 'Number of input and output tokens used per GenAI call (input includes cached input tokens).',
    integer: true,
  },
  cost: {
    name: 'apimeter.cost',
    promName: 'apimeter_cost_usd',
    kind: 'counter',
    unit: 'USD',
    description: 'Cost of the calls made, in US dollars (provider-reported or computed from prices and usage).',
    integer: false,
  },
  cacheHits: {
    name: 'apimeter.cache.hits',
    promName: 'apimeter_cache_hits',
    kind: 'counter',
    unit: '{call}',
    description: 'Calls a cache answered.',
    integer: true,
  },
  rateLimitRemaining: {
    name: 'apimeter.rate_limit.remaining',
    promName: 'apimeter_rate_limit_remaining',
    kind: 'gauge',
    unit: '1',
    description: 'What was left of the tightest rate limit in the last response of an API.',
    integer: false,
  },
  rateLimitHeadroom: {
    name: 'apimeter.rate_limit.headroom',
    promName: 'apimeter_rate_limit_headroom_ratio',
    kind: 'gauge',
    unit: '1',
    description: 'Remaining / limit of the tightest rate limit in the last response of an API (0: exhausted, 1: untouched).',
    integer: false,
  },
} as const satisfies Record<string, Definition>

export class MetricsRegistry {
  readonly startTime: number
  private readonly server: SeriesMap<HistogramSeries>
  private readonly client: SeriesMap<HistogramSeries>
  private readonly tokens: SeriesMap<HistogramSeries>
  private readonly cost: SeriesMap<ValueSeries>
  private readonly cacheHits: SeriesMap<ValueSeries>
  private readonly rateRemaining: SeriesMap<ValueSeries>
  private readonly rateHeadroom: SeriesMap<ValueSeries>
  private readonly tenants = new Map<string, string>()
  private readonly statusText: string[] = []

  constructor(
    private readonly options: ResolvedMetricsOptions,
    now: number,
  ) {
    this.startTime = now
    const max = options.maxSeries
    const histogram = (bounds: readonly number[]) => (attributes: Readonly<Record<string, string>>) => new HistogramSeries(attributes, bounds)
    const value = (attributes: Readonly<Record<string, string>>) => new ValueSeries(attributes)
    this.server = new SeriesMap(CALL_METRICS.server, max, histogram(HTTP_DURATION_BUCKETS))
    this.client = new SeriesMap(CALL_METRICS.client, max, histogram(HTTP_DURATION_BUCKETS))
    this.tokens = new SeriesMap(CALL_METRICS.tokens, max, histogram(TOKEN_USAGE_BUCKETS))
    this.cost = new SeriesMap(CALL_METRICS.cost, max, value)
    this.cacheHits = new SeriesMap(CALL_METRICS.cacheHits, max, value)
    this.rateRemaining = new SeriesMap(CALL_METRICS.rateLimitRemaining, max, value)
    this.rateHeadroom = new SeriesMap(CALL_METRICS.rateLimitHeadroom, max, value)
  }

  /**
   * Folds rows `[from, to)` of the pipeline's staging columns into the metrics. Runs off the request path (when
   * the pipeline drains a batch, or when a scrape comes first), touching only the columns it needs.
   */
  observe(c: CallColumns, from: number, to: number): void {
    const tenantLabel = this.options.tenantLabel
    for (let i = from; i < to; i++) {
      const rawMethod = c.method[i]!
      const method = KNOWN_METHODS.has(rawMethod) ? rawMethod : OTHER_METHOD
      const route = c.route[i]!
      const status = this.status(c.statusCode[i]!)
      const tenant = tenantLabel ? this.tenant(c.tenantId[i] ?? null) : ''
      const seconds = c.durationMs[i]! / 1000
      const api = c.api[i] ?? ''
      const model = c.model[i] ?? ''
      const outbound = c.direction[i] === OUTBOUND
      if (outbound) {
        const host = c.host[i] ?? ''
        const key = method + SEP + route + SEP + status + SEP + host + SEP + api + SEP + tenant
        const series = this.client.find(key) ?? this.client.add(key, attrs(['http.request.method', method], ['http.route', route], ['http.response.status_code', status], ['server.address', host], ['apimeter.api', api], ['apimeter.tenant', tenant]))
        series.observe(seconds)
        this.observeLlm(c, i, api, model, host)
      } else {
        const key = method + SEP + route + SEP + status + SEP + tenant
        const series = this.server.find(key) ?? this.server.add(key, attrs(['http.request.method', method], ['http.route', route], ['http.response.status_code', status], ['apimeter.tenant', tenant]))
        series.observe(seconds)
      }
      const nanos = c.costNanos[i]!
      if (!Number.isNaN(nanos) && nanos > 0) {
        // summed in whole nano-USD (exact), turned into dollars when read
        this.cost.get(api + SEP + model + SEP + tenant, () => attrs(['apimeter.api', api], ['gen_ai.request.model', model], ['apimeter.tenant', tenant])).value += nanos
      }
      if (c.cached[i] === 1) {
        const direction = outbound ? 'outbound' : 'inbound'
        this.cacheHits.get(direction + SEP + api, () => attrs(['apimeter.direction', direction], ['apimeter.api', api])).value++
      }
    }
  }

  /** Token usage and rate-limit headroom of an outbound call. */
  private observeLlm(c: CallColumns, i: number, api: string, model: string, host: string): void {
    const input = c.inputTokens[i]!
    const cachedInput = c.cachedInputTokens[i]!
    const output = c.outputTokens[i]!
    const system = api === '' ? host : api
    if (!Number.isNaN(input) || !Number.isNaN(cachedInput)) {
      // GenAI semantic conventions: input tokens include cached ones; apimeter stores them apart (for pricing)
      const total = (Number.isNaN(input) ? 0 : input) + (Number.isNaN(cachedInput) ? 0 : cachedInput)
      this.tokens.get('input' + SEP + model + SEP + system, () => attrs(['gen_ai.token.type', 'input'], ['gen_ai.request.model', model], ['gen_ai.system', system])).observe(total)
    }
    if (!Number.isNaN(output)) {
      this.tokens.get('output' + SEP + model + SEP + system, () => attrs(['gen_ai.token.type', 'output'], ['gen_ai.request.model', model], ['gen_ai.system', system])).observe(output)
    }
    const limit = c.rateLimitLimit[i]!
    const remaining = c.rateLimitRemaining[i]!
    if (!Number.isNaN(remaining)) {
      const scope = c.rateLimitScope[i] ?? ''
      const key = api + SEP + host + SEP + scope
      const labels = () => attrs(['apimeter.api', api], ['server.address', host], ['apimeter.rate_limit.scope', scope])
      this.rateRemaining.get(key, labels).value = remaining
      if (!Number.isNaN(limit) && limit > 0) this.rateHeadroom.get(key, labels).value = Math.min(1, remaining / limit)
    }
  }

  private status(code: number): string {
    if (Number.isNaN(code)) return ''
    return (this.statusText[code] ??= String(code))
  }

  private tenant(id: string | null): string {
    if (id === null) return ''
    const known = this.tenants.get(id)
    if (known !== undefined) return known
    if (this.tenants.size >= this.options.maxTenants) return OVERFLOW
    this.tenants.set(id, id)
    return id
  }

  /** The call metrics as they are now. */
  families(): MetricFamily[] {
    const histograms = (map: SeriesMap<HistogramSeries>): MetricFamily =>
      family(map.definition, map.all().map((s) => ({ attributes: s.attributes, value: s.count, histogram: s.value() })))
    const values = (map: SeriesMap<ValueSeries>, read: (s: ValueSeries) => number = (s) => s.value): MetricFamily =>
      family(map.definition, map.all().map((s) => ({ attributes: s.attributes, value: read(s) })))
    return [
      histograms(this.server),
      histograms(this.client),
      histograms(this.tokens),
      values(this.cost, (s) => s.value / 1e9),
      values(this.cacheHits),
      values(this.rateRemaining),
      values(this.rateHeadroom),
    ]
  }
}

/** A family from its definition and points. */
export function family(definition: Definition, points: MetricPoint[]): MetricFamily {
  return { ...definition, points }
}

/** Attributes from `[key, value]` pairs, leaving out empty values (an absent attribute, an absent label). */
function attrs(...pairs: [string, string][]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of pairs) if (value !== '') out[key] = value
  return out
}
