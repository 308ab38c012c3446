/**
 * What an MqttClient is told: where to connect, how to identify, and how to behave on loss. Defaults follow
 * libmosquitto where it has one (keep alive 60 s, clean session, reconnect after 1 s, 20 messages in flight).
 */
import type { ConnectionOptions } from 'node:tls'
import type { ProtocolVersion, QoS } from '../protocol/index.js'
import type { Properties } from '../protocol/index.js'

export interface WillOptions {
  topic: string
  payload: Buffer
  qos: QoS
  retain: boolean
  properties?: Properties
}

export interface ClientOptions {
  host: string
  port: number
  /** 'tcp' (default), 'tls', 'ws' or 'wss'. */
  transport?: 'tcp' | 'tls' | 'ws' | 'wss'
  /** Path of the WebSocket endpoint; default '/mqtt' as libmosquitto and most brokers use. */
  wsPath?: string
  /** Passed to tls.connect (ca, cert, key, checkServerIdentity, minVersion, ALPNProtocols...). */
  tls?: ConnectionOptions
  /** 3 (3.1), 4 (3.1.1, default) or 5. */
  protocolVersion?: ProtocolVersion
  /** Empty (default) asks the server to assign one (3.1.1 with clean session, and 5). */
  clientId?: string
  /** Clean Session (3.x) / Clean Start (5); default true. */
  clean?: boolean
  /** Seconds; 0 disables; default 60. */
  keepalive?: number
  username?: string
  password?: Buffer
  will?: WillOptions
  /** CONNECT properties (v5 only). */
  properties?: Properties
  /** Milliseconds to wait for the socket and CONNACK; default 30 000. */
  connectTimeout?: number
  /** Milliseconds between reconnect attempts after an unexpected loss; 0 (default) means never reconnect. */
  reconnectPeriod?: number
  /** Re-send subscriptions after a reconnect when the server kept no session; default true. */
  resubscribe?: boolean
  /** Most QoS 1/2 PUBLISH in flight at once, further capped by the server's Receive Maximum; default 20. */
  maxInflight?: number
  /** Largest packet accepted from the server; 0 = no limit beyond the protocol's. */
  maxPacketSize?: number
  /** Bind the outgoing socket to this local address (mosquitto's -A). */
  localAddress?: string
  /** Connect to this Unix domain socket instead of host:port (mosquitto's --unix; plain MQTT only). */
  unixPath?: string
  /** Set mosquitto's bridge flag (0x80 in the CONNECT protocol level, `try_private`); default false. */
  bridge?: boolean
}

export interface ResolvedOptions extends Required<Omit<ClientOptions, 'tls' | 'username' | 'password' | 'will' | 'properties' | 'localAddress' | 'unixPath'>> {
  tls: ConnectionOptions | undefined
  username: string | undefined
  password: Buffer | undefined
  will: WillOptions | undefined
  properties: Properties | undefined
  localAddress: string | undefined
  unixPath: string | undefined
}

export function resolveOptions (o: ClientOptions): ResolvedOptions {
  return {
    host: o.host,
    port: o.port,
    transport: o.transport ?? 'tcp',
    wsPath: o.wsPath ?? '/mqtt',
    tls: o.tls,
    protocolVersion: o.protocolVersion ?? 4,
    clientId: o.clientId ?? '',
    clean: o.clean ?? true,
    keepalive: o.keepalive ?? 60,
    username: o.username,
    password: o.password,
    will: o.will,
    properties: o.properties,
    connectTimeout: o.connectTimeout ?? 30_000,
    reconnectPeriod: o.reconnectPeriod ?? 0,
    resubscribe: o.resubscribe ?? true,
    maxInflight: o.maxInflight ?? 20,
    maxPacketSize: o.maxPacketSize ?? 0,
    localAddress: o.localAddress,
    unixPath: o.unixPath,
    bridge: o.bridge ?? false,
  }
}
