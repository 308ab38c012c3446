/**
 * The broker's start-up checks: what `midge check` reports and what a start refuses on, one code path
 * (issue #13). A start runs them first (runtime.ts, before the log opens; preflight.ts then loads what they
 * checked), so a start that fails leaves no store, lock, log or pid file behind (and none owned by root);
 * `midge check` runs the same and prints the same sentences. A reload (SIGHUP) runs the `reload` phase,
 * the files it re-reads, as the broker's user, which it then is.
 *
 * Every file is examined as the broker's user (the privilege rule, docs/security.md): sockets are bound as
 * root, everything else is read or written as the user the broker drops to, at start, at every reload and
 * at the certificate renewal 60 days later. The only exceptions are what the rule hands over: files the
 * broker creates while still root, and the root-owned store and log file it owns by role (hand-over.ts).
 *
 * Nothing here changes the file system; the listener probe binds each address for an instant and closes it.
 */
import { accessSync, constants, closeSync, existsSync, lstatSync, openSync, readFileSync, readSync, statSync, type Stats } from 'node:fs'
import net from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { parseAcl } from '../auth/acl.js'
import { parsePasswordFile } from '../auth/password-file.js'
import type { SourceLocation } from '../config/errors.js'
import { brokerUser, checkRead, checkWrite, currentUser, type AccessProblem, type UserIdentity } from '../config/file-access.js'
import { reclaimable } from '../config/hand-over.js'
import { listenAddresses } from '../config/listen-addresses.js'
import { isTlsListener, type ListenerConfig, type MidgeConfig } from '../config/types.js'
import { describeListenError } from '../transport/tcp.js'

export interface Problem {
  loc: SourceLocation
  message: string
  fix: string | undefined
  severity: 'error' | 'warning'
}

export interface StartChecks {
  problems: Problem[]
  /** The user the broker runs as once started (undefined when the configured one does not exist). */
  user: UserIdentity | undefined
  /** True when the broker starts as root and drops to `user` after binding its sockets. */
  switches: boolean
}

export interface StartCheckOptions {
  /** `midge check --user NAME`. */
  user?: UserIdentity | undefined
  /**
   * `midge check --running` (and `midge init --force` beside its broker): the broker this config is for
   * (Midge, or the Mosquitto it replaces) is running, so its store lock and ports in use are warnings, not
   * problems: the rest is checked as a restart would find it once that broker has stopped.
   */
  running?: boolean | undefined
  /**
   * Whether a start as root would switch to the config's `user` (default true: `midge serve`, `midge
   * check`). An embedded broker (createBroker) never switches: its files are checked as the process.
   */
  dropPrivileges?: boolean | undefined
}

/**
 * `start` and `check`: everything. `reload`: what a reload re-reads (password, ACL and TLS files, the log
 * file), as the running process. The config's own warnings come first in `problems`.
 */
export async function startChecks(cfg: MidgeConfig, phase: 'start' | 'check' | 'reload', opts: StartCheckOptions = {}): Promise<StartChecks> {
  const userOverride = opts.user
  const problems: Problem[] = cfg.warnings.map((w) => ({ loc: w, message: w.message, fix: undefined, severity: 'warning' as const }))
  let user: UserIdentity | undefined
  let switches = false
  if (userOverride !== undefined) {
    user = userOverride
    switches = currentUser().uid === 0 && user.uid !== 0
  } else if (opts.dropPrivileges === false) {
    user = currentUser()
  } else {
    const bu = brokerUser(cfg.global.user)
    user = bu.user
    switches = bu.switches
    if (bu.error !== undefined) problems.push(err(cfg.global.origins['user'] ?? { file: cfg.file, line: 0 }, bu.error, `create the user, or set 'user' to an existing account`))
  }
  const c = new Checker(cfg, problems, switches ? user : undefined, phase === 'check' && opts.running === true)
  if (user !== undefined) {
    c.configFiles(user)
    c.authFiles(user)
    await c.tlsFiles(user)
    c.logFiles(user, switches)
    if (phase !== 'reload') {
      await c.store(user, switches)
      c.pidFile(user, switches)
      await c.acme(user)
      await c.bridges(user)
    }
  }
  if (phase !== 'reload') await c.listeners()
  c.cluster()
  return { problems, user, switches }
}

/** `file:line: message` and its `  fix:` line: how `midge check` and a refused start print a problem. */
export function formatProblem(p: Problem): string {
  const where = p.loc.file === '' ? '' : `${p.loc.line > 0 ? `${p.loc.file}:${p.loc.line}` : p.loc.file}: `
  return `${where}${p.severity === 'warning' ? 'warning: ' : ''}${p.message}${p.fix === undefined ? '' : `\n  fix: ${p.fix}`}`
}

function err(loc: SourceLocation, message: string, fix?: string): Problem {
  return { loc, message, fix, severity: 'error' }
}

class Checker {
  private readonly done = new Set<string>()

  constructor(readonly cfg: MidgeConfig, readonly problems: Problem[], readonly owner: UserIdentity | undefined, readonly running: boolean) {}

  private origin(l: ListenerConfig | undefined, option: string): SourceLocation {
    const cfg = this.cfg
    return (l === undefined ? undefined : l.origins[option]) ?? cfg.global.origins[option] ?? (l === undefined ? { file: cfg.file, line: 0 } : l)
  }

  /** Records `p` (if any) as an error at `loc`; true when there was none. */
  private access(loc: SourceLocation, p: AccessProblem | undefined, severity: 'error' | 'warning' = 'error'): boolean {
    if (p === undefined) return true
    this.problems.push({ loc, message: p.message, fix: p.fix, severity })
    return false
  }

  private once(key: string): boolean {
    if (this.done.has(key)) return false
    this.done.add(key)
    return true
  }

  /** The config and its include_dir files: a reload (SIGHUP) reads them again, as the broker's user. */
  configFiles(user: UserIdentity): void {
    // Only a start that switches users reads them as someone else later (config text has no file).
    if (this.owner === undefined) return
    for (const f of this.cfg.files) {
      const p = checkRead(`config file ${f}`, f, user)
      if (p !== undefined) this.problems.push(err({ file: '', line: 0 }, `${p.message}; a reload (SIGHUP) reads it as that user`, p.fix))
    }
  }

  authFiles(user: UserIdentity): void {
    const g = this.cfg.global.security
    const entries: Array<[ListenerConfig | undefined, 'password_file' | 'acl_file', string | undefined]> = [
      ...this.cfg.listeners.flatMap((l) => [[l, 'password_file', l.passwordFile], [l, 'acl_file', l.aclFile]] as Array<[ListenerConfig, 'password_file' | 'acl_file', string | undefined]>),
      [undefined, 'password_file', g.passwordFile], [undefined, 'acl_file', g.aclFile],
    ]
    for (const [l, option, file] of entries) {
      if (file === undefined || !this.once(`${option} ${file}`)) continue
      const loc = this.origin(l, option)
      if (!this.access(loc, checkRead(`${option} ${file}`, file, user))) continue
      try {
        const text = readFileSync(file, 'utf8')
        if (option === 'password_file') parsePasswordFile(text, file)
        else parseAcl(text, file)
      } catch (e) {
        this.problems.push(err(loc, `${option} ${file} is not valid: ${(e as Error).message}`))
      }
    }
  }

  /** certfile/keyfile/cafile/capath/crlfile of each TLS listener (ACME's own files are the ACME manager's). */
  async tlsFiles(user: UserIdentity): Promise<void> {
    const listeners = this.cfg.listeners.filter((l) => isTlsListener(l) && l.acmeDomains === undefined)
    if (listeners.length === 0) return
    const { checkTlsFiles } = await import('../transport/tls.js')
    for (const l of listeners) {
      let readable = true
      for (const [option, path] of [['certfile', l.certfile], ['keyfile', l.keyfile], ['cafile', l.cafile], ['crlfile', l.crlfile]] as const) {
        if (path !== undefined) readable = this.access(this.origin(l, option), checkRead(`${option} ${path}`, path, user)) && readable
      }
      if (l.capath !== undefined) readable = this.access(this.origin(l, 'capath'), checkRead(`capath ${l.capath}`, l.capath, user, 'directory')) && readable
      // Content checks only once every file can be read, so one cause is not reported twice.
      if (!readable || l.certfile === undefined || l.keyfile === undefined) continue
      const found = checkTlsFiles({
        name: l.name, host: l.bindAddress, certfile: l.certfile, keyfile: l.keyfile, cafile: l.cafile, capath: l.capath, crlfile: l.crlfile,
        tlsVersion: l.tlsVersion, ciphers: l.ciphers, ciphersTls13: l.ciphersTls13,
        requireCertificate: l.requireCertificate, useIdentityAsUsername: l.useIdentityAsUsername, useSubjectAsUsername: l.useSubjectAsUsername,
      }, user)
      for (const p of found) {
        const option = p.file === l.keyfile ? 'keyfile' : p.file === l.cafile ? 'cafile' : p.file === l.capath ? 'capath' : 'certfile'
        this.problems.push({ loc: this.origin(l, option), message: p.message, fix: undefined, severity: p.severity })
      }
    }
  }

  /**
   * The log file: written by the broker's user. Created now (as root, then handed over) or reclaimed when
   * root owns it; after logrotate moved it, the user creates the next one, so its folder should be the user's.
   */
  logFiles(user: UserIdentity, switches: boolean): void {
    const loc = this.origin(undefined, 'log_dest')
    for (const d of this.cfg.global.logDest) {
      if (d.kind !== 'file' || !this.once(`log ${d.path}`)) continue
      const label = `log_dest file ${d.path}`
      if (process.geteuid?.() === 0 && isLink(d.path)) {
        // The log sink as root opens with O_NOFOLLOW (log-sinks.ts): a link could aim root's writes anywhere.
        this.problems.push(err(loc, `${label} is a symbolic link; a broker running as root does not write its log through one`, `point log_dest at the file itself`))
        continue
      }
      if (existsSync(d.path)) {
        if (!reclaimable(d.path, this.owner)) this.access(loc, checkWrite(label, d.path, user, 'file'))
      } else if (switches) {
        if (!this.access(loc, checkWrite(label, d.path, currentUser(), 'file'))) continue
      } else if (!this.access(loc, checkWrite(label, d.path, user, 'file'))) continue
      if (switches) {
        const rotate = checkWrite(`${label} (directory ${dirname(d.path)})`, join(dirname(d.path), 'x'), user, 'file')
        if (rotate !== undefined) this.problems.push({ loc, message: `${rotate.message}: after logrotate moves the file away, the broker cannot create the next one`, fix: rotate.fix, severity: 'warning' })
      }
    }
  }

  /** persistence_location writable by the user, the store file writable (or reclaimed) and recognised, its lock free. */
  async store(user: UserIdentity, switches: boolean): Promise<void> {
    const g = this.cfg.global
    // In a cluster the store is in Redis (src/cluster/cluster-store.ts): no file to check.
    if (!g.persistence || g.clusterRedis !== undefined) return
    const dir = resolve(g.persistenceLocation ?? process.cwd())
    const file = join(dir, g.persistenceFile)
    const loc = g.origins['persistence_location'] ?? this.origin(undefined, 'persistence')
    const fileLoc = g.origins['persistence_file'] ?? loc
    if (!existsSync(dir)) {
      // Made at start by whoever starts the broker, then handed to the user (log-store.ts makeStoreDir).
      this.access(loc, creatable(`persistence_location ${dir}`, dir, switches ? currentUser() : user))
      return
    }
    if (!this.access(loc, checkWrite(`persistence_location ${dir}`, dir, user, 'directory'))) return
    if (process.geteuid?.() === 0 && isLink(file)) {
      // Root reads, truncates and appends to the store before the switch: a link could aim that at any file.
      this.problems.push(err(fileLoc, `persistence file ${file} is a symbolic link; a broker started as root does not read or write its store through one`, `replace the link with the store file itself, or point persistence_location at the folder that holds it`))
      return
    }
    if (!existsSync(file)) return
    if (!reclaimable(file, this.owner) && !this.access(fileLoc, checkWrite(`persistence file ${file}`, file, user, 'file'))) return
    const unknown = await unrecognisedStore(file)
    if (unknown !== undefined) this.problems.push(err(fileLoc, unknown, `move ${file} away (or set persistence_file to another name); the broker then starts with an empty store`))
    const { storeLockHolder, lockedMessage } = await import('../persistence/store-lock.js')
    const holder = storeLockHolder(file)
    if (holder === undefined) return
    if (!this.running) {
      this.problems.push(err(loc, lockedMessage(file, holder)))
      return
    }
    this.problems.push({ loc, message: `the store ${file} is in use by the running broker (pid ${holder.pid}); not a problem with --running`, fix: undefined, severity: 'warning' })
  }

  /** cluster_workers: the worker processes form a cluster, which needs its Redis. */
  cluster(): void {
    const g = this.cfg.global
    if (g.clusterWorkers > 0 && g.clusterRedis === undefined) {
      this.problems.push(err(this.origin(undefined, 'cluster_workers'), `cluster_workers ${g.clusterWorkers} (or --workers) needs cluster_redis: the workers share clients and messages through Redis`, 'add `cluster_redis redis://127.0.0.1:6379` (a Redis the workers can reach), or remove cluster_workers'))
    }
  }

  /**
   * pid_file: written at start by whoever starts the broker (root, before the drop: `/run/x.pid` works) and
   * handed to the user; its folder is created (for the user) when missing. The user removes it at stop.
   */
  pidFile(user: UserIdentity, switches: boolean): void {
    const pid = this.cfg.global.pidFile
    if (pid === undefined) return
    const loc = this.origin(undefined, 'pid_file')
    const dir = dirname(resolve(pid))
    const writer = switches ? currentUser() : user
    if (!existsSync(dir)) {
      this.access(loc, creatable(`pid_file ${pid}`, dir, writer))
      return
    }
    if (!this.access(loc, checkWrite(`pid_file ${pid}`, pid, writer, 'file'))) return
    if (!writableByProcess(dir, writer)) {
      this.problems.push(err(loc, `pid_file ${pid}: cannot write in the directory ${dir} (read-only file system)`))
      return
    }
    if (switches) {
      const remove = checkWrite(`pid_file ${pid} (directory ${dir})`, join(dir, 'x'), user, 'file')
      if (remove !== undefined) this.problems.push({ loc, message: `${remove.message}: the pid file stays behind when the broker stops`, fix: remove.fix, severity: 'warning' })
    }
  }

  /** ACME: acme-client loads (it must, before the drop), and the state folder is the user's to write. */
  async acme(user: UserIdentity): Promise<void> {
    if (!this.cfg.listeners.some((l) => l.acmeDomains !== undefined)) return
    const loc = this.origin(undefined, 'acme_state_dir')
    const at = this.cfg.listeners.find((l) => l.acmeDomains !== undefined) as ListenerConfig
    try {
      await (await import('../acme/order.js')).loadAcme()
    } catch (e) {
      this.problems.push(err(this.origin(at, 'acme_domain'), `ACME: cannot load the acme-client package: ${(e as Error).message}`, 'reinstall Midge (npm install -g midge) where root can read it'))
    }
    const { acmeSettings } = await import('../acme/from-config.js')
    const dir = resolve(acmeSettings(this.cfg).stateDir)
    if (!existsSync(dir)) {
      this.access(loc, creatable(`acme_state_dir ${dir}`, dir, this.owner === undefined ? user : currentUser()))
      return
    }
    if (!this.access(loc, checkWrite(`acme_state_dir ${dir}`, dir, user, 'directory'))) return
    for (const sub of ['certs', 'http-01']) {
      const d = join(dir, sub)
      if (existsSync(d) && !this.access(loc, checkWrite(`acme_state_dir ${dir}: ${sub}`, d, user, 'directory'))) return
    }
    const key = join(dir, 'account.key')
    if (existsSync(key)) this.access(loc, checkRead(`acme_state_dir ${dir}: account.key`, key, user))
  }

  async bridges(user: UserIdentity): Promise<void> {
    if (this.cfg.bridges.length === 0) return
    const { checkBridgeFiles } = await import('../config/bridge-check.js')
    for (const b of this.cfg.bridges) {
      for (const p of checkBridgeFiles(b, user, this.cfg.file)) this.problems.push(err(p.loc, p.message, p.fix))
    }
  }

  /**
   * Each listener's addresses, resolved as the start resolves them, then bound for an instant: an address
   * this machine does not have, or a port another process holds, is found here rather than by a start
   * that has already loaded its store.
   */
  async listeners(): Promise<void> {
    let unprivilegedFrom = 1024
    try { unprivilegedFrom = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim()) } catch { /* not Linux */ }
    const root = currentUser().uid === 0
    for (const l of this.cfg.listeners) {
      const name = `listener ${l.port}${l.bindAddress === undefined ? '' : ` ${l.bindAddress}`}`
      let addresses: string[]
      try {
        addresses = await listenAddresses(l)
      } catch (e) {
        const m = (e as Error).message
        this.problems.push(err(l.bindInterface !== undefined ? this.origin(l, 'bind_interface') : l, m.startsWith('bind_interface') ? m : `${name}: cannot resolve '${l.bindAddress}' to an address (${m})`))
        continue
      }
      if (!root && l.port !== 0 && l.port < unprivilegedFrom) {
        if (!l.implicit) this.problems.push({ loc: l, message: `${name}: ports below ${unprivilegedFrom} need root or CAP_NET_BIND_SERVICE, and this check runs as an unprivileged user`, fix: 'start the broker as root (it switches to `user` after opening its ports) or use a port above 1023', severity: 'warning' })
        continue
      }
      for (const host of addresses) {
        const e = await probe(host, l.port)
        if (e === undefined) continue
        if (this.running && e.code === 'EADDRINUSE') {
          this.problems.push({ loc: l, message: `${name}: ${describeListenError(host, l.port, e)}; not a problem with --running (the running broker holds it)`, fix: undefined, severity: 'warning' })
          continue
        }
        // ::1 is optional for the local-only default: a host without IPv6 still gets 127.0.0.1.
        if (l.implicit && host === '::1' && e.code === 'EADDRNOTAVAIL') continue
        this.problems.push(err(l, `${name}: ${describeListenError(host, l.port, e)}`))
      }
    }
  }
}

/** Binds host:port for an instant, as transport/tcp.ts binds it. undefined when it could, else the error. */
function probe(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((done) => {
    const s = net.createServer()
    s.once('error', (e: NodeJS.ErrnoException) => done(e))
    s.listen({ host, port, ipv6Only: host.includes(':') }, () => s.close(() => done(undefined)))
  })
}

/** Can `who` create the directory `dir` (missing): its nearest existing ancestor is a directory `who` may write? */
function creatable(label: string, dir: string, who: UserIdentity): AccessProblem | undefined {
  let d = resolve(dir)
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d)
  let st: Stats
  try { st = statSync(d) } catch (e) { return { message: `${label}: ${(e as Error).message}`, fix: undefined } }
  if (!st.isDirectory()) return { message: `${label}: cannot create the directory ${dir}: ${d} is not a directory`, fix: `remove ${d}, or choose another path` }
  const p = checkWrite(label, d, who, 'directory')
  if (p !== undefined) return p
  if (!writableByProcess(d, who)) return { message: `${label}: cannot create the directory ${dir}: ${d} is on a read-only file system`, fix: undefined }
  return undefined
}

/** Mode bits do not see a read-only mount: access(2) does, when `who` is this process. */
function writableByProcess(dir: string, who: UserIdentity): boolean {
  if (who.uid !== currentUser().uid) return true
  try {
    accessSync(dir, constants.W_OK)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'EROFS'
  }
}

/** Why the store file is not one the broker can load (neither Midge's nor Mosquitto's), or undefined. */
async function unrecognisedStore(file: string): Promise<string | undefined> {
  const head = Buffer.alloc(16)
  let n = 0
  try {
    const fd = openSync(file, 'r')
    try { n = readSync(fd, head, 0, head.length, 0) } finally { closeSync(fd) }
  } catch (e) {
    return `persistence file ${file}: cannot read it (${(e as Error).message})`
  }
  if (n === 0) return undefined
  const [{ StoreMagic, FormatVersion }, { isMosquittoDb }] = await Promise.all([import('../persistence/log-store.js'), import('../persistence/mosquitto-db/format.js')])
  if (isMosquittoDb(head.subarray(0, n))) return undefined
  if (n >= StoreMagic.length + 4 && head.subarray(0, StoreMagic.length).equals(StoreMagic)) {
    const version = head.readUInt32BE(StoreMagic.length)
    return version === FormatVersion ? undefined : `persistence file ${file}: store format version ${version} is not readable by this Midge (it reads version ${FormatVersion})`
  }
  return `persistence file ${file} is neither a Midge store nor a Mosquitto one (it starts with ${JSON.stringify(head.subarray(0, Math.min(n, 8)).toString('latin1'))})`
}

function isLink(path: string): boolean {
  try { return lstatSync(path).isSymbolicLink() } catch { return false }
}
