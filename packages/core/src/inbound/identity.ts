import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { describeValue, errorMessage } from '../errors.js'
import type { IdentityValue, InboundOptions } from './options.js'

/** The first 16 hex digits of the SHA-256 of `key`, or null for an empty key. */
export function hashApiKey(key: string): string | null {
  if (typeof key !== 'string' || key === '') return null
  return createHash('sha256').update(key).digest('hex').slice(0, 16)
}

/** The identity fields of an inbound call, read from the request when the call ends. */
export interface IdentityFields {
  tenantId: string | number | null
  userId: string | number | null
  apiKeyId: string | null
  clientIp: string | null
}

/**
 * Who made a request: the host's `tenant`, `user` and `apiKey` callbacks and the framework's client address, read
 * once when the call ends (so authentication middleware has run). A callback that throws or returns something
 * unusable is reported through `onFailure` (option name, what happened) and the field stays empty.
 */
export class IdentityReader<Req> {
  private readonly tenant: ((req: Req) => IdentityValue) | undefined
  private readonly user: ((req: Req) => IdentityValue) | undefined
  private readonly apiKey: ((req: Req) => unknown) | undefined
  private readonly clientIp: ((req: Req) => string | undefined) | undefined

  constructor(
    options: InboundOptions<Req>,
    clientIp: (req: Req) => string | undefined,
    private readonly onFailure: (option: string, what: string, cause?: unknown) => void,
  ) {
    this.tenant = options.tenant
    this.user = options.user
    this.apiKey = options.apiKey
    this.clientIp = options.clientIp === false ? undefined : clientIp
  }

  /** Sets the identity fields of `call` from the request. */
  describe(req: Req, raw: IncomingMessage, call: IdentityFields): void {
    if (this.tenant !== undefined) call.tenantId = this.identity(this.tenant, req, 'tenant')
    if (this.user !== undefined) call.userId = this.identity(this.user, req, 'user')
    if (this.apiKey !== undefined) call.apiKeyId = this.apiKeyId(req)
    if (this.clientIp !== undefined) {
      try {
        call.clientIp = this.clientIp(req) ?? null
      } catch {
        call.clientIp = raw.socket?.remoteAddress ?? null
      }
    }
  }

  private identity(callback: (req: Req) => IdentityValue, req: Req, name: string): string | number | null {
    let value: unknown
    try {
      value = callback(req)
    } catch (error) {
      this.onFailure(name, `threw: ${errorMessage(error)}`, error)
      return null
    }
    if (value === undefined || value === null || value === '') return null
    if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) return value
    this.onFailure(name, `returned ${describeValue(value)}, expected a string, a number or undefined`)
    return null
  }

  private apiKeyId(req: Req): string | null {
    let value: unknown
    try {
      value = this.apiKey!(req)
    } catch (error) {
      this.onFailure('apiKey', `threw: ${errorMessage(error)}`, error)
      return null
    }
    if (Array.isArray(value)) value = value[0]
    if (value === undefined || value === null || value === '') return null
    if (typeof value === 'string') return hashApiKey(value)
    this.onFailure('apiKey', `returned ${describeValue(value)}, expected a string or undefined`)
    return null
  }
}
