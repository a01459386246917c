// Public API of @apimeter/fastify. Every export is listed by name.
export { apimeterMetrics, type ApimeterMetricsOptions } from './metrics.js'
export { apimeterFastify, type ApimeterFastifyOptions } from './plugin.js'
