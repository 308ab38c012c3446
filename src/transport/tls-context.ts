/**
 * Mosquitto's listener TLS options as Node secure-context options. `tls_version` is a minimum (as in
 * Mosquitto 2; unset means TLS 1.2 and 1.3). `ciphers` is the TLS ≤1.2 list and `ciphers_tls1.3` the
 * TLS 1.3 suites; Node takes both in one string, and a string without TLS 1.3 suites would switch
 * TLS 1.3 off, so the default 1.3 suites are kept when only `ciphers` is set.
 */
import tls from 'node:tls'
import type { CertificateMaterial } from './cert-material.js'
import { pemBlocks } from './cert-files.js'
import { TlsProblemCode, tlsError, type TlsProblem } from './tls-errors.js'
import { TlsVersions, type TlsVersionName } from './tls-versions.js'

export interface TlsProtocolOptions {
  tlsVersion?: string | undefined
  ciphers?: string | undefined
  ciphersTls13?: string | undefined
}

export function protocolProblems(opts: TlsProtocolOptions): TlsProblem[] {
  if (opts.tlsVersion !== undefined && !(opts.tlsVersion in TlsVersions)) {
    return [tlsError(TlsProblemCode.BadOption, `tls_version ${opts.tlsVersion} is not one of ${Object.keys(TlsVersions).join(', ')}`)]
  }
  return []
}

function cipherString(opts: TlsProtocolOptions): string | undefined {
  if (opts.ciphers === undefined && opts.ciphersTls13 === undefined) return undefined
  const defaults = tls.DEFAULT_CIPHERS.split(':')
  const tls13 = opts.ciphersTls13 ?? defaults.filter((c) => c.startsWith('TLS_')).join(':')
  const tls12 = opts.ciphers ?? defaults.filter((c) => !c.startsWith('TLS_')).join(':')
  return `${tls13}:${tls12}`
}

export function secureContextOptions(material: CertificateMaterial, opts: TlsProtocolOptions): tls.SecureContextOptions {
  const o: tls.SecureContextOptions = {
    key: material.keyPem,
    cert: material.certPem,
    minVersion: TlsVersions[(opts.tlsVersion ?? 'tlsv1.2') as TlsVersionName] ?? 'TLSv1.2',
  }
  if (material.ca !== undefined) o.ca = material.ca
  // One entry per CRL: given one string, Node reads only its first CRL, and it checks revocation along the whole
  // chain (CRL_CHECK_ALL), so a crlfile with an intermediate CA must hold several (test/transport/48-tls-crlfile).
  if (material.crl !== undefined) o.crl = pemBlocks(material.crl).filter((b) => b.label === 'X509 CRL').map((b) => b.text)
  const ciphers = cipherString(opts)
  if (ciphers !== undefined) o.ciphers = ciphers
  return o
}

/**
 * Builds a context once to learn whether OpenSSL accepts the options (an unknown cipher string only
 * fails here); the error names the option.
 */
export function contextProblems(options: tls.SecureContextOptions, opts: TlsProtocolOptions): TlsProblem[] {
  try {
    tls.createSecureContext(options)
    return []
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ERR_SSL_NO_CIPHER_MATCH') {
      const which = [opts.ciphers !== undefined ? `ciphers ${opts.ciphers}` : '', opts.ciphersTls13 !== undefined ? `ciphers_tls1.3 ${opts.ciphersTls13}` : ''].filter((s) => s !== '').join(' / ')
      return [tlsError(TlsProblemCode.BadOption, `${which} matches no cipher this OpenSSL offers: \`openssl ciphers -v 'LIST'\` shows what a list selects`)]
    }
    return [tlsError(TlsProblemCode.BadOption, `the TLS settings are refused by OpenSSL: ${(err as Error).message}`)]
  }
}
