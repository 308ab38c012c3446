/**
 * Drives the dashboard's HTTP API (server/dashboard/) as a browser would: a runtime with an http listener,
 * a password file and an ACL in a directory of the test's own; logins keeping the session cookie and the
 * CSRF token; a Server-Sent Events reader that waits for the event a test expects.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { formatPasswordHash, hashPassword } from '../../src/auth/password-hash.js'
import { loadConfigText } from '../../src/config/load.js'
import { startMidge, type MidgeRuntime } from '../../src/server/index.js'

/** Users of every dashboard test: admin may publish to $CONTROL/#, viewer may only read $SYS/#, device neither. */
export const Users = { admin: 'admin-pw', viewer: 'viewer-pw', device: 'device-pw' } as const

export const DefaultAcl = [
  'user admin', 'topic read $SYS/#', 'topic write $CONTROL/#', 'topic readwrite #',
  '', 'user viewer', 'topic read $SYS/#', 'topic read #',
  '', 'user device', 'topic readwrite devices/#',
].join('\n') + '\n'

export interface Dashboard {
  rt: MidgeRuntime
  dir: string
  /** http://127.0.0.1:PORT */
  base: string
  port: number
  mqttPort: number
  passwd: string
  acl: string
  close(): Promise<void>
}

/** A runtime with an MQTT listener and an http one sharing a password file and an ACL; `extra` goes in the http block. */
export async function startDashboard(opts: { global?: string[]; http?: string[]; acl?: string } = {}): Promise<Dashboard> {
  const dir = mkdtempSync(join(tmpdir(), 'midge-dash-'))
  const passwd = join(dir, 'passwd')
  const acl = join(dir, 'acl')
  let text = ''
  for (const [u, pw] of Object.entries(Users)) text += `${u}:${formatPasswordHash(await hashPassword(pw, { iterations: 1000 }))}\n`
  writeFileSync(passwd, text)
  writeFileSync(acl, opts.acl ?? DefaultAcl)
  const config = [
    'log_dest none', 'sys_interval 1', ...(opts.global ?? []),
    `password_file ${passwd}`, `acl_file ${acl}`,
    'listener 0 127.0.0.1',
    'listener 0 127.0.0.1', 'protocol http', ...(opts.http ?? []),
  ].join('\n') + '\n'
  const rt = await startMidge(loadConfigText(config))
  const port = rt.listeners().find((l) => l.kind === 'http' || l.kind === 'https')?.addresses[0]?.port as number
  const mqttPort = rt.listeners().find((l) => l.kind === 'mqtt')?.addresses[0]?.port as number
  return {
    rt, dir, base: `http://127.0.0.1:${port}`, port, mqttPort, passwd, acl,
    async close() {
      await rt.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface Reply {
  status: number
  headers: Headers
  body: unknown
  text: string
}

/** A logged-in browser: its cookie and CSRF token go with every request. */
export class Browser {
  cookie: string | undefined
  csrf: string | undefined
  constructor(readonly base: string) {}

  async login(username: string, password: string): Promise<Reply> {
    const r = await this.request('POST', '/api/login', { username, password })
    const set = r.headers.get('set-cookie')
    if (r.status === 200 && set !== null) {
      this.cookie = set.split(';', 1)[0]
      this.csrf = (r.body as { csrf: string }).csrf
    }
    return r
  }

  /** `body` undefined: none; headers given replace the defaults of the same name. */
  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const h: Record<string, string> = {}
    if (this.cookie !== undefined) h.cookie = this.cookie
    if (method !== 'GET' && this.csrf !== undefined) h['x-midge-csrf'] = this.csrf
    if (body !== undefined) h['content-type'] = 'application/json'
    Object.assign(h, headers)
    const res = await fetch(this.base + path, { method, headers: h, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) })
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = text === '' ? null : JSON.parse(text)
    } catch { /* a plain-text reply */ }
    return { status: res.status, headers: res.headers, body: parsed, text }
  }

  async get<T = unknown>(path: string): Promise<T> {
    const r = await this.request('GET', path)
    assert.equal(r.status, 200, `GET ${path}: ${r.text}`)
    return r.body as T
  }

  /** Opens the live stream (GET /api/events). */
  events(): Promise<EventStream> {
    return EventStream.open(this.base, this.cookie)
  }
}

export interface StreamEvent {
  event: string
  data: unknown
}

/** One Server-Sent Events connection, parsed as it arrives. */
export class EventStream {
  readonly events: StreamEvent[] = []
  private buffer = ''
  private waiters: Array<() => void> = []
  ended = false

  private constructor(readonly res: http.IncomingMessage, private readonly req: http.ClientRequest) {
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => this.feed(chunk))
    res.on('close', () => { this.ended = true; this.wake() })
  }

  static open(base: string, cookie: string | undefined): Promise<EventStream> {
    return new Promise((resolve, reject) => {
      const req = http.get(`${base}/api/events`, { headers: cookie === undefined ? {} : { cookie }, agent: false }, (res) => {
        resolve(new EventStream(res, req))
      })
      req.on('error', reject)
    })
  }

  get status(): number { return this.res.statusCode ?? 0 }

  /** Resolves with the first event (already received or to come) that `match` accepts. */
  async next(match: (e: StreamEvent) => boolean, what: string, timeoutMs = 10_000): Promise<StreamEvent> {
    const deadline = Date.now() + timeoutMs
    let seen = 0
    for (;;) {
      for (; seen < this.events.length; seen++) if (match(this.events[seen] as StreamEvent)) return this.events[seen] as StreamEvent
      if (this.ended) throw new Error(`the stream ended before ${what}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.events.map((e) => e.event))}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  /** Resolves when the server has closed the stream. */
  async closed(what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error(`${what}: the stream is still open after ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now())
        this.waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  close(): void {
    this.req.destroy()
  }

  private feed(chunk: string): void {
    this.buffer += chunk
    for (let end = this.buffer.indexOf('\n\n'); end !== -1; end = this.buffer.indexOf('\n\n')) {
      const block = this.buffer.slice(0, end)
      this.buffer = this.buffer.slice(end + 2)
      let event = 'message'
      let data: string | undefined
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7)
        else if (line.startsWith('data: ')) data = line.slice(6)
      }
      if (data !== undefined) this.events.push({ event, data: JSON.parse(data) as unknown })
    }
    this.wake()
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const fn of w) fn()
  }
}
