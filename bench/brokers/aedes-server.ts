/**
 * `node aedes-server.js PORT [AEDES_ENTRY]`: Aedes 1.x in memory on 127.0.0.1:PORT, TCP_NODELAY on
 * every connection (a plain net.Server leaves Nagle on, which would add milliseconds to the
 * latency scenario and make the comparison unfair). Exits when stdin closes, so it cannot
 * outlive the bench that started it.
 */
import net from 'node:net'
import { pathToFileURL } from 'node:url'

interface AedesBroker {
  handle(conn: net.Socket): void
  close(cb?: () => void): void
}
interface AedesModule {
  Aedes: { createBroker(opts?: object): Promise<AedesBroker> }
}

async function main(): Promise<void> {
  const port = Number(process.argv[2])
  const entry = process.argv[3] ?? 'aedes'
  const mod = (await import(entry.startsWith('/') ? pathToFileURL(entry).href : entry)) as AedesModule
  const broker = await mod.Aedes.createBroker()
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    broker.handle(socket)
  })
  const stop = (): void => {
    server.close()
    broker.close(() => process.exit(0))
    setTimeout(() => process.exit(0), 1000).unref()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.stdin.on('close', stop)
  process.stdin.resume()
  server.listen(port, '127.0.0.1', () => process.stdout.write(`aedes listening on 127.0.0.1:${port}\n`))
}

main().catch((err: unknown) => {
  process.stderr.write(`aedes-server: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
