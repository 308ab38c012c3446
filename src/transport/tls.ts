/**
 * The TLS listener (mosquitto's `listener 8883` with certfile/keyfile/cafile): accepts connections,
 * completes the handshake, works out the certificate username (use_identity_as_username /
 * use_subject_as_username) and hands the socket on. No MQTT here: server/tls-listeners.ts passes each socket to
 * broker.handle().
 *
 * The certificate is swapped with server.setSecureContext(): new handshakes get the new certificate,
 * open connections keep theirs (see tls-certificate.ts for when a swap happens).
 */
import tls from 'node:tls'
import type net from 'node:net'
import { guardHandshakes, handshakeLimits } from './handshake-guard.js'
import { hostPort, socketPeer } from './peer-address.js'
import { commonName, subjectRfc2253 } from './cert-names.js'
import { lookupUser, type UserIdentity } from './file-access.js'
import { TlsCertificate, loadCertificate, type CertificateInfo, type TlsCertificateOptions } from './tls-certificate.js'
import { TlsConfigError, TlsProblemCode, tlsError, type TlsProblem } from './tls-errors.js'

export type { CertificateInfo } from './tls-certificate.js'
export { TlsConfigError, TlsProblemCode, type TlsProblem } from './tls-errors.js'

export interface TlsListenerOptions extends Omit<TlsCertificateOptions, 'name'> {
  /** For logs; default the port number. */
  name?: string
  /**
   * Address(es) to bind; undefined = every interface (as mosquitto's `listener 8883`). Several
   * addresses (e.g. 127.0.0.1 and ::1 for `localhost`) share one certificate, watcher and log.
   */
  host?: string | string[] | undefined
  port: number
  requireCertificate: boolean
  useIdentityAsUsername: boolean
  useSubjectAsUsername: boolean
  /** ALPN protocol names accepted (default ['mqtt']). Clients offering no ALPN are accepted too. */
  alpnProtocols?: string[]
  /** Drop connections whose TLS handshake takes longer than this (handshake_timeout). Default 10 s. */
  handshakeTimeoutMs?: number
  /** Handshakes in progress at once on this listener (max_handshakes); -1 = unlimited. Default 1000. */
  maxHandshakes?: number
  /** Handshakes in progress at once from one client address (max_handshakes_per_address); -1 = unlimited. Default 64. */
  maxHandshakesPerAddress?: number
  /** TCP_NODELAY on accepted sockets (set_tcp_nodelay); default true. */
  noDelay?: boolean
}

export interface TlsListener {
  /** The (first) bound address, port 0 resolved. */
  address(): net.AddressInfo
  /** Every bound address, one per host. */
  addresses(): net.AddressInfo[]
  /** SIGHUP: re-read the certificate files; true when the new pair is now served, false when refused. */
  reload(): Promise<boolean>
  /** The certificate served to new connections now. */
  certificateInfo(): CertificateInfo
  /** The certificate holder (e.g. for a wss listener to follow the same swaps). */
  readonly certificate: TlsCertificate
  /**
   * Stops accepting and watching, and ends open connections (close the broker's sessions first for a
   * clean DISCONNECT). Handshakes still in progress end by the handshake timeout.
   */
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
    if (!Array.isArray(loaded)) loaded.close()
    throw new TlsConfigError(name, [...setup, ...(Array.isArray(loaded) ? loaded : [])])
  }
  const certificate = loaded
  const hosts: Array<string | undefined> = Array.isArray(opts.host) ? opts.host : [opts.host]
  const limits = handshakeLimits(opts)
  const open = new Set<tls.TLSSocket>()
  const servers: tls.Server[] = []
  const guards: ReturnType<typeof guardHandshakes>[] = []

  const accept = (socket: tls.TLSSocket): void => {
    open.add(socket)
    socket.once('close', () => open.delete(socket))
    socket.setNoDelay(opts.noDelay ?? true)
    let username: string | undefined
    if (opts.useIdentityAsUsername || opts.useSubjectAsUsername) {
      const peer = socket.getPeerX509Certificate()
      username = peer === undefined ? undefined : opts.useIdentityAsUsername ? commonName(peer) : subjectRfc2253(peer.subject)
      if (username === undefined || username === '' || username.includes('\0')) {
        const why = peer === undefined ? 'it sent no client certificate' : 'its client certificate has no usable common name (CN)'
        log.notice(`TLS listener ${name}: refusing ${socketPeer(socket).remoteAddress}: ${why}, and use_identity_as_username needs one`)
        socket.destroy()
        return
      }
    }
    onSocket(socket, username)
  }

  try {
    for (const host of hosts) servers.push(await listenOne(host))
  } catch (err) {
    for (const g of guards) g.front.close()
    certificate.close()
    throw err
  }
  certificate.onSwap((options) => { for (const s of servers) s.setSecureContext(options) })
  certificate.start()
  const info = certificate.info()
  log.notice(`TLS listener ${name} serves ${certLabel(info)} (serial ${info.serial}, valid until ${info.notAfter.toISOString()}).`)

  async function listenOne(host: string | undefined): Promise<tls.Server> {
    const server = tls.createServer({
      ...certificate.contextOptions(),
      requestCert: opts.requireCertificate,
      rejectUnauthorized: opts.requireCertificate,
      handshakeTimeout: limits.timeoutMs,
      // A client offering ALPN without any of these is refused (RFC 7301 no_application_protocol: it
      // wants another protocol, e.g. a browser's h2); a client offering no ALPN at all is accepted.
      ALPNProtocols: opts.alpnProtocols ?? ['mqtt'],
    })
    server.on('secureConnection', accept)
    const guard = guardHandshakes(server, `TLS listener ${name}`, limits, log)
    guards.push(guard)
    const front = guard.front
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        front.off('listening', onListening)
        const where = host === undefined ? `port ${opts.port}` : hostPort(host, opts.port)
        const why = err.code === 'EADDRINUSE' ? `port ${opts.port} is already in use (another broker, or mosquitto still running?)`
          : err.code === 'EACCES' ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE'
            : err.code === 'EADDRNOTAVAIL' ? `no interface on this machine has address ${host ?? ''}` : err.message
        reject(Object.assign(new Error(`TLS listener ${name} cannot listen on ${where}: ${why}`, { cause: err }), { code: err.code }))
      }
      const onListening = (): void => {
        front.off('error', onError)
        resolve()
      }
      front.once('error', onError)
      front.once('listening', onListening)
      front.listen({ port: opts.port, host, ipv6Only: host?.includes(':') })
    })
    front.on('error', (err) => log.error(`TLS listener ${name}: ${err.message}`))
    return server
  }

  return {
    certificate,
    address: () => guards[0]?.front.address() as net.AddressInfo,
    addresses: () => guards.map((g) => g.front.address() as net.AddressInfo),
    reload: async () => certificate.reload(),
    certificateInfo: () => certificate.info(),
    close: async () => {
      certificate.close()
      for (const g of guards) g.front.close()
      // Never destroy a raw socket: its handle is shared with the TLSSocket wrapping it, and closing it
      // underneath a live TLSWrap crashes Node 20 (use after free in SSL_read). Handshakes still in
      // progress end by handshakeTimeout; unref'd, they do not hold the process open meanwhile.
      for (const g of guards) for (const raw of g.pending()) raw.unref()
      await Promise.all([...open].map((s) => new Promise<void>((resolve) => {
        s.once('close', () => resolve())
        s.destroy()
      })))
    },
  }
}

function certLabel(info: CertificateInfo): string {
  const cn = /(?:^|,)CN=((?:[^,\\]|\\.)*)/.exec(info.subject)
  return cn === null ? info.subject : `CN=${cn[1] ?? ''}`
}

/**
 * The $SYS values of a TLS listener, as (key under `$SYS/broker/`, reader) pairs for the broker's $SYS
 * publisher (server/tls-listeners.ts adds them to the broker's sysValues; transport/ does not import the broker). Readers run at each
 * publish, so a swapped certificate shows at the next interval.
 *   tls/LISTENER/certificate/expires        2027-02-23T12:49:20.000Z
 *   tls/LISTENER/certificate/days_left      89
 *   tls/LISTENER/certificate/subject        CN=mqtt.example.org
 *   tls/LISTENER/certificate/fingerprint    SHA-256, colon-separated hex
 */
export function tlsSysValues(listenerName: string, listener: Pick<TlsListener, 'certificateInfo'>): Array<[string, () => string]> {
  // '+' and '#' may not appear in a topic name; listener names such as '8883#1' would otherwise.
  const base = `tls/${listenerName.replace(/[+#/]/g, '_')}/certificate`
  return [
    [`${base}/expires`, () => listener.certificateInfo().notAfter.toISOString()],
    [`${base}/days_left`, () => String(Math.floor((listener.certificateInfo().notAfter.getTime() - Date.now()) / 86_400_000))],
    [`${base}/subject`, () => listener.certificateInfo().subject],
    [`${base}/fingerprint`, () => listener.certificateInfo().fingerprint],
  ]
}
