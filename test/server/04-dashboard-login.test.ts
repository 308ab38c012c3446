/**
 * The dashboard's doors (server/dashboard/site.ts, sessions.ts, static-ui.ts): its static pages and their
 * headers; login, the session cookie's attributes, logout; who may log in ($SYS/# readers of the password
 * file) and who is an admin ($CONTROL/# writers, asked again after an ACL edit); CSRF and Origin refusals;
 * and the refusal on a plain-HTTP listener off loopback unless http_allow_insecure_login says otherwise.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { test } from 'node:test'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfigText } from '../../src/config/load.js'
import { UiDir } from '../../src/server/dashboard/static-ui.js'
import { TestPki } from '../helpers/certs.js'
import type { HttpListener } from '../../src/server/http-listener.js'
import { Browser, DefaultAcl, startDashboard, Users, type Dashboard } from '../helpers/dashboard.js'

test('/ and /ui/ files come from the package\'s ui/ folder, with CSP, X-Frame-Options and an ETag; nothing else is served', async () => {
  const d = await startDashboard()
  try {
    const res = await fetch(`${d.base}/`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8')
    assert.match(res.headers.get('content-security-policy') ?? '', /^default-src 'self'(;|$)/)
    assert.equal(res.headers.get('x-frame-options'), 'DENY')
    assert.equal(await res.text(), readFileSync(join(UiDir, 'index.html'), 'utf8'))
    const etag = res.headers.get('etag')
    assert.ok(etag !== null)
    assert.equal((await fetch(`${d.base}/`, { headers: { 'if-none-match': etag } })).status, 304)
    assert.equal((await fetch(`${d.base}/ui/index.html`)).status, 200)
    for (const path of ['/ui/../package.json', '/ui/%2e%2e%2fpackage.json', '/ui/nothing.js', '/ui/', '/index.html']) {
      assert.equal((await fetch(`${d.base}${path}`)).status, 404, path)
    }
    assert.equal((await fetch(`${d.base}/`, { method: 'POST' })).status, 405)
  } finally {
    await d.close()
  }
})

test('login sets an HttpOnly SameSite=Strict session cookie; the session answers GET /api/session; logout ends it', async () => {
  const d = await startDashboard()
  try {
    const b = new Browser(d.base)
    assert.equal((await b.request('GET', '/api/session')).status, 401)
    const r = await b.login('admin', Users.admin)
    assert.equal(r.status, 200, r.text)
    const cookie = r.headers.get('set-cookie') ?? ''
    assert.match(cookie, /^midge_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/$/, 'no Secure on plain HTTP')
    const body = r.body as { username: string; admin: boolean; csrf: string }
    assert.equal(body.username, 'admin')
    assert.equal(body.admin, true)
    assert.match(body.csrf, /^[A-Za-z0-9_-]{43}$/)
    assert.deepEqual(await b.get('/api/session'), body)

    // Logout needs the CSRF token like any other POST.
    assert.equal((await b.request('POST', '/api/logout', undefined, { 'x-midge-csrf': 'wrong' })).status, 403)
    const out = await b.request('POST', '/api/logout')
    assert.equal(out.status, 200)
    assert.match(out.headers.get('set-cookie') ?? '', /^midge_session=; .*Max-Age=0/)
    assert.equal((await b.request('GET', '/api/session')).status, 401, 'the old cookie no longer works')
  } finally {
    await d.close()
  }
})

test('wrong passwords get 401; a user the ACL does not let read $SYS/# gets 403; a viewer is not an admin', async () => {
  const d = await startDashboard()
  try {
    const b = new Browser(d.base)
    assert.equal((await b.login('admin', 'wrong')).status, 401)
    assert.equal((await b.login('nobody', 'x')).status, 401)
    assert.equal(b.cookie, undefined)
    const device = await b.login('device', Users.device)
    assert.equal(device.status, 403)
    assert.match((device.body as { error: string }).error, /may not read \$SYS\/#/)
    assert.equal((await b.request('POST', '/api/login', 'username=admin', { 'content-type': 'application/x-www-form-urlencoded' })).status, 415, 'a form post is not a login')
    assert.equal((await b.request('POST', '/api/login', '{"username":1}')).status, 400)

    const viewer = await b.login('viewer', Users.viewer)
    assert.equal(viewer.status, 200)
    assert.equal((viewer.body as { admin: boolean }).admin, false)
    assert.equal((await b.request('GET', '/api/overview')).status, 200)
    const refused = await b.request('GET', '/api/users')
    assert.equal(refused.status, 403)
    assert.match((refused.body as { error: string }).error, /not an admin/)
    assert.equal((await b.request('DELETE', '/api/retained?topic=a')).status, 403)

    // An ACL edit on disk takes effect on the live session: viewer becomes an admin, then loses $SYS/# altogether.
    writeFileSync(d.acl, `${DefaultAcl}\nuser viewer\ntopic write $CONTROL/#\n`)
    assert.equal(await d.rt.security.reloadFile(d.acl), true)
    assert.equal((await b.get<{ admin: boolean }>('/api/session')).admin, true)
    assert.equal((await b.request('GET', '/api/users')).status, 200)
    writeFileSync(d.acl, DefaultAcl.replace('user viewer\ntopic read $SYS/#\n', 'user viewer\n'))
    assert.equal(await d.rt.security.reloadFile(d.acl), true)
    assert.equal((await b.request('GET', '/api/overview')).status, 403)
    assert.equal((await b.request('GET', '/api/session')).status, 401, 'the session ended with the right to read $SYS/#')
  } finally {
    await d.close()
  }
})

test('CSRF: a non-GET without the session\'s X-Midge-CSRF token, or from another Origin, is refused with 403', async () => {
  const d = await startDashboard()
  try {
    const b = new Browser(d.base)
    assert.equal((await b.login('admin', Users.admin)).status, 200)
    await d.rt.broker.publish('keep/me', Buffer.from('x'), 0, true, undefined)
    const del = (headers: Record<string, string>): Promise<number> => b.request('DELETE', '/api/retained?topic=keep/me', undefined, headers).then((r) => r.status)
    assert.equal(await del({ 'x-midge-csrf': '' }), 403)
    assert.equal(await del({ 'x-midge-csrf': `${b.csrf as string}x` }), 403)
    assert.equal(await del({ origin: 'http://evil.example' }), 403)
    assert.equal(await del({ origin: 'null' }), 403)
    assert.equal(await del({ referer: 'http://evil.example/page' }), 403)
    // A login from another site is refused before any password is checked.
    assert.equal((await new Browser(d.base).request('POST', '/api/login', { username: 'admin', password: Users.admin }, { origin: 'http://evil.example' })).status, 403)
    assert.ok(d.rt.broker.retained.get('keep/me') !== undefined, 'nothing refused took effect')
    assert.equal(await del({ origin: `http://127.0.0.1:${d.port}` }), 200)
    assert.equal(d.rt.broker.retained.get('keep/me'), undefined)
  } finally {
    await d.close()
  }
})

/**
 * A request arriving on a non-loopback address of the listener, without binding one (tests bind loopback
 * only): our own loopback server hands its sockets to the http listener with their local address rewritten,
 * which is all the listener reads to tell where a request came in.
 */
async function fromOutside(d: Dashboard, path: string, init: { method?: string; body?: string } = {}): Promise<{ status: number; body: string }> {
  const listener = d.rt.httpListeners.values().next().value as HttpListener
  const relay = net.createServer((socket) => {
    Object.defineProperty(socket, 'localAddress', { value: '192.0.2.10' })
    listener.accept(socket)
  })
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
  try {
    const port = (relay.address() as net.AddressInfo).port
    return await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', agent: false, headers: init.body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => { body += c })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on('error', reject)
      req.end(init.body)
    })
  } finally {
    relay.close()
  }
}

test('plain HTTP off loopback: the dashboard and its login are refused with a sentence naming the fix, unless http_allow_insecure_login true', async () => {
  const login = { method: 'POST', body: JSON.stringify({ username: 'admin', password: Users.admin }) }
  const d = await startDashboard()
  try {
    for (const [path, init] of [['/', {}], ['/api/login', login], ['/api/overview', {}]] as const) {
      const r = await fromOutside(d, path, init)
      assert.equal(r.status, 403, path)
      assert.match(r.body, /plain HTTP off loopback.*certfile\/keyfile.*http_allow_insecure_login true/, path)
    }
    // /metrics keeps its own rule there: basic auth.
    assert.equal((await fromOutside(d, '/metrics')).status, 401)
  } finally {
    await d.close()
  }
  const allowed = await startDashboard({ http: ['http_allow_insecure_login true'] })
  try {
    // On this loopback block the option changes nothing, so nothing is said; off loopback the start warns.
    assert.deepEqual(allowed.rt.config.warnings.filter((w) => /http_allow_insecure_login/.test(w.message)), [])
    const offLoopback = loadConfigText('password_file /dev/null\nlistener 8080\nprotocol http\nhttp_allow_insecure_login true\n')
    assert.deepEqual(offLoopback.warnings.map((w) => [w.line, /plain HTTP off loopback \(http_allow_insecure_login true\): passwords/.test(w.message)]), [[2, true]], 'named at its listener line')
    assert.equal((await fromOutside(allowed, '/')).status, 200)
    assert.equal((await fromOutside(allowed, '/api/login', login)).status, 200)
  } finally {
    await allowed.close()
  }
})

test('over https the session cookie is also Secure', async () => {
  const pki = new TestPki()
  const cert = pki.issue('dash', { cn: 'localhost' })
  const d = await startDashboard({ http: [`certfile ${cert.cert}`, `keyfile ${cert.key}`] })
  try {
    const ca = [readFileSync(pki.root.cert, 'utf8'), readFileSync(pki.intermediate.cert, 'utf8')]
    const { status, cookie } = await new Promise<{ status: number; cookie: string }>((resolve, reject) => {
      const body = JSON.stringify({ username: 'admin', password: Users.admin })
      const req = https.request({ host: '127.0.0.1', port: d.port, path: '/api/login', method: 'POST', ca, servername: 'localhost', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume()
        resolve({ status: res.statusCode ?? 0, cookie: res.headers['set-cookie']?.[0] ?? '' })
      })
      req.on('error', reject)
      req.end(body)
    })
    assert.equal(status, 200)
    assert.match(cookie, /^midge_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Secure$/)
  } finally {
    await d.close()
    pki.remove()
  }
})
