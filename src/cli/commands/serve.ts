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
 * allow_anonymous, logging), the password and ACL files are re-read, certificates are re-read, the log
 * file is reopened, and changes that need a restart are named in a warning. Connected clients stay.
 */
import { spawn } from 'node:child_process'
import { chownSync, existsSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type net from 'node:net'
import type tls from 'node:tls'
import { AclAuthorizer } from '../../auth/acl.js'
import { PasswordFileAuthenticator } from '../../auth/password-authenticator.js'
import { defaultBrokerOptions, type BrokerOptions, type ListenerInfo } from '../../broker/options.js'
import { parseServeArgs, resolveServeConfig, ServeUsage, type ServeArgs } from '../../config/args.js'
import { renderHelpConfig } from '../../config/doc.js'
import { ConfigError, ConfigInvalidError, formatWarning } from '../../config/errors.js'
import { brokerUser, checkWrite } from '../../config/file-access.js'
import { listenAddresses } from '../../config/listen-addresses.js'
import { restartNeeded } from '../../config/reload-diff.js'
import { OptionTable } from '../../config/schema.js'
import { isTlsListener, type ListenerConfig, type MidgeConfig } from '../../config/types.js'
import { createLogSinks, type LogSinkSet } from '../../observability/log-sinks.js'
import { Logger, stderrSink } from '../../observability/logger.js'
import { startServer, type ListenerPlan, type RunningServer } from '../../server.js'
import { checkTlsFiles, startTlsListener, type TlsListener } from '../../transport/tls.js'
import { VERSION } from '../../version.js'

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
  if (args.helpConfig) { process.stdout.write(renderHelpConfig()); return 0 }
  const cfg = loadOrReport(args)
  if (cfg === undefined) return 1
  // Like mosquitto -d: configuration errors are reported to the terminal before going to the background.
  if (args.daemon) return daemonize(argv)
  const runtime = new Runtime(args, cfg)
  if (!(await runtime.start())) return 1
  return runtime.untilStopped()
}

/** Loads the config; on errors prints each with its fix to stderr and returns undefined. */
function loadOrReport(args: ServeArgs): MidgeConfig | undefined {
  try {
    return resolveServeConfig(args)
  } catch (err) {
    const errors = err instanceof ConfigInvalidError ? err.errors : err instanceof ConfigError ? [err] : undefined
    if (errors === undefined) throw err
    for (const e of errors) process.stderr.write(`Error: ${e.message}\n${e.fix === undefined ? '' : `  fix: ${e.fix}\n`}`)
    process.stderr.write(`midge: ${errors.length} configuration error${errors.length === 1 ? '' : 's'}; not starting.\n`)
    return undefined
  }
}

/** `-d`: start a detached copy without -d and return at once, as mosquitto -d. */
function daemonize(argv: string[]): number {
  const rest = argv.filter((a) => a !== '-d' && a !== '--daemon')
  const script = process.argv[1]
  if (script === undefined) return 1
  const child = spawn(process.execPath, [script, ...rest], { detached: true, stdio: 'ignore' })
  child.unref()
  return 0
}

/** Password and ACL files, loaded once per distinct path and shared by the listeners naming them. */
class Security {
  readonly authenticators = new Map<string, PasswordFileAuthenticator>()
  readonly authorizers = new Map<string, AclAuthorizer>()

  /** Loads every file the config names; throws the first error (AuthError, already `file:line: …`). */
  static async load(cfg: MidgeConfig): Promise<Security> {
    const s = new Security()
    for (const l of cfg.listeners) {
      if (l.passwordFile !== undefined && !s.authenticators.has(l.passwordFile)) s.authenticators.set(l.passwordFile, await PasswordFileAuthenticator.fromFile(l.passwordFile))
      if (l.aclFile !== undefined && !s.authorizers.has(l.aclFile)) s.authorizers.set(l.aclFile, await AclAuthorizer.fromFile(l.aclFile))
    }
    const g = cfg.global.security
    if (g.passwordFile !== undefined && !s.authenticators.has(g.passwordFile)) s.authenticators.set(g.passwordFile, await PasswordFileAuthenticator.fromFile(g.passwordFile))
    if (g.aclFile !== undefined && !s.authorizers.has(g.aclFile)) s.authorizers.set(g.aclFile, await AclAuthorizer.fromFile(g.aclFile))
    return s
  }

  authenticator(file: string | undefined): PasswordFileAuthenticator | undefined {
    return file === undefined ? undefined : this.authenticators.get(file)
  }

  authorizer(file: string | undefined): AclAuthorizer | undefined {
    return file === undefined ? undefined : this.authorizers.get(file)
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
    authenticator: perListener ? undefined : sec.authenticator(g.passwordFile),
    authorizer: perListener ? undefined : sec.authorizer(g.aclFile),
  }
}

function applySecurity(info: ListenerInfo, l: ListenerConfig, cfg: MidgeConfig, sec: Security): void {
  info.allowAnonymous = l.allowAnonymous
  const authenticator = cfg.global.perListenerSettings ? sec.authenticator(l.passwordFile) : undefined
  const authorizer = cfg.global.perListenerSettings ? sec.authorizer(l.aclFile) : undefined
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
  security = new Security()
  server: RunningServer | undefined
  readonly tlsListeners: Array<{ index: number; listener: TlsListener }> = []
  /** One ListenerInfo per cfg.listeners entry, shared by its sockets and updated in place on reload. */
  infos: ListenerInfo[] = []
  pidFile: string | undefined
  private stopping: Promise<void> | undefined
  private resolveStopped: ((code: number) => void) | undefined
  private reloading = Promise.resolve()
  private readonly onHup = (): void => { this.reloading = this.reloading.then(() => this.reload()) }

  constructor(readonly args: ServeArgs, cfg: MidgeConfig) {
    this.cfg = cfg
    this.logger = new Logger({ types: cfg.global.logType, timestamp: cfg.global.logTimestamp, timestampFormat: cfg.global.logTimestampFormat })
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
      this.security = await Security.load(cfg)
    } catch (err) {
      return this.fail((err as Error).message)
    }
    for (const l of cfg.listeners) {
      if (!isTlsListener(l)) continue
      const problems = checkTlsFiles(tlsOptions(l))
      for (const p of problems) if (p.severity === 'warning') log.warning(`Warning: TLS listener ${l.name}: ${p.message}`)
      const errors = problems.filter((p) => p.severity === 'error')
      if (errors.length > 0) return this.fail(errors.map((p) => `TLS listener ${l.name} (${l.file}:${l.line}): ${p.message}`).join('\n'))
    }
    const ws = cfg.listeners.find((l) => l.protocol !== 'mqtt')
    if (ws !== undefined) return this.fail(`listener ${ws.port} (${ws.file}:${ws.line}): protocol ${ws.protocol} is not supported by this build of Midge yet`)
    let addresses: string[][]
    try {
      addresses = await Promise.all(cfg.listeners.map((l) => listenAddresses(l)))
    } catch (err) {
      return this.fail((err as Error).message)
    }

    this.infos = cfg.listeners.map((l) => {
      const info: ListenerInfo = { name: l.name, allowAnonymous: l.allowAnonymous, mountPoint: l.mountPoint, protocol: l.protocol }
      applySecurity(info, l, cfg, this.security)
      return info
    })
    const plain: ListenerPlan[] = []
    cfg.listeners.forEach((l, i) => {
      if (isTlsListener(l)) return
      for (const host of addresses[i] ?? []) {
        plain.push({ host, port: l.port, protocol: l.protocol, maxConnections: l.maxConnections, info: this.infos[i] as ListenerInfo })
      }
    })
    try {
      this.server = await startServer({
        broker: brokerOptions(cfg, log, this.security),
        listeners: plain,
        noDelay: g.setTcpNodelay,
        ...(g.persistence ? { persistence: { dir: g.persistenceLocation ?? process.cwd(), file: g.persistenceFile, fsync: false } } : {}),
      })
      for (let i = 0; i < cfg.listeners.length; i++) {
        const l = cfg.listeners[i] as ListenerConfig
        if (!isTlsListener(l)) continue
        for (const host of addresses[i] ?? []) {
          const info = this.infos[i] as ListenerInfo
          const broker = this.server.broker
          const listener = await startTlsListener({ ...tlsOptions(l), host, port: l.port, name: l.name, logger: log }, (socket: tls.TLSSocket, certUser) => {
            const meta = remote(socket as unknown as net.Socket)
            broker.handle(socket, info, certUser === undefined ? meta : { ...meta, certificateUsername: certUser })
          })
          this.tlsListeners.push({ index: i, listener })
        }
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
    if (user.switches && user.user !== undefined) {
      const u = user.user
      try {
        // A store file this start created belongs to root; hand it to the user that will write it.
        if (store !== undefined && !storeExisted && existsSync(store)) chownSync(store, u.uid, u.gid)
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
    process.on('SIGHUP', this.onHup)
    return true
  }

  private fail(message: string): false {
    this.logger.error(`Error: ${message}`)
    if (!this.logger.sinks.includes(stderrSink)) {
      // The configured log may be a file or a topic: the reason the start failed also goes to stderr.
      process.stderr.write(`midge: ${message}\n`)
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
      const a = listener.address()
      this.logger.notice(`Opening ${a.family === 'IPv6' ? 'ipv6' : 'ipv4'} TLS listen socket on ${a.address} port ${a.port} (listener ${(this.cfg.listeners[index] as ListenerConfig).name}).`)
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
      process.off('SIGHUP', this.onHup)
      await this.closeListeners()
      this.removePidFile()
      this.sinks?.close()
      this.resolveStopped?.(0)
    })()
    return this.stopping
  }

  private async closeListeners(): Promise<void> {
    await Promise.all(this.tlsListeners.map((t) => t.listener.close()))
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
      security = await Security.load(next)
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
    // Listeners stay as they are (changing them needs a restart); their security settings follow the file.
    if (!needRestart.includes('listener')) {
      next.listeners.forEach((l, i) => { const info = this.infos[i]; if (info !== undefined) applySecurity(info, l, next, security) })
    } else {
      this.cfg.listeners.forEach((l, i) => {
        const same = next.listeners.find((n) => n.port === l.port && n.bindAddress === l.bindAddress)
        const info = this.infos[i]
        if (same !== undefined && info !== undefined) applySecurity(info, same, next, security)
      })
    }
    this.security = security
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
  }
}
