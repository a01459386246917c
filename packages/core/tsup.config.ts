import { packageBuild } from '../../tsup.base.js'

export default packageBuild({
  entry: { index: 'src/index.ts', sql: 'src/sql/index.ts', inbound: 'src/inbound/index.ts', testing: 'src/testing/index.ts', cli: 'src/cli/bin.ts' },
  dts: { entry: { index: 'src/index.ts', sql: 'src/sql/index.ts', inbound: 'src/inbound/index.ts', testing: 'src/testing/index.ts' } },
  splitting: true,
  external: ['vitest', 'fast-check', '@apimeter/storage-sqlite', '@apimeter/storage-postgres', '@apimeter/dashboard'],
})
