// @apimeter/core/inbound: what framework adapters (`@apimeter/express`, `@apimeter/fastify`, yours) are built on —
// the framework-neutral inbound meter, its options, and route-template helpers. Every export is listed by name.
export { classifyError, classifyStatus, type ErrorClassification } from '../call/outcome.js'
export { maskUrl, normalizePath } from '../call/route.js'
export { countOnPrototype } from './bytes.js'
export { type Completable, watchCompletion } from './completion.js'
export { hashApiKey } from './identity.js'
export { createInboundMeter, type InboundCall, type InboundMeter } from './meter.js'
export type { IdentityValue, IgnoreOption, InboundAdapterConfig, InboundMonitor, InboundOptions } from './options.js'
export { joinRoute, templateFromMatch } from './templates.js'
export { MONITOR_REPORT, reportToMonitor } from '../monitor/report.js'
