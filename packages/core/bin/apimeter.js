#!/usr/bin/env node
// The `apimeter` command. It is this committed file, not dist/cli.js, because npm links a package's bin only when
// the file exists at install time (bin-links skips a missing target silently), and in a fresh checkout of the
// repository dist/ is not built yet when `npm install` links the workspace bins.
//
// - Installed from the registry (no src/ in the package): runs the built CLI, dist/cli.js.
// - In a checkout of the apimeter repository (src/ beside dist/): runs the TypeScript source through tsx with the
//   repository's tsconfig paths, the way `npm run demo` and the examples run, so `npx apimeter …` works without a
//   build and never runs a stale dist/.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const source = new URL('../src/cli/bin.ts', import.meta.url)
const tsconfig = new URL('../../../tsconfig.json', import.meta.url)

if (existsSync(source) && existsSync(tsconfig)) {
  const { register } = await import('tsx/esm/api')
  register({ tsconfig: fileURLToPath(tsconfig) })
  await import(source.href)
} else {
  await import('../dist/cli.js')
}
