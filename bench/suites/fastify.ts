import type { SuiteResult } from '../lib.js'
import { compareThroughput, METHOD } from '../throughput.js'

export async function runFastifySuite(): Promise<SuiteResult> {
  return {
    id: 'fastify',
    title: 'Fastify plugin: hello-world throughput with and without `apimeterFastify`',
    method: METHOD,
    figures: await compareThroughput('fastify', 'Fastify 5', 0.9),
  }
}
