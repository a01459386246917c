import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (path: string): string => fileURLToPath(new URL(path, import.meta.url))

// Tests import packages by name; these aliases point them at each package's source, so no build is needed.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@apimeter\/core\/testing$/, replacement: src('./packages/core/src/testing/index.ts') },
      { find: /^@apimeter\/core$/, replacement: src('./packages/core/src/index.ts') },
      { find: /^@apimeter\/express$/, replacement: src('./packages/express/src/index.ts') },
      { find: /^@apimeter\/fastify$/, replacement: src('./packages/fastify/src/index.ts') },
    ],
  },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'core',
          include: ['packages/core/test/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'express',
          include: ['packages/express/test/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'fastify',
          include: ['packages/fastify/test/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
})
