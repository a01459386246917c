import { VERSION } from '../version.js'

/** Where the CLI writes; replaced in tests. */
export interface CliIO {
  out(text: string): void
  err(text: string): void
}

/** Exit codes of the `apimeter` CLI. */
export const EXIT = {
  /** Success. */
  ok: 0,
  /** The command ran and found a problem (e.g. pending migrations for `migrate status`). */
  problem: 1,
  /** The command line itself was wrong (unknown command or option, missing argument). */
  usage: 2,
} as const

const HELP = `apimeter ${VERSION} — meter the HTTP calls your app makes and receives

Usage:
  apimeter <command> [options]

Commands:
  help             Show this help

Options:
  -h, --help       Show help (also after a command: apimeter <command> --help)
  -v, --version    Print the version

Exit codes:
  0  success
  1  the command ran and found a problem
  2  the command line was wrong (unknown command or option)

Docs: docs/getting-started.md, docs/api.md
`

/**
 * Runs the CLI with `argv` (without `node` and the script path) and returns the exit code.
 *
 * @example
 * ```ts
 * const code = await runCli(['--version'])
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  const [first, ...rest] = argv
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    io.out(HELP)
    return EXIT.ok
  }
  if (first === '-v' || first === '--version') {
    io.out(`${VERSION}\n`)
    return EXIT.ok
  }
  if (first.startsWith('-')) {
    io.err(`apimeter: unknown option '${first}'\nRun 'apimeter --help' for usage.\n`)
    return EXIT.usage
  }
  void rest
  io.err(`apimeter: unknown command '${first}'\nRun 'apimeter --help' for the list of commands.\n`)
  return EXIT.usage
}

const defaultIO: CliIO = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
}
