/**
 * Every failure the client reports. Callers branch on `code` (stable), never on the message text; the CLI
 * turns codes into mosquitto_pub/mosquitto_sub's wording and exit codes in src/cli/client-errors.ts.
 */

export const ClientErrorCode = {
  /** The server answered CONNECT with a refusal; `reasonCode` holds the CONNACK return/reason code. */
  ConnectionRefused: 'CLIENT_ERR_CONNACK_REFUSED',
  /** No CONNACK within connectTimeout. */
  ConnectTimeout: 'CLIENT_ERR_CONNECT_TIMEOUT',
  /** The socket could not be opened or failed: `cause` is the Node error (ECONNREFUSED, ENOTFOUND...). */
  Network: 'CLIENT_ERR_NETWORK',
  /** The TLS handshake failed; `tlsReason` says why in one word (unknown-ca, name-mismatch, expired...). */
  Tls: 'CLIENT_ERR_TLS',
  /** The connection closed while an operation waited for its acknowledgement. */
  Closed: 'CLIENT_ERR_CLOSED',
  /** The server sent DISCONNECT (v5); `reasonCode` holds its reason. */
  ServerDisconnect: 'CLIENT_ERR_SERVER_DISCONNECT',
  /** The server broke the protocol (malformed packet, unknown topic alias, unexpected packet). */
  Protocol: 'CLIENT_ERR_PROTOCOL',
  /** No PINGRESP within the keep alive period. */
  KeepaliveTimeout: 'CLIENT_ERR_KEEPALIVE_TIMEOUT',
  /** An operation needed a connection and there is none (and no reconnect will come). */
  NotConnected: 'CLIENT_ERR_NOT_CONNECTED',
  /** The server refused a PUBLISH (v5 PUBACK/PUBREC reason >= 0x80); `reasonCode` holds the reason. */
  PublishRefused: 'CLIENT_ERR_PUBLISH_REFUSED',
  /** The packet is larger than the server's Maximum Packet Size. */
  PacketTooLarge: 'CLIENT_ERR_PACKET_TOO_LARGE',
  /** A caller passed something the protocol cannot carry (bad topic, QoS, option for the wrong version). */
  InvalidArgument: 'CLIENT_ERR_INVALID_ARGUMENT',
} as const
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode]

/**
 * Why a TLS handshake failed: our verification of the server (from OpenSSL's verify result as Node reports
 * it), the server's refusal of our client certificate (a TLS alert; with TLS 1.3 it arrives after the
 * handshake looked complete), or any other handshake failure.
 */
export type TlsFailureReason = 'unknown-ca' | 'name-mismatch' | 'expired' | 'not-yet-valid' | 'revoked'
  | 'certificate-required' | 'certificate-refused' | 'handshake'

export class ClientError extends Error {
  readonly code: ClientErrorCode
  /** CONNACK, PUBACK/PUBREC or DISCONNECT reason code, when one applies. */
  readonly reasonCode: number | undefined
  readonly tlsReason: TlsFailureReason | undefined

  constructor (code: ClientErrorCode, message: string, opts: { reasonCode?: number; tlsReason?: TlsFailureReason; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'ClientError'
    this.code = code
    this.reasonCode = opts.reasonCode
    this.tlsReason = opts.tlsReason
  }
}

/** Node's TLS verify error codes, grouped into the reasons the CLI names. */
const TlsReasons: Record<string, TlsFailureReason> = {
  UNABLE_TO_GET_ISSUER_CERT: 'unknown-ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown-ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown-ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown-ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown-ca',
  CERT_UNTRUSTED: 'unknown-ca',
  ERR_TLS_CERT_ALTNAME_INVALID: 'name-mismatch',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not-yet-valid',
  CERT_REVOKED: 'revoked',
  // Alerts from the server about our client certificate.
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'certificate-required',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'certificate-refused',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'certificate-refused',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'certificate-refused',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED: 'certificate-refused',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: 'certificate-refused',
}

/**
 * The reason text of an OpenSSL error as Node words it, e.g. "805C...:error:0A00045C:SSL routines:
 * ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/...:1601:SSL alert number 116\n"
 * gives "tlsv13 alert certificate required"; other messages are returned trimmed.
 */
export function opensslReason (message: string): string {
  const m = /:SSL routines:[^:]*:([^:]+):/.exec(message)
  return m === null ? message.trim() : m[1]!
}

/** Turns a socket error into a ClientError: TLS verification failures get a reason, the rest are Network. */
export function classifySocketError (err: Error & { code?: string }, tls: boolean): ClientError {
  const code = err.code ?? ''
  const reason = TlsReasons[code]
  if (reason !== undefined) return new ClientError(ClientErrorCode.Tls, opensslReason(err.message), { tlsReason: reason, cause: err })
  if (tls && (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /SSL|TLS/.test(err.message))) {
    return new ClientError(ClientErrorCode.Tls, opensslReason(err.message), { tlsReason: 'handshake', cause: err })
  }
  return new ClientError(ClientErrorCode.Network, err.message, { cause: err })
}
