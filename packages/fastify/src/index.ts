// Public API of @apimeter/fastify. Every export is listed by name.
export { apimeterFastify, type ApimeterFastifyOptions } from './plugin.js'
