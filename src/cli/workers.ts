/**
 * `midge --workers N` (cluster_workers N): all the cores of one machine. This process becomes a supervisor
 * that runs no broker itself: it forks N copies of the same command line (node:cluster), each a complete Midge
 * started as usual, and node:cluster shares the listening sockets among them (the primary accepts and hands
 * connections out round robin; ports below 1024 are bound by the primary, still root). The copies find one
 * another through the config's cluster_redis, as nodes on separate machines would (docs/cluster.md).
 *
 * The supervisor writes pid_file and speaks to systemd (ready once every worker listens); it forwards SIGHUP
 * (reload) and SIGTERM/SIGINT (stop, waiting for every worker), and starts a worker again when it dies,
 * giving up when workers die right after starting three times in a row (a start that cannot succeed).
 */
import cluster, { type Worker } from 'node:cluster'
import type { MidgeConfig } from '../config/types.js'
import { SystemdNotifier } from '../observability/systemd-notify.js'
import { removePidFile, writePidFile } from '../server/pid-file.js'
import { VERSION } from '../version.js'
import { WorkerEnv } from './worker-env.js'


const QuickExitMs = 5000

export async function superviseWorkers(cfg: MidgeConfig): Promise<number> {
  const n = cfg.global.clusterWorkers
  const say = (line: string): void => { process.stderr.write(`${new Date().toISOString()}: ${line}\n`) }
  const systemd = new SystemdNotifier(process.env['NOTIFY_SOCKET'], undefined)
  // The workers are not systemd's main process: only the supervisor notifies.
  const env = { ...process.env }
  delete env['NOTIFY_SOCKET']
  if (cfg.global.pidFile !== undefined) writePidFile(cfg.global.pidFile, undefined)
  const workers = new Map<number, Worker>()
  let stopping = false
  let quickExits = 0
  let listening = 0
  let failed = false
  let done: (code: number) => void = () => undefined
  const finished = new Promise<number>((resolve) => { done = resolve })

  const stopAll = (signal: NodeJS.Signals): void => {
    stopping = true
    for (const w of workers.values()) w.process.kill(signal)
    if (workers.size === 0) done(failed ? 1 : 0)
  }
  const fork = (i: number): void => {
    const started = Date.now()
    const w = cluster.fork({ ...env, [WorkerEnv]: String(i) })
    workers.set(i, w)
    w.once('listening', () => {
      if (++listening === n) void systemd.ready(`Running; ${n} workers`)
    })
    w.once('exit', (code, signal) => {
      workers.delete(i)
      if (stopping) {
        if (workers.size === 0) done(failed ? 1 : 0)
        return
      }
      quickExits = Date.now() - started < QuickExitMs ? quickExits + 1 : 0
      if (quickExits >= 3) {
        say(`midge: workers keep exiting right after starting (worker ${i}: ${signal ?? `status ${code}`}); stopping.`)
        failed = true
        stopAll('SIGTERM')
        return
      }
      say(`midge: worker ${i} exited (${signal ?? `status ${code}`}); starting it again.`)
      setTimeout(() => { if (!stopping) fork(i) }, 1000).unref()
    })
  }

  say(`midge version ${VERSION}: starting ${n} workers.`)
  for (let i = 0; i < n; i++) fork(i)
  const onStop = (signal: NodeJS.Signals) => (): void => {
    if (stopping) return
    void systemd.stopping()
    say(`midge: stopping ${workers.size} workers (${signal}).`)
    stopAll('SIGTERM')
  }
  const onInt = onStop('SIGINT')
  const onTerm = onStop('SIGTERM')
  const onHup = (): void => { for (const w of workers.values()) w.process.kill('SIGHUP') }
  process.on('SIGINT', onInt)
  process.on('SIGTERM', onTerm)
  process.on('SIGHUP', onHup)
  const code = await finished
  process.off('SIGINT', onInt)
  process.off('SIGTERM', onTerm)
  process.off('SIGHUP', onHup)
  if (cfg.global.pidFile !== undefined) removePidFile(cfg.global.pidFile)
  return code
}
