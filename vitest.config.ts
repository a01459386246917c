import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (path: string): string => fileURLToPath(new URL(path, import.meta.url))

// Tests import packages by name; these aliases point them at each package's source, so no build is needed.
const resolve = {
  alias: [
    { find: /^@apimeter\/core\/testing$/, replacement: src('./packages/core/src/testing/index.ts') },
    { find: /^@apimeter\/core\/sql$/, replacement: src('./packages/core/src/sql/index.ts') },
    { find: /^@apimeter\/core\/inbound$/, replacement: src('./packages/core/src/inbound/index.ts') },
    { find: /^@apimeter\/core$/, replacement: src('./packages/core/src/index.ts') },
    { find: /^@apimeter\/storage-sqlite$/, replacement: src('./packages/storage-sqlite/src/index.ts') },
    { find: /^@apimeter\/storage-postgres$/, replacement: src('./packages/storage-postgres/src/index.ts') },
    { find: /^@apimeter\/express$/, replacement: src('./packages/express/src/index.ts') },
    { find: /^@apimeter\/fastify$/, replacement: src('./packages/fastify/src/index.ts') },
    { find: /^@apimeter\/dashboard$/, replacement: src('./packages/dashboard/src/index.ts') },
    { find: /^@apimeter\/otel$/, replacement: src('./packages/otel/src/index.ts') },
  ],
}

/** One vitest project per package (plus the built-packages checks), sharing the aliases. */
const project = (name: string, include: string[], timeouts: { testTimeout: number; hookTimeout: number }, env?: Record<string, string>) => ({
  resolve,
  test: { name, include, environment: 'node' as const, ...timeouts, ...(env ? { env } : {}) },
})

/** Tests whose answers depend on time buckets and calendar windows run again in time zones far from UTC. */
const TIME_SENSITIVE = [
  'packages/core/test/stats.test.ts',
  'packages/core/test/rollup-plan.test.ts',
  'packages/core/test/memory-storage.test.ts',
  'packages/core/test/alerts/transitions.test.ts',
  'packages/core/test/probes/options.test.ts',
  'packages/core/test/probes/probes.test.ts',
  'packages/storage-sqlite/test/rollups.test.ts',
  'packages/core/test/slos/calendar.test.ts',
  'packages/core/test/system.test.ts',
  'packages/dashboard/test/handler.test.ts',
  'packages/core/test/metrics/metrics.test.ts',
  'packages/core/test/stored.test.ts',
]

export default defineConfig({
  resolve,
  test: {
    // Runs once for the whole run: builds the packages (and, later, starts services tests need).
    globalSetup: ['./test/global-setup.ts'],
    projects: [
      project('packages', ['test/**/*.test.ts'], { testTimeout: 180_000, hookTimeout: 60_000 }),
      project('core', ['packages/core/test/**/*.test.ts'], { testTimeout: 30_000, hookTimeout: 60_000 }),
      project('storage-sqlite', ['packages/storage-sqlite/test/**/*.test.ts'], { testTimeout: 60_000, hookTimeout: 120_000 }),
      project('storage-postgres', ['packages/storage-postgres/test/**/*.test.ts'], { testTimeout: 120_000, hookTimeout: 120_000 }),
      project('express', ['packages/express/test/**/*.test.ts'], { testTimeout: 30_000, hookTimeout: 120_000 }),
      project('fastify', ['packages/fastify/test/**/*.test.ts'], { testTimeout: 30_000, hookTimeout: 120_000 }),
      project('dashboard', ['packages/dashboard/test/**/*.test.ts'], { testTimeout: 60_000, hookTimeout: 180_000 }),
      project('otel', ['packages/otel/test/**/*.test.ts'], { testTimeout: 30_000, hookTimeout: 60_000 }),
      project('TZ=America/New_York', TIME_SENSITIVE, { testTimeout: 60_000, hookTimeout: 120_000 }, { TZ: 'America/New_York' }),
      project('TZ=Asia/Kolkata', TIME_SENSITIVE, { testTimeout: 60_000, hookTimeout: 120_000 }, { TZ: 'Asia/Kolkata' }),
    ],
  },
})
