import type { AuthOption, Clock } from '@apimeter/core'
import { intInRange, parseOrThrow } from '@apimeter/core/sql'
import { z } from 'zod'

/** The package name every option error starts with. */
export const PACKAGE = '@apimeter/dashboard'

/**
 * Options of {@link dashboard} and {@link dashboardFastify}: `auth` is required, everything else optional.
 *
 * @example
 * ```ts
 * app.use('/apimeter', dashboard(monitor, { auth: { token: process.env.APIMETER_TOKEN! }, liveIntervalMs: 2000 }))
 * ```
 */
export interface DashboardOptions {
  /**
   * Who may see the dashboard, its JSON and its live stream. `{ token }`: a request sends
   * `Authorization: Bearer <token>`, or signs in once through the page's form (an HttpOnly, SameSite=Strict
   * cookie, Secure over HTTPS, valid for 12 hours on every instance that has the same token). A function: your own
   * check on the raw request (your session, an IP allow-list); the page then has no sign-in form of its own.
   * There is no default: the dashboard names routes, tenants and costs.
   * @example
   * ```ts
   * dashboard(monitor, { auth: { token: process.env.APIMETER_TOKEN! } })
   * dashboard(monitor, { auth: (req) => sessionOf(req)?.role === 'admin' })
   * ```
   */
  auth: AuthOption
  /**
   * How often an open page's live stream reads the storage again and sends what changed, in ms (250 … 600,000).
   * Every open page costs one set of stats queries per interval.
   * @default 5000
   * @example
   * ```ts
   * dashboard(monitor, { auth, liveIntervalMs: 15_000 })
   * ```
   */
  liveIntervalMs?: number
  /**
   * The page's title (also the heading).
   * @default 'apimeter'
   * @example
   * ```ts
   * dashboard(monitor, { auth, title: 'checkout — apimeter' })
   * ```
   */
  title?: string
  /**
   * Trust `X-Forwarded-Proto: https` from a proxy in front of the app when deciding whether the sign-in cookie
   * is `Secure` (without it, only a TLS socket counts).
   * @default false
   * @example
   * ```ts
   * dashboard(monitor, { auth, trustProxy: true })
   * ```
   */
  trustProxy?: boolean
  /**
   * The clock the time ranges are resolved with (`'-24h'` ends now). Pass the monitor's own when you gave it one.
   * @default the system clock
   * @example
   * ```ts
   * const clock = { now: () => Date.parse('2026-01-02T00:00:00Z') }
   * dashboard(createMonitor({ clock }), { auth, clock })
   * ```
   */
  clock?: Clock
}

/** The options once validated (auth is validated by core's createAuthCheck). */
export interface ResolvedDashboardOptions {
  liveIntervalMs: number
  title: string
  trustProxy: boolean
  clock: Clock
}

const schema = z.strictObject({
  auth: z.unknown().optional(), // validated by createAuthCheck, which says what it takes
  liveIntervalMs: intInRange(250, 600_000, 'a whole number of milliseconds from 250 to 600,000').optional(),
  title: z.string({ error: 'a non-empty string of at most 200 characters' }).min(1).max(200).optional(),
  trustProxy: z.boolean({ error: 'true or false' }).optional(),
  clock: z.custom<Clock>((v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function', { error: 'an object with a now() method returning epoch ms' }).optional(),
})

/** Validates everything but `auth`, throwing `INVALID_OPTIONS` naming the field and what was expected. */
export function resolveOptions(options: unknown, root = 'options'): ResolvedDashboardOptions {
  const parsed = parseOrThrow(schema, options ?? {}, root, 'INVALID_OPTIONS', PACKAGE)
  return {
    liveIntervalMs: parsed.liveIntervalMs ?? 5000,
    title: parsed.title ?? 'apimeter',
    trustProxy: parsed.trustProxy ?? false,
    clock: parsed.clock ?? { now: () => Date.now() },
  }
}
