/**
 * What one bridge is told: mosquitto.conf's `connection` block in the bridge's own camelCase, every field
 * resolved. config/ parses the block into this (src/config/bridge-blocks.ts), taking the defaults from the bridge
 * option table (src/config/bridge-options.ts), their one home; the bridge applies none of its own.
 */
import type { ProtocolVersion, QoS } from '../protocol/index.js'
import type { TlsVersionName } from '../transport/tls-versions.js'

export type BridgeDirection = 'in' | 'out' | 'both'

/** One `topic` line: `topic PATTERN [[[out | in | both] QOS] LOCAL_PREFIX REMOTE_PREFIX]`. */
export interface BridgeTopicSpec {
  /** undefined for the `""` placeholder (then both prefixes name the whole topic). */
  pattern: string | undefined
  direction: BridgeDirection
  qos: QoS
  /** undefined when absent or written as `""`. */
  localPrefix: string | undefined
  remotePrefix: string | undefined
}

export interface BridgeAddress {
  host: string
  port: number
}

export type BridgeTlsVersion = TlsVersionName

/** TLS towards the remote: on when bridge_cafile or bridge_capath is set, as in Mosquitto. */
export interface BridgeTlsOptions {
  cafile: string | undefined
  /** Read by transport/cert-files.ts's readCapath rule. */
  capath: string | undefined
  certfile: string | undefined
  keyfile: string | undefined
  /** bridge_insecure: skip the host name check (the chain is still verified). */
  insecure: boolean
  /** Lowest TLS version offered; undefined = Node's default (TLS 1.2). */
  version: BridgeTlsVersion | undefined
  alpn: string | undefined
}

export interface BridgeOptions {
  /** The `connection` name. */
  name: string
  /** Tried in order; a failure moves to the next one. */
  addresses: BridgeAddress[]
  /** false: the first address is the main one and is probed while connected to another (Mosquitto's default). */
  roundRobin: boolean
  topics: BridgeTopicSpec[]
  remoteClientId: string
  /** Client id of the bridge's session on this broker. */
  localClientId: string
  remoteUsername: string | undefined
  remotePassword: string | undefined
  /** Username of the local session: what an acl_file on this broker sees for the bridge. */
  localUsername: string | undefined
  /** Clean session on the remote. */
  cleanSession: boolean
  /** Clean session of the local session: false keeps messages for `out` topics queued while the remote is away. */
  localCleanSession: boolean
  /** Seconds. */
  keepalive: number
  /** Seconds between attempts: constant when cap is 0, else "decorrelated jitter" from base up to cap. */
  restartTimeout: { base: number; cap: number }
  protocolVersion: ProtocolVersion
  /** Set 0x80 in the CONNECT protocol level so a Mosquitto (or Midge) remote treats us as a bridge. */
  tryPrivate: boolean
  notifications: boolean
  notificationsLocalOnly: boolean
  /** Where the state (1 connected, 0 not) is published, retained. */
  notificationTopic: string
  tls: BridgeTlsOptions | undefined
  /** Local address the socket binds to. */
  bindAddress: string | undefined
  /** automatic: reconnect for ever; once: one connection, no restart. (lazy is not supported.) */
  startType: 'automatic' | 'once'
  /** false clears RETAIN on everything sent to the remote. */
  outgoingRetain: boolean
  /** Largest PUBLISH sent to the remote, in bytes; 0 = no limit of ours. Larger messages are dropped. */
  maxPacketSize: number
  /** Unsubscribe `out`-only topics on the remote, so a topic that used to be `in` stops flowing in. */
  attemptUnsubscribe: boolean
}
