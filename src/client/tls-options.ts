/**
 * The client side of TLS, one builder for the bridge and `midge pub/sub`: which CAs to trust (cafile and capath,
 * capath by transport/cert-files.ts's one rule), the client certificate, the lowest TLS version, ALPN, ciphers and
 * the host name check. Files are read at each call, so a caller that builds per connection attempt (the bridge)
 * picks up a renewed CA bundle or client certificate at its next reconnection.
 */
import fs from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import { pemCertificates, readCapath } from '../transport/cert-files.js'
import { TlsVersions, type TlsVersionName } from '../transport/tls-versions.js'

export interface ClientTlsSettings {
  cafile?: string | undefined
  capath?: string | undefined
  certfile?: string | undefined
  keyfile?: string | undefined
  /** Skip the host name check (the chain is still verified). */
  insecure?: boolean | undefined
  /** The lowest version offered, as libmosquitto's tls_version (1.3 stays allowed). Unset: TLS 1.2. */
  version?: TlsVersionName | undefined
  alpn?: string | undefined
  ciphers?: string | undefined
}

export interface ClientTls {
  options: ConnectionOptions
  /** CA certificates trusted; undefined when neither cafile nor capath was given (Node's default roots apply). */
  caCount: number | undefined
  /** capath entries not used, `NAME: reason`, for a debug line. */
  skipped: string[]
}

/** A file the settings name cannot be read, or capath cannot be used. `file` names it. */
export class ClientTlsFileError extends Error {
  constructor (readonly file: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ClientTlsFileError'
  }
}

function read (role: string, file: string): Buffer {
  try {
    return fs.readFileSync(file)
  } catch (err) {
    throw new ClientTlsFileError(file, `${role} ${file} cannot be read: ${(err as Error).message}`, { cause: err })
  }
}

export function clientTlsOptions (t: ClientTlsSettings): ClientTls {
  const o: ConnectionOptions = {}
  let caCount: number | undefined
  const skipped: string[] = []
  if (t.cafile !== undefined || t.capath !== undefined) {
    const ca: string[] = []
    if (t.cafile !== undefined) ca.push(...pemCertificates(read('cafile', t.cafile).toString('latin1')))
    if (t.capath !== undefined) {
      const cp = readCapath(t.capath)
      const failure = cp.problems.find((p) => p.severity === 'error')
      if (failure !== undefined) throw new ClientTlsFileError(failure.file ?? t.capath, failure.message)
      ca.push(...cp.certs)
      skipped.push(...cp.skipped)
    }
    o.ca = ca
    caCount = ca.length
  }
  if (t.certfile !== undefined) o.cert = read('certfile', t.certfile)
  if (t.keyfile !== undefined) o.key = read('keyfile', t.keyfile)
  if (t.insecure === true) o.checkServerIdentity = () => undefined
  if (t.version !== undefined) o.minVersion = TlsVersions[t.version]
  if (t.alpn !== undefined) o.ALPNProtocols = [t.alpn]
  if (t.ciphers !== undefined) o.ciphers = t.ciphers
  return { options: o, caCount, skipped }
}
