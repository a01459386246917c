import { createServer, type IncomingMessage, type Server } from 'node:http'
import { type ApimeterError, createAuthCheck, isApimeterError, sendUnauthorized } from '@apimeter/core'
import { afterEach, describe, expect, it } from 'vitest'
import { close, listen } from '../../../../test/support/http.js'

describe('createAuthCheck', () => {
  const servers: Server[] = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(close))
  })

  /** A real server answering 200 when the check allows the request, else 401 through sendUnauthorized. */
  async function serve(auth: unknown, onError?: (error: ApimeterError) => void) {
    const allowed = createAuthCheck(auth, { prefix: '@apimeter/core', path: 'options.auth', onError })
    const server = createServer((req, res) => {
      void allowed(req).then((ok) => (ok ? res.end('ok') : sendUnauthorized(res)))
    })
    servers.push(server)
    const base = await listen(server)
    return async (headers: Record<string, string> = {}) => {
      const response = await fetch(base, { headers })
      return { status: response.status, challenge: response.headers.get('www-authenticate'), body: await response.text() }
    }
  }

  it('throws a clear error when auth is missing', () => {
    for (const missing of [undefined, null]) {
      try {
        createAuthCheck(missing, { prefix: '@apimeter/express', path: 'options.auth' })
        expect.unreachable()
      } catch (error) {
        expect(isApimeterError(error, 'INVALID_OPTIONS')).toBe(true)
        expect((error as Error).message).toMatch(/^@apimeter\/express: options\.auth is required: pass \{ token: '…' \}/)
      }
    }
  })

  it('rejects malformed auth options naming the field and what was expected', () => {
    expect(() => createAuthCheck({ token: '' })).toThrow(/^@apimeter\/core: options\.auth.* must be .*non-empty string without whitespace/)
    expect(() => createAuthCheck({ token: 'has space' })).toThrow(/options\.auth.* must be .*without whitespace/)
    expect(() => createAuthCheck({ token: [] })).toThrow(/options\.auth/)
    expect(() => createAuthCheck('secret')).toThrow(/options\.auth must be \{ token: string \| string\[\] \} or a function/)
    expect(() => createAuthCheck({ token: 's', extra: 1 })).toThrow(/options\.auth/)
  })

  it('allows a matching bearer token and denies everything else with a 401 challenge', async () => {
    const get = await serve({ token: 's3cret-token' })
    expect((await get({ authorization: 'Bearer s3cret-token' })).status).toBe(200)
    expect((await get({ authorization: 'bearer s3cret-token' })).status).toBe(200)
    const denied = await get({ authorization: 'Bearer s3cret-tokeN' })
    expect(denied).toEqual({ status: 401, challenge: 'Bearer realm="apimeter"', body: '401 Unauthorized\n' })
    expect((await get()).status).toBe(401)
    expect((await get({ authorization: 'Basic czNjcmV0LXRva2Vu' })).status).toBe(401)
    expect((await get({ authorization: 'Bearer s3cret' })).status).toBe(401)
    expect((await get({ authorization: 'Bearer s3cret-token extra' })).status).toBe(401)
  })

  it('accepts any of several tokens (rotation)', async () => {
    const get = await serve({ token: ['old-token', 'new-token'] })
    expect((await get({ authorization: 'Bearer old-token' })).status).toBe(200)
    expect((await get({ authorization: 'Bearer new-token' })).status).toBe(200)
    expect((await get({ authorization: 'Bearer other-token' })).status).toBe(401)
  })

  it('runs a check function, sync or async, with the raw request', async () => {
    const seen: string[] = []
    const get = await serve(async (req: IncomingMessage) => {
      seen.push(req.headers['x-team'] as string)
      await new Promise((resolve) => setImmediate(resolve))
      return req.headers['x-team'] === 'ops'
    })
    expect((await get({ 'x-team': 'ops' })).status).toBe(200)
    expect((await get({ 'x-team': 'dev' })).status).toBe(401)
    expect(seen).toEqual(['ops', 'dev'])
    // only `true` allows: a truthy non-boolean is not consent
    const loose = await serve(() => 'yes' as unknown as boolean)
    expect((await loose()).status).toBe(401)
  })

  it('denies, and reports, when the check function throws or rejects', async () => {
    const errors: ApimeterError[] = []
    const get = await serve((req: IncomingMessage) => {
      if (req.headers['x-mode'] === 'reject') return Promise.reject(new Error('session store down'))
      throw new Error('bad cookie')
    }, (error) => errors.push(error))
    expect((await get()).status).toBe(401)
    expect((await get({ 'x-mode': 'reject' })).status).toBe(401)
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ['CALLBACK_FAILED', '@apimeter/core: options.auth(req) threw: bad cookie; the request was denied'],
      ['CALLBACK_FAILED', '@apimeter/core: options.auth(req) threw: session store down; the request was denied'],
    ])
  })
})
