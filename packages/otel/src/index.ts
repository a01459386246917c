// Public API of @apimeter/otel. Every export is listed by name.
export { apimeterMetricProducer, type ApimeterProducerOptions } from './producer.js'
