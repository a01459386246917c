// Express 4 is installed under the alias `express4` (npm:express@^4) so both majors are tested side by side.
// Its API used here is the one both majors share, so Express 5's types describe it.
declare module 'express4' {
  import express from 'express'
  export default express
}
