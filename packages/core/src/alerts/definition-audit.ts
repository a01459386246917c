import type { AuditEntry, AuditRecord } from '../storage/audit-store.js'

/** What the alert, probe and SLO runners need of the audit log. */
export interface RuleAudit {
  append(entry: AuditEntry): void
  /** The newest audit row of a subject, of the given kinds. */
  latest(subject: string, kinds: readonly string[]): Promise<AuditRecord | undefined>
}

/** A named definition as stored (alert rule, probe, SLO), with what is compared and recorded of it. */
export interface AuditedDefinition {
  name: string
  state: unknown
}

/**
 * Appends audit rows for the definitions this instance adds or changes compared with the stored ones
 * (`<noun>.added` / `<noun>.changed`, before and after), and for stored ones it no longer has (`<noun>.removed`, once:
 * not again while the newest row of that definition is its removal). `label` names the thing in `detail`.
 */
export async function auditDefinitions(
  audit: RuleAudit,
  noun: 'alert_rule' | 'probe' | 'slo',
  label: string,
  stored: readonly AuditedDefinition[],
  current: readonly AuditedDefinition[],
): Promise<void> {
  const byName = new Map(stored.map((d) => [d.name, d]))
  for (const d of current) {
    const old = byName.get(d.name)
    const subject = `${noun}:${d.name}`
    if (old === undefined) audit.append({ kind: `${noun}.added`, subject, before: null, after: d.state, detail: `${label} '${d.name}' added` })
    else if (canonicalJson(old.state) !== canonicalJson(d.state)) {
      audit.append({ kind: `${noun}.changed`, subject, before: old.state, after: d.state, detail: `${label} '${d.name}' changed` })
    }
  }
  const names = new Set(current.map((d) => d.name))
  for (const old of stored) {
    if (names.has(old.name)) continue
    const subject = `${noun}:${old.name}`
    const last = await audit.latest(subject, [`${noun}.added`, `${noun}.changed`, `${noun}.removed`])
    if (last?.kind === `${noun}.removed`) continue
    audit.append({ kind: `${noun}.removed`, subject, before: old.state, after: null, detail: `${label} '${old.name}' is stored but no longer configured here` })
  }
}

/** Parsed JSON text, or the text itself when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

/** JSON with object keys sorted, so two equal values compare equal whatever their key order (PostgreSQL's JSONB reorders). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  )
}
