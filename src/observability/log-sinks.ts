/**
 * Sinks for mosquitto's `log_dest`: stdout, stderr, file PATH (reopened on SIGHUP so logrotate works) and
 * topic (each line published under $SYS/broker/log/<severity>, as Mosquitto). syslog and dlt are refused by
 * the config loader as not supported yet.
 */
import { closeSync, openSync, writeSync } from 'node:fs'
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

  /** Throws (ENOENT, EACCES…) when the file cannot be opened, so a bad log_dest stops the start. */
  constructor(path: string) {
    this.path = path
    this.fd = openSync(path, 'a', 0o640)
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
    const fd = openSync(this.path, 'a', 0o640)
    const old = this.fd
    this.fd = fd
    if (old >= 0) closeSync(old)
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
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
  /** Reopens the log file (SIGHUP). */
  reopen(): void
  close(): void
}

/** Builds the sinks for a log_dest list. Throws if the log file cannot be opened. */
export function createLogSinks(dests: readonly LogDest[]): LogSinkSet {
  const sinks: LogSink[] = []
  let topic: TopicLogSink | undefined
  let file: FileLogSink | undefined
  for (const d of dests) {
    switch (d.kind) {
      case 'stdout': sinks.push(stdoutSink); break
      case 'stderr': sinks.push(stderrSink); break
      case 'topic': topic = new TopicLogSink(); sinks.push(topic); break
      case 'file': file = new FileLogSink(d.path); sinks.push(file); break
    }
  }
  return {
    sinks,
    topic,
    file,
    reopen: () => file?.reopen(),
    close: () => file?.close(),
  }
}
