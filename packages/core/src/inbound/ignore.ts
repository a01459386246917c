import type { IgnoreOption } from './options.js'

/**
 * Which requests not to record: exact paths, `/prefix/*` paths and regular expressions tested on the path without its
 * query string, or the host's own predicate.
 */
export class IgnoreRules<Req> {
  private readonly predicate: ((req: Req) => boolean) | undefined
  private readonly exact: ReadonlySet<string> | undefined
  private readonly prefixes: readonly string[]
  private readonly patterns: readonly RegExp[]

  constructor(ignore: IgnoreOption<Req> | undefined) {
    const exact = new Set<string>()
    const prefixes: string[] = []
    const patterns: RegExp[] = []
    if (typeof ignore === 'function') this.predicate = ignore
    else {
      for (const rule of ignore ?? []) {
        if (rule instanceof RegExp) patterns.push(rule)
        else if (rule.endsWith('/*')) prefixes.push(rule.slice(0, -1))
        else exact.add(rule)
      }
    }
    this.exact = exact.size > 0 ? exact : undefined
    this.prefixes = prefixes
    this.patterns = patterns
  }

  /** Whether the request is ignored. A throwing predicate is passed to `onError` and the request is recorded. */
  matches(req: Req, url: string | undefined, onError: (error: unknown) => void): boolean {
    if (this.predicate !== undefined) {
      try {
        return this.predicate(req) === true
      } catch (error) {
        onError(error)
        return false
      }
    }
    if (this.exact === undefined && this.prefixes.length === 0 && this.patterns.length === 0) return false
    const full = url ?? '/'
    const query = full.indexOf('?')
    const path = query === -1 ? full : full.slice(0, query)
    if (this.exact?.has(path)) return true
    for (const prefix of this.prefixes) if (path.startsWith(prefix) || path === prefix.slice(0, -1)) return true
    for (const pattern of this.patterns) {
      pattern.lastIndex = 0
      if (pattern.test(path)) return true
    }
    return false
  }
}
