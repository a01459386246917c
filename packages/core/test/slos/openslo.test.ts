import { describe, expect, it } from 'vitest'
import { fromOpenSLO, type SloDefinition, toOpenSLO } from '@apimeter/core'

const SLOS: SloDefinition[] = [
  { name: 'checkout-availability', objective: 0.999, window: '30d', description: 'Checkout answers without a server error', indicator: { kind: 'availability', filter: { route: '/checkout', direction: 'inbound' } } },
  { name: 'search-latency', objective: 0.99, window: '28d', indicator: { kind: 'latency', thresholdMs: 300, filter: { route: ['/search', '/search/:id'], outcome: 'success' } } },
  { name: 'payments-strict', objective: 0.995, window: { calendar: 'month' }, alerts: false, indicator: { kind: 'availability', filter: { api: 'payments' }, goodOutcomes: ['success'] } },
  { name: 'everything', objective: 0.9, window: '7d', indicator: { kind: 'availability' } },
]

describe('OpenSLO import and export', () => {
  it('round-trips every SLO shape exactly', () => {
    const yaml = toOpenSLO(SLOS)
    expect(fromOpenSLO(yaml)).toEqual(SLOS)
    expect(toOpenSLO(fromOpenSLO(yaml))).toBe(yaml)
  })

  it('writes OpenSLO v1 documents: ratioMetric over apimeter sources, Occurrences, one objective and window', () => {
    const yaml = toOpenSLO([SLOS[0]!, SLOS[2]!])
    const docs = yaml.split('---\n')
    expect(docs).toHaveLength(2)
    // the call filter, as both metric sources carry it
    const FILTER = '              filter:\n                direction: inbound\n                route: /checkout'
    expect(docs[0]).toBe(`apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
spec:
  description: Checkout answers without a server error
  service: apimeter
  indicator:
    metadata:
      name: checkout-availability-sli
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: apimeter
            spec:
${FILTER}
              kind: availability
        total:
          metricSource:
            type: apimeter
            spec:
${FILTER}
  timeWindow:
    - duration: 30d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.999
`)
    expect(docs[1]).toMatch(/annotations:\n {4}apimeter\/alerts: "false"/)
    expect(docs[1]).toMatch(/timeWindow:\n {4}- duration: 1M\n {6}isRolling: false\n {6}calendar:\n {8}startTime: 2020-01-01 00:00:00\n {8}timeZone: UTC/)
    expect(docs[1]).toMatch(/outcomes:\n {16}- success/)
  })

  it('never exports notifiers (they may hold secrets)', () => {
    const yaml = toOpenSLO([{ ...SLOS[0]!, notify: [{ webhook: 'https://hooks.example/x', secret: 's3cret' }] }])
    expect(yaml).not.toMatch(/s3cret|hooks\.example/)
  })

  it('fails with the document and field for what apimeter does not support', () => {
    const base = toOpenSLO([SLOS[0]!])
    const cases: [string, RegExp][] = [
      [base.replace('budgetingMethod: Occurrences', 'budgetingMethod: Timeslices'), /openslo\[0\]\.spec\.budgetingMethod must be 'Occurrences' \(the only budgeting method apimeter computes\), got "Timeslices"/],
      [base.replace('  objectives:\n    - target: 0.999\n', '  objectives:\n    - target: 0.999\n    - target: 0.99\n'), /openslo\[0\]\.spec\.objectives must be a list of exactly one entry/],
      [base.replace('type: apimeter', 'type: Prometheus'), /openslo\[0\]\.spec\.indicator\.spec\.ratioMetric\.good\.metricSource\.type must be 'apimeter'/],
      [base.replace('  budgetingMethod', '  alertPolicies: []\n  budgetingMethod'), /openslo\[0\]\.spec\.alertPolicies is not supported by apimeter's OpenSLO import/],
      [base.replace('kind: SLO', 'kind: SLI'), /openslo\[0\]\.kind must be 'SLO'/],
      [base.replace('duration: 30d', 'duration: 4w'), /openslo\[0\]\.spec\.timeWindow\[0\]\.duration must be a rolling number of days/],
      [base.replace('target: 0.999', 'target: 99.9'), /fromOpenSLO\(yaml\)\[0\]\.objective must be a number greater than 0 and less than 1/],
      [`${base}---\n${base.replace('checkout-availability', 'other').replace('apiVersion: openslo/v1', 'apiVersion: openslo/v2alpha')}`, /openslo\[1\]\.apiVersion must be 'openslo\/v1'/],
      ['a: [unclosed', /openslo\[0\] is not valid YAML/],
    ]
    for (const [yaml, message] of cases) expect(() => fromOpenSLO(yaml), String(message)).toThrow(message)
  })
})
