/**
 * A `protocol http` listener: an HTTP/1.1 server for monitoring (/metrics, /healthz; routes from
 * http-routes.ts, so further pages are more entries in the same table). Sockets reach it from its own TCP
 * servers (plain) or from a TLS listener (https: the same certificate handling, reload and ACME as MQTT over
 * TLS), through `accept(socket)`.
 *
 * Who may read: a request that arrived on a loopback address is served without credentials unless the block
 * says `http_require_auth true`; any other needs HTTP basic auth by a password_file user whom the ACL lets
 * subscribe to `$SYS/#`. Logins go through the listener's authenticator, which sits behind the runtime's one
 * AuthThrottle, so guesses over HTTP and over MQTT count together and a banned address is refused here too.
 * The decision is per socket (its local address), so `listener 9100` on every interface serves a local
 * Prometheus freely and a remote one only with a password.
 *
 * Hostile input is normal input: headers are capped (8 KiB; 431 beyond), a socket must deliver its request's
 * headers within 5 s of connecting and is closed 10 s after them whatever happens, one request per connection
 * (a scrape every 15 s gains nothing from keep-alive, and a socket's whole life stays bounded by our own
 * timers: Node's headersTimeout does not watch sockets handed in by emit('connection'), and a drip of header
 * lines keeps its idle timer from firing), bodies are refused (every route is GET), and at most
 * max_connections sockets (default 64 here) are open at once; more are closed on arrival.
 *
 * The dashboard (an HttpApp: server/dashboard/) takes the paths the routes do not: it reads JSON bodies
 * (capped), logs users in with a session cookie instead of basic auth, and may keep one response open per
 * live stream (its own cap, below max_connections); every other socket keeps the limits above.
 */
import http from 'node:http'
import net from 'node:net'
import { isLoopback } from '../auth/throttle.js'
import type { AuthRequest } from '../auth/types.js'
import type { ListenerInfo } from '../broker/options.js'
import type { Logger } from '../observability/logger.js'

export const HttpLimits = {
  maxHeaderBytes: 8192,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  /** When the block sets no max_connections. */
  defaultMaxConnections: 64,
} as const

export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>

/**
 * A site behind the listener beside its GET routes (the dashboard: server/dashboard/site.ts), with its own
 * methods, bodies and login; the listener's socket limits still hold. `keepOpen` lifts the socket's
 * deadline, for a long-lived response the app bounds itself (a live event stream).
 */
export interface HttpApp {
  claims(path: string): boolean
  handle(req: http.IncomingMessage, res: http.ServerResponse, ctx: { keepOpen(): void }): Promise<void>
}

export interface HttpListenerOptions {
  name: string
  /** The listener block's security, read at each request (a reload updates it in place). */
  info: ListenerInfo
  /** http_require_auth: credentials even on a loopback address. */
  requireAuth: boolean
  /** -1: HttpLimits.defaultMaxConnections. */
  maxConnections: number
  routes: ReadonlyMap<string, HttpHandler>
  /** Paths the routes do not hold go to the app when it claims them. */
  app?: HttpApp | undefined
  logger: Logger
}

/** The `$SYS` filter a user must be allowed to subscribe to, to read the monitoring endpoints. */
export const MonitoringFilter = '$SYS/#'

export class HttpListener {
  private readonly server: http.Server
  private readonly sockets = new Set<net.Socket>()
  private readonly tcp: net.Server[] = []
  private readonly maxConnections: number
  /** Each open socket's deadline: its headers, then its response. */
  private readonly deadlines = new Map<net.Socket, NodeJS.Timeout>()

  constructor(private readonly opts: HttpListenerOptions) {
    this.maxConnections = opts.maxConnections >= 0 ? opts.maxConnections : HttpLimits.defaultMaxConnections
    this.server = http.createServer({
      maxHeaderSize: HttpLimits.maxHeaderBytes,
      headersTimeout: HttpLimits.headersTimeoutMs,
      requestTimeout: HttpLimits.requestTimeoutMs,
    }, (req, res) => { this.onRequest(req, res) })
    this.server.maxRequestsPerSocket = 1
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request'
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      socket.destroy()
    })
  }

  /** Opens a plain TCP server per host (undefined: every interface). */
  async listen(hosts: Array<string | undefined>, port: number): Promise<void> {
    for (const host of hosts) {
      const server = net.createServer((socket) => { this.accept(socket) })
      server.on('error', () => {})
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host, port }, () => { server.off('error', reject); resolve() })
      })
      this.tcp.push(server)
    }
  }

  /** Takes a connected socket (plain, or TLS after its handshake). */
  accept(socket: net.Socket): void {
    socket.on('error', () => {})
    if (this.sockets.size >= this.maxConnections) {
      socket.destroy()
      return
    }
    this.sockets.add(socket)
    this.deadline(socket, HttpLimits.headersTimeoutMs)
    socket.once('close', () => {
      this.sockets.delete(socket)
      clearTimeout(this.deadlines.get(socket))
      this.deadlines.delete(socket)
    })
    this.server.emit('connection', socket)
  }

  /** Destroys `socket` in `ms` unless re-armed. */
  private deadline(socket: net.Socket, ms: number): void {
    clearTimeout(this.deadlines.get(socket))
    const t = setTimeout(() => socket.destroy(), ms)
    t.unref()
    this.deadlines.set(socket, t)
  }

  addresses(): net.AddressInfo[] {
    return this.tcp.map((s) => s.address() as net.AddressInfo)
  }

  get openSockets(): number {
    return this.sockets.size
  }

  async close(): Promise<void> {
    await Promise.all(this.tcp.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
    for (const s of this.sockets) s.destroy()
    this.server.close()
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.deadline(req.socket, HttpLimits.requestTimeoutMs)
    res.shouldKeepAlive = false
    this.serve(req, res).catch((err: unknown) => {
      this.opts.logger.error(`HTTP listener ${this.opts.name}: ${req.method ?? ''} ${req.url ?? ''} failed: ${(err as Error).stack ?? String(err)}`)
      if (!res.headersSent) reply(res, 500, 'internal error\n')
      else res.destroy()
    })
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.setHeader('Cache-Control', 'no-store')
    res.setHeader('X-Content-Type-Options', 'nosniff')
    const path = (req.url ?? '/').split('?', 1)[0] as string
    const handler = this.opts.routes.get(path)
    if (handler === undefined) {
      const app = this.opts.app
      if (app?.claims(path) === true) return app.handle(req, res, { keepOpen: () => this.keepOpen(req.socket) })
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      return reply(res, 405, 'method not allowed\n', true)
    }
    // Every route is a GET: a body is never read, so a request announcing one is refused and its socket closed.
    if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) {
      return reply(res, 413, 'request body not accepted\n', true)
    }
    if (handler === undefined) return reply(res, 404, 'not found\n')
    const socket = req.socket
    if (this.opts.requireAuth || !isLoopback(socket.localAddress ?? '')) {
      const denied = await this.authorize(req, socket.remoteAddress ?? 'unknown')
      if (denied !== undefined) {
        if (denied.status === 401) res.setHeader('WWW-Authenticate', 'Basic realm="midge", charset="UTF-8"')
        return reply(res, denied.status, `${denied.message}\n`)
      }
    }
    await handler(req, res)
  }

  /** The socket's deadline is lifted: its response lives as long as the app keeps it (and close() ends it). */
  private keepOpen(socket: net.Socket): void {
    clearTimeout(this.deadlines.get(socket))
    this.deadlines.delete(socket)
  }

  /** undefined when the request's credentials may read the monitoring endpoints. */
  private async authorize(req: http.IncomingMessage, address: string): Promise<{ status: number; message: string } | undefined> {
    const info = this.opts.info
    const credentials = basicCredentials(req.headers.authorization)
    if (credentials === undefined) return { status: 401, message: 'authentication required' }
    const authenticator = info.authenticator
    // No password_file on this block (allow_anonymous true): there is no user to log in as.
    if (authenticator === undefined) return { status: 401, message: 'authentication required' }
    const identity = { clientId: '(http)', username: credentials.username, remoteAddress: address, listener: info.name }
    const request: AuthRequest = { ...identity, password: Buffer.from(credentials.password, 'utf8'), allowAnonymous: false }
    const result = await authenticator.authenticate(request)
    if (!result.ok) {
      if (result.reason === 'banned' || result.reason === 'busy') return { status: 429, message: 'too many failed logins from this address' }
      return { status: 401, message: 'bad user name or password' }
    }
    const authorizer = info.authorizer
    if (authorizer !== undefined && !authorizer.canSubscribe({ ...identity, username: result.username }, MonitoringFilter)) {
      return { status: 403, message: `user ${credentials.username} may not read ${MonitoringFilter}` }
    }
    return undefined
  }
}

/** user:password from an `Authorization: Basic` header; undefined when absent or malformed. */
export function basicCredentials(header: string | undefined): { username: string; password: string } | undefined {
  if (header === undefined) return undefined
  const m = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(header)
  if (m === null) return undefined
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon <= 0) return undefined
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

export function reply(res: http.ServerResponse, status: number, body: string, close = false, type = 'text/plain; charset=utf-8'): void {
  res.statusCode = status
  res.setHeader('Content-Type', type)
  res.setHeader('Content-Length', Buffer.byteLength(body))
  if (close) res.setHeader('Connection', 'close')
  res.end(res.req.method === 'HEAD' ? undefined : body)
}
