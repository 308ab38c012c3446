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
