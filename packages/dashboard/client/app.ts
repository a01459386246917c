// The dashboard page: plain DOM and uPlot, bundled by the package build into dist/assets/app.js. It renders what
// the server's views return (monitor.stats and the monitor's alerts, probes, SLOs and health) and never computes a
// number of its own beyond formatting. One live stream (server-sent events) per page feeds it.
import 'uplot/dist/uPlot.min.css'
import './app.css'
import uPlot from 'uplot'

type Json = Record<string, any>
type View = 'overview' | 'traffic' | 'llm' | 'reliability' | 'health'
const VIEWS: View[] = ['overview', 'traffic', 'llm', 'reliability', 'health']

const form = document.getElementById('filters') as HTMLFormElement
const main = document.getElementById('main') as HTMLElement
const live = document.getElementById('live') as HTMLElement
const drillSlot = document.getElementById('drill') as HTMLElement
const field = <T extends HTMLElement>(name: string): T => form.elements.namedItem(name) as unknown as T

const state = { drill: {} as { route?: string; api?: string }, sort: {} as Record<string, { key: string; desc: boolean }> }
let source: EventSource | undefined
let charts: uPlot[] = []
let rendered: View | undefined
let lastData: Json | undefined

// ---------- small DOM helpers ----------
function h(tag: string, attrs: Record<string, string | number | boolean | null | undefined> = {}, ...children: (Node | string | null | undefined)[]): HTMLElement {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? '' : String(v))
  for (const c of children) if (c !== null && c !== undefined) el.append(c)
  return el
}
const utc = (): boolean => field<HTMLSelectElement>('tz').value === 'utc'
const num = (v: number): string => (Math.abs(v) >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : Math.abs(v) >= 1e4 ? `${(v / 1e3).toFixed(1)}k` : v.toLocaleString('en-US', { maximumFractionDigits: 2 }))
const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(2)}%`)
const ms = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms`)
const small = (v: number): string => (v !== 0 && Math.abs(v) < 0.01 ? v.toPrecision(3) : num(v))
const usd = (v: number): string => `$${v === 0 || v >= 1 ? v.toFixed(2) : v >= 0.01 ? v.toFixed(4) : v.toFixed(6).replace(/0+$/, '')}`
const bytes = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : `${(v / 1048576).toFixed(1)} MiB`)
function when(t: number | string | null | undefined): string {
  if (t === null || t === undefined) return '–'
  const d = new Date(t)
  return utc() ? `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC` : d.toLocaleString()
}

// ---------- state <-> URL ----------
function currentView(): View {
  const v = location.hash.slice(1).split('?')[0] as View
  return VIEWS.includes(v) ? v : 'overview'
}

function queryString(view: View): string {
  const p = new URLSearchParams({ view })
  const range = field<HTMLSelectElement>('range').value
  if (range === 'custom') {
    const from = field<HTMLInputElement>('from').value
    const to = field<HTMLInputElement>('to').value
    const parse = (v: string) => (utc() ? Date.parse(`${v}:00Z`) : new Date(v).getTime())
    if (from && to) {
      p.set('from', String(parse(from)))
      p.set('to', String(parse(to)))
    } else p.set('range', '24h')
  } else p.set('range', range)
  for (const name of ['service', 'tenant']) {
    const v = field<HTMLSelectElement>(name).value
    if (v) p.set(name, v)
  }
  if (state.drill.route) p.set('route', state.drill.route)
  if (state.drill.api) p.set('api', state.drill.api)
  return p.toString()
}

/** Opens the page's one live stream for the current view and filters (closing the previous one). */
function connect(): void {
  source?.close()
  const view = currentView()
  document.querySelectorAll('nav a').forEach((a) => a.toggleAttribute('aria-current', a.getAttribute('href') === `#${view}`))
  form.classList.toggle('show-custom', field<HTMLSelectElement>('range').value === 'custom')
  drillSlot.replaceChildren()
  for (const [k, v] of Object.entries(state.drill)) {
    const b = h('button', { type: 'button', class: 'chip', 'aria-label': `Remove the ${k} filter ${v}` }, `${k}: ${v} ✕`)
    b.addEventListener('click', () => {
      state.drill = {}
      connect()
    })
    drillSlot.append(b)
  }
  live.textContent = 'connecting…'
  main.setAttribute('aria-busy', 'true')
  const es = new EventSource(`api/stream?${queryString(view)}`)
  source = es
  es.addEventListener('data', (e) => {
    if (source !== es) return
    const data = JSON.parse((e as MessageEvent<string>).data) as Json
    render(view, data)
    live.textContent = `live · updated ${new Date().toLocaleTimeString()}`
    main.setAttribute('aria-busy', 'false')
  })
  es.addEventListener('problem', () => (live.textContent = 'the data could not be read; retrying'))
  es.onerror = () => {
    if (source === es) live.textContent = 'reconnecting…'
  }
}

function render(view: View, data: Json): void {
  const q = data.query as Json
  main.dataset.view = view
  main.dataset.from = String(q.from)
  main.dataset.to = String(q.to)
  if (view === 'overview') fillSelect('tenant', data.tenants as string[])
  if (view === 'overview') fillSelect('service', data.services as string[])
  // a live update of the same view keeps the charts and only gives them the new data
  if (rendered === view && view === 'overview' && charts.length > 0 && lastData) {
    updateCards(data)
    setChartData(data)
    lastData = data
    return
  }
  for (const c of charts) c.destroy()
  charts = []
  rendered = view
  lastData = data
  main.replaceChildren()
  if (view === 'overview') renderOverview(data)
  else if (view === 'traffic') renderTraffic(data)
  else if (view === 'llm') renderLlm(data)
  else if (view === 'reliability') renderReliability(data)
  else renderHealth(data)
}

function fillSelect(name: string, values: string[]): void {
  const select = field<HTMLSelectElement>(name)
  const chosen = select.value
  const all = chosen && !values.includes(chosen) ? [chosen, ...values] : values
  const have = [...select.options].slice(1).map((o) => o.value)
  if (have.join('\n') === all.join('\n')) return
  select.replaceChildren(h('option', { value: '' }, 'All'), ...all.map((v) => h('option', { value: v }, v)))
  select.value = chosen
}

// ---------- overview ----------
const CARDS: [string, string, (s: Json) => number | null, (v: number | null) => string][] = [
  ['requests', 'Requests', (s) => s.requests, (v) => num(v ?? 0)],
  ['errorRate', 'Error rate', (s) => s.errorRate, pct],
  ['p50', 'p50', (s) => s.latency?.p50 ?? null, ms],
  ['p95', 'p95', (s) => s.latency?.p95 ?? null, ms],
  ['p99', 'p99', (s) => s.latency?.p99 ?? null, ms],
  ['cost', 'Cost', (s) => s.cost, (v) => usd(v ?? 0)],
  ['tokens', 'Tokens', (s) => s.tokens.input + s.tokens.output, (v) => num(v ?? 0)],
  ['cacheHitRate', 'Cache hit rate', (s) => s.cacheHitRate, pct],
]

function renderOverview(data: Json): void {
  const cards = h('section', { class: 'cards', 'aria-label': 'Totals for the range' })
  for (const [key, label] of CARDS) cards.append(h('div', { class: 'card' }, h('span', { class: 'label' }, label), h('strong', { 'data-metric': key })))
  main.append(h('h2', {}, 'Overview'), cards)
  updateCards(data)
  const grid = h('section', { class: 'charts', 'aria-label': 'Charts over time' })
  main.append(grid)
  const specs: [string, [string, string][]][] = [
    ['Requests and errors', [['requests', '#2563eb'], ['errors', '#dc2626']]],
    ['Latency (ms)', [['p50', '#16a34a'], ['p95', '#ca8a04'], ['p99', '#dc2626']]],
    ['Cost (USD)', [['cost', '#7c3aed']]],
    ['Tokens', [['tokens', '#0891b2']]],
  ]
  for (const [title, measures] of specs) lineChart(grid, title, measures, data.series as Json)
}

/** A uPlot line chart of some measures of a series (`t` and one array per measure) in `grid`. */
function lineChart(grid: HTMLElement, title: string, measures: [string, string][], series: Json): void {
  const box = h('figure', { class: 'chart' }, h('figcaption', {}, title))
  grid.append(box)
  const opts: uPlot.Options = {
    width: chartWidth(grid),
    height: 180,
    ms: 1,
    tzDate: (ts) => (utc() ? uPlot.tzDate(new Date(ts), 'Etc/UTC') : new Date(ts)),
    series: [{}, ...measures.map(([label, stroke]) => ({ label, stroke, width: 2, spanGaps: true, points: { show: false } }))],
    axes: [{}, { size: 60 }],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
  }
  const chart = new uPlot(opts, chartData(series, measures.map((m) => m[0])), box)
  chart.root.setAttribute('data-measures', measures.map((m) => m[0]).join(','))
  charts.push(chart)
}

function updateCards(data: Json): void {
  for (const [key, , read, format] of CARDS) {
    const el = main.querySelector<HTMLElement>(`[data-metric="${key}"]`)
    if (!el) continue
    const v = read(data.summary as Json)
    el.textContent = format(v)
    el.dataset.value = v === null ? '' : String(v)
  }
}

function chartData(s: Json, measures: string[]): uPlot.AlignedData {
  return [s.t as number[], ...measures.map((m) => s[m] as (number | null)[])]
}

function setChartData(data: Json): void {
  for (const chart of charts) chart.setData(chartData(data.series as Json, chart.root.getAttribute('data-measures')!.split(',')))
}

function chartWidth(container: HTMLElement): number {
  const w = container.clientWidth || main.clientWidth || 600
  return Math.max(260, w >= 900 ? Math.floor(w / 2) - 40 : w - 16)
}

// ---------- tables ----------
type Column = [key: string, label: string, format: (row: Json) => string | Node, value?: (row: Json) => number | string]

function table(id: string, caption: string, rows: Json[], columns: Column[], onPick?: (row: Json) => void, by = columns[1]?.[0] ?? 'key', empty = 'Nothing in this range.'): HTMLElement {
  const sort = state.sort[id] ?? { key: by, desc: true }
  const valueOf = (row: Json, key: string) => {
    const col = columns.find((c) => c[0] === key)
    return col?.[3] ? col[3](row) : (row[key] as number | string)
  }
  const sorted = [...rows].sort((a, b) => {
    const x = valueOf(a, sort.key) ?? -Infinity
    const y = valueOf(b, sort.key) ?? -Infinity
    const c = typeof x === 'string' || typeof y === 'string' ? String(x).localeCompare(String(y)) : x - y
    return sort.desc ? -c : c
  })
  const head = h('tr', {}, ...columns.map(([key, label]) => {
    const sortable = key !== 'spark'
    const button = sortable ? h('button', { type: 'button' }, label) : label
    if (sortable) (button as HTMLElement).addEventListener('click', () => {
      state.sort[id] = { key, desc: sort.key === key ? !sort.desc : true }
      if (lastData && rendered) { const d = lastData; rendered = undefined; render(currentView(), d) }
    })
    return h('th', { scope: 'col', 'aria-sort': sort.key === key ? (sort.desc ? 'descending' : 'ascending') : null }, button)
  }))
  const body = h('tbody')
  if (sorted.length === 0) body.append(h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, empty)))
  for (const row of sorted) {
    const cells = columns.map(([key, , format], i) => {
      const content = format(row)
      if (i === 0 && onPick) {
        const b = h('button', { type: 'button', class: 'link', title: `Show only ${String(row.key)}` }, content)
        b.addEventListener('click', () => onPick(row))
        return h('th', { scope: 'row' }, b)
      }
      return h(i === 0 ? 'th' : 'td', i === 0 ? { scope: 'row' } : { 'data-col': key }, content)
    })
    body.append(h('tr', {}, ...cells))
  }
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: 0 }, h('table', { id }, h('caption', {}, caption), h('thead', {}, head), body))
}

function sparkline(values: number[]): Node {
  const max = Math.max(1, ...values)
  const w = 100
  const step = values.length > 1 ? w / (values.length - 1) : w
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(20 - (v / max) * 18).toFixed(1)}`).join(' ')
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg')
  svg.setAttribute('viewBox', '0 0 100 20')
  svg.setAttribute('class', 'spark')
  svg.setAttribute('role', 'img')
  svg.setAttribute('aria-label', `requests over time, peak ${max}`)
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline')
  line.setAttribute('points', points)
  svg.append(line)
  return svg
}

const trafficColumns = (keyLabel: string): Column[] => [
  ['key', keyLabel, (r) => String(r.key), (r) => String(r.key)],
  ['requests', 'Requests', (r) => num(r.requests as number)],
  ['errorRate', 'Error rate', (r) => pct(r.errorRate as number)],
  ['p50', 'p50', (r) => ms(r.p50 as number | null)],
  ['p95', 'p95', (r) => ms(r.p95 as number | null)],
  ['p99', 'p99', (r) => ms(r.p99 as number | null)],
  ['cost', 'Cost', (r) => usd(r.cost as number)],
  ['spark', 'Trend', (r) => sparkline(r.spark as number[])],
]

function drill(kind: 'route' | 'api', key: string): void {
  state.drill = { [kind]: key }
  if (currentView() === 'overview') connect()
  else location.hash = '#overview'
}

function renderTraffic(data: Json): void {
  main.append(h('h2', {}, 'Inbound routes and outbound APIs'))
  main.append(table('routes', 'Inbound routes', data.routes as Json[], trafficColumns('Route'), (r) => drill('route', String(r.key))))
  main.append(table('apis', 'Outbound APIs', data.apis as Json[], trafficColumns('API'), (r) => drill('api', String(r.key))))
}

function renderLlm(data: Json): void {
  const cols = (label: string): Column[] => [
    ['key', label, (r) => String(r.key), (r) => String(r.key)],
    ['cost', 'Cost', (r) => usd(r.cost as number)],
    ['requests', 'Calls', (r) => num(r.requests as number)],
    ['input', 'Input tokens', (r) => num(r.input as number)],
    ['output', 'Output tokens', (r) => num(r.output as number)],
    ['cachedInput', 'Cached input', (r) => num(r.cachedInput as number)],
    ['cacheHitRate', 'Cache hits', (r) => pct(r.cacheHitRate as number)],
  ]
  main.append(h('h2', {}, 'LLM spend'))
  main.append(table('models', 'Spend by model', data.models as Json[], cols('Model')))
  main.append(table('llm-tenants', 'Spend by tenant (LLM calls)', data.tenants as Json[], cols('Tenant')))
  // each budget's spend is over its own window (this day, this month, the last hour), not the page's range
  main.append(table('budgets', 'Cost budgets (spend in each budget\'s current window)', data.budgets as Json[], [
    ['rule', 'Rule', (r) => `${String(r.rule)}${r.group ? ` (${String(r.group)})` : ''}`, (r) => String(r.rule)],
    ['window', 'Window', (r) => `${String(r.window)} from ${when(r.from as string)}`, (r) => String(r.from)],
    ['spent', 'Spent', (r) => usd(r.spent as number)],
    ['threshold', 'Budget', (r) => usd(r.threshold as number)],
    ['burn', 'Used', (r) => h('span', { class: `burn${(r.burn as number) >= 1 ? ' over' : ''}` }, pct(r.burn as number)), (r) => r.burn as number],
    ['state', 'State', (r) => h('span', { class: `state ${String(r.state)}` }, `${String(r.state)}${r.severity ? ` · ${String(r.severity)}` : ''}`), (r) => String(r.state)],
  ], undefined, 'burn', 'No cost budgets: no kind: \'cost\' alert rule is defined here or stored in the database.'))
}

function renderReliability(data: Json): void {
  main.append(h('h2', {}, 'Alerts, probes and SLOs'))
  // definitions stored in the database that this version cannot read are named, never dropped silently
  const problems = (data.problems as Json[] | undefined) ?? []
  if (problems.length > 0) {
    main.append(h('div', { class: 'notes', role: 'note', id: 'stored-problems' }, h('p', {}, 'Some stored definitions cannot be shown:'),
      h('ul', {}, ...problems.map((p) => h('li', {}, `${String(p.what).replace('_', ' ')} ${p.name === '*' ? '(all)' : `'${String(p.name)}'`}: ${String(p.message)}`)))))
  }
  main.append(table('active-alerts', 'Active alerts', data.active as Json[], [
    ['rule', 'Rule', (r) => `${String(r.rule)}${r.group ? ` (${String(r.group)})` : ''}`, (r) => String(r.rule)],
    ['state', 'State', (r) => `${String(r.state)} · ${String(r.severity)}`, (r) => String(r.state)],
    ['value', 'Value', (r) => (r.value === null ? 'no data' : r.kind === 'cost' ? usd(r.value as number) : num(r.value as number))],
    ['threshold', 'Threshold', (r) => (r.kind === 'cost' ? usd(r.threshold as number) : num(r.threshold as number))],
    ['since', 'Since', (r) => when(r.since as string), (r) => String(r.since)],
  ], undefined, undefined, 'No alert is pending or firing.'))
  main.append(table('alert-history', 'Alert history in the range', data.history as Json[], [
    ['at', 'At', (r) => when(r.at as string), (r) => String(r.at)],
    ['rule', 'Rule', (r) => String(r.rule), (r) => String(r.rule)],
    ['state', 'State', (r) => String(r.state), (r) => String(r.state)],
    // history entries carry no kind: a small value (a cost in USD, a share) keeps 3 significant digits
    ['value', 'Value', (r) => (r.value === null ? '–' : small(r.value as number))],
  ], undefined, 'at'))
  main.append(table('probes', 'Probes', data.probes as Json[], [
    ['name', 'Probe', (r) => String(r.name), (r) => String(r.name)],
    ['state', 'State', (r) => h('span', { class: `state ${String(r.state)}` }, String(r.state)), (r) => String(r.state)],
    ['uptime', 'Uptime', (r) => pct((r.uptime as Json | null)?.timeRatio as number | null), (r) => ((r.uptime as Json | null)?.timeRatio as number) ?? -1],
    ['incidents', 'Incidents', (r) => String((r.incidents as Json[]).length), (r) => (r.incidents as Json[]).length],
    ['bar', 'Recent checks', (r) => uptimeBar(r.bar as Json[])],
  ], undefined, undefined, 'No probes are defined here or stored in the database.'))
  main.append(table('slos', 'SLOs', data.slos as Json[], [
    ['name', 'SLO', (r) => String(r.name), (r) => String(r.name)],
    ['objective', 'Objective', (r) => `${pct(r.objective as number)} / ${String(r.window)}`, (r) => r.objective as number],
    ['sli', 'SLI', (r) => pct(r.sli as number | null), (r) => (r.sli as number) ?? -1],
    ['budget', 'Budget left', (r) => pct((r.budget as Json).remaining as number), (r) => (r.budget as Json).remaining as number],
    ['burn', 'Burn 1h / 6h / 3d', (r) => ['1h', '6h', '3d'].map((w) => `${((r.burnRates as Json)[w] as number).toFixed(2)}×`).join(' · '), (r) => (r.burnRates as Json)['1h'] as number],
    ['alert', 'Alert', (r) => String(r.alert), (r) => String(r.alert)],
  ], undefined, undefined, 'No SLOs are defined here or stored in the database.'))
}

function uptimeBar(checks: Json[]): Node {
  const bar = h('span', { class: 'bar', role: 'img', 'aria-label': `${checks.filter((c) => c.ok).length} of ${checks.length} recent checks passed` })
  for (const c of checks) bar.append(h('i', { class: c.ok ? 'ok' : 'fail', title: when(c.at as string) }))
  return bar
}

function renderHealth(data: Json): void {
  const w = data.writePath as Json
  main.append(h('h2', {}, 'Write path, plugins and process'))
  const cards = h('section', { class: 'cards', 'aria-label': 'Write path of this instance' })
  for (const [k, label] of [['queued', 'Queued'], ['written', 'Written'], ['dropped', 'Dropped'], ['failedWrites', 'Failed writes'], ['invalid', 'Invalid']] as const) {
    cards.append(h('div', { class: 'card' }, h('span', { class: 'label' }, label), h('strong', { 'data-metric': k }, num(w[k] as number))))
  }
  main.append(cards)
  if (w.lastError) main.append(h('p', { class: 'error' }, `Last error: ${String((w.lastError as Json).message ?? '')}`))
  main.append(table('plugins', 'Plugins', data.plugins as Json[], [
    ['name', 'Plugin', (r) => String(r.name), (r) => String(r.name)],
    ['state', 'State', (r) => String(r.state), (r) => String(r.state)],
    ['score', 'Health', (r) => String(r.score ?? '–'), (r) => (r.score as number) ?? -1],
    ['errors', 'Errors', (r) => num((r.errors as number) ?? 0)],
  ]))
  const sys = data.system as Json
  const latest = sys.latest as Json | null
  main.append(h('section', { class: 'cards', 'aria-label': 'Process metrics, newest bucket' },
    h('div', { class: 'card' }, h('span', { class: 'label' }, 'CPU'), h('strong', {}, latest ? `${(latest.cpu as Json).percent.toFixed(1)}%` : '–')),
    h('div', { class: 'card' }, h('span', { class: 'label' }, 'RSS'), h('strong', {}, bytes(latest ? (latest.rssBytes as Json).max : null))),
    h('div', { class: 'card' }, h('span', { class: 'label' }, 'Heap used'), h('strong', {}, bytes(latest ? (latest.heapUsedBytes as Json).max : null))),
    h('div', { class: 'card' }, h('span', { class: 'label' }, 'Event-loop p99'), h('strong', {}, latest ? ms((latest.eventLoopDelayUs as Json).p99 / 1000) : '–')),
  ))
  if (!latest) main.append(h('p', { class: 'hint' }, 'No process metrics in this range (createMonitor({ system: true }) samples them).'))
  else {
    // the stored samples over the range, per bucket (every instance that samples: the fleet's peaks)
    const grid = h('section', { class: 'charts', id: 'process-charts', 'aria-label': 'Process metrics over time' })
    main.append(grid)
    const series = sys.series as Json
    const mib = { ...series, rss: (series.rss as (number | null)[]).map((v) => (v === null ? null : v / 1048576)), heap: (series.heap as (number | null)[]).map((v) => (v === null ? null : v / 1048576)) }
    lineChart(grid, 'CPU (%)', [['cpu', '#2563eb']], series)
    lineChart(grid, 'Memory (MiB, max)', [['rss', '#7c3aed'], ['heap', '#0891b2']], mib)
    lineChart(grid, 'Event-loop delay p99 (ms)', [['loopP99', '#dc2626']], series)
  }
  main.append(table('unhealthy', 'Routes not healthy in the range', data.routes as Json[], [
    ['key', 'Route', (r) => String(r.key), (r) => String(r.key)],
    ['status', 'Status', (r) => h('span', { class: `state ${String(r.status)}` }, String(r.status)), (r) => String(r.status)],
    ['reasons', 'Why', (r) => (r.reasons as Json[]).map((x) => String(x.text)).join('; ')],
  ]))
}

// ---------- wiring ----------
form.addEventListener('change', (e) => {
  const target = e.target as HTMLInputElement
  if (target.name === 'tz') {
    if (lastData) { const d = lastData; rendered = undefined; render(currentView(), d) }
    return
  }
  if (target.name === 'range' && target.value === 'custom') {
    form.classList.add('show-custom')
    const to = new Date()
    const from = new Date(to.getTime() - 86_400_000)
    const local = (d: Date) => (utc() ? d.toISOString().slice(0, 16) : new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16))
    if (!field<HTMLInputElement>('from').value) field<HTMLInputElement>('from').value = local(from)
    if (!field<HTMLInputElement>('to').value) field<HTMLInputElement>('to').value = local(to)
  }
  connect()
})
form.addEventListener('submit', (e) => e.preventDefault())
window.addEventListener('hashchange', () => {
  rendered = undefined
  connect()
})
let resizeTimer: number | undefined
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer)
  resizeTimer = window.setTimeout(() => {
    const grid = main.querySelector<HTMLElement>('.charts')
    if (grid) for (const c of charts) c.setSize({ width: chartWidth(grid), height: 180 })
  }, 150)
})
connect()
