// Public API of @apimeter/express. Every export is listed by name.
export { metricsHandler, type MetricsExpressOptions } from './metrics.js'
export { apimeter, type ApimeterExpressOptions } from './middleware.js'
