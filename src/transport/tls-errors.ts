/**
 * What can be wrong with a TLS listener's files and options. Each problem is one sentence for an
 * operator, naming the file and what to do; `code` is stable (callers and tests branch on it, never on
 * the text). Errors stop a listener from starting and a renewed pair from being swapped in; warnings
 * are logged and shown by `midge check`.
 */

export const TlsProblemCode = {
  /** A file or directory exists but this user may not read it (names the blocking directory). */
  FileUnreadable: 'TLS_ERR_FILE_UNREADABLE',
  FileMissing: 'TLS_ERR_FILE_MISSING',
  /** certfile holds no complete PEM certificate (empty, half-written, DER, or a key). */
  CertUnparseable: 'TLS_ERR_CERT_UNPARSEABLE',
  KeyUnparseable: 'TLS_ERR_KEY_UNPARSEABLE',
  /** The key is encrypted: Mosquitto has no keyfile passphrase option for listeners, nor has Midge. */
  KeyEncrypted: 'TLS_ERR_KEY_ENCRYPTED',
  KeyMismatch: 'TLS_ERR_KEY_MISMATCH',
  CertExpired: 'TLS_ERR_CERT_EXPIRED',
  CertNotYetValid: 'TLS_ERR_CERT_NOT_YET_VALID',
  /** The certificate does not cover the listener's configured domain. */
  CertWrongName: 'TLS_ERR_CERT_WRONG_NAME',
  /** The chain names an issuer it cannot reach: the next certificate is not the one that signed it. */
  ChainBroken: 'TLS_ERR_CHAIN_BROKEN',
  CaUnparseable: 'TLS_ERR_CA_UNPARSEABLE',
  CrlUnparseable: 'TLS_ERR_CRL_UNPARSEABLE',
  /** An option value Node/OpenSSL refuses (tls_version, ciphers) or a combination that cannot work. */
  BadOption: 'TLS_ERR_OPTION',
  /** The leaf's issuer is in no file and not in the system store: clients trusting only the root fail. */
  ChainIncomplete: 'TLS_WARN_CHAIN_INCOMPLETE',
  /** An intermediate in the served chain has expired. */
  ChainExpired: 'TLS_WARN_CHAIN_EXPIRED',
  ExpiresSoon: 'TLS_WARN_EXPIRES_SOON',
  /** capath holds no `openssl rehash` names, so OpenSSL-based peers would find no CA in it. */
  CapathNotHashed: 'TLS_WARN_CAPATH_NOT_HASHED',
} as const
export type TlsProblemCode = (typeof TlsProblemCode)[keyof typeof TlsProblemCode]

export interface TlsProblem {
  severity: 'error' | 'warning'
  code: TlsProblemCode
  /** The file the problem is about, when there is one. */
  file?: string
  message: string
}

export function tlsError(code: TlsProblemCode, message: string, file?: string): TlsProblem {
  return file === undefined ? { severity: 'error', code, message } : { severity: 'error', code, message, file }
}

export function tlsWarning(code: TlsProblemCode, message: string, file?: string): TlsProblem {
  return file === undefined ? { severity: 'warning', code, message } : { severity: 'warning', code, message, file }
}

export function hasErrors(problems: readonly TlsProblem[]): boolean {
  return problems.some((p) => p.severity === 'error')
}

/** Thrown by startTlsListener when the files or options have errors; `problems` holds every one. */
export class TlsConfigError extends Error {
  readonly code = 'TLS_ERR_CONFIG'
  readonly problems: readonly TlsProblem[]

  constructor (listener: string, problems: readonly TlsProblem[]) {
    const errors = problems.filter((p) => p.severity === 'error')
    super(`TLS listener ${listener} cannot start:\n` + errors.map((p) => `  - ${p.message}`).join('\n'))
    this.name = 'TlsConfigError'
    this.problems = problems
  }
}

/** TLS alert numbers (RFC 8446 §6, RFC 5246 §7.2), by the name OpenSSL puts in its error codes. */
const AlertNumbers: Record<string, number> = {
  unexpected_message: 10, bad_record_mac: 20, record_overflow: 22, handshake_failure: 40, bad_certificate: 42,
  unsupported_certificate: 43, certificate_revoked: 44, certificate_expired: 45, certificate_unknown: 46,
  illegal_parameter: 47, unknown_ca: 48, access_denied: 49, decode_error: 50, decrypt_error: 51, protocol_version: 70,
  insufficient_security: 71, internal_error: 80, inappropriate_fallback: 86, user_cancelled: 90, missing_extension: 109,
  unsupported_extension: 110, unrecognized_name: 112, bad_certificate_status_response: 113, unknown_psk_identity: 115,
  certificate_required: 116, no_application_protocol: 120,
}

/** What an alert the client sent means for the operator. */
const AlertMeanings: Record<string, string> = {
  unknown_ca: 'the client does not trust our certificate',
  bad_certificate: 'the client rejected our certificate',
  unsupported_certificate: 'the client rejected our certificate',
  certificate_unknown: 'the client rejected our certificate (often: the host name it connected to is not in it)',
  certificate_expired: 'the client considers our certificate expired (check its clock, or renew)',
  certificate_revoked: 'the client says our certificate is revoked',
  protocol_version: 'the client refuses the TLS versions we offer',
  handshake_failure: 'the client found no acceptable cipher, curve or version',
  insufficient_security: 'the client found no acceptable cipher, curve or version',
  unrecognized_name: 'the client does not accept the server name we answered to',
  no_application_protocol: 'the client does not accept our ALPN protocol',
  decrypt_error: 'the handshake failed to verify (a broken or mismatched key?)',
}

export interface HandshakeFailure {
  /** One clause for "TLS handshake with ADDRESS failed: REASON." */
  reason: string
  /** Worth a notice (a misconfigured client or certificate) rather than information (timeouts, resets, scanners). */
  notable: boolean
}

/**
 * A handshake error (a server's tlsClientError) as a sentence an operator can act on, instead of OpenSSL's
 * "C0:error:0A000418:SSL routines:ssl3_read_bytes:tlsv1 alert unknown ca:...".
 */
export function describeHandshakeFailure(err: NodeJS.ErrnoException, timeoutMs: number): HandshakeFailure {
  const code = err.code ?? ''
  const alert = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(\w+)$/.exec(code)
  if (alert !== null) {
    const name = (alert[1] as string).toLowerCase()
    const n = AlertNumbers[name]
    const meaning = AlertMeanings[name] ?? 'the client ended the handshake'
    return { reason: `${meaning} (alert ${n === undefined ? '' : `${n} `}${name.replace(/_/g, ' ')})`, notable: true }
  }
  switch (code) {
    case 'ERR_TLS_HANDSHAKE_TIMEOUT':
      return { reason: `no handshake within ${formatSeconds(timeoutMs)}`, notable: false }
    case 'ECONNRESET':
    case 'EPIPE':
      return { reason: 'the client closed the connection during the handshake (a client that does not trust our certificate may do so without saying why)', notable: false }
    case 'ERR_SSL_HTTP_REQUEST':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
    case 'ERR_SSL_RECORD_LENGTH_MISMATCH':
      return { reason: 'the client did not speak TLS (plain MQTT or HTTP sent to a TLS port?)', notable: true }
    case 'ERR_SSL_UNSUPPORTED_PROTOCOL':
      return { reason: 'the client offers only TLS versions this listener refuses (see tls_version)', notable: true }
    case 'ERR_SSL_NO_SHARED_CIPHER':
      return { reason: 'no cipher suite in common with the client (see ciphers, ciphers_tls1.3)', notable: true }
    case 'ERR_SSL_NO_APPLICATION_PROTOCOL':
      return { reason: 'the client offered ALPN protocols, none of them one this listener speaks', notable: true }
    case 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE':
      return { reason: 'the client sent no certificate, and require_certificate is true', notable: true }
    case 'ERR_SSL_CERTIFICATE_VERIFY_FAILED':
      return { reason: 'the client certificate is not signed by a CA in cafile/capath, has expired, or is revoked', notable: true }
  }
  // Anything else: OpenSSL's reason phrase without its error queue formatting.
  const phrase = /:SSL routines:[^:]*:([^:]+)/.exec(err.message)?.[1] ?? err.message.split('\n')[0] ?? 'unknown error'
  return { reason: `TLS error: ${phrase}`, notable: true }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`
}
