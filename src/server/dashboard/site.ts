/**
 * The dashboard of one `protocol http` listener: its static pages (static-ui.ts), login sessions
 * (sessions.ts), the JSON API and the live stream. Paths: `/`, `/ui/<file>`, `/api/...`; the listener's
 * /metrics and /healthz keep their own rule (http-listener.ts).
 *
 * Who may do what, checked on every request (so an ACL or password file edit takes effect at once):
 *  - a plain-HTTP listener on a non-loopback address serves nothing of the dashboard unless the block says
 *    `http_allow_insecure_login true`: the password and the cookie would cross the network in clear;
 *  - logging in takes a password_file user (through the listener's authenticator, behind the runtime's one
 *    AuthThrottle: guesses count with MQTT's, a banned address gets 429) whom the ACL lets subscribe to
 *    `$SYS/#`; the session ends when that no longer holds;
 *  - every method but GET needs the session's CSRF token in `X-Midge-CSRF`, and an Origin (or Referer),
 *    when the browser sends one, naming this Host; login needs the same Origin rule and a JSON body, which
 *    a cross-site form cannot send;
 *  - admin actions need an ACL that lets the user publish to `$CONTROL/#` (admin-api.ts).
 * A refusal is a JSON `{ error }` with a sentence saying why.
 */
import type http from 'node:http'
import { isLoopback } from '../../auth/throttle.js'
import type { AuthRequest, ClientIdentity } from '../../auth/types.js'
import type { ListenerInfo } from '../../broker/options.js'
import type { ListenerConfig } from '../../config/types.js'
import type { Logger } from '../../observability/logger.js'
import type { HttpApp } from '../http-listener.js'
import { MonitoringFilter } from '../http-listener.js'
import type { MidgeRuntime } from '../runtime.js'
import { adminRoute } from './admin-api.js'
import { readJsonBody } from './http-body.js'
import type { DashboardHub } from './hub.js'
import { LiveStream, StreamLimits } from './live-stream.js'
import { clientList, overview } from './read-api.js'
import { ApiError, sendError, sendJson } from './respond.js'
import { cookieValue, csrfMatches, type DashboardSession, SessionCookie, SessionStore } from './sessions.js'
import { setPageHeaders, type StaticUi } from './static-ui.js'
import { type TopicViewer, topicLevel } from './topic-tree.js'

/** The filter whose publish right makes a dashboard user an admin. */
export const AdminFilter = '$CONTROL/#'

export const LogLinesMax = 500

/** What an API handler gets: the request, who asks, and the site. */
export interface ApiRequest {
  req: http.IncomingMessage
  res: http.ServerResponse
  url: URL
  session: DashboardSession
  address: string
  site: DashboardSite
}

export class DashboardSite implements HttpApp {
  readonly sessions = new SessionStore()
  private streams = 0

  constructor(
    readonly rt: MidgeRuntime,
    readonly hub: DashboardHub,
    private readonly ui: StaticUi,
    /** The listener block's index in the config. */
    readonly index: number,
    readonly logger: Logger,
  ) {}

  get listener(): ListenerConfig {
    return this.rt.config.listeners[this.index] as ListenerConfig
  }

  get info(): ListenerInfo {
    return this.rt.infos[this.index] as ListenerInfo
  }

  claims(path: string): boolean {
    return path === '/' || path.startsWith('/ui/') || path.startsWith('/api/')
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse, ctx: { keepOpen(): void }): Promise<void> {
    setPageHeaders(res)
    const insecure = this.insecure(req)
    if (insecure !== undefined) return sendError(res, 403, insecure)
    const url = new URL(req.url ?? '/', 'http://dashboard')
    const path = url.pathname
    if (!path.startsWith('/api/')) return this.serveStatic(path, req, res)
    try {
      await this.api(path, url, req, res, ctx)
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      if (!res.headersSent) sendError(res, err.status, err.message, err.extra)
    }
  }

  close(): void {
    this.sessions.clear()
  }

  /** A sentence when this socket may not use the dashboard: plain HTTP off loopback without the option. */
  private insecure(req: http.IncomingMessage): string | undefined {
    const socket = req.socket as http.IncomingMessage['socket'] & { encrypted?: boolean }
    if (socket.encrypted === true || isLoopback(socket.localAddress ?? '') || this.listener.httpAllowInsecureLogin) return undefined
    return `the dashboard is refused on plain HTTP off loopback: passwords and the session cookie would cross the network in clear text. Give listener ${this.listener.name} a certfile/keyfile (or acme_domain), or set http_allow_insecure_login true in its block`
  }

  private serveStatic(path: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      sendError(res, 405, 'method not allowed')
      return
    }
    const name = path === '/' ? 'index.html' : path.slice('/ui/'.length)
    if (!this.ui.serve(name, req, res)) sendError(res, 404, path === '/' ? 'the dashboard files (ui/) are missing from this installation' : 'not found')
  }

  private async api(path: string, url: URL, req: http.IncomingMessage, res: http.ServerResponse, ctx: { keepOpen(): void }): Promise<void> {
    const method = req.method ?? 'GET'
    const address = req.socket.remoteAddress ?? 'unknown'
    if (method !== 'GET' && method !== 'HEAD') this.checkOrigin(req)
    if (path === '/api/login') {
      if (method !== 'POST') throw new ApiError(405, 'POST your username and password')
      return this.login(req, res, address)
    }
    const token = cookieValue(req.headers.cookie, SessionCookie)
    if (path === '/api/logout') {
      if (method !== 'POST') throw new ApiError(405, 'POST to log out')
      const s = this.sessions.get(token)
      if (s !== undefined) {
        this.checkCsrf(req, s)
        this.sessions.delete(token)
        this.logger.notice(`Dashboard: user ${s.username} from ${address} logged out (listener ${this.info.name}).`)
      }
      res.setHeader('Set-Cookie', this.cookie(req, '', 0))
      return sendJson(res, 200, { ok: true })
    }
    const session = this.sessions.get(token)
    if (session === undefined) throw new ApiError(401, 'not logged in, or the session has expired')
    // Asked at every request: a user removed from the password file (here or with `midge passwd -D`) or no
    // longer allowed $SYS/# by the ACL is logged out at once.
    if (!this.stillUser(session.username)) {
      this.sessions.delete(token)
      throw new ApiError(401, `user ${session.username} is no longer in the password file: logged out`)
    }
    if (!this.mayRead(session.username, address)) {
      this.sessions.delete(token)
      throw new ApiError(403, `user ${session.username} may no longer read ${MonitoringFilter}: logged out`)
    }
    if (method !== 'GET' && method !== 'HEAD') this.checkCsrf(req, session)
    const r: ApiRequest = { req, res, url, session, address, site: this }
    if (method === 'GET' || method === 'HEAD') {
      switch (path) {
        case '/api/session': return sendJson(res, 200, this.describe(session, address))
        case '/api/overview': return sendJson(res, 200, overview(this.rt, this.hub))
        case '/api/clients': return sendJson(res, 200, clientList(this.rt))
        case '/api/topics': {
          const prefix = url.searchParams.get('prefix') ?? ''
          return sendJson(res, 200, topicLevel(prefix === '' ? undefined : prefix, this.rt.broker.retained, this.hub.lastValues, this.viewer(session.username, address)).topics)
        }
        case '/api/log': {
          const n = Number(url.searchParams.get('n') ?? 200)
          return sendJson(res, 200, this.hub.log.recent(Number.isFinite(n) ? Math.min(Math.max(0, Math.floor(n)), LogLinesMax) : 200))
        }
        case '/api/events':
          if (method === 'HEAD') throw new ApiError(405, 'GET the live stream')
          return this.openStream(r, ctx, token)
      }
    }
    if (await adminRoute(r, method, path)) return
    throw new ApiError(404, `no ${method} ${path} in the dashboard's API`)
  }

  private async login(req: http.IncomingMessage, res: http.ServerResponse, address: string): Promise<void> {
    const body = await readJsonBody(req)
    if (!body.ok) throw new ApiError(body.status, body.message)
    const v = body.value as { username?: unknown; password?: unknown } | null
    if (v === null || typeof v !== 'object' || typeof v.username !== 'string' || typeof v.password !== 'string' || v.username === '') {
      throw new ApiError(400, 'send {"username": "...", "password": "..."}')
    }
    const username = v.username
    const authenticator = this.info.authenticator
    if (this.listener.passwordFile === undefined || authenticator === undefined) {
      throw new ApiError(403, `listener ${this.info.name} has no password_file: nobody can log in to its dashboard`)
    }
    const request: AuthRequest = { clientId: '(dashboard)', username, password: Buffer.from(v.password, 'utf8'), remoteAddress: address, listener: this.info.name, allowAnonymous: false }
    const result = await authenticator.authenticate(request)
    if (!result.ok) {
      const throttled = result.reason === 'banned' || result.reason === 'busy'
      this.logger.notice(`Dashboard: login of user ${username} from ${address} refused${throttled ? ' (too many failed logins from this address)' : ''} (listener ${this.info.name}).`)
      if (throttled) throw new ApiError(429, 'too many failed logins from this address: wait and try again')
      throw new ApiError(401, 'bad user name or password')
    }
    if (!this.mayRead(username, address)) {
      this.logger.notice(`Dashboard: login of user ${username} from ${address} refused: the ACL does not let it read ${MonitoringFilter} (listener ${this.info.name}).`)
      throw new ApiError(403, `user ${username} may not read ${MonitoringFilter}, which the dashboard needs`)
    }
    const { token, session } = this.sessions.create(username, address)
    this.logger.notice(`Dashboard: user ${username} logged in from ${address} (listener ${this.info.name}${this.isAdmin(username, address) ? ', admin' : ''}).`)
    res.setHeader('Set-Cookie', this.cookie(req, token))
    sendJson(res, 200, this.describe(session, address))
  }

  /** The session as the UI needs it; `admin` as the ACL says now. */
  private describe(session: DashboardSession, address: string): { username: string; admin: boolean; csrf: string } {
    return { username: session.username, admin: this.isAdmin(session.username, address), csrf: session.csrf }
  }

  private cookie(req: http.IncomingMessage, token: string, maxAge?: number): string {
    const secure = (req.socket as { encrypted?: boolean }).encrypted === true
    return `${SessionCookie}=${token}; HttpOnly; SameSite=Strict; Path=/${maxAge === undefined ? '' : `; Max-Age=${maxAge}`}${secure ? '; Secure' : ''}`
  }

  identity(username: string, address: string): ClientIdentity {
    return { clientId: '(dashboard)', username, remoteAddress: address, listener: this.info.name }
  }

  /**
   * The topics `username` may see in the tree and the message stream: as its MQTT client would, by the
   * ACL in force at each question (one identity object, so the authorizer's per-client cache holds).
   */
  viewer(username: string, address: string): TopicViewer {
    const id = this.identity(username, address)
    return {
      branch: (topic) => this.info.authorizer?.canSubscribe(id, `${topic}/#`) ?? true,
      read: (topic) => this.info.authorizer?.canRead(id, topic) ?? true,
    }
  }

  private stillUser(username: string): boolean {
    const file = this.listener.passwordFile
    return file !== undefined && this.rt.security.authenticators.get(file)?.hasUser(username) === true
  }

  private mayRead(username: string, address: string): boolean {
    const authorizer = this.info.authorizer
    return authorizer === undefined || authorizer.canSubscribe(this.identity(username, address), MonitoringFilter)
  }

  /** Whether the ACL lets `username` publish to $CONTROL/# (no acl_file: everyone may do everything). */
  isAdmin(username: string, address: string): boolean {
    const authorizer = this.info.authorizer
    return authorizer === undefined || authorizer.canPublish(this.identity(username, address), AdminFilter)
  }

  private checkCsrf(req: http.IncomingMessage, session: DashboardSession): void {
    const given = req.headers['x-midge-csrf']
    if (!csrfMatches(session, Array.isArray(given) ? given[0] : given)) throw new ApiError(403, 'missing or wrong X-Midge-CSRF header: reload the page')
  }

  /** An Origin (or else Referer) header, when sent, must name this Host: a request from another site is refused. */
  private checkOrigin(req: http.IncomingMessage): void {
    const from = req.headers.origin ?? req.headers.referer
    if (from === undefined) return
    const host = req.headers.host
    let origin: string | undefined
    try {
      origin = new URL(from).host
    } catch {
      origin = undefined
    }
    if (host === undefined || origin === undefined || origin.toLowerCase() !== host.toLowerCase()) {
      throw new ApiError(403, 'this request comes from another site (its Origin is not this host)')
    }
  }

  private openStream(r: ApiRequest, ctx: { keepOpen(): void }, token: string | undefined): void {
    if (this.streams >= StreamLimits.maxStreams) throw new ApiError(429, `too many live streams open on this listener (at most ${StreamLimits.maxStreams}): close another dashboard tab`)
    this.streams++
    ctx.keepOpen()
    const { username } = r.session
    const revoked = (): boolean => {
      if (this.stillUser(username) && this.mayRead(username, r.address)) return false
      this.logger.notice(`Dashboard: the live stream of user ${username} from ${r.address} closed: the user is gone from the password file or may no longer read ${MonitoringFilter} (listener ${this.info.name}).`)
      // As a request would find it: the session ends too (its onEnd closes this stream).
      this.sessions.delete(token)
      return true
    }
    const stream = new LiveStream(r.res, this.viewer(username, r.address).read, revoked)
    const end = (): void => stream.close()
    r.session.onEnd.add(end)
    stream.whenClosed(() => {
      this.streams--
      r.session.onEnd.delete(end)
    })
    this.hub.addStream(stream)
  }
}
