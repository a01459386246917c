import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { z } from 'zod'
import { ApimeterError, errorMessage, PACKAGE_NAME } from '../errors.js'
import { parseOrThrow } from '../validation.js'

/**
 * Who may read what apimeter serves over HTTP (the `/metrics` handler, the dashboard). Required: there is no
 * public default, since metrics name routes, tenants and costs.
 *
 * - `{ token }`: requests must carry `Authorization: Bearer <token>`; several tokens may be given (to rotate one
 *   without downtime). Compared in constant time.
 * - a function: your own check (a session cookie, an IP allow-list…), called with the raw `IncomingMessage`;
 *   return or resolve `true` to allow. A function that throws or rejects denies the request.
 *
 * @example
 * ```ts
 * metricsHandler(monitor, { auth: { token: process.env.METRICS_TOKEN! } })
 * metricsHandler(monitor, { auth: { token: [oldToken, newToken] } })
 * metricsHandler(monitor, { auth: (req) => req.socket.remoteAddress === '10.0.0.5' })
 * ```
 */
export type AuthOption = { token: string | string[] } | ((req: IncomingMessage) => boolean | Promise<boolean>)

const TOKEN = 'a non-empty string without whitespace'
const tokenSchema = z.string({ error: TOKEN }).regex(/^\S+$/, { error: TOKEN })

/**
 * The zod schema of {@link AuthOption}, for handlers that validate it inside their own options schema.
 *
 * @example
 * ```ts
 * const dashboardOptions = z.strictObject({ auth: authOptionSchema, basePath: z.string().optional() })
 * ```
 */
export const authOptionSchema: z.ZodType<AuthOption> = z.union(
  [
    z.strictObject({
      token: z.union([tokenSchema, z.array(tokenSchema, { error: `${TOKEN}, or a non-empty array of them` }).min(1, { error: 'a non-empty array of tokens' })], {
        error: `${TOKEN}, or a non-empty array of them`,
      }),
    }),
    z.custom<(req: IncomingMessage) => boolean | Promise<boolean>>((v) => typeof v === 'function', { error: 'a function' }),
  ],
  { error: '{ token: string | string[] } or a function (req) => boolean | Promise<boolean>' },
)

/**
 * Decides whether one request may be served. Built by {@link createAuthCheck}; never throws or rejects.
 *
 * @example
 * ```ts
 * if (!(await allowed(req))) return sendUnauthorized(res)
 * ```
 */
export type AuthCheck = (req: IncomingMessage) => Promise<boolean>

/**
 * Validates an `auth` option (throwing `INVALID_OPTIONS` when it is missing or malformed, with `prefix` and `path`
 * in the message) and returns its check. With tokens, the request must send `Authorization: Bearer <token>`
 * (the scheme is case-insensitive); tokens are compared through their SHA-256 digests with `timingSafeEqual`, so
 * neither a token's content nor its length shows in the timing. A check function that throws or rejects denies the
 * request, and `onError` (when given) is told why.
 *
 * @example
 * ```ts
 * const allowed = createAuthCheck(options.auth, { prefix: '@apimeter/express', path: 'options.auth' })
 * app.get('/metrics', async (req, res) => {
 *   if (!(await allowed(req))) return sendUnauthorized(res)
 *   res.end(monitor.metrics.prometheus().body)
 * })
 * ```
 */
export function createAuthCheck(
  auth: unknown,
  where: { prefix?: string; path?: string; onError?: (error: ApimeterError) => void } = {},
): AuthCheck {
  const prefix = where.prefix ?? PACKAGE_NAME
  const path = where.path ?? 'options.auth'
  if (auth === undefined || auth === null) {
    throw new ApimeterError(
      'INVALID_OPTIONS',
      `${prefix}: ${path} is required: pass { token: '…' } (sent as "Authorization: Bearer <token>") or a function (req) => boolean; ` +
        'what is served here names routes, tenants and costs, so it is never public by default',
      { prefix, details: { option: path } },
    )
  }
  const parsed = parseOrThrow(authOptionSchema, auth, path, 'INVALID_OPTIONS', prefix)
  if (typeof parsed === 'function') {
    return async (req) => {
      try {
        return (await parsed(req)) === true
      } catch (error) {
        where.onError?.(
          new ApimeterError('CALLBACK_FAILED', `${prefix}: ${path}(req) threw: ${errorMessage(error)}; the request was denied`, {
            prefix,
            cause: error,
            details: { option: path },
          }),
        )
        return false
      }
    }
  }
  const matches = tokenMatcher(Array.isArray(parsed.token) ? parsed.token : [parsed.token])
  return (req) => Promise.resolve(bearerAllowed(req.headers.authorization, matches))
}

/**
 * A check that a token is one of `tokens`: SHA-256 digests compared in constant time, every token compared, so the
 * time taken does not say which one (if any) matched. What `createAuthCheck` uses for bearer tokens; a sign-in form
 * checking the same tokens uses it too.
 *
 * @example
 * ```ts
 * const matches = tokenMatcher([process.env.APIMETER_TOKEN!])
 * if (!matches(form.token)) return res.writeHead(401).end()
 * ```
 */
export function tokenMatcher(tokens: readonly string[]): (token: string) => boolean {
  const digests = tokens.map(digest)
  return (token) => {
    const sent = digest(token)
    let allowed = false
    for (const d of digests) allowed = timingSafeEqual(sent, d) || allowed
    return allowed
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

function bearerAllowed(header: string | undefined, matches: (token: string) => boolean): boolean {
  if (typeof header !== 'string') return false
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(header)
  return match !== null && matches(match[1]!)
}

/**
 * Ends a response with `401 Unauthorized` and a `WWW-Authenticate: Bearer` challenge (what a scraper or a browser
 * expects when {@link createAuthCheck} said no).
 *
 * @example
 * ```ts
 * if (!(await allowed(req))) return sendUnauthorized(res)
 * ```
 */
export function sendUnauthorized(res: ServerResponse, realm = 'apimeter'): void {
  if (res.headersSent) {
    res.end()
    return
  }
  res.statusCode = 401
  res.setHeader('WWW-Authenticate', `Bearer realm="${realm.replace(/["\\]/g, '')}"`)
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.setHeader('Cache-Control', 'no-store')
  res.end('401 Unauthorized\n')
}
