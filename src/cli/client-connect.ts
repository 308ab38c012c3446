/**
 * What `midge pub` and `midge sub` share once their flags are read: turning the flags into ClientOptions
 * (TLS trust included), the -d trace in libmosquitto's words, and mosquitto's error sentences and exit codes.
 */
import fs from 'node:fs'
import tls from 'node:tls'
import { ClientErrorCode } from '../client/errors.js'
import type { ClientError } from '../client/errors.js'
import type { MqttClient } from '../client/client.js'
import type { ClientOptions } from '../client/options.js'
import type { Packet } from '../protocol/index.js'
import type { ClientConfig } from './client-args.js'
import { ClientTlsFileError, clientTlsOptions, type ClientTls } from '../client/tls-options.js'
import { pemCertificates, readCapath } from '../transport/cert-files.js'
import type { TlsVersionName } from '../transport/tls-versions.js'

/** Exit codes that are libmosquitto's MOSQ_ERR_* values, for scripts written against mosquitto_pub/sub. */
/** Exit codes: libmosquitto's MOSQ_ERR_* numbers where mosquitto_pub/sub exit with one (7 CONN_LOST, 8 TLS). */
export const ExitCode = { Ok: 0, Error: 1, ConnLost: 7, Tls: 8, Timeout: 27 } as const

export class SetupError extends Error {}

/** Where distributions keep the system trust store, after OpenSSL's own environment variables. */
const SystemBundles = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Alpine
  '/etc/pki/tls/certs/ca-bundle.crt', // Fedora, RHEL
  '/etc/ssl/ca-bundle.pem', // openSUSE
  '/etc/ssl/cert.pem', // macOS, BSDs
]

/** The system trust store: what OpenSSL-based clients such as mosquitto_pub trust by default. */
export function systemTrustStore (): { certs: string[]; source: string } {
  // OpenSSL's own overrides first, as mosquitto_pub (linked to OpenSSL) honours them.
  const envFile = process.env.SSL_CERT_FILE
  const envDir = process.env.SSL_CERT_DIR
  if (envFile !== undefined && fs.existsSync(envFile)) return { certs: pemCertificates(fs.readFileSync(envFile, 'latin1')), source: envFile }
  if (envDir !== undefined && fs.existsSync(envDir)) return { certs: readCapath(envDir).certs, source: envDir }
  const getCa = (tls as unknown as { getCACertificates?: (type: string) => string[] }).getCACertificates
  if (typeof getCa === 'function') {
    try { return { certs: getCa('system'), source: 'the operating system' } } catch { /* older Node: fall through */ }
  }
  for (const file of SystemBundles) {
    if (fs.existsSync(file)) return { certs: pemCertificates(fs.readFileSync(file, 'latin1')), source: file }
  }
  return { certs: [...tls.rootCertificates], source: "Node's bundled Mozilla roots (no system store found)" }
}

/** TLS is on with a CA given, on port 8883, with mqtts:// or wss://, or with --tls-use-os-certs (as mosquitto). */
export function buildClientOptions (cfg: ClientConfig, clientId: string, notes: string[]): ClientOptions {
  const t = cfg.tls
  const hasCa = t.cafile !== undefined || t.capath !== undefined
  const port = cfg.port ?? (hasCa ? 8883 : 1883)
  const useTls = hasCa || port === 8883 || t.useOsCerts
  const o: ClientOptions = {
    host: cfg.host,
    port,
    protocolVersion: cfg.protocolVersion,
    clientId,
    clean: cfg.cleanSession,
    keepalive: cfg.keepalive,
    maxInflight: cfg.maxInflight,
    transport: cfg.transport === 'ws' ? (useTls ? 'wss' : 'ws') : useTls ? 'tls' : 'tcp',
  }
  if (cfg.unixPath !== undefined) o.unixPath = cfg.unixPath
  if (cfg.bindAddress !== undefined) o.localAddress = cfg.bindAddress
  if (cfg.username !== undefined) o.username = cfg.username
  if (cfg.password !== undefined) {
    // 3.x carries a password only after a username; libmosquitto then sends neither field's absence as an error.
    if (cfg.protocolVersion === 5 || cfg.username !== undefined) o.password = Buffer.from(cfg.password)
  }
  if (cfg.props.connect !== undefined) o.properties = cfg.props.connect
  if (cfg.will.topic !== undefined) {
    o.will = {
      topic: cfg.will.topic,
      payload: Buffer.from(cfg.will.payload ?? ''),
      qos: cfg.will.qos,
      retain: cfg.will.retain,
    }
    if (cfg.props.will !== undefined) o.will.properties = cfg.props.will
  }
  if (useTls) {
    let built: ClientTls
    try {
      // A certificate without its key (or the reverse) is left out, as mosquitto_pub does.
      const pair = t.cert !== undefined && t.key !== undefined
      built = clientTlsOptions({
        cafile: t.cafile, capath: t.capath, certfile: pair ? t.cert : undefined, keyfile: pair ? t.key : undefined,
        insecure: t.insecure, version: t.version as TlsVersionName | undefined, alpn: t.alpn, ciphers: t.ciphers,
      })
    } catch (err) {
      if (!(err instanceof ClientTlsFileError)) throw err
      throw new SetupError('Error: Problem setting TLS options: File not found.')
    }
    const opts = built.options
    if (built.caCount !== undefined) {
      notes.push(`TLS: trusting only the ${built.caCount} CA certificate(s) from ${[t.cafile, t.capath].filter((x) => x !== undefined).join(' and ')}`)
      for (const s of built.skipped) notes.push(`TLS: capath ${t.capath}: skipped ${s}`)
    } else {
      const store = systemTrustStore()
      opts.ca = store.certs
      notes.push(`TLS: no --cafile or --capath given, using the system trust store (${store.source}, ${store.certs.length} certificates)`)
    }
    o.tls = opts
  }
  return o
}

/** The client identifier: -i, -I prefix + pid, or empty (the server assigns one; v3.1 cannot, so it gets one). */
export function clientIdFor (cfg: ClientConfig): string {
  if (cfg.id !== undefined) return cfg.id
  if (cfg.idPrefix !== undefined) return `${cfg.idPrefix}${process.pid}`
  return cfg.protocolVersion === 3 ? `midge_${cfg.kind}_${process.pid}` : ''
}

const Connack3: Record<number, string> = {
  0: 'Connection Accepted.',
  1: 'Connection Refused: unacceptable protocol version.',
  2: 'Connection Refused: identifier rejected.',
  3: 'Connection Refused: broker unavailable.',
  4: 'Connection Refused: bad user name or password.',
  5: 'Connection Refused: not authorised.',
}

/** MQTT 5.0 reason code names as the spec (and mosquitto_reason_string) spell them. */
const Reason5: Record<number, string> = {
  0x00: 'Success', 0x01: 'Granted QoS 1', 0x02: 'Granted QoS 2', 0x04: 'Disconnect with Will Message',
  0x10: 'No matching subscribers', 0x11: 'No subscription existed', 0x18: 'Continue authentication', 0x19: 'Re-authenticate',
  0x80: 'Unspecified error', 0x81: 'Malformed Packet', 0x82: 'Protocol Error', 0x83: 'Implementation specific error',
  0x84: 'Unsupported Protocol Version', 0x85: 'Client Identifier not valid', 0x86: 'Bad User Name or Password',
  0x87: 'Not authorized', 0x88: 'Server unavailable', 0x89: 'Server busy', 0x8a: 'Banned',
  0x8b: 'Server shutting down', 0x8c: 'Bad authentication method', 0x8d: 'Keep Alive timeout',
  0x8e: 'Session taken over', 0x8f: 'Topic Filter invalid', 0x90: 'Topic Name invalid',
  0x91: 'Packet Identifier in use', 0x92: 'Packet Identifier not found', 0x93: 'Receive Maximum exceeded',
  0x94: 'Topic Alias invalid', 0x95: 'Packet too large', 0x96: 'Message rate too high', 0x97: 'Quota exceeded',
  0x98: 'Administrative action', 0x99: 'Payload format invalid', 0x9a: 'Retain not supported',
  0x9b: 'QoS not supported', 0x9c: 'Use another server', 0x9d: 'Server moved',
  0x9e: 'Shared Subscriptions not supported', 0x9f: 'Connection rate exceeded', 0xa0: 'Maximum connect time',
  0xa1: 'Subscription identifiers not supported', 0xa2: 'Wildcard Subscriptions not supported',
}

export function reasonString (code: number): string {
  return Reason5[code] ?? 'Unknown reason'
}

/** strerror(3) for the errno names Node reports. */
const Strerror: Record<string, string> = {
  ECONNREFUSED: 'Connection refused', ECONNRESET: 'Connection reset by peer', ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host', ENETUNREACH: 'Network is unreachable', EADDRNOTAVAIL: 'Cannot assign requested address',
  EADDRINUSE: 'Address already in use', ENOENT: 'No such file or directory', EACCES: 'Permission denied',
  EPIPE: 'Broken pipe', ECONNABORTED: 'Software caused connection abort',
}

/** Our verification of the server's certificate failed: printed after "certificate verify failed: ". */
const TlsVerifyText: Record<string, string> = {
  'unknown-ca': 'unknown CA',
  'name-mismatch': 'name mismatch',
  expired: 'expired',
  'not-yet-valid': 'not yet valid',
  revoked: 'revoked',
}

/** The server refused the handshake. */
const TlsRefusalText: Record<string, string> = {
  'certificate-required': 'the broker requires a client certificate (--cert and --key)',
  'certificate-refused': 'the broker refused the client certificate',
}

/**
 * The lines (for stderr) and exit code for a failed first connection, as mosquitto_pub (`pub`) and
 * mosquitto_sub print them. TLS failures add the reason mosquitto leaves out.
 */
export function connectFailure (err: ClientError, cfg: ClientConfig): { lines: string[]; code: number } {
  switch (err.code) {
    case ClientErrorCode.ConnectionRefused: {
      const rc = err.reasonCode ?? 0
      let text: string
      if (cfg.protocolVersion === 5) {
        text = `Connection error: ${reasonString(rc)}`
        if (rc === 0x84) text += '. Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.'
      } else {
        text = `Connection error: ${Connack3[rc] ?? 'Connection Refused: unknown reason.'}`
      }
      const lines = [text]
      if (cfg.kind === 'pub') {
        lines.push(cfg.protocolVersion === 5
          ? 'Error: A network protocol error occurred when communicating with the broker.'
          : 'Error: The connection was refused.')
      }
      return { lines, code: rc }
    }
    case ClientErrorCode.Tls: {
      const reason = err.tlsReason ?? 'handshake'
      const verify = TlsVerifyText[reason]
      const why = verify === undefined ? TlsRefusalText[reason] ?? 'handshake failed' : `certificate verify failed: ${verify}`
      return { lines: [`Error: A TLS error occurred: ${why} (${err.message}).`], code: ExitCode.Tls }
    }
    case ClientErrorCode.Network: {
      const cause = err.cause as { code?: string } | undefined
      const code = cause?.code ?? ''
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL') return { lines: ['Unable to connect (Lookup error.).'], code: ExitCode.Error }
      return { lines: [`Error: ${Strerror[code] ?? err.message}`], code: ExitCode.Error }
    }
    case ClientErrorCode.ConnectTimeout:
      return { lines: ['Error: Connection timed out'], code: ExitCode.Error }
    case ClientErrorCode.Closed:
      // The server closed the connection before CONNACK (e.g. it refused a client certificate without a TLS alert).
      return { lines: ['Error: The connection was lost.'], code: ExitCode.ConnLost }
    default:
      return { lines: [`Error: ${err.message}`], code: ExitCode.Error }
  }
}

/** -d: libmosquitto's log lines for each packet, on stdout as mosquitto's clients print them. */
export function traceClient (client: MqttClient, write: (line: string) => void): void {
  const id = (): string => (client.clientId === '' ? '(null)' : client.clientId)
  client.on('packetsend', (p: Packet) => {
    const line = describe(p, 'sending')
    if (line !== null) for (const l of line) write(`Client ${id()} ${l}`)
  })
  client.on('packetreceive', (p: Packet) => {
    const line = describe(p, 'received')
    if (line !== null) for (const l of line) write(`Client ${id()} ${l}`)
  })
}

function describe (p: Packet, dir: 'sending' | 'received'): string[] | null {
  const s = dir === 'sending'
  switch (p.type) {
    case 1: return [`${dir} CONNECT`]
    case 2: return [`${dir} CONNACK (${p.reasonCode})`]
    case 3: return [`${dir} PUBLISH (d${p.dup ? 1 : 0}, q${p.qos}, r${p.retain ? 1 : 0}, m${p.packetId}, '${p.topic}', ... (${p.payload.length} bytes))`]
    case 4: return [s ? `${dir} PUBACK (m${p.packetId}, rc${p.reasonCode})` : `${dir} PUBACK (Mid: ${p.packetId}, RC:${p.reasonCode})`]
    case 5: return [s ? `${dir} PUBREC (m${p.packetId}, rc${p.reasonCode})` : `${dir} PUBREC (Mid: ${p.packetId})`]
    case 6: return [s ? `${dir} PUBREL (m${p.packetId})` : `${dir} PUBREL (Mid: ${p.packetId})`]
    case 7: return [s ? `${dir} PUBCOMP (m${p.packetId})` : `${dir} PUBCOMP (Mid: ${p.packetId}, RC:${p.reasonCode})`]
    case 8: return p.subscriptions.map((x) => {
      const opts = (x.noLocal ? 0x04 : 0) | (x.retainAsPublished ? 0x08 : 0) | (x.retainHandling << 4)
      return `${dir} SUBSCRIBE (Mid: ${p.packetId}, Topic: ${x.topicFilter}, QoS: ${x.qos}, Options: 0x${opts.toString(16).padStart(2, '0')})`
    })
    case 9: return [`${dir} SUBACK`]
    case 10: return p.topicFilters.map((f) => `${dir} UNSUBSCRIBE (Mid: ${p.packetId}, Topic: ${f})`)
    case 11: return [`${dir} UNSUBACK`]
    case 12: return [`${dir} PINGREQ`]
    case 13: return [`${dir} PINGRESP`]
    case 14: return [`${dir} DISCONNECT`]
    default: return null
  }
}
