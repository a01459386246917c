// Public API of @apimeter/express. Every export is listed by name.
export { apimeter, type ApimeterExpressOptions } from './middleware.js'
