import { packageBuild } from '../../tsup.base.js'

export default packageBuild({ external: ['@apimeter/core', 'pg', 'kysely', 'zod'] })
