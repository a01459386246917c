// Test helpers of @apimeter/core, for storage adapter authors. Imports vitest: use it from test files only.
export { type ConformanceHarness, type ConformanceOptions, runStorageConformance } from './conformance.js'
export { exactQuantile, recordFactory, seededRandom } from './records.js'
