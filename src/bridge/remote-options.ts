/**
 * BridgeOptions + one address → the MqttClient options of one connection attempt. TLS files are read here,
 * at each attempt, so a renewed CA bundle or client certificate is picked up at the next reconnection.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ConnectionOptions } from 'node:tls'
import type { ClientOptions } from '../client/index.js'
import type { BridgeAddress, BridgeOptions, BridgeTlsOptions } from './options.js'

const TlsVersions = { 'tlsv1.1': 'TLSv1.1', 'tlsv1.2': 'TLSv1.2', 'tlsv1.3': 'TLSv1.3' } as const

/** Session Expiry Interval "never": a v5 bridge without cleansession keeps its remote session like a v3 one. */
const NeverExpires = 0xffffffff

/** Throws (an fs error naming the file) when a certificate or key cannot be read. */
export function tlsConnectionOptions (t: BridgeTlsOptions): ConnectionOptions {
  const ca: Buffer[] = []
  if (t.cafile !== undefined) ca.push(readFileSync(t.cafile))
  if (t.capath !== undefined) {
    // Mosquitto hands capath to OpenSSL's hashed lookup; Node has none, so every certificate file is loaded.
    for (const name of readdirSync(t.capath).sort()) {
      if (name.endsWith('.crt') || name.endsWith('.pem')) ca.push(readFileSync(join(t.capath, name)))
    }
  }
  const o: ConnectionOptions = { ca }
  if (t.certfile !== undefined) o.cert = readFileSync(t.certfile)
  if (t.keyfile !== undefined) o.key = readFileSync(t.keyfile)
  if (t.insecure) o.checkServerIdentity = () => undefined
  if (t.version !== undefined) o.minVersion = TlsVersions[t.version]
  if (t.alpn !== undefined) o.ALPNProtocols = [t.alpn]
  return o
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
