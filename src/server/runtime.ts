/**
 * The one assembly point: startMidge(config) builds a running Midge (the broker, every listener kind the
 * config names: mqtt, websockets, TLS, wss, and ACME-managed TLS waiting for its certificate; the log
 * sinks, password and ACL files, bridges) and returns a handle to reload or close it. `midge serve` and an
 * embedding application (src/index.ts createBroker) both start through it; the CLI adds only what belongs
 * to a process (arguments, signals, -d, systemd, the terminal).
 *
 * `protocol http` blocks (monitoring: /metrics, /healthz; the dashboard: dashboard/) are built here too, plain
 * or TLS (http-listener.ts).
 *
 * The start, in order (startMidge below names each phase):
 *   0. checks     the start-up checks `midge check` runs (start-checks.ts), before anything is opened or
 *                 created: a refused start leaves no log, store, lock or pid file behind
 *   1. log        hand root-owned store and log files to the broker's user, open the log sinks; "midge
 *                 version … starting", the config's warnings
 *   2. preflight  load what the checks covered (preflight.ts): the password/ACL files, ACME registrations,
 *                 TLS files, listen addresses
 *   3. listen     read the store, open the plain and websockets listeners, then the TLS ones
 *   4. pid file   pid_file, when configured
 *   5. acme       the state directory, and a challenge port below 1024 held while still root
 *   6. privileges only with dropPrivileges (`midge serve` started as root): switch to the config's `user`
 *   7. run        file watches, ACME's schedule, bridges (after the switch, as Mosquitto: bridge
 *                 certificates must be readable by the broker's user)
 * A failing phase closes what the earlier ones opened, logs `Error: <reason>` and rejects with StartFailure.
 */
import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type net from 'node:net'
import type { RunningBridges } from '../bridge/index.js'
import type { Cluster, ClusterStore } from '../cluster/index.js'
import { acmeSettings } from '../acme/from-config.js'
import { describeAcmeError } from '../acme/errors.js'
import type { ManagedCertificate } from '../acme/manager.js'
import { AuthThrottle } from '../auth/throttle.js'
import type { Broker } from '../broker/broker.js'
import type { BrokerOptions, ListenerInfo } from '../broker/options.js'
import { formatWarning } from '../config/errors.js'
import { isTlsListener, type ListenerConfig, type MidgeConfig } from '../config/types.js'
import { createLogSinks, type LogSinkSet } from '../observability/log-sinks.js'
import { Logger, stderrSink, type LogSink } from '../observability/logger.js'
import type { TlsListener } from '../transport/tls.js'
import { VERSION } from '../version.js'
import type { AcmeListeners } from './acme-listeners.js'
import { brokerOptions } from './broker-options.js'
import { loadOptionalModules, loaded, type OptionalModules } from './optional-modules.js'
import { reclaimOwnedFiles } from './owned-files.js'
import { removePidFile, writePidFile } from './pid-file.js'
import { preflight, type Preflight } from './preflight.js'
import { reloadRuntime, type ReloadSource } from './reload.js'
import type { HttpListener } from './http-listener.js'
import type { EventLoopLag } from './metrics.js'
import type { DashboardHub } from './dashboard/hub.js'
import { LogRing } from './dashboard/log-ring.js'
import type { DashboardSite } from './dashboard/site.js'
import { applySecurity, Security, throttleSettings } from './security.js'
import { formatProblem, startChecks, type StartChecks } from './start-checks.js'
import { Refused, StartFailure } from './start-failure.js'
import { startServer, type ListenerPlan, type RunningServer } from './start-server.js'
import { switchUser } from './switch-user.js'
import { closeTlsListener, openTlsListener, tlsOptions, type TlsOpenContext } from './tls-listeners.js'
import { hostPort } from '../transport/peer-address.js'

export interface StartOptions {
  /**
   * Started as root, switch to the config's `user` once the listeners are bound (mosquitto's behaviour;
   * `midge serve` only). An embedded broker leaves the process's identity alone: never setuid.
   */
  dropPrivileges?: boolean
  /** BrokerOptions that win over the config's, at start and after every reload (createBroker's overrides). */
  broker?: Partial<BrokerOptions>
  /** Where log lines go instead of the config's log_dest (an embedding application's own logger; [] = nowhere). */
  logSinks?: LogSink[]
  /** One of the processes `midge --workers N` runs: its index names it in the cluster; the supervisor keeps pid_file. */
  worker?: number
}

export type ListenerKind = 'mqtt' | 'websockets' | 'tls' | 'wss' | 'http' | 'https'

/** One listener block of the config, as running now. */
export interface RuntimeListener {
  name: string
  kind: ListenerKind
  config: ListenerConfig
  /** 'waiting': an acme_domain listener that opens once ACME has obtained its certificate. */
  state: 'open' | 'waiting'
  /** Bound addresses, port 0 resolved; empty while waiting. */
  addresses: net.AddressInfo[]
}

/** What a runtime tells: a listener that waited for its ACME certificate has opened; a reload applied or not. */
export interface RuntimeEvents {
  listening: [listener: RuntimeListener]
  reloaded: [applied: boolean]
}

export class MidgeRuntime {
  readonly logger: Logger
  readonly options: StartOptions
  /** One for the runtime's life: bans survive config reloads. */
  readonly throttle: AuthThrottle
  /** @internal fields below are the runtime's state, read by reload.ts. */
  cfg: MidgeConfig
  sinks: LogSinkSet | undefined
  security: Security
  server: RunningServer | undefined
  modules: OptionalModules = { tls: undefined, wss: undefined, acme: undefined, bridges: undefined }
  /** mosquitto.conf `connection` blocks; started last, stopped first. Not changed by a reload (as in Mosquitto). */
  bridges: RunningBridges | undefined
  /** cluster_redis: this node of the cluster (src/cluster/); joined before the listeners open, left before they close. */
  cluster: Cluster | undefined
  private clusterStore: ClusterStore | undefined
  readonly tlsListeners: Array<{ index: number; listener: TlsListener }> = []
  /** `protocol http` blocks by listener index (their TLS sockets come from tlsListeners). */
  readonly httpListeners = new Map<number, HttpListener>()
  private lag: EventLoopLag | undefined
  /** The dashboards of the http listeners (by listener index) and what they share. */
  private dashboard: DashboardHub | undefined
  private readonly sites: DashboardSite[] = []
  /** With an http listener: the recent log lines its dashboard shows, from the first line of the start on. */
  readonly logRing: LogRing | undefined
  acme: AcmeListeners | undefined
  /** One ListenerInfo per cfg.listeners entry, shared by its sockets and updated in place on reload. */
  infos: ListenerInfo[] = []
  private addresses: string[][] = []
  private pidFile: string | undefined
  private closing: Promise<void> | undefined
  private reloading: Promise<unknown> = Promise.resolve()
  private readonly events = new EventEmitter()

  constructor(cfg: MidgeConfig, options: StartOptions = {}) {
    this.cfg = cfg
    this.options = options
    this.logger = new Logger({ types: cfg.global.logType, timestamp: cfg.global.logTimestamp, timestampFormat: cfg.global.logTimestampFormat })
    this.throttle = new AuthThrottle(throttleSettings(cfg))
    this.security = new Security(this.throttle, this.logger)
    if (cfg.listeners.some((l) => l.protocol === 'http')) {
      this.logRing = new LogRing()
      this.logger.taps.push(this.logRing)
    }
  }

  on<E extends keyof RuntimeEvents>(event: E, fn: (...args: RuntimeEvents[E]) => void): this {
    this.events.on(event, fn as (...args: unknown[]) => void)
    return this
  }

  off<E extends keyof RuntimeEvents>(event: E, fn: (...args: RuntimeEvents[E]) => void): this {
    this.events.off(event, fn as (...args: unknown[]) => void)
    return this
  }

  /** Calls the application's listeners; one that throws is logged (never a rejection nobody handles). */
  private emit<E extends keyof RuntimeEvents>(event: E, ...args: RuntimeEvents[E]): void {
    for (const fn of this.events.listeners(event) as Array<(...a: unknown[]) => void>) {
      try {
        fn(...args)
      } catch (err) {
        this.logger.error(`A '${event}' listener threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
      }
    }
  }

  get config(): MidgeConfig {
    return this.cfg
  }

  get broker(): Broker {
    if (this.server === undefined) throw new Error('the broker has not started')
    return this.server.broker
  }

  get closed(): boolean {
    return this.closing !== undefined
  }

  /** Every listener block of the running config, with what it is bound to. */
  listeners(): RuntimeListener[] {
    return this.cfg.listeners.map((l, i) => {
      const tls = this.tlsListeners.find((t) => t.index === i)
      const kind = listenerKind(l)
      const info = this.infos[i]
      const http = this.httpListeners.get(i)
      const addresses = tls !== undefined
        ? tls.listener.addresses()
        : http !== undefined ? http.addresses() : (this.server?.listeners ?? []).filter((r) => r.info === info).map((r) => r.address())
      return { name: l.name, kind, config: l, state: this.acme?.waiting.has(i) === true ? 'waiting' : 'open', addresses }
    })
  }

  /** One line for `systemctl status`: where the broker listens. */
  status(): string {
    const at = (a: net.AddressInfo): string => hostPort(a.address, a.port)
    const plain = (this.server?.listeners ?? []).map((l) => at(l.address()))
    const tls = this.tlsListeners.flatMap(({ listener }) => listener.addresses().map((a) => `${at(a)} (TLS)`))
    const http = [...this.httpListeners.values()].flatMap((h) => h.addresses().map((a) => `${at(a)} (HTTP)`))
    const all = [...plain, ...tls, ...http]
    return all.length === 0 ? 'Running; no listener open yet' : `Running; listening on ${all.join(', ')}`
  }

  /**
   * Applies a new config (SIGHUP), validating everything new before changing anything: on a bad config the
   * running one stays and the reasons are logged. `next` may be a loader, so its errors are logged the same
   * way. Reloads run one at a time. Resolves to whether the new config was applied.
   */
  reload(next: ReloadSource): Promise<boolean> {
    const done = this.reloading.then(() => reloadRuntime(this, next))
    this.reloading = done.catch(() => undefined)
    void done.then((ok) => this.emit('reloaded', ok), () => undefined)
    return done
  }

  /**
   * Stops everything the start opened: file watches, bridges (their final notification and DISCONNECT go out
   * while the broker still runs), ACME, the listeners and the broker (saving the store), the pid file, the log.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.security.close()
      await this.bridges?.stop()
      await this.closeListeners()
      this.removePidFile()
      this.sinks?.close()
    })()
    return this.closing
  }

  /**
   * @internal The phases of startMidge. The start-up checks, as `midge check` runs them: on a problem,
   * nothing has been opened or created; the reasons go to stderr (or the application's sinks).
   */
  async check(): Promise<StartChecks> {
    const checks = await startChecks(this.cfg, 'start', { dropPrivileges: this.options.dropPrivileges === true })
    const refused = checks.problems.filter((p) => p.severity === 'error')
    if (refused.length === 0) return checks
    const message = `${refused.map(formatProblem).join('\n')}\n${refused.length} problem${refused.length === 1 ? '' : 's'}; not starting`
    if (this.options.logSinks !== undefined) this.logger.configure({ sinks: this.options.logSinks })
    this.logger.error(`Error: ${message}`)
    throw new StartFailure(message, true, this.logger.sinks.includes(stderrSink))
  }

  /** @internal `owner`: the broker's user when the start switches to it, who gets the log file. */
  async openLog(checks: StartChecks): Promise<void> {
    const cfg = this.cfg
    const owner = this.options.dropPrivileges === true && checks.switches ? checks.user : undefined
    const reclaimed = reclaimOwnedFiles(cfg, owner)
    try {
      this.sinks = this.options.logSinks === undefined ? createLogSinks(cfg.global.logDest, owner) : fixedSinks(this.options.logSinks)
    } catch (err) {
      throw new StartFailure(`cannot open the log file: ${(err as Error).message}`, false, false)
    }
    this.logger.configure({ sinks: this.sinks.sinks })
    this.logger.notice(`midge version ${VERSION} starting`)
    this.logger.notice(cfg.file === '' ? 'Using default config.' : `Config loaded from ${cfg.file}.`)
    for (const w of cfg.warnings) this.logger.warning(`Warning: ${formatWarning(w)}`)
    // The checks' own warnings (after the config's, which they repeat first).
    for (const p of checks.problems.slice(cfg.warnings.length)) this.logger.warning(`Warning: ${formatProblem(p).replace(': warning: ', ': ')}`)
    for (const line of reclaimed) this.logger.notice(line)
    this.modules = await loadOptionalModules(cfg)
  }

  /** @internal */
  async preflight(): Promise<Preflight> {
    const checked = await preflight(this.cfg, { logger: this.logger, modules: this.modules, throttle: this.throttle, dropPrivileges: this.options.dropPrivileges === true })
    this.security = checked.security
    this.acme = checked.acme
    this.addresses = checked.addresses
    return checked
  }

  /** @internal The store, then the plain and websockets listeners, then the TLS ones. */
  async listen(checked: Preflight): Promise<void> {
    const cfg = this.cfg
    const g = cfg.global
    const user = checked.user
    this.infos = cfg.listeners.map((l) => {
      const info: ListenerInfo = { name: l.name, allowAnonymous: l.allowAnonymous, mountPoint: l.mountPoint, protocol: l.protocol }
      applySecurity(info, l, this.security)
      return info
    })
    const plain: ListenerPlan[] = []
    cfg.listeners.forEach((l, i) => {
      if (isTlsListener(l) || l.protocol === 'http') return
      for (const host of this.addresses[i] ?? []) {
        plain.push({ host, port: l.port, protocol: l.protocol as 'mqtt' | 'websockets', maxConnections: l.maxConnections, handshakeTimeoutMs: l.handshakeTimeout * 1000, info: this.infos[i] as ListenerInfo })
      }
    })
    try {
      // In a cluster, persistence is in the cluster's Redis (cluster-store.ts), not in a file.
      const clusterStore = g.clusterRedis !== undefined && g.persistence ? await this.openClusterStore() : undefined
      this.server = await startServer({
        broker: { ...brokerOptions(cfg, this.logger, this.security, this.options.broker), ...(clusterStore === undefined ? {} : { store: clusterStore }) },
        listeners: plain,
        noDelay: g.setTcpNodelay,
        // The store is read and compacted now, as root, so a restore never races the listeners; what it
        // creates is handed to the user the broker switches to below (persistence/log-store.ts).
        ...(g.persistence && clusterStore === undefined ? { persistence: { dir: g.persistenceLocation ?? process.cwd(), file: g.persistenceFile, fsync: g.persistenceFsync, owner: user.switches ? user.user : undefined } } : {}),
        beforeListen: (broker) => this.joinCluster(broker),
      })
      this.addAuthSysValues()
      await this.openHttp()
      for (let i = 0; i < cfg.listeners.length; i++) {
        const l = cfg.listeners[i] as ListenerConfig
        if (!isTlsListener(l) || this.acme?.waiting.has(i) === true) continue
        await this.startTls(i)
      }
    } catch (err) {
      throw new Refused((err as Error).message)
    }
    this.logListeners()
    if (this.sinks?.topic !== undefined) this.attachTopicLog(this.sinks)
  }

  /**
   * This node's name in the cluster: cluster_node_id, else host-pid-random (new at each start); a worker's is
   * the node's with its index, so a restarted worker takes back what was sent to it.
   */
  private clusterNodeId(): string {
    const g = this.cfg.global
    const worker = this.options.worker
    if (worker !== undefined) return `${g.clusterNodeId ?? hostname()}-w${worker}`
    return g.clusterNodeId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
  }

  private async openClusterStore(): Promise<ClusterStore> {
    const { openClusterStore } = await import('../cluster/index.js')
    this.clusterStore = await openClusterStore(this.cfg.global.clusterRedis as string, this.clusterNodeId(), this.logger)
    return this.clusterStore
  }

  /** cluster_redis: joins before any client can connect, so what they publish reaches the other nodes from the first. */
  private async joinCluster(broker: Broker): Promise<void> {
    const g = this.cfg.global
    if (g.clusterRedis === undefined) return
    // Loaded only with cluster_redis: a single node never loads ioredis.
    const { joinCluster } = await import('../cluster/index.js')
    this.cluster = await joinCluster(broker, { url: g.clusterRedis, nodeId: this.clusterNodeId(), logger: this.logger, store: this.clusterStore })
  }

  /** @internal */
  writePidFile(checked: Preflight): void {
    const file = this.cfg.global.pidFile
    if (file === undefined || this.options.worker !== undefined) return
    writePidFile(file, checked.user.switches ? checked.user.user : undefined)
    this.pidFile = file
  }

  /** @internal Before dropping root: the state directory is created for the broker's user, and a challenge port below 1024 is bound now (it could not be later) and kept. */
  async prepareAcme(checked: Preflight): Promise<void> {
    if (this.acme === undefined) return
    const c = acmeSettings(this.cfg).challenge
    try {
      await this.acme.manager.prepare({ holdChallengePort: checked.user.switches && c.kind === 'responder' && c.port < 1024 })
    } catch (err) {
      throw new Refused(`ACME: ${describeAcmeError(err)}`)
    }
  }

  /** @internal Only with dropPrivileges: the process's identity is not an embedded broker's to change. */
  dropPrivileges(checked: Preflight): void {
    const u = checked.user.user
    if (this.options.dropPrivileges !== true || !checked.user.switches || u === undefined) return
    switchUser(u)
    this.logger.notice(`Changed user to '${u.name}'.`)
  }

  /** @internal */
  run(): void {
    const cfg = this.cfg
    const log = this.logger
    if (cfg.listeners.every((l) => l.implicit)) {
      log.notice('Starting in local only mode. Connections will only be possible from clients running on this machine.')
      log.notice('Create a configuration file which defines a listener to allow remote access.')
    }
    this.security.watch()
    const acme = this.acme
    acme?.manager.onCertificate((cert) => { void this.acmeInstalled(cert) })
    acme?.manager.start({ force: acme.force })
    if (cfg.bridges.length > 0) this.bridges = loaded(this.modules.bridges, 'bridge').startBridges(this.broker, cfg.bridges, log)
    if (this.bridges !== undefined) this.dashboard?.watchBridges(this.bridges.bridges)
  }

  /** @internal After a failed phase: closes what the earlier ones opened. */
  async abort(): Promise<void> {
    await this.closeListeners()
    this.removePidFile()
  }

  /** @internal Log lines published to $SYS/broker/log/… by the running broker. */
  attachTopicLog(sinks: LogSinkSet): void {
    const broker = this.server?.broker
    if (broker === undefined) return
    sinks.topic?.attach((topic, payload) => { broker.publish(topic, Buffer.from(payload), 0, false, undefined) })
  }

  private tlsContext(): TlsOpenContext {
    return { modules: this.modules, broker: this.broker, logger: this.logger, noDelay: this.cfg.global.setTcpNodelay }
  }

  /** The throttle's counts under $SYS/broker/auth/ (Midge's own; Mosquitto has no throttle). */
  private addAuthSysValues(): void {
    const t = this.throttle
    const sys = this.broker.sysValues
    const readers = [() => t.failures, () => t.bans, () => t.bannedNow()]
    AuthSysKeys.forEach((k, i) => { sys.set(k, () => String((readers[i] as () => number)())) })
  }

  /** Builds every `protocol http` block and opens the plain ones (TLS ones open with the other TLS listeners). */
  private async openHttp(): Promise<void> {
    const cfg = this.cfg
    if (!cfg.listeners.some((l) => l.protocol === 'http')) return
    // Loaded only by a config with an http listener: node:http and perf_hooks stay out of every other start.
    const [{ HttpListener }, { monitoringRoutes }, { EventLoopLag }, { DashboardHub }, { DashboardSite }, { StaticUi }] = await Promise.all([
      import('./http-listener.js'), import('./http-routes.js'), import('./metrics.js'),
      import('./dashboard/hub.js'), import('./dashboard/site.js'), import('./dashboard/static-ui.js'),
    ])
    const ui = await StaticUi.load()
    for (const [i, l] of cfg.listeners.entries()) {
      if (l.protocol !== 'http') continue
      this.lag ??= new EventLoopLag()
      this.dashboard ??= new DashboardHub(this, this.logRing ?? new LogRing())
      const site = new DashboardSite(this, this.dashboard, ui, i, this.logger)
      this.sites.push(site)
      const http = new HttpListener({
        name: l.name, info: this.infos[i] as ListenerInfo, requireAuth: l.httpRequireAuth, maxConnections: l.maxConnections,
        routes: monitoringRoutes(this, this.lag), app: site, logger: this.logger,
      })
      this.httpListeners.set(i, http)
      if (!isTlsListener(l)) await http.listen(this.addresses[i] ?? [], l.port)
    }
  }

  /** Opens listener `i` (TLS) on each of its addresses. */
  private async startTls(i: number): Promise<TlsListener> {
    const l = this.cfg.listeners[i] as ListenerConfig
    const files = this.acme?.tlsOptions(this.cfg, i) ?? tlsOptions(l)
    const listener = await openTlsListener({ ...this.tlsContext(), http: this.httpListeners.get(i) }, l, this.infos[i] as ListenerInfo, this.addresses[i] ?? [], files)
    this.tlsListeners.push({ index: i, listener })
    return listener
  }

  /** A new ACME certificate is on disk: reload the listeners serving it, or open those waiting for it. */
  private async acmeInstalled(cert: ManagedCertificate): Promise<void> {
    const acme = this.acme
    if (acme === undefined) return
    for (const [i, files] of acme.files) {
      if (files.id !== cert.id || this.closing !== undefined) continue
      if (acme.waiting.delete(i)) {
        try {
          const listener = await this.startTls(i)
          for (const a of listener.addresses()) {
            this.logger.notice(`Opening ${a.family === 'IPv6' ? 'ipv6' : 'ipv4'} TLS listen socket on ${a.address} port ${a.port} (listener ${(this.cfg.listeners[i] as ListenerConfig).name}).`)
          }
          const opened = this.listeners()[i]
          if (opened !== undefined) this.emit('listening', opened)
        } catch (err) {
          this.logger.error(`Error: ${(err as Error).message}`)
        }
        continue
      }
      for (const t of this.tlsListeners) if (t.index === i) await t.listener.reload()
    }
  }

  private logListeners(): void {
    for (const l of this.server?.listeners ?? []) {
      const a = l.address()
      this.logger.notice(`Opening ${a.family === 'IPv6' ? 'ipv6' : 'ipv4'} listen socket on ${a.address} port ${a.port} (listener ${l.info.name}).`)
    }
    for (const [index, http] of this.httpListeners) {
      for (const a of http.addresses()) {
        this.logger.notice(`Opening ${a.family === 'IPv6' ? 'ipv6' : 'ipv4'} http listen socket on ${a.address} port ${a.port} (listener ${(this.cfg.listeners[index] as ListenerConfig).name}).`)
      }
    }
    for (const { index, listener } of this.tlsListeners) {
      for (const a of listener.addresses()) {
        this.logger.notice(`Opening ${a.family === 'IPv6' ? 'ipv6' : 'ipv4'} TLS listen socket on ${a.address} port ${a.port} (listener ${(this.cfg.listeners[index] as ListenerConfig).name}).`)
      }
    }
  }

  private async closeListeners(): Promise<void> {
    await this.acme?.manager.close()
    if (this.server !== undefined) {
      const ctx = this.tlsContext()
      await Promise.all(this.tlsListeners.map((t) => closeTlsListener(ctx, this.cfg.listeners[t.index] as ListenerConfig, t.listener)))
    }
    this.tlsListeners.length = 0
    for (const site of this.sites) site.close()
    this.sites.length = 0
    this.dashboard?.close()
    this.dashboard = undefined
    await Promise.all([...this.httpListeners.values()].map((h) => h.close()))
    this.httpListeners.clear()
    this.lag?.stop()
    for (const k of AuthSysKeys) this.server?.broker.sysValues.delete(k)
    // The broker first: the wills of the connections it closes still cross to the other nodes; then this node leaves.
    await this.server?.close()
    await this.cluster?.close()
    this.cluster = undefined
  }

  private removePidFile(): void {
    if (this.pidFile !== undefined) removePidFile(this.pidFile)
  }
}

/** $SYS/broker/auth/…: failed authentications, bans started, addresses banned now. */
const AuthSysKeys = ['auth/failures', 'auth/bans/total', 'auth/bans/current'] as const

function listenerKind(l: ListenerConfig): ListenerKind {
  if (l.protocol === 'http') return isTlsListener(l) ? 'https' : 'http'
  return isTlsListener(l) ? (l.protocol === 'websockets' ? 'wss' : 'tls') : l.protocol
}

/** The application's sinks, in place of log_dest: nothing to open, reopen or close. */
function fixedSinks(sinks: LogSink[]): LogSinkSet {
  return { sinks, topic: undefined, file: undefined, syslog: undefined, reopen: () => undefined, close: () => undefined }
}

/**
 * Starts a Midge from a validated config. Rejects with StartFailure (after logging `Error: <reason>` and
 * closing whatever was opened) when a phase cannot complete.
 */
export async function startMidge(cfg: MidgeConfig, options: StartOptions = {}): Promise<MidgeRuntime> {
  const rt = new MidgeRuntime(cfg, options)
  await rt.openLog(await rt.check())
  try {
    const checked = await rt.preflight()
    await rt.listen(checked)
    rt.writePidFile(checked)
    await rt.prepareAcme(checked)
    rt.dropPrivileges(checked)
  } catch (err) {
    await rt.abort()
    if (!(err instanceof Refused)) { rt.sinks?.close(); throw err }
    rt.logger.error(`Error: ${err.message}`)
    const onStderr = rt.logger.sinks.includes(stderrSink)
    rt.sinks?.close()
    throw new StartFailure(err.message, true, onStderr)
  }
  rt.run()
  return rt
}
