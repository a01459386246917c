import { defineConfig } from 'tsup'
import { packageBuild } from '../../tsup.base.js'

// Two builds: the server side (ESM for Node, like every package) and the page's script and styles (one minified
// browser bundle with uPlot inside, so nothing is fetched from a CDN), written to dist/assets where the handler
// serves them from. The server build's clean keeps dist/assets, which the other build writes at the same time.
export default [
  packageBuild({ clean: ['!assets/**'] }),
  defineConfig({
    entry: { app: 'client/app.ts' },
    outDir: 'dist/assets',
    format: ['iife'],
    platform: 'browser',
    target: 'es2020',
    minify: true,
    sourcemap: false,
    dts: false,
    clean: true,
    outExtension: () => ({ js: '.js' }),
  }),
]
