/**
 * `midge [serve] [-c FILE] [-p PORT]... [-v] [-d]`: runs the broker, as mosquitto(8).
 *
 * This file is the process around the broker: it parses the command line (config/args.ts), loads the config
 * (config/load.ts; errors end the process with status 1 before anything starts), goes to the background for
 * -d, and starts the runtime (server/runtime.ts), which checks everything, opens the ports, writes pid_file
 * and, started as root, switches to `user`. Then it wires signals: SIGHUP reloads the config (the runtime
 * keeps the running one when the new one is bad), SIGTERM and SIGINT stop; and tells systemd (Type=notify).
 */
import { spawn } from 'node:child_process'
import { sharedHashThreads } from '../../auth/hash-threads.js'
import { parseServeArgs, resolveServeConfig, ServeUsage, type ServeArgs } from '../../config/args.js'
import { ConfigError, ConfigInvalidError } from '../../config/errors.js'
import type { MidgeConfig } from '../../config/types.js'
import { SystemdNotifier } from '../../observability/systemd-notify.js'
import { startMidge, type MidgeRuntime } from '../../server/runtime.js'
import { startYoungGenerationTrim } from '../../observability/young-generation-trim.js'
import { StartFailure } from '../../server/start-failure.js'
import { VERSION } from '../../version.js'
import { workerIndex } from '../worker-env.js'

export async function run(argv: string[]): Promise<number> {
  let args: ServeArgs
  try {
    args = parseServeArgs(argv)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`midge: ${err.detail}\n${ServeUsage}\n`)
    return 1
  }
  if (args.help) { process.stdout.write(ServeUsage + '\n'); return 0 }
  if (args.helpConfig) { process.stdout.write((await import('../../config/doc.js')).renderHelpConfig()); return 0 }
  const cfg = loadOrReport(args)
  if (cfg === undefined) {
    await toDaemonParent(undefined)
    return 1
  }
  // Like mosquitto -d: configuration errors are reported to the terminal before going to the background.
  if (args.daemon) return daemonize(argv)
  const worker = workerIndex()
  if (cfg.global.clusterWorkers > 0 && worker === undefined) return supervise(cfg)
  // Caught from before the start: a SIGTERM while the listeners open (systemd stopping a unit that is still
  // starting, a test that saw the first "Opening" line) stops the broker cleanly once the start is over.
  const stopSignal = nextStopSignal()
  let runtime: MidgeRuntime
  try {
    runtime = await startMidge(cfg, { dropPrivileges: true, ...(worker === undefined ? {} : { worker }) })
  } catch (err) {
    if (!(err instanceof StartFailure)) throw err
    if (!err.logged) process.stderr.write(`Error: ${err.message}\n`)
    // The configured log may be a file or a topic (or, under -d, stderr is /dev/null): the reason the
    // start failed also goes to the terminal.
    else if (!err.onStderr || daemonChild) reportError(`midge: ${err.message}\n`)
    await toDaemonParent(undefined)
    return 1
  }
  await toDaemonParent({ ready: true })
  return serve(args, runtime, stopSignal)
}

/** The first SIGINT or SIGTERM from now on (a second one gets the default action: the process ends at once). */
function nextStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => (): void => {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      resolve(signal)
    }
    const onInt = on('SIGINT')
    const onTerm = on('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
  })
}

/** Signals and systemd around a started runtime, until SIGTERM or SIGINT; the exit status. */
async function serve(args: ServeArgs, runtime: MidgeRuntime, stopSignal: Promise<NodeJS.Signals>): Promise<number> {
  const systemd = new SystemdNotifier(process.env['NOTIFY_SOCKET'], runtime.logger)
  void systemd.ready(runtime.status())
  const stopTrim = startYoungGenerationTrim()
  let reloading = Promise.resolve()
  const onHup = (): void => {
    reloading = reloading.then(async () => {
      void systemd.reloading()
      try {
        await runtime.reload(() => resolveServeConfig(args))
      } finally {
        // Also after a failed reload: the broker still serves, with the running configuration.
        void systemd.ready(runtime.status())
      }
    })
  }
  process.on('SIGHUP', onHup)
  const signal = await stopSignal
  runtime.logger.notice(`midge version ${VERSION} terminating (${signal}).`)
  const told = systemd.stopping()
  process.off('SIGHUP', onHup)
  stopTrim()
  // The process's hashing threads: queued password checks fail now instead of delaying the exit.
  sharedHashThreads().release()
  await runtime.close()
  await told
  // A worker's channel to the supervisor would keep the process alive.
  if (workerIndex() !== undefined && process.connected) process.disconnect()
  return 0
}

/** --workers N: the supervisor refuses a start its workers could not make (the checks of `midge check`), then forks them. */
async function supervise(cfg: MidgeConfig): Promise<number> {
  const { startChecks, formatProblem } = await import('../../server/start-checks.js')
  const refused = (await startChecks(cfg, 'check')).problems.filter((p) => p.severity === 'error')
  if (refused.length > 0) {
    reportError(`${refused.map(formatProblem).join('\n')}\nmidge: ${refused.length} problem${refused.length === 1 ? '' : 's'}; not starting.\n`)
    return 1
  }
  const { superviseWorkers } = await import('../workers.js')
  await toDaemonParent({ ready: true })
  return superviseWorkers(cfg)
}

/** Set in the copy that `-d` starts in the background: it has an IPC channel to the waiting parent. */
const daemonChild = process.env['MIDGE_DAEMON_CHILD'] === '1' && process.send !== undefined
delete process.env['MIDGE_DAEMON_CHILD']

/** What the background copy tells the `-d` parent: a message for the terminal, or that the listeners are open. */
type DaemonMessage = { stderr: string } | { ready: true }

/**
 * The background copy's word to the `-d` parent; `undefined` only closes the channel (the parent then
 * reports the exit status). The channel is closed after the start either way: it would keep the broker's
 * event loop alive, and the parent waits for it.
 */
function toDaemonParent(msg: DaemonMessage | undefined): Promise<void> {
  if (!daemonChild || !process.connected) return Promise.resolve()
  return new Promise((done) => {
    const close = (): void => { if (process.connected) process.disconnect(); done() }
    if (msg === undefined) close()
    else process.send?.(msg, undefined, {}, close)
  })
}

/** Writes a start-up error to stderr and, in the `-d` background copy (whose stderr is /dev/null), to the parent. */
function reportError(text: string): void {
  process.stderr.write(text)
  if (daemonChild && process.connected) process.send?.({ stderr: text } satisfies DaemonMessage)
}

/** Loads the config; on errors prints each with its fix to stderr and returns undefined. */
function loadOrReport(args: ServeArgs): MidgeConfig | undefined {
  try {
    return resolveServeConfig(args)
  } catch (err) {
    const errors = err instanceof ConfigInvalidError ? err.errors : err instanceof ConfigError ? [err] : undefined
    if (errors === undefined) throw err
    for (const e of errors) reportError(`Error: ${e.message}\n${e.fix === undefined ? '' : `  fix: ${e.fix}\n`}`)
    reportError(`midge: ${errors.length} configuration error${errors.length === 1 ? '' : 's'}; not starting.\n`)
    return undefined
  }
}

/**
 * `-d`: start a detached copy without -d (its own session, stdio on /dev/null, as mosquitto -d) and wait
 * until it has opened its listeners: 0 then, or the copy's errors on stderr and its exit status when the
 * start fails after the fork (a port in use, the store, pid_file, the user switch…).
 */
function daemonize(argv: string[]): Promise<number> {
  const rest = argv.filter((a) => a !== '-d' && a !== '--daemon')
  const script = process.argv[1]
  if (script === undefined) return Promise.resolve(1)
  const child = spawn(process.execPath, [script, ...rest], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    env: { ...process.env, MIDGE_DAEMON_CHILD: '1' },
  })
  const exited = new Promise<number>((done) => child.once('exit', (code, signal) => {
    if (code === 0 || code === null) process.stderr.write(`midge: the broker stopped (${signal ?? `status ${code}`}) before its listeners opened.\n`)
    done(code === null || code === 0 ? 1 : code)
  }))
  return new Promise<number>((done) => {
    let ready = false
    child.on('message', (m: DaemonMessage) => {
      if ('stderr' in m) process.stderr.write(m.stderr)
      else if (m.ready) ready = true
    })
    child.on('error', (err) => {
      process.stderr.write(`midge: cannot start the broker in the background: ${err.message}\n`)
      done(1)
    })
    // The copy closes the channel once its start is over: running (it said ready) or on its way out.
    child.on('disconnect', () => {
      if (!ready) { void exited.then(done); return }
      child.removeAllListeners('exit')
      child.unref()
      done(0)
    })
  })
}
