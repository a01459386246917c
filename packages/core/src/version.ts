import pkg from '../package.json' with { type: 'json' }

/** The version of `@apimeter/core`. */
export const VERSION: string = pkg.version
