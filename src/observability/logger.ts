/**
 * The logger facade every module writes through. Levels are mosquitto's `log_type` names so that a
 * mosquitto.conf's `log_type` lines map one to one. Messages are plain sentences for an operator:
 * who (client id, address, user), what, why. Never a password; payloads only at debug.
 */
export const LogTypes = [
  'error',
  'warning',
  'notice',
  'information',
  'debug',
  'subscribe',
  'unsubscribe',
  'websockets',
] as const
export type LogType = (typeof LogTypes)[number]

export interface LogSink {
  /** `line` is `message` with the timestamp, when log_timestamp asks for one. */
  write(line: string, type: LogType, message: string): void
}

export class Logger {
  /** Bit per LogType; checked before a message string is built on any hot path. */
  mask: number
  sinks: LogSink[]
  timestamp: boolean
  /** strftime-like format as mosquitto's `log_timestamp_format`; empty means ISO 8601. */
  timestampFormat: string
  /**
   * Sinks that see every line written, whatever log_dest says and across reconfigure() (the dashboard's
   * recent-lines ring): `sinks` is replaced by a reload, these are not.
   */
  readonly taps: LogSink[] = []

  constructor(opts: { types?: readonly LogType[]; sinks?: LogSink[]; timestamp?: boolean; timestampFormat?: string } = {}) {
    this.mask = maskOf(opts.types ?? ['error', 'warning', 'notice', 'information'])
    this.sinks = opts.sinks ?? [stderrSink]
    this.timestamp = opts.timestamp ?? true
    this.timestampFormat = opts.timestampFormat ?? ''
  }

  /** Changes settings in place (SIGHUP reload): every module holding this Logger sees the new ones. */
  configure(opts: { types?: readonly LogType[]; sinks?: LogSink[]; timestamp?: boolean; timestampFormat?: string }): void {
    if (opts.types !== undefined) this.mask = maskOf(opts.types)
    if (opts.sinks !== undefined) this.sinks = opts.sinks
    if (opts.timestamp !== undefined) this.timestamp = opts.timestamp
    if (opts.timestampFormat !== undefined) this.timestampFormat = opts.timestampFormat
  }

  enabled(type: LogType): boolean {
    return (this.mask & (1 << LogTypes.indexOf(type))) !== 0
  }

  log(type: LogType, message: string): void {
    if (!this.enabled(type)) return
    const line = this.timestamp ? `${formatTimestamp(new Date(), this.timestampFormat)}: ${message}` : message
    for (const sink of this.sinks) sink.write(line, type, message)
    for (const tap of this.taps) tap.write(line, type, message)
  }

  error(message: string): void { this.log('error', message) }
  warning(message: string): void { this.log('warning', message) }
  notice(message: string): void { this.log('notice', message) }
  info(message: string): void { this.log('information', message) }
  debug(message: string): void { this.log('debug', message) }
}

export function maskOf(types: readonly LogType[]): number {
  let mask = 0
  for (const t of types) mask |= 1 << LogTypes.indexOf(t)
  return mask
}

export const stderrSink: LogSink = { write: (line) => { process.stderr.write(line + '\n') } }
export const stdoutSink: LogSink = { write: (line) => { process.stdout.write(line + '\n') } }

/** A logger that drops everything: the default for embedded brokers in tests. */
export function silentLogger(): Logger {
  return new Logger({ types: [], sinks: [] })
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0')

const MonthNames = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const
const DayNames = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const
const MonthLong = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'] as const
const DayLong = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const

/** The strftime conversions formatTimestamp understands (config validation refuses others). */
export const TimestampConversions = 'YmdHMSszFTybBaAejIp%' as const

/** Conversions in `format` that formatTimestamp does not support, e.g. ['%Q']. */
export function unsupportedTimestampConversions(format: string): string[] {
  const bad: string[] = []
  for (const m of format.matchAll(/%(.?)/g)) {
    const c = m[1] ?? ''
    if (c === '' || !TimestampConversions.includes(c)) bad.push(`%${c}`)
  }
  return bad
}

/**
 * strftime-like formatting for mosquitto's `log_timestamp_format` (local time): %Y %m %d %H %M %S %s %z %F %T
 * %y %b %B %a %A %e %j %I %p %%. An empty format means ISO 8601 (UTC).
 */
export function formatTimestamp(d: Date, format: string): string {
  if (format === '') return d.toISOString()
  return format.replace(/%([YmdHMSszFTybBaAejIp%])/g, (_m, c: string) => {
    switch (c) {
      case 'Y': return String(d.getFullYear())
      case 'y': return pad(d.getFullYear() % 100)
      case 'm': return pad(d.getMonth() + 1)
      case 'd': return pad(d.getDate())
      case 'e': return String(d.getDate()).padStart(2, ' ')
      case 'H': return pad(d.getHours())
      case 'I': return pad(((d.getHours() + 11) % 12) + 1)
      case 'p': return d.getHours() < 12 ? 'AM' : 'PM'
      case 'M': return pad(d.getMinutes())
      case 'S': return pad(d.getSeconds())
      case 's': return String(Math.floor(d.getTime() / 1000))
      case 'b': return MonthNames[d.getMonth()] ?? ''
      case 'B': return MonthLong[d.getMonth()] ?? ''
      case 'a': return DayNames[d.getDay()] ?? ''
      case 'A': return DayLong[d.getDay()] ?? ''
      case 'j': {
        const start = new Date(d.getFullYear(), 0, 1)
        return pad(Math.floor((d.getTime() - start.getTime()) / 86_400_000) + 1, 3)
      }
      case 'F': return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
      case 'T': return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
      case 'z': {
        const off = -d.getTimezoneOffset()
        const sign = off >= 0 ? '+' : '-'
        return `${sign}${pad(Math.floor(Math.abs(off) / 60))}${pad(Math.abs(off) % 60)}`
      }
      default: return '%'
    }
  })
}
