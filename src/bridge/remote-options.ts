/**
 * BridgeOptions + one address → the MqttClient options of one connection attempt. TLS files are read
 * (client/tls-options.ts) at each attempt, so a renewed CA bundle or client certificate is picked up at the next reconnection.
 */
import type { ConnectionOptions } from 'node:tls'
import type { ClientOptions } from '../client/index.js'
import { clientTlsOptions } from '../client/tls-options.js'
import { NeverExpires } from '../protocol/index.js'
import type { BridgeAddress, BridgeOptions, BridgeTlsOptions } from './options.js'

/** Throws a ClientTlsFileError naming the file when a certificate, key or the capath cannot be read. */
export function tlsConnectionOptions (t: BridgeTlsOptions): ConnectionOptions {
  return clientTlsOptions(t).options
}

/**
 * `tryPrivate` is the bridge's current view: try_private, until a remote refused the flagged CONNECT as an
 * unacceptable protocol version. MQTT 5 has no place for the flag (its No Local does the job), so a v5
 * CONNECT never carries it, as in Mosquitto.
 */
export function remoteClientOptions (b: BridgeOptions, address: BridgeAddress, tryPrivate = b.tryPrivate): ClientOptions {
  const remoteNotifications = b.notifications && !b.notificationsLocalOnly
  return {
    host: address.host,
    port: address.port,
    transport: b.tls === undefined ? 'tcp' : 'tls',
    tls: b.tls === undefined ? undefined : tlsConnectionOptions(b.tls),
    protocolVersion: b.protocolVersion,
    clientId: b.remoteClientId,
    clean: b.cleanSession,
    keepalive: b.keepalive,
    username: b.remoteUsername,
    password: b.remotePassword === undefined ? undefined : Buffer.from(b.remotePassword),
    // The remote learns that the bridge is gone from its will: state 0, retained.
    will: remoteNotifications ? { topic: b.notificationTopic, payload: Buffer.from('0'), qos: 1, retain: true } : undefined,
    properties: b.protocolVersion === 5 && !b.cleanSession ? { sessionExpiryInterval: NeverExpires } : undefined,
    reconnectPeriod: 0,
    resubscribe: false,
    localAddress: b.bindAddress,
    bridge: tryPrivate && b.protocolVersion !== 5,
  }
}
