/**
 * Hostile clients of the dashboard (server/dashboard/): oversized bodies, announced or streamed, get 413
 * without being buffered; live streams beyond the per-listener cap get 429 and free slots are reusable;
 * logins beyond the session table's bound evict the least recently used session, never grow it; and password
 * guesses are throttled by the runtime's one AuthThrottle, so a banned address is refused over HTTP and MQTT.
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import { test } from 'node:test'
import mqtt from 'mqtt'
import { MaxBodyBytes } from '../../src/server/dashboard/http-body.js'
import { StreamLimits } from '../../src/server/dashboard/live-stream.js'
import { SessionLimits } from '../../src/server/dashboard/sessions.js'
import { Browser, type EventStream, startDashboard, Users } from '../helpers/dashboard.js'

/** Sends raw bytes and collects the reply until the server closes. */
function raw(port: number, head: string, body: Buffer | undefined, feed?: (s: net.Socket) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.write(head)
      if (body !== undefined) s.write(body)
      feed?.(s)
    })
    let reply = ''
    s.setEncoding('latin1')
    s.on('data', (c: string) => { reply += c })
    s.on('error', () => {})
    s.on('close', () => resolve(reply))
    s.setTimeout(15_000, () => { s.destroy(); reject(new Error(`no close; got ${JSON.stringify(reply.slice(0, 200))}`)) })
  })
}

test('bodies over 64 KiB get 413, whether announced by Content-Length, streamed in chunks or merely promised', async () => {
  const d = await startDashboard()
  try {
    const b = new Browser(d.base)
    await b.login('admin', Users.admin)
    const headers = (extra: string): string => `PUT /api/acl HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\nCookie: ${b.cookie as string}\r\nX-Midge-CSRF: ${b.csrf as string}\r\nContent-Type: application/json\r\n${extra}\r\n`
    const big = Buffer.from(JSON.stringify({ text: `# ${'x'.repeat(MaxBodyBytes)}\n` }))
    assert.match(await raw(d.port, headers(`Content-Length: ${big.length}\r\n`), big), /^HTTP\/1\.1 413 /)
    // Chunked, never announcing a length: cut once the bytes read pass the cap.
    const chunk = `${(32 * 1024).toString(16)}\r\n${'y'.repeat(32 * 1024)}\r\n`
    assert.match(await raw(d.port, headers('Transfer-Encoding: chunked\r\n'), undefined, (s) => { for (let i = 0; i < 4; i++) s.write(chunk) }), /^HTTP\/1\.1 413 /)
    // Announcing a gigabyte and sending nothing: refused at once, nothing is waited for.
    assert.match(await raw(d.port, headers('Content-Length: 1073741824\r\n'), undefined), /^HTTP\/1\.1 413 /)
    // The ACL file is untouched and the dashboard still answers.
    assert.equal((await b.request('GET', '/api/acl')).status, 200)
  } finally {
    await d.close()
  }
})

test(`at most ${StreamLimits.maxStreams} live streams per listener: the next gets 429; a closed one frees its slot; closing the broker ends them`, async () => {
  const d = await startDashboard()
  const streams: EventStream[] = []
  try {
    const b = new Browser(d.base)
    await b.login('viewer', Users.viewer)
    for (let i = 0; i < StreamLimits.maxStreams; i++) {
      const s = await b.events()
      assert.equal(s.status, 200)
      streams.push(s)
    }
    const extra = await b.events()
    assert.equal(extra.status, 429)
    await extra.closed('the refused stream')
    // The API still answers: streams hold sockets, but below max_connections.
    assert.equal((await b.request('GET', '/api/overview')).status, 200)
    const gone = streams.pop() as EventStream
    gone.close()
    let again: EventStream | undefined
    for (let i = 0; i < 50 && again === undefined; i++) {
      const s = await b.events()
      if (s.status === 200) again = s
      else await new Promise((r) => setTimeout(r, 50))
    }
    assert.ok(again !== undefined, 'a slot freed by a closed stream is usable again')
    streams.push(again)
  } finally {
    await d.close()
  }
  await Promise.all(streams.map((s) => s.closed('broker closed')))
})

test(`logins beyond ${SessionLimits.maxSessions} sessions evict the least recently used one; the table never grows`, async () => {
  const d = await startDashboard()
  try {
    const first = new Browser(d.base)
    await first.login('viewer', Users.viewer)
    const second = new Browser(d.base)
    await second.login('viewer', Users.viewer)
    const others: Browser[] = []
    for (let i = 2; i < SessionLimits.maxSessions; i++) {
      const b = new Browser(d.base)
      assert.equal((await b.login('viewer', Users.viewer)).status, 200)
      others.push(b)
    }
    // `first` was used most recently of the two oldest: `second` is the one to go.
    assert.equal((await first.request('GET', '/api/session')).status, 200)
    const newcomer = new Browser(d.base)
    assert.equal((await newcomer.login('viewer', Users.viewer)).status, 200)
    assert.equal((await second.request('GET', '/api/session')).status, 401)
    assert.equal((await first.request('GET', '/api/session')).status, 200)
    assert.equal((await newcomer.request('GET', '/api/session')).status, 200)
    const site = (d.rt as unknown as { sites: Array<{ sessions: { size: number } }> }).sites[0]
    assert.equal(site?.sessions.size, SessionLimits.maxSessions)
  } finally {
    await d.close()
  }
})

test('a user logging in again and again evicts its own sessions, never an admin\'s: the user holding the most loses one', async () => {
  const d = await startDashboard()
  try {
    const admin = new Browser(d.base)
    assert.equal((await admin.login('admin', Users.admin)).status, 200)
    for (let i = 0; i < SessionLimits.maxSessions * 2; i++) {
      assert.equal((await new Browser(d.base).login('viewer', Users.viewer)).status, 200)
    }
    assert.equal((await admin.request('GET', '/api/session')).status, 200, 'the admin is still logged in')
    const site = (d.rt as unknown as { sites: Array<{ sessions: { size: number } }> }).sites[0]
    assert.equal(site?.sessions.size, SessionLimits.maxSessions)
  } finally {
    await d.close()
  }
})

test('password guesses at the login count in the runtime\'s AuthThrottle: a banned address gets 429 there and is refused on MQTT too', async () => {
  const d = await startDashboard({ global: ['auth_fail_limit 3', 'auth_fail_exempt_loopback false'] })
  try {
    const b = new Browser(d.base)
    for (let i = 0; i < 3; i++) assert.equal((await b.login('admin', `guess${i}`)).status, 401)
    assert.equal(d.rt.throttle.failures, 3)
    assert.equal(d.rt.throttle.bannedNow(), 1)
    const banned = await b.login('admin', Users.admin)
    assert.equal(banned.status, 429)
    assert.equal(b.cookie, undefined)
    const refused = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.mqttPort}`, { username: 'admin', password: Users.admin, reconnectPeriod: 0, connectTimeout: 5000 }).then(
      async (c) => { await c.endAsync(); return false }, () => true)
    assert.equal(refused, true, 'the ban holds on the MQTT listener')
    d.rt.throttle.forgive('127.0.0.1')
    assert.equal((await b.login('admin', Users.admin)).status, 200)
  } finally {
    await d.close()
  }
})
