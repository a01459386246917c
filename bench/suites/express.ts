import type { SuiteResult } from '../lib.js'
import { compareThroughput, METHOD } from '../throughput.js'

export async function runExpressSuite(): Promise<SuiteResult> {
  return {
    id: 'express',
    title: 'Express middleware: hello-world throughput with and without `apimeter()`',
    method: `${METHOD} Express 5 and Express 4 are measured one after the other.`,
    figures: [...(await compareThroughput('express5', 'Express 5', 0.95)), ...(await compareThroughput('express4', 'Express 4', 0.95))],
  }
}
