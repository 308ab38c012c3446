/**
 * `createBroker()`: a broker inside the host application (docs/embedding.md). It starts the same runtime as
 * `midge serve` (server/runtime.ts), from mosquitto.conf text or from host/port alone, as an embedded broker: it
 * never changes the process's user, installs no signal handlers and writes a pid file only when the config names
 * one. The application plugs in hooks (broker/hooks.ts), listens to events (broker/events.ts and the runtime's),
 * publishes, and may hand the broker streams of its own transports. src/index.ts exports what is public.
 */
import type { Duplex } from 'node:stream'
import type { QoS } from '../protocol/constants.js'
import { isValidTopicName } from '../protocol/topic.js'
import type { Broker } from '../broker/broker.js'
import { BrokerEventNames, type BrokerEventMap, type BrokerEventName } from '../broker/events.js'
import type { BrokerHooks } from '../broker/hooks.js'
import type { BrokerOptions, ListenerInfo } from '../broker/options.js'
import { loadConfigText } from '../config/load.js'
import type { MidgeConfig } from '../config/types.js'
import type { LogSink, LogType } from '../observability/logger.js'
import type { Properties } from '../protocol/packets.js'
import { startMidge, type MidgeRuntime, type RuntimeEvents, type RuntimeListener, type StartOptions } from '../server/runtime.js'

export interface CreateBrokerOptions extends BrokerHooks {
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
  /** Milliseconds a hook may take before its answer counts as a refusal. Default 10,000. */
  hookTimeoutMs?: number
  /** BrokerOptions that win over the config's (kept across reloads). */
  broker?: Partial<BrokerOptions>
  /**
   * Where log lines go (mosquitto's wording; `type` as log_type). Default: the config's log_dest when it
   * has one, else nowhere.
   */
  log?: (line: string, type: LogType) => void
}

export interface PublishOptions {
  topic: string
  payload: string | Uint8Array
  qos?: QoS
  retain?: boolean
  /** MQTT 5 properties to forward (e.g. contentType, userProperties, messageExpiryInterval). */
  properties?: Properties
}

export interface HandleOptions {
  /** Who is at the other end, for logs, hooks (`address`) and brute-force accounting. Default 'custom'. */
  remoteAddress?: string
}

/** Every event of an embedded broker: the broker's (clients and messages) and the runtime's (listeners, reloads). */
export type MidgeEventMap = BrokerEventMap & RuntimeEvents
export type MidgeEventName = keyof MidgeEventMap

export interface MidgeBroker {
  /** The first bound port of the first open listener (the one chosen for port 0). */
  readonly port: number
  readonly broker: Broker
  readonly runtime: MidgeRuntime
  /** Every listener of the config with its bound addresses. */
  listeners(): RuntimeListener[]
  /**
   * Publishes from the host application to every matching subscriber, retained if asked. Not subject to
   * authorizePublish or the ACL's write rules; subscribers' read rules and authorizeDeliver apply. Returns
   * whether anyone matched.
   */
  publish(message: PublishOptions): boolean
  on<E extends MidgeEventName>(event: E, fn: (...args: MidgeEventMap[E]) => void): MidgeBroker
  off<E extends MidgeEventName>(event: E, fn: (...args: MidgeEventMap[E]) => void): MidgeBroker
  /**
   * Speaks MQTT on a connected stream of the application's own transport. Such clients get the global
   * security settings (allow_anonymous, password_file, acl_file of the config) and the hooks.
   */
  handle(stream: Duplex, options?: HandleOptions): void
  /** Applies new mosquitto.conf text (or the running text again, re-reading its files) as SIGHUP does. */
  reload(config?: string): Promise<boolean>
  close(): Promise<void>
}

const isBrokerEvent = (e: string): e is BrokerEventName => (BrokerEventNames as readonly string[]).includes(e)

/** With neither `config` nor `host`/`port`: anonymous clients on 127.0.0.1:1883, logging nowhere. Resolves once the listeners are open. */
export async function createBroker(opts: CreateBrokerOptions = {}): Promise<MidgeBroker> {
  const load = (text: string | undefined): MidgeConfig => loadConfigText(configText(text, opts), opts.configFile === undefined ? {} : { file: opts.configFile })
  let text = opts.config
  const cfg = load(text)
  const hooks: BrokerHooks = { authenticate: opts.authenticate, authorizePublish: opts.authorizePublish, authorizeSubscribe: opts.authorizeSubscribe, authorizeDeliver: opts.authorizeDeliver }
  const overrides: Partial<BrokerOptions> = { ...opts.broker, hooks: { ...opts.broker?.hooks, ...definedOnly(hooks) } }
  if (opts.hookTimeoutMs !== undefined) overrides.hookTimeoutMs = opts.hookTimeoutMs
  const start: StartOptions = { broker: overrides }
  const log = opts.log
  if (log !== undefined) start.logSinks = [{ write: (line, type) => log(line, type) } satisfies LogSink]
  else if (cfg.global.origins['log_dest'] === undefined) start.logSinks = []
  const runtime = await startMidge(cfg, start)
  const broker = runtime.broker
  const info: ListenerInfo = { name: 'handle', allowAnonymous: false, mountPoint: '', protocol: 'mqtt' }
  const followConfig = (): void => { info.allowAnonymous = runtime.config.global.security.allowAnonymous ?? false }
  followConfig()
  let handled = 0
  const port = runtime.listeners().find((l) => l.addresses.length > 0)?.addresses[0]?.port ?? 0
  const api: MidgeBroker = {
    port,
    broker,
    runtime,
    listeners: () => runtime.listeners(),
    publish(m) {
      const { topic, qos = 0, retain = false, properties } = m
      if (typeof topic !== 'string' || !isValidTopicName(topic)) throw new TypeError(`publish: invalid topic name '${String(topic)}'`)
      if (qos !== 0 && qos !== 1 && qos !== 2) throw new TypeError(`publish: QoS must be 0, 1 or 2, not ${String(qos)}`)
      // Routing reuses scratch state: a publish from inside it (an authorizeDeliver hook) would corrupt it.
      if (broker.routingBusy) throw new Error('publish: cannot publish from inside authorizeDeliver')
      const payload = typeof m.payload === 'string' ? Buffer.from(m.payload) : Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength)
      return broker.publish(topic, payload, qos, retain, properties)
    },
    on(event, fn) {
      if (isBrokerEvent(event)) broker.events.on(event, fn as never)
      else runtime.on(event as keyof RuntimeEvents, fn as never)
      return api
    },
    off(event, fn) {
      if (isBrokerEvent(event)) broker.events.off(event, fn as never)
      else runtime.off(event as keyof RuntimeEvents, fn as never)
      return api
    },
    handle(stream, o = {}) {
      const address = o.remoteAddress ?? 'custom'
      broker.handle(stream, info, { remoteAddress: `${address}#${++handled}`, remoteIp: address })
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

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {}
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] !== undefined) out[k] = o[k]
  return out
}

/** The mosquitto.conf text createBroker starts from: the application's, plus the host/port listener. */
function configText(config: string | undefined, opts: CreateBrokerOptions): string {
  const host = opts.host ?? '127.0.0.1'
  if (/\s/.test(host) || host === '') throw new TypeError(`createBroker: host '${host}' is not an address`)
  const port = opts.port ?? (config === undefined ? 1883 : undefined)
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new TypeError(`createBroker: port ${port} is not a port number (0-65535; 0 picks a free one)`)
  if (config === undefined) return `listener ${port} ${host}\nallow_anonymous true\n`
  return port === undefined ? config : `${config}\nlistener ${port} ${host}\n`
}
