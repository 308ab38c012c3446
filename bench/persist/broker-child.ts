/**
 * A Midge for the persistence benchmarks, as its own process: `node broker-child.js off|on|fsync DIR`
 * listens on a free 127.0.0.1 port and prints `PORT <n>` on stdout. `off` = no persistence, `on` =
 * the log store without fsync (kill -9 safe), `fsync` = with fdatasync per commit (power-loss safe).
 */
import { silentLogger } from '../../src/observability/logger.js'
import { localOnlyPlan, startServer } from '../../src/server/index.js'

async function main(): Promise<void> {
  const [mode, dir] = process.argv.slice(2)
  if (mode !== 'off' && mode !== 'on' && mode !== 'fsync') throw new Error('usage: broker-child.js off|on|fsync DIR')
  const plan = localOnlyPlan(0)
  plan.listeners = plan.listeners.slice(0, 1)
  // BENCH_MAX_INFLIGHT: max_inflight_messages (default 20, as Mosquitto's), to show what bounds the fsync mode.
  plan.broker = { sysInterval: 0, maxQueuedMessages: 0, logger: silentLogger(), ...(process.env.BENCH_MAX_INFLIGHT !== undefined ? { maxInflightMessages: Number(process.env.BENCH_MAX_INFLIGHT) } : {}) }
  if (mode !== 'off') plan.persistence = { dir: dir!, file: 'midge.db', fsync: mode === 'fsync' }
  const server = await startServer(plan)
  process.stdout.write(`PORT ${server.listeners[0]!.address().port}\n`)
  process.once('SIGTERM', () => { void server.close().then(() => process.exit(0)) })
}

main().catch((err: unknown) => {
  process.stderr.write(`broker-child: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
