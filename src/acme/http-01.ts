/**
 * HTTP-01 challenges (RFC 8555 §8.3): the CA fetches http://NAME/.well-known/acme-challenge/TOKEN on
 * port 80 and expects the key authorization. Two ways to answer:
 *
 *   ChallengeResponder   Midge's own tiny HTTP server on acme_challenge_port. It listens only while a
 *                        challenge is pending, unless told to keep the port (acme_challenge_always, or a
 *                        port below 1024 bound before the broker dropped root). It answers nothing but
 *                        /.well-known/acme-challenge/TOKEN, from files in the state directory, so a
 *                        `midge cert renew` run beside a broker that holds the port is answered by it.
 *   WebrootChallenges    writes WEBROOT/.well-known/acme-challenge/TOKEN for a web server that already
 *                        owns port 80 (certbot's --webroot).
 */
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { AcmeError, AcmeErrorCode } from './errors.js'
import type { AcmeStateDir } from './state-dir.js'
import type { Logger } from '../observability/logger.js'

export interface Http01Challenges {
  /** Makes `keyAuthorization` available at http://NAME/.well-known/acme-challenge/TOKEN. */
  present(token: string, keyAuthorization: string): Promise<void>
  remove(token: string): Promise<void>
  close(): Promise<void>
  /** For log lines: where the answers come from. */
  describe(): string
}

const ChallengePath = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]{1,200})$/
/** Tokens are base64url (RFC 8555 §8.1); anything else could name a path outside the directory. */
const TokenShape = /^[A-Za-z0-9_-]{1,200}$/

function checkToken(token: string): void {
  if (!TokenShape.test(token)) throw new AcmeError(AcmeErrorCode.Server, `the ACME server sent a challenge token that is not base64url: '${token.slice(0, 40)}'`)
}

export interface ResponderOptions {
  port: number
  /** Address to bind; undefined = every interface. */
  host?: string | undefined
  state: AcmeStateDir
  /** Keep listening between challenges (acme_challenge_always, or a privileged port bound as root). */
  keepListening: boolean
  /** Fetch each answer from loopback before telling the CA to validate. Default true. */
  selfCheck?: boolean
  logger: Logger
}

export class ChallengeResponder implements Http01Challenges {
  private readonly opts: ResponderOptions
  private server: http.Server | undefined
  private pending = 0
  private keep: boolean
  /** Open/close transitions run one after another. */
  private queue: Promise<unknown> = Promise.resolve()
  private closed = false

  constructor (opts: ResponderOptions) {
    this.opts = opts
    this.keep = opts.keepListening
  }

  describe(): string {
    return `the built-in HTTP-01 responder on port ${this.opts.port}`
  }

  /** True while this process holds the port. */
  listening(): boolean {
    return this.server !== undefined
  }

  /** Binds now and keeps the port until close(): before dropping root, or with acme_challenge_always. */
  async hold(): Promise<void> {
    this.keep = true
    await this.serialize(async () => { await this.open() })
  }

  async present(token: string, keyAuthorization: string): Promise<void> {
    checkToken(token)
    this.opts.state.mkdir(this.opts.state.challengeDir)
    this.opts.state.write(path.join(this.opts.state.challengeDir, token), keyAuthorization)
    this.pending++
    let ours = true
    try {
      await this.serialize(async () => {
        if (this.server === undefined && !this.closed) ours = await this.open(true)
      })
      if (this.opts.selfCheck !== false || !ours) await this.selfCheck(token, keyAuthorization, ours)
    } catch (err) {
      await this.remove(token)
      throw err
    }
  }

  async remove(token: string): Promise<void> {
    checkToken(token)
    fs.rmSync(path.join(this.opts.state.challengeDir, token), { force: true })
    this.pending = Math.max(0, this.pending - 1)
    await this.serialize(async () => {
      if (this.pending === 0 && !this.keep) await this.shut()
    })
  }

  async close(): Promise<void> {
    this.closed = true
    await this.serialize(async () => { await this.shut() })
  }

  private serialize(fn: () => Promise<void>): Promise<void> {
    const next = this.queue.then(fn)
    this.queue = next.catch(() => undefined)
    return next
  }

  /**
   * Listens on the port. With `mayShare`, a port already in use is not an error yet: another Midge (the
   * running broker, when this is `midge cert renew`) may be answering from the same state directory;
   * the self-check decides. Returns false in that case.
   */
  private async open(mayShare = false): Promise<boolean> {
    if (this.server !== undefined) return true
    const server = http.createServer((req, res) => { this.answer(req, res) })
    server.keepAliveTimeout = 1000
    const { port, host } = this.opts
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ port, host }, () => { server.off('error', reject); resolve() })
      })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EADDRINUSE' && mayShare) return false
      throw portError(port, err)
    }
    server.on('error', (err) => this.opts.logger.error(`ACME: HTTP-01 responder on port ${port}: ${err.message}`))
    this.server = server
    this.opts.logger.info(`ACME: HTTP-01 responder listening on port ${port}${this.keep ? '' : ' while a challenge is pending'}.`)
    return true
  }

  private async shut(): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
    this.opts.logger.debug(`ACME: HTTP-01 responder on port ${this.opts.port} closed.`)
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = (req.url ?? '').split('?')[0] ?? ''
    const m = ChallengePath.exec(url)
    let body: string | undefined
    if (m !== null && (req.method === 'GET' || req.method === 'HEAD')) {
      try { body = fs.readFileSync(path.join(this.opts.state.challengeDir, m[1] as string), 'utf8') } catch { /* unknown token */ }
    }
    const from = req.socket.remoteAddress ?? 'unknown'
    if (body === undefined) {
      this.opts.logger.debug(`ACME: HTTP-01 responder: 404 for ${req.method ?? '?'} ${url.slice(0, 100)} from ${from}`)
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
      return
    }
    this.opts.logger.debug(`ACME: HTTP-01 responder: answered ${url} for ${req.headers.host ?? '?'} (from ${from})`)
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  /** Fetches the answer over loopback: catches a port held by another program before the CA does. */
  private async selfCheck(token: string, expected: string, ours: boolean): Promise<void> {
    const host = this.opts.host === undefined || this.opts.host === '0.0.0.0' || this.opts.host === '::' ? '127.0.0.1' : this.opts.host
    const got = await httpGet(host, this.opts.port, `/.well-known/acme-challenge/${token}`).catch((err: Error) => `(${err.message})`)
    if (got === expected) {
      if (!ours) this.opts.logger.info(`ACME: port ${this.opts.port} is held by another Midge process (the running broker?); it answers the challenge from ${this.opts.state.challengeDir}.`)
      return
    }
    if (!ours) {
      throw new AcmeError(AcmeErrorCode.ChallengePort, `acme_challenge_port ${this.opts.port} is in use by another program, which does not answer the HTTP-01 challenge`,
        { hint: 'stop that program (a web server?), or let it serve the challenge files: set acme_webroot to its document root' })
    }
    throw new AcmeError(AcmeErrorCode.ChallengePort, `the HTTP-01 responder on port ${this.opts.port} does not answer its own challenge over loopback (got ${JSON.stringify(got.slice(0, 80))})`,
      { hint: 'a firewall or proxy may be intercepting the port' })
  }
}

function portError(port: number, err: unknown): AcmeError {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'EACCES') {
    return new AcmeError(AcmeErrorCode.ChallengePort, `cannot listen on acme_challenge_port ${port}: ports below 1024 need root or CAP_NET_BIND_SERVICE`, {
      cause: err,
      hint: 'start the broker as root (it binds the port before switching to `user`), or grant the capability: setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")", or use acme_webroot',
    })
  }
  if (code === 'EADDRINUSE') {
    return new AcmeError(AcmeErrorCode.ChallengePort, `cannot listen on acme_challenge_port ${port}: it is in use by another program`, {
      cause: err, hint: 'if a web server owns port 80, set acme_webroot to its document root instead',
    })
  }
  return new AcmeError(AcmeErrorCode.ChallengePort, `cannot listen on acme_challenge_port ${port}: ${(err as Error).message}`, { cause: err })
}

function httpGet(host: string, port: number, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: urlPath, timeout: 5000, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { if (body.length < 4096) body += c })
      res.on('end', () => resolve(res.statusCode === 200 ? body : `HTTP ${res.statusCode ?? '?'}`))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
  })
}

/** certbot's --webroot: the challenge file goes where an existing web server serves it. */
export class WebrootChallenges implements Http01Challenges {
  readonly dir: string

  constructor (readonly webroot: string, private readonly logger: Logger) {
    this.dir = path.join(webroot, '.well-known', 'acme-challenge')
  }

  describe(): string {
    return `files under ${this.dir}`
  }

  async present(token: string, keyAuthorization: string): Promise<void> {
    checkToken(token)
    const file = path.join(this.dir, token)
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 })
      // World-readable: the web server, not the broker's user, reads it.
      fs.writeFileSync(file, keyAuthorization, { mode: 0o644 })
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      throw new AcmeError(AcmeErrorCode.Webroot, `cannot write the challenge file ${file}: ${e.message}`, {
        cause: err,
        hint: e.code === 'EACCES' || e.code === 'EPERM' ? `give the broker's user write access to ${this.dir} (create it, then chgrp/chmod g+w)` : undefined,
      })
    }
    this.logger.debug(`ACME: wrote challenge file ${file}`)
  }

  async remove(token: string): Promise<void> {
    checkToken(token)
    fs.rmSync(path.join(this.dir, token), { force: true })
  }

  async close(): Promise<void> { /* nothing held */ }
}
