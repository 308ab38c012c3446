/**
 * The systemd unit and logrotate rule `midge install-service` writes: packaging/midge.service and
 * packaging/midge.logrotate (the files the package ships and docs/service.md explains), with the lines that
 * depend on the installation and on the configuration filled in. Pure text in, text out.
 */
import { dirname, isAbsolute, relative } from 'node:path'
import type { MidgeConfig } from '../config/types.js'

/** The folders the broker writes, from its configuration: store, log file, pid file, ACME state. */
export function writableFolders(cfg: MidgeConfig): string[] {
  const g = cfg.global
  const dirs: string[] = []
  // A relative (or unset) persistence_location is the working directory: the unit's /var/lib/midge.
  if (g.persistence && g.persistenceLocation !== undefined && isAbsolute(g.persistenceLocation)) dirs.push(g.persistenceLocation.replace(/\/+$/, ''))
  for (const d of g.logDest) if (d.kind === 'file') dirs.push(dirname(d.path))
  if (g.pidFile !== undefined) dirs.push(dirname(g.pidFile))
  if (g.acmeStateDir !== undefined && isAbsolute(g.acmeStateDir)) dirs.push(g.acmeStateDir.replace(/\/+$/, ''))
  return [...new Set(dirs)]
}

export interface UnitDirectories {
  runtime: string[]
  state: string[]
  logs: string[]
  /** Anywhere else: writable through ReadWritePaths=, owned by whoever made them. */
  other: string[]
}

/**
 * Sorts writable folders into systemd's managed directories: a folder under /run, /var/lib or /var/log is
 * named in RuntimeDirectory=, StateDirectory= or LogsDirectory=, so systemd creates it at each start, owned
 * by the service's user (and hands an existing one to that user) and makes it writable under
 * ProtectSystem=strict; Debian's /run/mosquitto, /var/lib/mosquitto and /var/log/mosquitto become the
 * service's this way. `midge` is always in each list: the unit's WorkingDirectory is /var/lib/midge.
 */
export function unitDirectories(folders: readonly string[]): UnitDirectories {
  const out: UnitDirectories = { runtime: ['midge'], state: ['midge'], logs: ['midge'], other: [] }
  const bases: Array<[string, string[]]> = [['/run', out.runtime], ['/var/run', out.runtime], ['/var/lib', out.state], ['/var/log', out.logs]]
  for (const f of folders) {
    const hit = bases.find(([base]) => { const r = relative(base, f); return r !== '' && !r.startsWith('..') && !isAbsolute(r) })
    if (hit === undefined) { out.other.push(f); continue }
    const name = relative(hit[0], f)
    if (!hit[1].includes(name)) hit[1].push(name)
  }
  return out
}

/** One ExecStart= word: quoted when it holds what systemd would split or expand. */
function execWord(w: string): string {
  if (!/[\s"'\\$%;]/.test(w)) return w
  return `"${w.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '$$$$').replace(/%/g, '%%')}"`
}

export interface UnitSettings {
  /** node, the installed bin/midge.js, and its arguments. */
  execStart: string[]
  user: string
  dirs: UnitDirectories
}

/** Replaces the value of `key=` in the [Service] section; throws if the template lacks it (the two files drifted). */
function setKey(text: string, key: string, value: string): string {
  const re = new RegExp(`^${key}=.*$`, 'm')
  if (!re.test(text)) throw new Error(`packaging/midge.service has no ${key}= line`)
  return text.replace(re, `${key}=${value}`)
}

/** packaging/midge.service with this installation's ExecStart, user and folders. */
export function renderUnit(template: string, s: UnitSettings): string {
  let t = template
  t = setKey(t, 'ExecStart', s.execStart.map(execWord).join(' '))
  t = setKey(t, 'User', s.user)
  t = setKey(t, 'Group', s.user)
  t = setKey(t, 'RuntimeDirectory', s.dirs.runtime.join(' '))
  t = setKey(t, 'StateDirectory', s.dirs.state.join(' '))
  t = setKey(t, 'LogsDirectory', s.dirs.logs.join(' '))
  if (s.dirs.other.length > 0) t = t.replace(/^(WorkingDirectory=.*)$/m, `$1\nReadWritePaths=${s.dirs.other.map(execWord).join(' ')}`)
  return t.replace(/^# The service runs as the user `midge`/m, `# The service runs as the user \`${s.user}\``)
}

/** packaging/midge.logrotate for the configuration's log file (if it logs to one) and the service's user. */
export function renderLogrotate(template: string, logFile: string, user: string, pidFile: string | undefined): string {
  let t = template.replace(/^\/var\/log\/midge\/midge\.log \{$/m, `${logFile} {`)
  t = t.replace(/^\tsu midge midge$/m, `\tsu ${user} ${user}`)
  if (pidFile !== undefined) t = t.split('/run/midge/midge.pid').join(pidFile)
  return t
}
