/**
 * Midge as a library: `import { createBroker } from 'midge'`. Public exports only; everything else under
 * dist/src is internal and may change.
 *
 * createBroker starts the same runtime as `midge serve` (server/runtime.ts), from mosquitto.conf text or
 * from host/port alone, as an embedded broker: it never changes the process's user, installs no signal
 * handlers and writes a pid file only when the config names one.
 */
import type { Duplex } from 'node:stream'
import type { QoS } from './protocol/constants.js'
import type { Broker } from './broker/broker.js'
import type { BrokerOptions, ListenerInfo } from './broker/options.js'
import { loadConfigText } from './config/load.js'
import type { MidgeConfig } from './config/types.js'
import { startMidge, type MidgeRuntime, type RuntimeEvents, type RuntimeListener } from './server/runtime.js'

export type { Broker } from './broker/broker.js'
export type { BrokerOptions, ListenerInfo } from './broker/options.js'
export type { MidgeConfig } from './config/types.js'
export { ConfigError, ConfigInvalidError } from './config/errors.js'
export { loadConfig, loadConfigText } from './config/load.js'
export { MidgeRuntime, startMidge, StartFailure } from './server/index.js'
export type { ListenerKind, ReloadSource, RuntimeEvents, RuntimeListener, StartOptions } from './server/index.js'

export interface CreateBrokerOptions {
  /**
   * Address of the listener createBroker adds (default 127.0.0.1). Without `config` it is the only
   * listener; with `config` it is added to the config's listeners, as `midge -c FILE -p PORT` does.
   */
  host?: string
  /** Port of that listener: 0 picks a free one (broker.port tells which). Default 1883 without `config`. */
  port?: number
  /** mosquitto.conf text: listeners, TLS, password and ACL files, persistence, bridges, … */
  config?: string
  /** Name for `config` in messages (`file:line: …`); relative paths in it resolve against its directory. */
  configFile?: string
  /** BrokerOptions that win over the config's (kept across reloads). */
  broker?: Partial<BrokerOptions>
}

export interface MidgeBroker {
  /** The first bound port of the first open listener (the one chosen for port 0). */
  readonly port: number
  readonly broker: Broker
  readonly runtime: MidgeRuntime
  /** Every listener of the config with its bound addresses. */
  listeners(): RuntimeListener[]
  /** Publishes from the host application, as if a client had (no client id, ACLs do not apply). */
  publish(topic: string, payload: string | Uint8Array, opts?: { qos?: QoS; retain?: boolean }): void
  on<E extends keyof RuntimeEvents>(event: E, fn: (...args: RuntimeEvents[E]) => void): MidgeBroker
  /**
   * Speaks MQTT on a connected stream of the application's own transport. Such clients get the global
   * security settings (allow_anonymous, password_file, acl_file of the config).
   */
  handle(stream: Duplex, peer?: { address?: string }): void
  /** Applies new mosquitto.conf text (or the running text again, re-reading its files) as SIGHUP does. */
  reload(config?: string): Promise<boolean>
  close(): Promise<void>
}

/** With neither `config` nor `host`/`port`: anonymous clients on 127.0.0.1:1883; errors and warnings on stderr. */
export async function createBroker(opts: CreateBrokerOptions = {}): Promise<MidgeBroker> {
  const load = (text: string | undefined): MidgeConfig => loadConfigText(configText(text, opts), opts.configFile === undefined ? {} : { file: opts.configFile })
  let text = opts.config
  const runtime = await startMidge(load(text), opts.broker === undefined ? {} : { broker: opts.broker })
  const broker = runtime.broker
  const info: ListenerInfo = { name: 'handle', allowAnonymous: false, mountPoint: '', protocol: 'mqtt' }
  const followConfig = (): void => { info.allowAnonymous = runtime.config.global.security.allowAnonymous ?? false }
  followConfig()
  const port = runtime.listeners().find((l) => l.addresses.length > 0)?.addresses[0]?.port ?? 0
  const api: MidgeBroker = {
    port,
    broker,
    runtime,
    listeners: () => runtime.listeners(),
    publish(topic, payload, o = {}) {
      broker.publish(topic, Buffer.from(payload), o.qos ?? 0, o.retain ?? false, undefined)
    },
    on(event, fn) {
      runtime.on(event, fn)
      return api
    },
    handle(stream, peer = {}) {
      const address = peer.address ?? 'embedded'
      broker.handle(stream, info, { remoteAddress: address, remoteIp: address })
    },
    async reload(config) {
      if (config !== undefined) text = config
      const applied = await runtime.reload(() => load(text))
      followConfig()
      return applied
    },
    close: () => runtime.close(),
  }
  return api
}

/** The mosquitto.conf text createBroker starts from: the application's, plus the host/port listener. */
function configText(config: string | undefined, opts: CreateBrokerOptions): string {
  const host = opts.host ?? '127.0.0.1'
  if (/\s/.test(host) || host === '') throw new TypeError(`createBroker: host '${host}' is not an address`)
  const port = opts.port ?? (config === undefined ? 1883 : undefined)
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new TypeError(`createBroker: port ${port} is not a port number (0-65535; 0 picks a free one)`)
  if (config === undefined) return `log_type error\nlog_type warning\nlistener ${port} ${host}\nallow_anonymous true\n`
  return port === undefined ? config : `${config}\nlistener ${port} ${host}\n`
}
