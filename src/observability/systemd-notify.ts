/**
 * systemd's readiness protocol (sd_notify(3)) for `Type=notify` units: when systemd starts the broker it sets
 * NOTIFY_SOCKET, and the broker says READY=1 once its listeners are open, RELOADING=1 … READY=1 around a
 * SIGHUP reload and STOPPING=1 when it stops.
 *
 * The socket is an AF_UNIX datagram socket (a path, or `@name` in the abstract namespace), which Node cannot
 * open: `dgram` is UDP only and `net` speaks unix *stream* sockets. The npm packages that can (`sd-notify`,
 * `unix-dgram`) are native add-ons built by node-gyp at install time, which a Raspberry Pi without a compiler
 * cannot install. So the messages are sent by systemd-notify(1), which ships with systemd itself. It sends
 * from its own PID, so the unit needs `NotifyAccess=all`; and since systemd 246 it waits until the manager has
 * processed the message (sd_notify_barrier), so the sender is still alive when systemd looks up its cgroup
 * (the race that made systemd-notify unreliable before). Messages go out one at a time, in order.
 */
import { spawn } from 'node:child_process'
import type { Logger } from './logger.js'

export class SystemdNotifier {
  private queue: Promise<void> = Promise.resolve()
  private warned = false

  /** `socket`: NOTIFY_SOCKET; without it (not started by systemd) every call does nothing. */
  constructor(private readonly socket: string | undefined, private readonly logger: Logger | undefined, private readonly command = 'systemd-notify') {}

  get enabled(): boolean {
    return this.socket !== undefined && this.socket !== ''
  }

  /** Sends `VAR=VALUE` assignments in one message; resolves once it is delivered (or has failed, logged once). */
  notify(...assignments: string[]): Promise<void> {
    if (!this.enabled) return this.queue
    this.queue = this.queue.then(() => this.send(assignments))
    return this.queue
  }

  ready(status?: string): Promise<void> {
    return this.notify('READY=1', ...(status === undefined ? [] : [`STATUS=${status}`]))
  }

  /** RELOADING=1 must carry the time on CLOCK_MONOTONIC, which is what process.hrtime reads on Linux. */
  reloading(): Promise<void> {
    return this.notify('RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`)
  }

  stopping(): Promise<void> {
    return this.notify('STOPPING=1')
  }

  private send(assignments: string[]): Promise<void> {
    return new Promise((done) => {
      let stderr = ''
      const child = spawn(this.command, assignments, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: this.socket } })
      child.stderr?.on('data', (d: Buffer) => { if (stderr.length < 1000) stderr += d.toString() })
      child.on('error', (err) => {
        this.warn(`cannot run ${this.command} (Debian package systemd): ${err.message}`)
        done()
      })
      child.on('close', (code) => {
        if (code !== 0 && code !== null) this.warn(`${this.command} ${assignments[0] ?? ''} failed (status ${code}): ${stderr.trim()}`)
        done()
      })
    })
  }

  private warn(why: string): void {
    if (this.warned) return
    this.warned = true
    this.logger?.warning(`Warning: NOTIFY_SOCKET is set but the message to systemd was not sent: ${why}. A Type=notify unit will not see the broker as started.`)
  }
}
