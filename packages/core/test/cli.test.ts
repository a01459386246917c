import { describe, expect, it } from 'vitest'
import { VERSION } from '@apimeter/core'
import { runCli } from '../src/cli/main.js'

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await runCli(argv, { out: (t) => (out += t), err: (t) => (err += t) })
  return { code, out, err }
}

describe('apimeter CLI', () => {
  it('prints help with commands and exit codes', async () => {
    for (const argv of [[], ['--help'], ['-h'], ['help']]) {
      const { code, out } = await run(argv)
      expect(code).toBe(0)
      expect(out).toMatch(/Usage:\n {2}apimeter <command> \[options\]/)
      expect(out).toMatch(/Exit codes:/)
    }
  })

  it('prints the package version', async () => {
    expect(await run(['--version'])).toEqual({ code: 0, out: `${VERSION}\n`, err: '' })
    expect((await run(['-v'])).out).toBe(`${VERSION}\n`)
  })

  it('exits 2 with a clear message on an unknown command or option', async () => {
    expect(await run(['frobnicate'])).toMatchObject({ code: 2, err: expect.stringMatching(/unknown command 'frobnicate'/) })
    expect(await run(['--frob'])).toMatchObject({ code: 2, err: expect.stringMatching(/unknown option '--frob'/) })
  })
})
