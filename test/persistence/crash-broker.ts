/**
 * The broker the kill -9 tests run as a child: `node crash-broker.js DIR PORT [CHANGES]` starts Midge
 * on 127.0.0.1:PORT (0 = a free port) with persistence in DIR (and autosave_on_changes CHANGES: a
 * compaction in the background every CHANGES records), then prints `PORT <n>` on stdout once it
 * listens. Log lines go to stderr. It does not depend on the CLI or the config loader on purpose.
 */
import { Logger } from '../../src/observability/logger.js'
import { localOnlyPlan, startServer } from '../../src/server/index.js'

async function main(): Promise<void> {
  const [dir, port, changes] = process.argv.slice(2)
  if (dir === undefined) throw new Error('usage: crash-broker.js DIR [PORT]')
  const plan = localOnlyPlan(Number(port ?? 0))
  plan.listeners = plan.listeners.slice(0, 1)
  plan.broker = {
    sysInterval: 0,
    // Unbounded queues: a message the broker acknowledged may not be dropped for lack of room.
    maxQueuedMessages: 0,
    logger: new Logger({ types: ['error', 'warning', 'notice'] }),
    autosaveOnChanges: Number(changes ?? 0),
  }
  plan.persistence = { dir, file: 'midge.db', fsync: false }
  const server = await startServer(plan)
  process.stdout.write(`PORT ${server.listeners[0]!.address().port}\n`)
  process.once('SIGTERM', () => { void server.close().then(() => process.exit(0)) })
}

main().catch((err: unknown) => {
  process.stderr.write(`crash-broker: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
