import { packageBuild } from '../../tsup.base.js'

// The worker thread's script is an entry of its own: sqliteStorage() starts dist/sqlite-worker.js beside dist/index.js.
export default packageBuild({
  entry: { index: 'src/index.ts', 'sqlite-worker': 'src/sqlite-worker.ts' },
  dts: { entry: { index: 'src/index.ts' } },
  external: ['@apimeter/core', 'better-sqlite3', 'kysely', 'zod'],
})
