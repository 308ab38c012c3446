/**
 * Value types of config options: each parses the text after the option name and, when it cannot, throws
 * BadValue. `expects` is the phrase used in both the error ("option 'max_qos' expects an integer from 0 to 2,
 * got '3'") and docs/configuration.md, so the two never disagree.
 */
import { isIP } from 'node:net'
import { isAbsolute, resolve } from 'node:path'
import { LogTypes, unsupportedTimestampConversions, type LogType } from '../observability/logger.js'
import { TlsVersions } from '../transport/tls-versions.js'
import type { LogDest, TlsVersion } from './types.js'
import { parseRedisUrl } from '../cluster/redis-url.js'

export interface ValueContext {
  /** Directory relative paths resolve against (the main config file's). */
  baseDir: string
}

export class BadValue extends Error {
  /** Replaces the generic "expects …, got '…'" sentence when set. */
  readonly detail: string | undefined
  constructor(detail?: string) {
    super(detail ?? 'bad value')
    this.detail = detail
  }
}

export interface ValueType<T> {
  /** Short name for the docs' Type column. */
  label: string
  /** "true or false", "an integer from 0 to 65535": completes "option 'x' expects …". */
  expects: string
  parse(raw: string, ctx: ValueContext): T
  /** How a value (a default) is written in docs and `--help-config`. */
  show(value: T): string
}

/**
 * Single-token values tolerate a trailing `# comment`: Mosquitto ignores extra words after a boolean or a
 * number, and configs in the wild rely on it (`allow_anonymous true # anyone can connect`).
 */
function singleToken(raw: string): string {
  const hash = raw.search(/\s#/)
  const v = (hash === -1 ? raw : raw.slice(0, hash)).trim()
  if (/\s/.test(v)) throw new BadValue()
  return v
}

export const bool: ValueType<boolean> = {
  label: 'boolean',
  expects: 'true or false',
  parse(raw) {
    const v = singleToken(raw)
    if (v === 'true') return true
    if (v === 'false') return false
    throw new BadValue()
  },
  show: (v) => String(v),
}

export function int(min: number, max: number, opts: { allowZero?: boolean; unit?: string } = {}): ValueType<number> {
  const unit = opts.unit === undefined ? '' : ` (${opts.unit})`
  const range = max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`
  const expects = opts.allowZero === true ? `0 or ${range}${unit}` : `${range}${unit}`
  return {
    label: opts.unit === undefined ? 'integer' : `integer (${opts.unit})`,
    expects,
    parse(raw) {
      const v = singleToken(raw)
      if (!/^[+-]?\d+$/.test(v)) throw new BadValue()
      const n = Number(v)
      if (n === 0 && opts.allowZero === true) return 0
      if (!Number.isSafeInteger(n) || n < min || n > max) throw new BadValue()
      return n
    },
    show: (v) => String(v),
  }
}

export function oneOf<const T extends string>(values: readonly T[]): ValueType<T> {
  return {
    label: values.join(' | '),
    expects: `one of ${values.join(', ')}`,
    parse(raw) {
      const v = singleToken(raw)
      if ((values as readonly string[]).includes(v)) return v as T
      throw new BadValue()
    },
    show: (v) => v,
  }
}

/** The rest of the line, verbatim (mount points, prefixes and cipher lists may not contain spaces anyway). */
export const text: ValueType<string> = {
  label: 'string',
  expects: 'a non-empty string',
  parse(raw) {
    if (raw === '') throw new BadValue()
    return raw
  },
  show: (v) => (v === '' ? '(empty)' : v),
}

/** A file or directory path; relative paths resolve against the main config file's directory. */
export const path: ValueType<string> = {
  label: 'path',
  expects: 'a file path',
  parse(raw, ctx) {
    if (raw === '') throw new BadValue()
    return isAbsolute(raw) ? raw : resolve(ctx.baseDir, raw)
  },
  show: (v) => v,
}

export const dirPath: ValueType<string> = { ...path, label: 'directory', expects: 'a directory path' }

/** A file name (no directory part), e.g. persistence_file. */
export const fileName: ValueType<string> = {
  label: 'file name',
  expects: 'a file name',
  parse(raw) {
    if (raw === '') throw new BadValue()
    return raw
  },
  show: (v) => v,
}

const DurationUnits = { h: 3600, d: 86400, w: 7 * 86400, m: 30 * 86400, y: 365 * 86400 } as const

/** Mosquitto's persistent_client_expiration syntax: an integer and one of h d w m y; stored in seconds. */
export const duration: ValueType<number> = {
  label: 'duration',
  expects: 'a duration: a whole number followed by h, d, w, m or y (e.g. 14d)',
  parse(raw) {
    const v = singleToken(raw)
    const m = /^(\d+)([hdwmy])$/.exec(v)
    if (m === null) throw new BadValue()
    const n = Number(m[1]) * DurationUnits[m[2] as keyof typeof DurationUnits]
    if (!Number.isSafeInteger(n)) throw new BadValue()
    return n
  },
  show: (v) => (v === 0 ? 'never' : `${v}s`),
}

export const tlsVersion: ValueType<TlsVersion> = oneOf(Object.keys(TlsVersions) as TlsVersion[])

export interface ListenerArgs {
  port: number
  bindAddress: string | undefined
}

export const listenerArgs: ValueType<ListenerArgs> = {
  label: 'PORT [ADDRESS]',
  expects: 'a port from 0 to 65535 and an optional bind address or host name',
  parse(raw) {
    const parts = raw.split(/\s+/).filter((p) => p !== '')
    const [p, addr, extra] = parts
    if (p === undefined || !/^\d+$/.test(p) || extra !== undefined) throw new BadValue()
    const port = Number(p)
    if (port > 65535) throw new BadValue()
    if (port === 0 && addr !== undefined && (addr.startsWith('/') || addr.startsWith('.'))) {
      throw new BadValue(`unix socket listeners ('listener 0 ${addr}') are not supported yet; use a TCP port`)
    }
    return { port, bindAddress: addr }
  },
  show: (v) => (v.bindAddress === undefined ? String(v.port) : `${v.port} ${v.bindAddress}`),
}

/** One `log_dest` line. `none` is returned as null (it clears the destinations). */
export const logDest: ValueType<LogDest | null> = {
  label: 'stdout | stderr | file PATH | syslog | topic | none',
  expects: 'one of stdout, stderr, file PATH, syslog, topic, none',
  parse(raw, ctx) {
    const m = /^(\S+)\s*(.*)$/.exec(raw)
    const kind = m?.[1] ?? ''
    const rest = m?.[2] ?? ''
    switch (kind) {
      case 'stdout': case 'stderr': case 'topic': case 'syslog':
        if (rest !== '') throw new BadValue()
        return { kind }
      case 'none':
        if (rest !== '') throw new BadValue()
        return null
      case 'file':
        if (rest === '') throw new BadValue(`'log_dest file' needs a path, e.g. 'log_dest file /var/log/midge/midge.log'`)
        return { kind: 'file', path: path.parse(rest, ctx) }
      case 'dlt':
        throw new BadValue(`log_dest ${kind} is not supported yet; use stdout, stderr, file PATH, syslog or topic`)
      default:
        throw new BadValue()
    }
  },
  show: (v) => (v === null ? 'none' : v.kind === 'file' ? `file ${v.path}` : v.kind),
}

/** One `log_type` line: a level, `all` or `none`. */
export const logType: ValueType<LogType | 'all' | 'none'> = {
  label: [...LogTypes, 'all', 'none'].join(' | '),
  expects: `one of ${[...LogTypes, 'all', 'none'].join(', ')}`,
  parse(raw) {
    const v = singleToken(raw)
    if (v === 'all' || v === 'none') return v
    if ((LogTypes as readonly string[]).includes(v)) return v as LogType
    throw new BadValue()
  },
  show: (v) => v,
}

export const timestampFormat: ValueType<string> = {
  label: 'strftime format',
  expects: 'a strftime format such as %Y-%m-%dT%H:%M:%S',
  parse(raw) {
    if (raw === '') throw new BadValue()
    const bad = unsupportedTimestampConversions(raw)
    if (bad.length > 0) {
      throw new BadValue(`log_timestamp_format uses ${bad.map((c) => `'${c}'`).join(', ')}, which Midge does not support; use %Y %m %d %H %M %S %s %z %F %T %y %b %B %a %A %e %j %I %p %%`)
    }
    return raw
  },
  show: (v) => (v === '' ? 'ISO 8601' : v),
}

const DnsLabel = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
const DnsName = new RegExp(`^${DnsLabel}(?:\\.${DnsLabel})+$`, 'i')

/** `acme_domain`: DNS names a certificate is for, space (or comma) separated; a `# comment` may follow. */
export const domainNames: ValueType<string[]> = {
  label: 'names',
  expects: 'one or more DNS names such as mqtt.example.org, separated by spaces',
  parse(raw) {
    const hash = raw.search(/(?:^|\s)#/)
    const names = (hash === -1 ? raw : raw.slice(0, hash)).split(/[\s,]+/).filter((n) => n !== '').map((n) => n.toLowerCase().replace(/\.$/, ''))
    if (names.length === 0) throw new BadValue()
    for (const n of names) {
      if (n.includes('*')) throw new BadValue(`acme_domain '${n}': wildcard names need DNS-01 validation, which Midge does not do; list each name`)
      if (isIP(n) !== 0) throw new BadValue(`acme_domain '${n}': an IP address; give the DNS name that points at it`)
      if (!DnsName.test(n) || n.length > 253) throw new BadValue(`acme_domain '${n}' is not a DNS name such as mqtt.example.org`)
    }
    return [...new Set(names)]
  },
  show: (v) => v.join(' '),
}

/** An https:// URL (acme_directory). */
export const httpsUrl: ValueType<string> = {
  label: 'URL',
  expects: 'an https:// URL',
  parse(raw) {
    const v = singleToken(raw)
    let u: URL
    try { u = new URL(v) } catch { throw new BadValue() }
    if (u.protocol !== 'https:') throw new BadValue()
    return v
  },
  show: (v) => v,
}

export const emailAddress: ValueType<string> = {
  label: 'email',
  expects: 'an email address such as admin@example.org',
  parse(raw) {
    const v = singleToken(raw).replace(/^mailto:/, '')
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v)) throw new BadValue()
    return v
  },
  show: (v) => v,
}

/** cluster_redis: redis://, rediss:// or redis+sentinel:// (cluster/redis-url.ts says what each part may be). */
export const redisUrl: ValueType<string> = {
  label: 'URL',
  expects: 'a redis://, rediss:// or redis+sentinel:// URL',
  parse(raw) {
    const v = singleToken(raw)
    try { parseRedisUrl(v) } catch (err) { throw new BadValue((err as Error).message) }
    return v
  },
  show: (v) => v,
}

/** A node name: letters, digits, '.', '_', '-' (it is part of Redis key names and log lines). */
export const nodeName: ValueType<string> = {
  label: 'name',
  expects: 'a name of letters, digits, dots, underscores and dashes (at most 64)',
  parse(raw) {
    const v = singleToken(raw)
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(v)) throw new BadValue()
    return v
  },
  show: (v) => v,
}
