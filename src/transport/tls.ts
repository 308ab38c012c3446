/**
 * The TLS listener (mosquitto's `listener 8883` with certfile/keyfile/cafile): accepts connections,
 * completes the handshake, works out the certificate username (use_identity_as_username /
 * use_subject_as_username) and hands the socket on. No MQTT here: serve.ts passes each socket to
 * broker.handle().
 *
 * The certificate is swapped with server.setSecureContext(): new handshakes get the new certificate,
 * open connections keep theirs (see tls-certificate.ts for when a swap happens).
 */
import tls from 'node:tls'
import type net from 'node:net'
import { commonName, subjectRfc2253 } from './cert-names.js'
import { lookupUser, type UserIdentity } from './file-access.js'
import { TlsCertificate, loadCertificate, type CertificateInfo, type TlsCertificateOptions } from './tls-certificate.js'
import { TlsConfigError, TlsProblemCode, tlsError, type TlsProblem } from './tls-errors.js'

export type { CertificateInfo } from './tls-certificate.js'
export { TlsConfigError, TlsProblemCode, type TlsProblem } from './tls-errors.js'

export interface TlsListenerOptions extends Omit<TlsCertificateOptions, 'name'> {
  /** For logs; default the port number. */
  name?: string
  /** Address to bind; undefined = every interface (as mosquitto's `listener 8883`). */
  host?: string | undefined
  port: number
  requireCertificate: boolean
  useIdentityAsUsername: boolean
  useSubjectAsUsername: boolean
  /** ALPN protocol names accepted (default ['mqtt']). Clients offering no ALPN are accepted too. */
  alpnProtocols?: string[]
  /** Drop connections whose TLS handshake takes longer than this. Default 20 s. */
  handshakeTimeoutMs?: number
}

export interface TlsListener {
  /** The bound address (port 0 resolved). */
  address(): net.AddressInfo
  /** SIGHUP: re-read the certificate files; true when the new pair is now served, false when refused. */
  reload(): Promise<boolean>
  /** The certificate served to new connections now. */
  certificateInfo(): CertificateInfo
  /** The certificate holder (e.g. for a wss listener to follow the same swaps). */
  readonly certificate: TlsCertificate
  /** Stops accepting, ends handshakes in progress and open connections, stops watching. */
  close(): Promise<void>
}

export type TlsSocketHandler = (socket: tls.TLSSocket, certificateUsername: string | undefined) => void

/** Option combinations that cannot work, whatever the files hold. */
export function optionProblems(opts: Pick<TlsListenerOptions, 'requireCertificate' | 'useIdentityAsUsername' | 'useSubjectAsUsername' | 'cafile' | 'capath'>): TlsProblem[] {
  const problems: TlsProblem[] = []
  const hasCa = (opts.cafile ?? '') !== '' || (opts.capath ?? '') !== ''
  if (opts.requireCertificate && !hasCa) {
    problems.push(tlsError(TlsProblemCode.BadOption, 'require_certificate is true but neither cafile nor capath is set: name the CA that issues client certificates'))
  }
  if ((opts.useIdentityAsUsername || opts.useSubjectAsUsername) && !opts.requireCertificate) {
    const which = opts.useIdentityAsUsername ? 'use_identity_as_username' : 'use_subject_as_username'
    problems.push(tlsError(TlsProblemCode.BadOption, `${which} is true but require_certificate is false: no client certificate is asked for, so every client would be refused; set require_certificate true`))
  }
  return problems
}

/**
 * Every problem `midge check` reports for a TLS listener: options, then files as `asUser` would read
 * them (a user name or uid; default the user running the check).
 */
export function checkTlsFiles(opts: Omit<TlsListenerOptions, 'logger' | 'port'>, asUser?: string | UserIdentity): TlsProblem[] {
  let user: UserIdentity | undefined
  if (typeof asUser === 'string') {
    user = lookupUser(asUser)
    if (user === undefined) return [tlsError(TlsProblemCode.BadOption, `user '${asUser}' does not exist on this machine, so file access cannot be checked for it`)]
  } else {
    user = asUser
  }
  return [...optionProblems(opts), ...loadCertificate(opts, user).problems]
}

export async function startTlsListener(opts: TlsListenerOptions, onSocket: TlsSocketHandler): Promise<TlsListener> {
  const name = opts.name ?? String(opts.port)
  const log = opts.logger
  const setup = optionProblems(opts)
  const loaded = TlsCertificate.load({ ...opts, name })
  if (Array.isArray(loaded) || setup.length > 0) {
    throw new TlsConfigError(name, [...setup, ...(Array.isArray(loaded) ? loaded : [])])
  }
  const certificate = loaded
  const alpn = opts.alpnProtocols ?? ['mqtt']

  const server = tls.createServer({
    ...certificate.contextOptions(),
    requestCert: opts.requireCertificate,
    rejectUnauthorized: opts.requireCertificate,
    handshakeTimeout: opts.handshakeTimeoutMs ?? 20_000,
    // A client offering ALPN without any of these is refused (RFC 7301 no_application_protocol: it
    // wants another protocol, e.g. a browser's h2); a client offering no ALPN at all is accepted.
    ALPNProtocols: alpn,
  })
  certificate.onSwap((options) => { server.setSecureContext(options) })

  const pending = new Set<net.Socket>()
  const open = new Set<tls.TLSSocket>()
  server.on('connection', (raw: net.Socket) => {
    pending.add(raw)
    raw.once('close', () => pending.delete(raw))
  })
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    const raw = socket as unknown as net.Socket
    open.add(socket)
    socket.once('close', () => open.delete(socket))
    socket.setNoDelay(true)
    let username: string | undefined
    if (opts.useIdentityAsUsername || opts.useSubjectAsUsername) {
      const peer = socket.getPeerX509Certificate()
      username = peer === undefined ? undefined : opts.useIdentityAsUsername ? commonName(peer) : subjectRfc2253(peer.subject)
      if (username === undefined || username === '' || username.includes('\0')) {
        log.notice(`TLS listener ${name}: refusing ${raw.remoteAddress ?? 'a client'}: ${peer === undefined ? 'it sent no client certificate' : 'its client certificate has no usable common name (CN)'}, and use_identity_as_username needs one`)
        socket.destroy()
        return
      }
    }
    onSocket(socket, username)
  })
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    const who = (socket as unknown as net.Socket).remoteAddress ?? 'a client'
    const certRelated = /CERTIFICATE|UNKNOWN_CA|VERIFY|CERT_/i.test(err.code ?? '') || /certificate/i.test(err.message)
    log.log(certRelated ? 'notice' : 'debug', `TLS listener ${name}: handshake with ${who} failed: ${err.code ?? ''} ${err.message.split('\n')[0]}`)
  })

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      certificate.close()
      const where = `${opts.host ?? '*'}:${opts.port}`
      const why = err.code === 'EADDRINUSE' ? `port ${opts.port} is already in use (another broker, or mosquitto still running?)`
        : err.code === 'EACCES' ? `ports below 1024 need root or CAP_NET_BIND_SERVICE`
          : err.code === 'EADDRNOTAVAIL' ? `no interface on this machine has address ${opts.host ?? ''}` : err.message
      reject(Object.assign(new Error(`TLS listener ${name} cannot listen on ${where}: ${why}`, { cause: err }), { code: err.code }))
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve()
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen({ port: opts.port, host: opts.host })
  })
  server.on('error', (err) => log.error(`TLS listener ${name}: ${err.message}`))
  certificate.start()
  const info = certificate.info()
  log.notice(`Opening TLS listen socket on port ${(server.address() as net.AddressInfo).port} (listener ${name}), certificate ${info.subject} valid until ${info.notAfter.toISOString()}.`)

  return {
    certificate,
    address: () => server.address() as net.AddressInfo,
    reload: async () => certificate.reload(),
    certificateInfo: () => certificate.info(),
    close: async () => {
      certificate.close()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const s of pending) s.destroy()
      for (const s of open) s.destroy()
      await closed
    },
  }
}
