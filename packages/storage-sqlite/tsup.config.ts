import { packageBuild } from '../../tsup.base.js'

export default packageBuild({ external: ['@apimeter/core', 'better-sqlite3', 'kysely', 'zod'] })
