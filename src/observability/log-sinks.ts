/**
 * Sinks for mosquitto's `log_dest`: stdout, stderr, file PATH (reopened on SIGHUP so logrotate works), syslog
 * and topic (each line published under $SYS/broker/log/<severity>, as Mosquitto). dlt is refused by the
 * config loader as not supported yet.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, constants, existsSync, openSync, writeSync } from 'node:fs'
import { handOver, type FileOwner } from '../config/hand-over.js'
import type { LogDest } from '../config/types.js'
import { stderrSink, stdoutSink, type LogSink, type LogType } from './logger.js'

/** Mosquitto's topic suffixes: E W N I for levels, M/<type> for subscribe/unsubscribe; debug is never published. */
export const LogTopicSuffix: Readonly<Record<LogType, string | undefined>> = {
  error: 'E',
  warning: 'W',
  notice: 'N',
  information: 'I',
  debug: undefined,
  subscribe: 'M/subscribe',
  unsubscribe: 'M/unsubscribe',
  websockets: 'WS',
} as const

/** Appends lines to a file; `reopen()` closes and reopens the path (after logrotate moved the old file). */
export class FileLogSink implements LogSink {
  readonly path: string
  private fd: number
  private failed = false

  /**
   * Throws (ENOENT, EACCES…) when the file cannot be opened, so a bad log_dest stops the start. `owner`:
   * the broker's user, who gets a file created here before the broker drops root (it reopens it later).
   */
  constructor(path: string, private readonly owner?: FileOwner) {
    this.path = path
    this.fd = this.open()
  }

  private open(): number {
    const existed = existsSync(this.path)
    // As root, never through a link: the broker's user may write the log folder and plant
    // mosquitto.log -> /etc/shadow, and root would append to (and SIGHUP reopen) the target.
    const noFollow = process.geteuid?.() === 0 ? constants.O_NOFOLLOW : 0
    let fd: number
    try {
      fd = openSync(this.path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | noFollow, 0o640)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new Error(`${this.path} is a symbolic link; a broker running as root does not write its log through one`)
      throw err
    }
    try {
      if (!existed) handOver(this.path, this.owner, fd)
    } catch (err) {
      closeSync(fd)
      throw err
    }
    return fd
  }

  write(line: string): void {
    if (this.fd < 0) return
    try {
      // Synchronous on purpose: lines stay ordered and are on disk if the process dies right after.
      writeSync(this.fd, line + '\n')
      this.failed = false
    } catch (err) {
      if (!this.failed) process.stderr.write(`midge: cannot write log file ${this.path}: ${(err as Error).message}\n`)
      this.failed = true
    }
  }

  reopen(): void {
    const fd = this.open()
    const old = this.fd
    this.fd = fd
    if (old >= 0) closeSync(old)
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
  }
}

/** syslog(3) severities by log type, as Mosquitto maps them (subscribe, unsubscribe, websockets: info). */
const SyslogSeverity: Readonly<Record<LogType, number>> = {
  error: 3,
  warning: 4,
  notice: 5,
  information: 6,
  debug: 7,
  subscribe: 6,
  unsubscribe: 6,
  websockets: 6,
}
/** syslog(3) facility codes: Mosquitto's default LOG_DAEMON, and LOG_LOCAL0 (log_facility 0-7 adds to it). */
const LogDaemon = 3
const LogLocal0 = 16
/** Lines waiting for a syslog that does not keep up; beyond this they are dropped (and counted), not kept in memory. */
const SyslogBacklogBytes = 1024 * 1024

/**
 * `log_dest syslog`: each line as one datagram to the local syslog socket (/dev/log; journald's under
 * systemd), facility daemon (or local0-7, log_facility), tag midge[pid], without Midge's timestamp (syslog adds its own).
 *
 * /dev/log is an AF_UNIX datagram socket, which Node cannot open (`dgram` is UDP only) without a native
 * add-on. So the lines go through one long-lived logger(1) (util-linux, in Debian's essential bsdutils):
 * `--prio-prefix` lets each line carry its own priority as `<N>`. If logger cannot reach the socket (or
 * dies), that is said once on stderr and lines are dropped until reopen() (SIGHUP) starts it again. A
 * syslog that does not keep up holds at most SyslogBacklogBytes here; what is dropped past it is counted in
 * a warning sent once it reads again.
 */
export class SyslogSink implements LogSink {
  private child: ChildProcess | undefined
  private warned = false
  private closed = false
  private dropped = 0
  /** facility * 8, the part of each line's <PRI> that is not the severity. */
  private readonly facilityBits: number

  /** `local`: log_facility, 0-7 for local0-local7; undefined for daemon. */
  constructor(
    private readonly socket = '/dev/log',
    private readonly warn: (message: string) => void = (m) => { process.stderr.write(`${m}\n`) },
    private readonly command = 'logger',
    local: number | undefined = undefined,
  ) {
    this.facilityBits = (local === undefined ? LogDaemon : LogLocal0 + local) * 8
    this.start()
  }

  private start(): void {
    let stderr = ''
    const child = spawn(this.command, ['--prio-prefix', '--tag', 'midge', `--id=${process.pid}`, '--size', '8192', '--socket', this.socket, '--socket-errors=on'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    })
    this.child = child
    const gone = (why: string): void => {
      if (this.child === child) this.child = undefined
      if (this.closed || this.warned) return
      this.warned = true
      this.warn(`midge: log_dest syslog: cannot log to ${this.socket}: ${why}; syslog lines are dropped until the next SIGHUP.`)
    }
    // A broken pipe is reported by the exit below; the write error itself says nothing more.
    child.stdin?.on('error', () => {})
    child.stderr?.on('data', (d: Buffer) => { if (stderr.length < 1000) stderr += d.toString() })
    child.on('error', (err) => gone(`cannot run ${this.command} (Debian package bsdutils): ${err.message}`))
    child.on('close', (code, signal) => gone(stderr.trim().replace(/^logger: /, '') || `${this.command} stopped (${signal ?? `status ${code}`})`))
  }

  write(_line: string, type: LogType, message: string): void {
    const stdin = this.child?.stdin
    if (stdin === undefined || stdin === null || stdin.destroyed) return
    if (stdin.writableLength > SyslogBacklogBytes) {
      this.dropped++
      return
    }
    if (this.dropped > 0) {
      stdin.write(`<${this.facilityBits + SyslogSeverity.warning}>Warning: ${this.dropped} log lines were not sent to syslog: it did not keep up.\n`)
      this.dropped = 0
    }
    // One line per datagram: a message's own newlines would split it.
    stdin.write(`<${this.facilityBits + SyslogSeverity[type]}>${message.replace(/\n/g, ' ')}\n`)
  }

  /** Bytes written but not yet taken by logger(1). */
  get backlog(): number {
    return this.child?.stdin?.writableLength ?? 0
  }

  /** SIGHUP: starts logger again if it had stopped (syslog restarted, /dev/log back). */
  reopen(): void {
    if (this.closed || this.child !== undefined) return
    this.warned = false
    this.start()
  }

  close(): void {
    this.closed = true
    this.child?.stdin?.end()
    this.child = undefined
  }
}

export type LogPublisher = (topic: string, payload: string) => void

/**
 * Publishes log lines on $SYS/broker/log/…; the broker attaches its publish function once it exists. Lines
 * logged while a publish is in progress are not published again (a publish that logs must not loop).
 */
export class TopicLogSink implements LogSink {
  private publish: LogPublisher | undefined
  private busy = false

  attach(publish: LogPublisher | undefined): void {
    this.publish = publish
  }

  write(line: string, type: LogType): void {
    const suffix = LogTopicSuffix[type]
    if (suffix === undefined || this.publish === undefined || this.busy) return
    this.busy = true
    try {
      this.publish(`$SYS/broker/log/${suffix}`, line)
    } finally {
      this.busy = false
    }
  }
}

export interface LogSinkSet {
  sinks: LogSink[]
  /** Present when log_dest includes topic: give it the broker's publish function. */
  topic: TopicLogSink | undefined
  file: FileLogSink | undefined
  syslog: SyslogSink | undefined
  /** Reopens the log file and restarts a stopped syslog sink (SIGHUP). */
  reopen(): void
  close(): void
}

/** Builds the sinks for a log_dest list. Throws if the log file cannot be opened. */
/** `owner`: the broker's user when started as root, who gets the log file if it is created now. */
export function createLogSinks(dests: readonly LogDest[], owner?: FileOwner): LogSinkSet {
  const sinks: LogSink[] = []
  let topic: TopicLogSink | undefined
  let file: FileLogSink | undefined
  let syslog: SyslogSink | undefined
  try {
    for (const d of dests) {
      switch (d.kind) {
        case 'stdout': sinks.push(stdoutSink); break
        case 'stderr': sinks.push(stderrSink); break
        case 'topic': topic = new TopicLogSink(); sinks.push(topic); break
        case 'file': file = new FileLogSink(d.path, owner); sinks.push(file); break
        case 'syslog': syslog = new SyslogSink(undefined, undefined, undefined, d.facility); sinks.push(syslog); break
      }
    }
  } catch (err) {
    // A log file that cannot be opened: the logger(1) already started must not outlive the failed set.
    syslog?.close()
    throw err
  }
  return {
    sinks,
    topic,
    file,
    syslog,
    reopen: () => { syslog?.reopen(); file?.reopen() },
    close: () => { syslog?.close(); file?.close() },
  }
}
