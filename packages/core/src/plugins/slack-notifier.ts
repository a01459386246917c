import { z } from 'zod'
import type { AlertEvent } from '../alerts/notifiers.js'
import { definePlugin } from './plugin.js'

/**
 * An example plugin, shipped and tested: sends alert notifications to a Slack incoming webhook. Its webhook URL is a
 * secret config value: never logged, stored or shown, and its requests are apimeter's own traffic (never metered).
 */

const configSchema = z.strictObject({
  /** The incoming webhook's URL (`https://hooks.slack.com/services/…`). Secret. */
  webhookUrl: z.string().regex(/^https?:\/\/[^\s/]+/i, { error: 'an http:// or https:// URL' }),
  /** Post to this channel instead of the webhook's own (`#ops`); a rule's `'slack:#channel'` overrides it. */
  channel: z.string().min(1).optional(),
  /** The name the messages are posted under. */
  username: z.string().min(1).optional(),
  /** How long one post may take (ms). @default 5000 */
  timeoutMs: z.number().int().min(1).max(60_000).optional(),
})

/**
 * The Slack message of an alert event: the one-line text, and an attachment coloured by state with its numbers.
 *
 * @example
 * ```ts
 * monitor.on('alert', (event) => console.log(JSON.stringify(slackMessage(event, { channel: '#ops' }))))
 * ```
 */
export function slackMessage(event: AlertEvent, options: { channel?: string; username?: string } = {}): Record<string, unknown> {
  const color = event.state === 'resolved' ? 'good' : event.severity === 'warning' ? 'warning' : 'danger'
  const fields = [
    { title: 'Rule', value: event.rule, short: true },
    { title: 'State', value: `${event.state}${event.repeated ? ' (repeated)' : ''}`, short: true },
    { title: 'Value', value: event.value === null ? 'no data' : String(event.value), short: true },
    { title: 'Threshold', value: String(event.threshold), short: true },
  ]
  if (event.group !== undefined) fields.push({ title: 'Group', value: event.group, short: false })
  const message: Record<string, unknown> = {
    text: event.text,
    attachments: [{ color, fallback: event.text, fields, footer: `apimeter · ${event.service}`, ts: Math.floor(event.at.getTime() / 1000) }],
  }
  if (options.channel) message.channel = options.channel
  if (options.username) message.username = options.username
  return message
}

/**
 * The Slack notifier plugin: registers the `slack` notifier scheme (`notify: ['slack']`, or `'slack:#channel'`).
 *
 * @example
 * ```ts
 * import { createMonitor, slackNotifier } from '@apimeter/core'
 *
 * const monitor = createMonitor({
 *   plugins: [slackNotifier({ webhookUrl: process.env.SLACK_WEBHOOK_URL! })],
 *   alerts: [{ name: 'api-errors', kind: 'error_rate', window: '5m', threshold: 0.05, notify: ['slack'] }],
 * })
 * ```
 */
export const slackNotifier = definePlugin({
  name: 'slack-notifier',
  version: '1.0.0',
  config: configSchema,
  secrets: ['webhookUrl'],
  timeoutMs: 10_000,
  setup(ctx) {
    const { webhookUrl, channel, username, timeoutMs = 5000 } = ctx.config
    ctx.notifier('slack', async (event, target) => {
      const body = JSON.stringify(slackMessage(event, { channel: target || channel, username }))
      const res = await ctx.fetch(webhookUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' })
      const answer = await res.text().catch(() => '')
      if (!res.ok) throw new Error(`Slack answered HTTP ${res.status}${answer ? `: ${answer.slice(0, 200)}` : ''}`)
    })
  },
})
