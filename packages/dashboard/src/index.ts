// Public API of @apimeter/dashboard. Every export is listed by name.
export { dashboard } from './express.js'
export { dashboardFastify, type DashboardFastifyOptions } from './fastify.js'
export { createDashboardHandler, type DashboardHandler, type DashboardRoute } from './handler.js'
export type { DashboardOptions } from './options.js'
export { RANGES, type RangeName, type ViewQuery } from './query.js'
export { isLoopback, serveDashboard, type ServeDashboardOptions, type ServedDashboard } from './serve.js'
export { type TableRow, type ViewName, VIEWS } from './views.js'
