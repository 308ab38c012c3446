/**
 * `midge [serve] [-c FILE] [-p PORT] [-v]`: runs the broker. Without -c it listens on 127.0.0.1 and ::1
 * only (port 1883 or -p), anonymous, like mosquitto 2's local-only mode.
 */
import { Logger } from '../../observability/logger.js'
import { localOnlyPlan, startServer, type RunningServer } from '../../server.js'
import { VERSION } from '../../version.js'

const usage = 'Usage: midge [serve] [-c CONFIG_FILE] [-p PORT] [-v]'

export async function run(argv: string[]): Promise<number> {
  let port = 1883
  let verbose = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '-p' || a === '--port') {
      const v = Number(argv[++i])
      if (!Number.isInteger(v) || v < 1 || v > 65535) {
        process.stderr.write(`midge: -p needs a port number from 1 to 65535\n${usage}\n`)
        return 1
      }
      port = v
    } else if (a === '-v' || a === '--verbose') {
      verbose = true
    } else if (a === '-h' || a === '--help') {
      process.stdout.write(usage + '\n')
      return 0
    } else {
      process.stderr.write(`midge: unknown option '${a}'\n${usage}\n`)
      return 1
    }
  }
  const logger = new Logger({ types: verbose ? ['error', 'warning', 'notice', 'information', 'debug', 'subscribe', 'unsubscribe'] : ['error', 'warning', 'notice', 'information'] })
  const plan = localOnlyPlan(port)
  plan.broker.logger = logger
  let server: RunningServer
  try {
    server = await startServer(plan)
  } catch (err) {
    logger.error(`Error: ${(err as Error).message}`)
    return 1
  }
  logger.notice(`midge version ${VERSION} running`)
  for (const l of server.listeners) {
    const a = l.address()
    logger.notice(`Opening ${a.family === 'IPv6' ? 'ipv6' : 'ipv4'} listen socket on ${a.address} port ${a.port}.`)
  }
  logger.notice('Starting in local only mode. Connections will only be possible from clients running on this machine.')
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      logger.notice(`midge version ${VERSION} terminating (${signal}).`)
      void server.close().then(() => resolve(0))
    }
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
  })
}
