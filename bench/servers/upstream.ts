// The upstream API of the outbound bench, in a child process so its CPU is not measured with the client's:
// node --import tsx bench/servers/upstream.ts. Answers every request with a small JSON body; prints `listening <port>`.
import { createServer } from 'node:http'

const body = JSON.stringify({ id: 'item_1', name: 'widget', price: 4.2 })
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  console.log(`listening ${(server.address() as { port: number }).port}`)
})
