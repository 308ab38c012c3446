/**
 * MQTT over WebSockets listeners (mosquitto's `protocol websockets`), plain (ws://) or over TLS
 * (wss://). No MQTT here: each accepted WebSocket becomes a Duplex (ws-stream.ts) for broker.handle().
 * The upgrade request is checked first (ws-handshake.ts: path, subprotocol) so a refused client gets
 * an HTTP status that says why; plain HTTP requests get 426 Upgrade Required.
 *
 * Per connection: TCP_NODELAY as the listener says, permessage-deflate off (MQTT payloads are often
 * already compact, and compression costs CPU and memory per connection and opens CRIME-style leaks
 * on wss), and a message size cap derived from the broker's max_packet_size.
 *
 * wss follows certificate swaps: give `tls.certificate` a TlsCertificate (tls-certificate.ts), or any
 * object with contextOptions() and onSwap(); or fixed SecureContextOptions and call setSecureContext().
 */
import http from 'node:http'
import https from 'node:https'
import type net from 'node:net'
import type tls from 'node:tls'
import { WebSocketServer, type WebSocket } from 'ws'
import type { Broker } from '../broker/broker.js'
import { PreAuthMaxPacketSize, type ListenerInfo } from '../broker/options.js'
import { listen, type RunningListener } from './tcp.js'
import { commonName, subjectRfc2253 } from './cert-names.js'
import { boundHandshakes, handshakeLimits } from './handshake-guard.js'
import { chooseSubprotocol, peerAddress, refusal, refuseUpgrade, type Refusal } from './ws-handshake.js'
import { WebSocketDuplex, WsCloseCode } from './ws-stream.js'

/** The largest MQTT packet: 1 byte of fixed header, 4 of Remaining Length, 268,435,455 of body. */
const MaxMqttPacketBytes = 268_435_460
/** A message may carry several packets at once, so a small max_packet_size still allows this much per message. */
const MinMessageBytes = 64 * 1024

/** Anything that supplies secure-context options and announces replacements (TlsCertificate does). */
export interface SecureContextSource {
  contextOptions(): tls.SecureContextOptions
  onSwap(listener: (options: tls.SecureContextOptions) => void): void
}

export interface WssOptions {
  /** A SecureContextSource (swaps followed) or fixed options ({ key, cert, ca }...; swap with setSecureContext). */
  certificate: SecureContextSource | tls.SecureContextOptions
  /** Clients must present a certificate signed by the context's `ca`. */
  requireCertificate?: boolean
  /** The client certificate's CN becomes the username (needs requireCertificate). */
  useIdentityAsUsername?: boolean
  /** The client certificate's subject, RFC 2253, becomes the username (needs requireCertificate). */
  useSubjectAsUsername?: boolean
  /** Drop connections whose TLS handshake takes longer. Default: the listener's handshakeTimeoutMs. */
  handshakeTimeoutMs?: number | undefined
  /** TLS handshakes in progress at once (max_handshakes); -1 = unlimited. Default 1000. */
  maxHandshakes?: number | undefined
  /** ... from one address (max_handshakes_per_address); -1 = unlimited. Default 64. */
  maxHandshakesPerAddress?: number | undefined
}

export interface WsListenerOptions {
  host: string
  port: number
  /** Serve only this request path, e.g. '/mqtt' (query strings ignored). Default: any path, as Mosquitto. */
  path?: string | undefined
  /** TCP_NODELAY on accepted sockets. */
  noDelay: boolean
  /** -1 = unlimited. Counts TCP connections, upgraded or not. */
  maxConnections: number
  info: ListenerInfo
  /**
   * Take the client address from the last X-Forwarded-For entry. Only behind a reverse proxy that sets
   * it: otherwise any client can claim any address. Default false.
   */
  trustForwardedFor?: boolean
  /** Serve wss:// with these. */
  tls?: WssOptions | undefined
  /**
   * A connection must have sent its whole upgrade request (and, for wss, finished its TLS handshake)
   * within this long (handshake_timeout). Default 10 s.
   */
  handshakeTimeoutMs?: number | undefined
}

export interface WsListener extends RunningListener {
  /** wss only: new handshakes get these options from now on; open connections keep theirs. */
  setSecureContext?: (options: tls.SecureContextOptions) => void
}

function isSource(c: WssOptions['certificate']): c is SecureContextSource {
  return typeof (c as SecureContextSource).contextOptions === 'function'
}

/** The per-message cap: the broker's max_packet_size (0 = the protocol's limit), at least MinMessageBytes. */
export function messageLimit(maxPacketSize: number): number {
  return maxPacketSize > 0 ? Math.min(Math.max(maxPacketSize, MinMessageBytes), MaxMqttPacketBytes) : MaxMqttPacketBytes
}

export async function startWsListener(broker: Broker, opts: WsListenerOptions): Promise<WsListener> {
  const log = broker.options.logger
  const secure = opts.tls
  const trust = opts.trustForwardedFor ?? false
  const open = new Set<WebSocketDuplex>()
  let closing = false

  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: messageLimit(broker.options.maxPacketSize),
    handleProtocols: (offered) => chooseSubprotocol(offered) ?? false,
  })

  const timeoutMs = handshakeLimits(opts).timeoutMs
  // Node closes a connection whose request headers are not complete by headersTimeout, checked every
  // connectionsCheckingInterval (default 30 s, so a slow request stayed up to 90 s). A connection that
  // sends nothing at all is left to server.timeout (idle; ws turns it off once upgraded), set below.
  const upgradeTimeouts = { headersTimeout: timeoutMs, requestTimeout: timeoutMs, connectionsCheckingInterval: Math.min(1000, timeoutMs) }
  let server: http.Server
  let tlsServer: https.Server | undefined
  if (secure === undefined) {
    server = http.createServer({ noDelay: opts.noDelay, ...upgradeTimeouts })
  } else {
    const requireCert = secure.requireCertificate ?? false
    server = tlsServer = https.createServer({
      ...(isSource(secure.certificate) ? secure.certificate.contextOptions() : secure.certificate),
      noDelay: opts.noDelay,
      ...upgradeTimeouts,
      requestCert: requireCert,
      rejectUnauthorized: requireCert,
      handshakeTimeout: secure.handshakeTimeoutMs ?? timeoutMs,
      // WebSockets upgrade over HTTP/1.1 only; browsers offer h2 and http/1.1 and settle on the latter.
      ALPNProtocols: ['http/1.1'],
    })
    boundHandshakes(tlsServer, `WebSocket listener ${opts.info.name}`, handshakeLimits({
      handshakeTimeoutMs: secure.handshakeTimeoutMs ?? timeoutMs,
      maxHandshakes: secure.maxHandshakes,
      maxHandshakesPerAddress: secure.maxHandshakesPerAddress,
    }), log)
  }

  server.timeout = timeoutMs

  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    const body = 'This is an MQTT over WebSockets endpoint: connect with a WebSocket offering the subprotocol mqtt.\n'
    res.writeHead(426, { Upgrade: 'websocket', Connection: 'close', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) })
    res.end(body)
  })

  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    // http detaches its own error handler on upgrade: a reset now must not become an uncaught error.
    socket.on('error', () => socket.destroy())
    const refused: Refusal | undefined = closing ? { status: 503, reason: 'the broker is shutting down' } : refusal(req, opts.path)
    const username = refused === undefined ? certificateUsername(socket, secure) : undefined
    if (refused !== undefined || username === null) {
      const r = refused ?? { status: 403, reason: 'this listener takes the username from the client certificate, and none with a usable name (CN or subject) was sent' }
      log.debug(`WebSocket listener ${opts.info.name}: refused ${socket.remoteAddress ?? 'a client'}: ${r.status} ${r.reason}`)
      refuseUpgrade(socket, r)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      // ws turns Nagle off on every socket it takes (websocket.js setSocket): set_tcp_nodelay false turns it back on.
      socket.setNoDelay(opts.noDelay)
      const stream = new WebSocketDuplex(ws, socket, PreAuthMaxPacketSize)
      open.add(stream)
      stream.once('close', () => open.delete(stream))
      const meta = peerAddress(req, trust)
      broker.handle(stream, opts.info, username === undefined ? meta : { ...meta, certificateUsername: username })
    })
  })

  if (opts.maxConnections >= 0) server.maxConnections = opts.maxConnections
  const running = await listen(server, opts.host, opts.port, opts.info)
  server.on('error', (err) => log.error(`WebSocket listener ${opts.info.name}: ${err.message}`))

  const listener: WsListener = {
    info: opts.info,
    address: running.address,
    /**
     * Stops accepting and ends open connections with a close handshake (close the broker first for a
     * clean v5 DISCONNECT); resolves once every socket is gone.
     */
    close: async () => {
      closing = true
      const closed = running.close()
      for (const s of open) {
        s.closeGracefully(WsCloseCode.GoingAway, 'server shutting down')
        s.end()
      }
      // HTTP requests still in progress (not upgraded) would hold server.close() open.
      server.closeAllConnections()
      await closed
    },
  }
  if (secure !== undefined && tlsServer !== undefined) {
    const target = tlsServer
    const apply = (options: tls.SecureContextOptions): void => {
      if (!closing) target.setSecureContext(options)
    }
    if (isSource(secure.certificate)) secure.certificate.onSwap(apply)
    listener.setSecureContext = apply
  }
  return listener
}

/**
 * undefined: no certificate username is wanted; null: one is wanted and the client has none usable;
 * otherwise the username (use_identity_as_username / use_subject_as_username).
 */
function certificateUsername(socket: net.Socket, secure: WssOptions | undefined): string | undefined | null {
  if (secure === undefined || !(secure.useIdentityAsUsername === true || secure.useSubjectAsUsername === true)) return undefined
  const tlsSocket = socket as tls.TLSSocket
  // Only a certificate verified against the CA may name the user (without requireCertificate none is asked for).
  const peer = tlsSocket.authorized ? tlsSocket.getPeerX509Certificate() : undefined
  if (peer === undefined) return null
  const name = secure.useIdentityAsUsername === true ? commonName(peer) : subjectRfc2253(peer.subject)
  return name === undefined || name === '' || name.includes('\0') ? null : name
}
