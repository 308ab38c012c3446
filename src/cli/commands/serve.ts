/**
 * `midge [serve] [-c FILE] [-p PORT]... [-v] [-d]`: runs the broker, as mosquitto(8).
 *
 * Start: parse the command line (config/args.ts), load and validate the config (config/load.ts), load the
 * password and ACL files and check the TLS files, and only then open ports: any problem ends the process
 * with status 1 before a socket is bound. Then write pid_file, switch to `user` when started as root, and
 * log the config's warnings (e.g. a non-loopback listener that accepts anonymous clients).
 *
 * SIGHUP: reload the config. If the new one fails validation (or a password/ACL file in it does), the
 * running config stays and the reasons are logged. Otherwise reloadable options apply at once (limits,
 * allow_anonymous, logging, the auth_* throttle), the password and ACL files are re-read, certificates are
 * re-read, the log file is reopened, and changes that need a restart are named in a warning. Connected
 * clients stay.
 *
 * Password and ACL files are also re-read when they change on disk (auth/file-watch.ts); a broken edit is
 * logged and the previous contents stay in force. Every authenticator the broker gets sits behind one
 * shared AuthThrottle (auth/throttle.ts), so failures from an address count across all listeners.
 */
import { spawn } from 'node:child_process'
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type net from 'node:net'
import type tls from 'node:tls'
import { acmeListeners, acmeSettings } from '../../acme/from-config.js'
import type { RunningBridges } from '../../bridge/index.js'
import { describeAcmeError } from '../../acme/errors.js'
import type { AcmeManager, ManagedCertificate } from '../../acme/manager.js'
import { AclAuthorizer } from '../../auth/acl.js'
import { reloadOnChange, type FileWatch } from '../../auth/file-watch.js'
import { PasswordFileAuthenticator } from '../../auth/password-authenticator.js'
import { sharedHashThreads } from '../../auth/hash-threads.js'
import { AuthThrottle, ThrottledAuthenticator, type AuthThrottleSettings } from '../../auth/throttle.js'
import { anonymousAuthenticator, type Authenticator } from '../../auth/types.js'
import { defaultBrokerOptions, type BrokerOptions, type ListenerInfo } from '../../broker/options.js'
import { parseServeArgs, resolveServeConfig, ServeUsage, type ServeArgs } from '../../config/args.js'
import { ConfigError, ConfigInvalidError, formatWarning } from '../../config/errors.js'
import { brokerUser, checkWrite } from '../../config/file-access.js'
import { listenAddresses } from '../../config/listen-addresses.js'
import { restartNeeded } from '../../config/reload-diff.js'
import { OptionTable } from '../../config/schema.js'
import { isTlsListener, type ListenerConfig, type MidgeConfig } from '../../config/types.js'
import { createLogSinks, type LogSinkSet } from '../../observability/log-sinks.js'
import { Logger, stderrSink } from '../../observability/logger.js'
import { SystemdNotifier } from '../../observability/systemd-notify.js'
import { startServer, type ListenerPlan, type RunningServer } from '../../server.js'
import type { TlsListener, TlsProblem } from '../../transport/tls.js'
import { SysPublisher } from '../../broker/sys.js'
import { VERSION } from '../../version.js'

/*
 * What only some configs use is loaded by loadWhatConfigNeeds (half of the start-up time and ~10 MB of RSS
 * otherwise; docs/performance.md). It runs before the first port opens, so also before the switch away
 * from root: a module first loaded after it could be unreadable to the broker's user. A reload cannot add
 * TLS, websockets, ACME or bridges (they need a restart), so what start() loaded is all a reload needs.
 */
let checkTlsFiles: typeof import('../../transport/tls.js').checkTlsFiles
let startTlsListener: typeof import('../../transport/tls.js').startTlsListener
let tlsSysValues: typeof import('../../transport/tls.js').tlsSysValues
let TlsProblemCode: typeof import('../../transport/tls.js').TlsProblemCode
let startWssListener: typeof import('../../transport/wss.js').startWssListener
let AcmeManagerClass: typeof import('../../acme/manager.js').AcmeManager
let startBridges: typeof import('../../bridge/index.js').startBridges

async function loadWhatConfigNeeds(cfg: MidgeConfig): Promise<void> {
  if (cfg.listeners.some(isTlsListener)) ({ checkTlsFiles, startTlsListener, tlsSysValues, TlsProblemCode } = await import('../../transport/tls.js'))
  if (cfg.listeners.some((l) => isTlsListener(l) && l.protocol === 'websockets')) ({ startWssListener } = await import('../../transport/wss.js'))
  if (acmeListeners(cfg).length > 0) {
    ;({ AcmeManager: AcmeManagerClass } = await import('../../acme/manager.js'))
    // acme-client itself, which the first order would otherwise load after the switch away from root.
    await (await import('../../acme/order.js')).loadAcme()
  }
  if (cfg.bridges.length > 0) ({ startBridges } = await import('../../bridge/index.js'))
}

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
  const runtime = new Runtime(args, cfg)
  const started = await runtime.start()
  await toDaemonParent(started ? { ready: true } : undefined)
  if (!started) return 1
  void runtime.systemd.ready(runtime.status())
  return runtime.untilStopped()
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

/** The auth_* options as AuthThrottle settings. */
function throttleSettings(cfg: MidgeConfig): AuthThrottleSettings {
  const g = cfg.global
  return { failLimit: g.authFailLimit, failWindowMs: g.authFailWindow * 1000, banTimeMs: g.authBanTime * 1000, exemptLoopback: g.authFailExemptLoopback, maxPendingPerAddress: g.authMaxPendingPerAddress }
}

/**
 * Password and ACL files, loaded once per distinct path and shared by the listeners naming them, and the
 * authenticators handed to the broker: each password file's, and the one of listeners that refuse anonymous
 * clients without a password file, all behind the runtime's one AuthThrottle. A reload builds a new
 * Security (the running one stays untouched until the new one has loaded); the throttle carries over.
 */
class Security {
  readonly authenticators = new Map<string, PasswordFileAuthenticator>()
  readonly authorizers = new Map<string, AclAuthorizer>()
  private readonly throttled = new Map<string, ThrottledAuthenticator>()
  /** For listeners without a password file that refuse anonymous clients: their refusals count as failures. */
  private readonly refusing: ThrottledAuthenticator
  private watches: FileWatch[] = []

  constructor(readonly throttle: AuthThrottle, private readonly logger: Logger | undefined) {
    this.refusing = new ThrottledAuthenticator(anonymousAuthenticator, throttle, logger)
  }

  /** Loads every file the config names; throws the first error (AuthError, already `file:line: …`). */
  static async load(cfg: MidgeConfig, throttle: AuthThrottle, logger: Logger): Promise<Security> {
    const s = new Security(throttle, logger)
    const g = cfg.global.security
    for (const file of [...cfg.listeners.map((l) => l.passwordFile), g.passwordFile]) {
      if (file === undefined || s.authenticators.has(file)) continue
      const auth = await PasswordFileAuthenticator.fromFile(file, { maxQueuedHashes: cfg.global.authMaxQueuedHashes })
      s.authenticators.set(file, auth)
      s.throttled.set(file, new ThrottledAuthenticator(auth, throttle, logger))
    }
    for (const file of [...cfg.listeners.map((l) => l.aclFile), g.aclFile]) {
      if (file !== undefined && !s.authorizers.has(file)) s.authorizers.set(file, await AclAuthorizer.fromFile(file))
    }
    return s
  }

  /**
   * What a listener authenticates with: its password file's authenticator, or (none, refusing anonymous
   * clients) the broker's anonymous rule behind the throttle; undefined lets everyone in (the broker's default).
   */
  authenticator(file: string | undefined, allowAnonymous: boolean): Authenticator | undefined {
    if (file !== undefined) return this.throttled.get(file)
    return allowAnonymous ? undefined : this.refusing
  }

  authorizer(file: string | undefined): AclAuthorizer | undefined {
    return file === undefined ? undefined : this.authorizers.get(file)
  }

  /** Re-reads each file when it changes on disk, until close(). */
  watch(): void {
    const log = this.logger
    const failed = (file: string, what: string) => (err: unknown): void => {
      log?.error(`Error: ${(err as Error).message}`)
      log?.error(`Reload of ${what} ${file} failed: keeping its previous contents.`)
    }
    for (const [file, auth] of this.authenticators) {
      this.watches.push(reloadOnChange(auth, {
        onReload: (users) => log?.notice(`Password file ${file} changed: reloaded (${users} user${users === 1 ? '' : 's'}).`),
        onError: failed(file, 'password file'),
      }))
    }
    for (const [file, acl] of this.authorizers) {
      this.watches.push(reloadOnChange(acl, {
        onReload: (rules) => {
          log?.notice(`ACL file ${file} changed: reloaded.`)
          for (const w of rules.warnings) log?.warning(`Warning: ${w}`)
        },
        onError: failed(file, 'ACL file'),
      }))
    }
  }

  close(): void {
    for (const w of this.watches) w.close()
    this.watches = []
  }
}

/** Broker options from the config: defaults, then the file's values, then the objects built here. */
function brokerOptions(cfg: MidgeConfig, logger: Logger, sec: Security): Partial<BrokerOptions> {
  const g = cfg.global.security
  const perListener = cfg.global.perListenerSettings
  // Mosquitto's autosave_on_changes turns autosave_interval from seconds into a change count.
  const autosave = cfg.global.autosaveOnChanges
    ? { autosaveInterval: 0, autosaveOnChanges: cfg.global.autosaveInterval }
    : { autosaveInterval: cfg.global.autosaveInterval, autosaveOnChanges: 0 }
  return {
    ...cfg.broker,
    ...autosave,
    logger,
    // Every listener gets its own (applySecurity); these are the fallback the broker's API documents.
    // Never the refusing anonymous authenticator here: a listener that allows anonymous clients falls back to it.
    authenticator: perListener ? undefined : sec.authenticator(g.passwordFile, true),
    authorizer: perListener ? undefined : sec.authorizer(g.aclFile),
  }
}

/** A listener's effective security (ListenerConfig already resolves per_listener_settings against the global values). */
function applySecurity(info: ListenerInfo, l: ListenerConfig, sec: Security): void {
  info.allowAnonymous = l.allowAnonymous
  const authenticator = sec.authenticator(l.passwordFile, l.allowAnonymous)
  const authorizer = sec.authorizer(l.aclFile)
  if (authenticator === undefined) delete info.authenticator
  else info.authenticator = authenticator
  if (authorizer === undefined) delete info.authorizer
  else info.authorizer = authorizer
}

function remote(socket: net.Socket): { remoteAddress: string; remoteIp: string } {
  const ip = socket.remoteAddress ?? 'unknown'
  return { remoteAddress: ip.includes(':') ? `[${ip}]:${socket.remotePort}` : `${ip}:${socket.remotePort}`, remoteIp: ip }
}

class Runtime {
  cfg: MidgeConfig
  readonly logger: Logger
  sinks: LogSinkSet | undefined
  /** One for the process's life: bans survive config reloads. */
  readonly throttle: AuthThrottle
  security: Security
  server: RunningServer | undefined
  /** mosquitto.conf `connection` blocks; started last, stopped first. Not changed by SIGHUP (as in Mosquitto). */
  bridges: RunningBridges | undefined
  readonly tlsListeners: Array<{ index: number; listener: TlsListener }> = []
  /** acme_domain listeners: their certificate files (by listener index), and those waiting for a first certificate. */
  acme: AcmeManager | undefined
  readonly acmeFiles = new Map<number, ManagedCertificate>()
  readonly acmeWaiting = new Set<number>()
  private addresses: string[][] = []
  /** One ListenerInfo per cfg.listeners entry, shared by its sockets and updated in place on reload. */
  infos: ListenerInfo[] = []
  pidFile: string | undefined
  private stopping: Promise<void> | undefined
  private resolveStopped: ((code: number) => void) | undefined
  private reloading = Promise.resolve()
  /** Type=notify units: readiness, reloads and the stop are told to systemd (NOTIFY_SOCKET). */
  readonly systemd: SystemdNotifier
  private readonly onHup = (): void => {
    this.reloading = this.reloading.then(async () => {
      void this.systemd.reloading()
      try {
        await this.reload()
      } finally {
        // Also after a failed reload: the broker still serves, with the running configuration.
        void this.systemd.ready(this.status())
      }
    })
  }

  constructor(readonly args: ServeArgs, cfg: MidgeConfig) {
    this.cfg = cfg
    this.logger = new Logger({ types: cfg.global.logType, timestamp: cfg.global.logTimestamp, timestampFormat: cfg.global.logTimestampFormat })
    this.throttle = new AuthThrottle(throttleSettings(cfg))
    this.security = new Security(this.throttle, this.logger)
    this.systemd = new SystemdNotifier(process.env['NOTIFY_SOCKET'], this.logger)
  }

  /** One line for `systemctl status`: where the broker listens. */
  status(): string {
    const at = (a: net.AddressInfo): string => (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`)
    const plain = (this.server?.listeners ?? []).map((l) => at(l.address()))
    const tls = this.tlsListeners.flatMap(({ listener }) => listener.addresses().map((a) => `${at(a)} (TLS)`))
    const all = [...plain, ...tls]
    return all.length === 0 ? 'Running; no listener open yet' : `Running; listening on ${all.join(', ')}`
  }

  /** Everything up to the listeners being open. False (after logging why) when the broker cannot start. */
  async start(): Promise<boolean> {
    const cfg = this.cfg
    const log = this.logger
    try {
      this.sinks = createLogSinks(cfg.global.logDest)
    } catch (err) {
      process.stderr.write(`Error: cannot open the log file: ${(err as Error).message}\n`)
      return false
    }
    log.configure({ sinks: this.sinks.sinks })
    log.notice(`midge version ${VERSION} starting`)
    log.notice(cfg.file === '' ? 'Using default config.' : `Config loaded from ${cfg.file}.`)
    for (const w of cfg.warnings) log.warning(`Warning: ${formatWarning(w)}`)
    await loadWhatConfigNeeds(cfg)
    const user = brokerUser(cfg.global.user)
    if (user.error !== undefined) return this.fail(`${user.error} (the 'user' option)`)
    const g = cfg.global
    const store = g.persistence ? join(g.persistenceLocation ?? process.cwd(), g.persistenceFile) : undefined
    const storeExisted = store !== undefined && existsSync(store)
    if (store !== undefined && user.switches && user.user !== undefined) {
      // The broker writes its store after switching user: refuse now rather than fail at the first write.
      const problem = storeExisted
        ? checkWrite(`persistence file ${store}`, store, user.user, 'file')
        : checkWrite(`persistence_location ${dirname(store)}`, dirname(store), user.user, 'directory')
      if (problem !== undefined) return this.fail(`${problem.message}${problem.fix === undefined ? '' : `; fix: ${problem.fix}`}`)
    }

    // Everything that can be checked is checked before the first port opens.
    try {
      this.security = await Security.load(cfg, this.throttle, log)
    } catch (err) {
      return this.fail((err as Error).message)
    }
    const acmeProblem = this.setUpAcme(user.switches ? user.user : undefined)
    if (acmeProblem !== undefined) return this.fail(acmeProblem)
    const acmeForce: string[] = []
    for (const [i, l] of cfg.listeners.entries()) {
      if (!isTlsListener(l)) continue
      // Warnings are logged once, by startTlsListener; here only errors stop the start.
      const problems = checkTlsFiles(this.tlsOptions(i))
      const errors = problems.filter((p) => p.severity === 'error')
      const acme = this.acmeFiles.get(i)
      if (acme !== undefined && (errors.length > 0 || this.acme?.usable(acme) === undefined) && errors.every((p) => acmeObtainable(p, acme))) {
        // No usable certificate yet: the broker starts without this listener, which opens once ACME has one.
        this.acmeWaiting.add(i)
        if (errors.length > 0 && existsSync(acme.certfile)) acmeForce.push(acme.id)
        const why = existsSync(acme.certfile) ? errors[0]?.message ?? 'the one in the state directory has expired or lacks a name' : `none in ${dirname(acme.certfile)} yet`
        log.notice(`TLS listener ${l.name} waits for its certificate for ${acme.domains.join(', ')} (${why}); it opens once ACME has obtained one.`)
        continue
      }
      if (errors.length > 0) return this.fail(errors.map((p) => `TLS listener ${l.name} (${l.file}:${l.line}): ${p.message}`).join('\n'))
    }
    let addresses: string[][]
    try {
      addresses = await Promise.all(cfg.listeners.map((l) => listenAddresses(l)))
    } catch (err) {
      return this.fail((err as Error).message)
    }
    this.addresses = addresses

    this.infos = cfg.listeners.map((l) => {
      const info: ListenerInfo = { name: l.name, allowAnonymous: l.allowAnonymous, mountPoint: l.mountPoint, protocol: l.protocol }
      applySecurity(info, l, this.security)
      return info
    })
    const plain: ListenerPlan[] = []
    cfg.listeners.forEach((l, i) => {
      if (isTlsListener(l)) return
      for (const host of addresses[i] ?? []) {
        plain.push({ host, port: l.port, protocol: l.protocol, maxConnections: l.maxConnections, handshakeTimeoutMs: l.handshakeTimeout * 1000, info: this.infos[i] as ListenerInfo })
      }
    })
    try {
      this.server = await startServer({
        broker: brokerOptions(cfg, log, this.security),
        listeners: plain,
        noDelay: g.setTcpNodelay,
        // The store is read and compacted now, as root, so a restore never races the listeners; what it
        // creates is handed to the user the broker switches to below (persistence/log-store.ts).
        ...(g.persistence ? { persistence: { dir: g.persistenceLocation ?? process.cwd(), file: g.persistenceFile, fsync: g.persistenceFsync, owner: user.switches ? user.user : undefined } } : {}),
      })
      for (let i = 0; i < cfg.listeners.length; i++) {
        const l = cfg.listeners[i] as ListenerConfig
        if (!isTlsListener(l) || this.acmeWaiting.has(i)) continue
        await this.startTls(i)
      }
    } catch (err) {
      await this.closeListeners()
      return this.fail((err as Error).message)
    }
    this.logListeners()
    if (this.sinks.topic !== undefined) {
      const broker = this.server.broker
      this.sinks.topic.attach((topic, payload) => { broker.publish(topic, Buffer.from(payload), 0, false, undefined) })
    }

    if (cfg.global.pidFile !== undefined) {
      try {
        writeFileSync(cfg.global.pidFile, `${process.pid}\n`)
        this.pidFile = cfg.global.pidFile
      } catch (err) {
        await this.closeListeners()
        return this.fail(`cannot write pid_file ${cfg.global.pidFile}: ${(err as Error).message}`)
      }
    }
    if (this.acme !== undefined) {
      // Before dropping root: the state directory is created for the broker's user, and a challenge port
      // below 1024 is bound now (it could not be later) and kept.
      const c = acmeSettings(cfg).challenge
      try {
        await this.acme.prepare({ holdChallengePort: user.switches && c.kind === 'responder' && c.port < 1024 })
      } catch (err) {
        await this.closeListeners()
        this.removePidFile()
        return this.fail(`ACME: ${describeAcmeError(err)}`)
      }
    }
    if (user.switches && user.user !== undefined) {
      const u = user.user
      try {
        process.setgroups?.(u.groups)
        process.setgid?.(u.gid)
        process.setuid?.(u.uid)
        log.notice(`Changed user to '${u.name}'.`)
      } catch (err) {
        await this.closeListeners()
        this.removePidFile()
        return this.fail(`cannot switch to user '${u.name}': ${(err as Error).message}`)
      }
    }
    if (cfg.listeners.every((l) => l.implicit)) {
      log.notice('Starting in local only mode. Connections will only be possible from clients running on this machine.')
      log.notice('Create a configuration file which defines a listener to allow remote access.')
    }
    this.security.watch()
    process.on('SIGHUP', this.onHup)
    this.acme?.onCertificate((cert) => { void this.acmeInstalled(cert) })
    this.acme?.start({ force: acmeForce })
    // After the user switch, as Mosquitto: bridge certificates must be readable by the broker's user.
    if (cfg.bridges.length > 0) this.bridges = startBridges((this.server as RunningServer).broker, cfg.bridges, log)
    return true
  }

  /** Registers the acme_domain listeners' certificates. Returns an error message, or undefined. */
  private setUpAcme(owner: { uid: number; gid: number } | undefined): string | undefined {
    const wanted = acmeListeners(this.cfg)
    if (wanted.length === 0) return undefined
    this.acme = new AcmeManagerClass({ ...acmeSettings(this.cfg), logger: this.logger, owner })
    try {
      for (const { index, domains } of wanted) this.acmeFiles.set(index, this.acme.add(domains))
    } catch (err) {
      return `ACME: ${describeAcmeError(err)}`
    }
    return undefined
  }

  /** A new ACME certificate is on disk: reload the listeners serving it, or open those waiting for it. */
  private async acmeInstalled(cert: ManagedCertificate): Promise<void> {
    for (const [i, files] of this.acmeFiles) {
      if (files.id !== cert.id || this.stopping !== undefined) continue
      if (this.acmeWaiting.delete(i)) {
        try {
          const opened = await this.startTls(i)
          for (const listener of opened) {
            const a = listener.address()
            this.logger.notice(`Opening ${a.family === 'IPv6' ? 'ipv6' : 'ipv4'} TLS listen socket on ${a.address} port ${a.port} (listener ${(this.cfg.listeners[i] as ListenerConfig).name}).`)
          }
        } catch (err) {
          this.logger.error(`Error: ${(err as Error).message}`)
        }
        continue
      }
      for (const t of this.tlsListeners) if (t.index === i) await t.listener.reload()
    }
  }

  /** Opens listener `i` (TLS) on each of its addresses. */
  private async startTls(i: number): Promise<TlsListener[]> {
    const l = this.cfg.listeners[i] as ListenerConfig
    const info = this.infos[i] as ListenerInfo
    const broker = (this.server as RunningServer).broker
    // One listener per config block, over all its addresses: one certificate, one watcher, one log line.
    const options = { ...this.tlsOptions(i), host: this.addresses[i] ?? [], port: l.port, name: l.name, logger: this.logger }
    const listener = l.protocol === 'websockets'
      ? await startWssListener(broker, { ...options, info, noDelay: this.cfg.global.setTcpNodelay, maxConnections: l.maxConnections })
      : await startTlsListener(options, (socket: tls.TLSSocket, certUser) => {
        const meta = remote(socket as unknown as net.Socket)
        broker.handle(socket, info, certUser === undefined ? meta : { ...meta, certificateUsername: certUser })
      })
    this.tlsListeners.push({ index: i, listener })
    // $SYS/broker/tls/<listener>/certificate/{expires,days_left,subject,fingerprint}
    for (const [k, f] of tlsSysValues(l.name, listener)) SysPublisher.extra.set(k, f)
    return [listener]
  }

  /** TLS options of listener `i`: its certfile/keyfile, or the ACME state directory's files. */
  private tlsOptions(i: number): ReturnType<typeof tlsOptions> {
    const l = this.cfg.listeners[i] as ListenerConfig
    const acme = this.acmeFiles.get(i)
    return acme === undefined ? tlsOptions(l) : { ...tlsOptions(l), certfile: acme.certfile, keyfile: acme.keyfile, domain: acme.domains[0] }
  }

  private fail(message: string): false {
    this.logger.error(`Error: ${message}`)
    if (!this.logger.sinks.includes(stderrSink) || daemonChild) {
      // The configured log may be a file or a topic (or, under -d, stderr is /dev/null): the reason the
      // start failed also goes to the terminal.
      reportError(`midge: ${message}\n`)
    }
    this.sinks?.close()
    return false
  }

  private logListeners(): void {
    for (const l of this.server?.listeners ?? []) {
      const a = l.address()
      this.logger.notice(`Opening ${a.family === 'IPv6' ? 'ipv6' : 'ipv4'} listen socket on ${a.address} port ${a.port} (listener ${l.info.name}).`)
    }
    for (const { index, listener } of this.tlsListeners) {
      for (const a of listener.addresses()) {
        this.logger.notice(`Opening ${a.family === 'IPv6' ? 'ipv6' : 'ipv4'} TLS listen socket on ${a.address} port ${a.port} (listener ${(this.cfg.listeners[index] as ListenerConfig).name}).`)
      }
    }
  }

  untilStopped(): Promise<number> {
    return new Promise<number>((resolve) => {
      this.resolveStopped = resolve
      process.once('SIGINT', () => { void this.stop('SIGINT') })
      process.once('SIGTERM', () => { void this.stop('SIGTERM') })
    })
  }

  async stop(signal: string): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.notice(`midge version ${VERSION} terminating (${signal}).`)
      const told = this.systemd.stopping()
      process.off('SIGHUP', this.onHup)
      this.security.close()
      sharedHashThreads().release()
      // Bridges first: their final `0` notification and DISCONNECT go out while the broker still runs.
      await this.bridges?.stop()
      await this.closeListeners()
      this.removePidFile()
      this.sinks?.close()
      await told
      this.resolveStopped?.(0)
    })()
    return this.stopping
  }

  private async closeListeners(): Promise<void> {
    await this.acme?.close()
    await Promise.all(this.tlsListeners.map((t) => t.listener.close()))
    for (const t of this.tlsListeners) for (const [k] of tlsSysValues((this.cfg.listeners[t.index] as ListenerConfig).name, t.listener)) SysPublisher.extra.delete(k)
    this.tlsListeners.length = 0
    await this.server?.close()
  }

  private removePidFile(): void {
    if (this.pidFile === undefined) return
    try { rmSync(this.pidFile, { force: true }) } catch { /* after a user switch the directory may be root's */ }
  }

  /** SIGHUP. Validates everything new before changing anything. */
  async reload(): Promise<void> {
    const log = this.logger
    log.notice('Reloading config.')
    let next: MidgeConfig
    try {
      next = resolveServeConfig(this.args)
    } catch (err) {
      const errors = err instanceof ConfigInvalidError ? err.errors : [err as Error]
      for (const e of errors) log.error(`Error: ${e.message}`)
      log.error(`Reload failed: the configuration has ${errors.length} error${errors.length === 1 ? '' : 's'}; keeping the running configuration.`)
      return
    }
    let security: Security
    try {
      security = await Security.load(next, this.throttle, log)
    } catch (err) {
      log.error(`Error: ${(err as Error).message}`)
      log.error('Reload failed: keeping the running configuration.')
      return
    }
    let sinks: LogSinkSet | undefined
    const sameDest = JSON.stringify(next.global.logDest) === JSON.stringify(this.cfg.global.logDest)
    if (!sameDest) {
      try {
        sinks = createLogSinks(next.global.logDest)
      } catch (err) {
        log.error(`Error: cannot open the log file: ${(err as Error).message}`)
        log.error('Reload failed: keeping the running configuration.')
        return
      }
    }

    // From here on the new configuration is known to be good: apply it.
    const needRestart = restartNeeded(this.cfg, next)
    if (sinks !== undefined) {
      const old = this.sinks
      this.sinks = sinks
      if (sinks.topic !== undefined && this.server !== undefined) {
        const broker = this.server.broker
        sinks.topic.attach((topic, payload) => { broker.publish(topic, Buffer.from(payload), 0, false, undefined) })
      }
      old?.close()
    } else {
      try { this.sinks?.reopen() } catch (err) { log.error(`Error: cannot reopen the log file: ${(err as Error).message}`) }
    }
    log.configure({ types: next.global.logType, timestamp: next.global.logTimestamp, timestampFormat: next.global.logTimestampFormat, ...(this.sinks === undefined ? {} : { sinks: this.sinks.sinks }) })

    const broker = this.server?.broker
    if (broker !== undefined) {
      const defaults = defaultBrokerOptions()
      const opts = broker.options as unknown as Record<string, unknown>
      for (const o of OptionTable) {
        if (!o.reload || !('broker' in o.target)) continue
        const key = o.target.broker
        opts[key] = next.broker[key] ?? defaults[key]
      }
      for (const key of ['allowZeroLengthClientId', 'autoIdPrefix'] as const) opts[key] = next.broker[key] ?? defaults[key]
      const b = brokerOptions(next, log, security)
      opts['authenticator'] = b.authenticator
      opts['authorizer'] = b.authorizer
    }
    this.throttle.configure(throttleSettings(next))
    // Listeners stay as they are (changing them needs a restart); their security settings follow the file.
    if (!needRestart.includes('listener')) {
      next.listeners.forEach((l, i) => { const info = this.infos[i]; if (info !== undefined) applySecurity(info, l, security) })
    } else {
      this.cfg.listeners.forEach((l, i) => {
        const same = next.listeners.find((n) => n.port === l.port && n.bindAddress === l.bindAddress)
        const info = this.infos[i]
        if (same !== undefined && info !== undefined) applySecurity(info, same, security)
      })
    }
    this.security.close()
    this.security = security
    if (this.stopping === undefined) security.watch()
    for (const { listener } of this.tlsListeners) {
      try {
        if (!(await listener.reload())) log.warning('Warning: a TLS listener kept its previous certificate (see the messages above).')
      } catch (err) {
        log.error(`Error: certificate reload failed: ${(err as Error).message}`)
      }
    }
    const running = { ...next, listeners: needRestart.includes('listener') ? this.cfg.listeners : next.listeners }
    this.cfg = running
    for (const w of next.warnings) log.warning(`Warning: ${formatWarning(w)}`)
    if (needRestart.length > 0) {
      log.warning(`Warning: ${needRestart.map((n) => `'${n}'`).join(', ')} changed but ${needRestart.length === 1 ? 'needs' : 'need'} a restart to take effect.`)
    }
    log.notice('Configuration reloaded.')
  }
}

/** A refusal that a new certificate from ACME cures (rather than a mistake in the listener's options). */
function acmeObtainable(p: TlsProblem, files: ManagedCertificate): boolean {
  return p.file === files.certfile || p.file === files.keyfile || ([
    TlsProblemCode.CertExpired, TlsProblemCode.CertNotYetValid, TlsProblemCode.CertWrongName, TlsProblemCode.KeyMismatch, TlsProblemCode.ChainBroken,
  ] as string[]).includes(p.code)
}

function tlsOptions(l: ListenerConfig): Parameters<typeof checkTlsFiles>[0] & { certfile: string; keyfile: string } {
  return {
    name: l.name,
    host: l.bindAddress,
    certfile: l.certfile as string,
    keyfile: l.keyfile as string,
    cafile: l.cafile,
    capath: l.capath,
    crlfile: l.crlfile,
    tlsVersion: l.tlsVersion,
    ciphers: l.ciphers,
    ciphersTls13: l.ciphersTls13,
    requireCertificate: l.requireCertificate,
    useIdentityAsUsername: l.useIdentityAsUsername,
    useSubjectAsUsername: l.useSubjectAsUsername,
    handshakeTimeoutMs: l.handshakeTimeout * 1000,
    maxHandshakes: l.maxHandshakes,
    maxHandshakesPerAddress: l.maxHandshakesPerAddress,
  }
}
