import { defineConfig, type Options } from 'tsup'

/**
 * The build every package shares: ESM with type declarations for Node 20, source maps, a clean `dist/`. Each
 * package passes what is its own (entries, dependencies left external).
 */
export function packageBuild(options: Options = {}): ReturnType<typeof defineConfig> {
  return defineConfig({
    entry: { index: 'src/index.ts' },
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    dts: true,
    sourcemap: true,
    clean: true,
    treeshake: true,
    ...options,
  })
}
