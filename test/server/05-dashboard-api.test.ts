/**
 * The dashboard's API against a running Midge (server/dashboard/): the shape of each GET endpoint with real
 * traffic behind it; the live stream seeing a mosquitto_pub client connect and its message; and the admin
 * actions — disconnect (MQTT 5 reason 0x98), clear a retained message, add a user that mosquitto_pub then
 * logs in with, remove it, edit the ACL with a bad line refused by its number.
 */
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import mqtt from 'mqtt'
import { parsePasswordFile } from '../../src/auth/password-file.js'
import { loadConfigText } from '../../src/config/load.js'
import { startMidge } from '../../src/server/index.js'
import { TestPki } from '../helpers/certs.js'
import { Browser, DefaultAcl, startDashboard, Users } from '../helpers/dashboard.js'
import { runMosquitto } from '../helpers/tls-harness.js'

const auth = (u: keyof typeof Users): { username: string; password: string } => ({ username: u, password: Users[u] })

test('GET endpoints: overview, clients, topics (retained and last values), log, users, acl have the documented shape', async () => {
  const d = await startDashboard()
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.mqttPort}`, { ...auth('admin'), clientId: 'shape-client', protocolVersion: 5, reconnectPeriod: 0 })
  try {
    const b = new Browser(d.base)
    assert.equal((await b.login('admin', Users.admin)).status, 200)
    await c.subscribeAsync(['a/#', 'b/+'], { qos: 1 })
    await c.publishAsync('a/b/c', 'retained value', { qos: 1, retain: true })
    await c.publishAsync('a/bin', Buffer.from([0xff, 0xfe, 0x00]), { qos: 0, retain: true })
    // QoS 1 last: once acknowledged, the QoS 0 ones before it have been routed too.
    await c.publishAsync('a/big', 'x'.repeat(3000), { qos: 1, retain: true })

    const o = await b.get<Record<string, unknown>>('/api/overview')
    assert.deepEqual(Object.keys(o).sort(), ['authFailures', 'bans', 'bridges', 'listeners', 'rates', 'sys', 'uptime', 'version'])
    assert.equal(typeof o.version, 'string')
    assert.equal(typeof o.uptime, 'number')
    assert.deepEqual(Object.keys(o.rates as object).sort(), ['bytesIn', 'bytesOut', 'msgIn', 'msgOut'])
    const listeners = o.listeners as Array<{ name: string; kind: string; addresses: Array<{ port: number }>; state: string }>
    assert.deepEqual(listeners.map((l) => [l.kind, l.state, l.addresses[0]?.port]), [['mqtt', 'open', d.mqttPort], ['http', 'open', d.port]])
    assert.deepEqual(o.bridges, [])
    assert.deepEqual(o.bans, [])
    // $SYS values as published (sys_interval 1): the version at least, under its full topic.
    await waitFor(async () => typeof (await b.get<{ sys: Record<string, string> }>('/api/overview')).sys['$SYS/broker/version'] === 'string', '$SYS/broker/version in the overview')

    const clients = await b.get<{ clients: Array<Record<string, unknown>>; total: number }>('/api/clients')
    assert.equal(clients.total, 1)
    const row = clients.clients[0] as Record<string, unknown>
    assert.deepEqual({ ...row, address: typeof row.address, connectedAt: typeof row.connectedAt }, {
      clientId: 'shape-client', address: 'string', username: 'admin', protocol: 5, listener: d.rt.config.listeners[0]?.name,
      connectedAt: 'number', queued: 0, inflight: 0, subscriptions: ['a/#', 'b/+'],
    })

    const top = await b.get<Array<{ name: string; topic: string; children: number }>>('/api/topics')
    assert.deepEqual(top.filter((t) => t.name === 'a'), [{ name: 'a', topic: 'a', children: 3 }])
    const level = await b.get<Array<Record<string, unknown>>>('/api/topics?prefix=a')
    assert.deepEqual(level.map((t) => [t.name, t.topic, t.children]), [['b', 'a/b', 1], ['big', 'a/big', 0], ['bin', 'a/bin', 0]])
    const big = level.find((t) => t.name === 'big')?.retained as Record<string, unknown>
    assert.deepEqual({ ...big, payload: (big.payload as string).length }, { payload: 1024, base64: false, truncated: true, size: 3000, qos: 1, at: null })
    const bin = level.find((t) => t.name === 'bin')?.retained as Record<string, unknown>
    assert.deepEqual([bin.payload, bin.base64, bin.truncated], [Buffer.from([0xff, 0xfe, 0x00]).toString('base64'), true, false])
    const leaf = await b.get<Array<Record<string, unknown>>>('/api/topics?prefix=a/b')
    assert.deepEqual(leaf.map((t) => [t.topic, (t.retained as { payload: string }).payload, (t.retained as { qos: number }).qos, t.last]), [['a/b/c', 'retained value', 1, undefined]])

    // Last values are kept while a live stream is open.
    const stream = await b.events()
    await stream.next((e) => e.event === 'stats', 'the first stats event')
    await c.publishAsync('b/live', 'seen', { qos: 0 })
    await stream.next((e) => e.event === 'message' && (e.data as { topic: string }).topic === 'b/live', 'the message event')
    const b2 = await b.get<Array<Record<string, unknown>>>('/api/topics?prefix=b')
    assert.deepEqual(b2.map((t) => [t.topic, (t.last as { payload: string }).payload, t.retained]), [['b/live', 'seen', undefined]])
    stream.close()

    const log = await b.get<string[]>('/api/log?n=3')
    assert.ok(Array.isArray(log) && log.length === 3 && log.every((l) => typeof l === 'string'))
    const lines = await b.get<string[]>('/api/log')
    assert.ok(lines.some((l) => /Dashboard: user admin logged in from 127\.0\.0\.1/.test(l)), 'the login is in the log')
    assert.ok(lines.some((l) => /midge version .* starting/.test(l)), 'the log lines from the start on')
    assert.deepEqual((await b.get<string[]>('/api/users')).sort(), ['admin', 'device', 'viewer'])
    assert.deepEqual(await b.get('/api/acl'), { text: DefaultAcl, file: d.acl })
  } finally {
    await c.endAsync()
    await d.close()
  }
})

test('live stream: stats every second, a mosquitto_pub client connecting and disconnecting, its message; logout closes the stream', async () => {
  const d = await startDashboard()
  try {
    const b = new Browser(d.base)
    await b.login('viewer', Users.viewer)
    const stream = await b.events()
    assert.equal(stream.status, 200)
    assert.match(stream.res.headers['content-type'] ?? '', /^text\/event-stream/)
    const first = await stream.next((e) => e.event === 'stats', 'a stats event')
    assert.deepEqual(Object.keys(first.data as object).sort(), ['at', 'authFailures', 'counters', 'rates'])
    const pub = await runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(d.mqttPort), '-u', 'device', '-P', Users.device, '-i', 'sse-pub', '-q', '1', '-t', 'devices/t1', '-m', 'hello dashboard'])
    assert.equal(pub.code, 0, pub.stderr)
    const connected = await stream.next((e) => e.event === 'client' && (e.data as { type: string }).type === 'connected', 'the client event')
    assert.deepEqual((connected.data as { client: { clientId: string; username: string; protocol: number } }).client.clientId, 'sse-pub')
    const message = await stream.next((e) => e.event === 'message' && (e.data as { topic: string }).topic === 'devices/t1', 'the message event')
    assert.deepEqual(message.data, { ...(message.data as object), topic: 'devices/t1', payload: 'hello dashboard', base64: false, truncated: false, qos: 1, retain: false })
    await stream.next((e) => e.event === 'client' && (e.data as { type: string; client: { clientId: string } }).type === 'disconnected' && (e.data as { client: { clientId: string } }).client.clientId === 'sse-pub', 'the disconnect event')
    await stream.next((e) => e.event === 'log' && /sse-pub/.test((e.data as { line: string }).line), 'a log line naming the client')
    const seen = stream.events.filter((e) => e.event === 'stats').length
    await stream.next((e) => e.event === 'stats' && stream.events.filter((x) => x.event === 'stats').indexOf(e) >= seen, 'a later stats event')

    assert.equal((await b.request('POST', '/api/logout')).status, 200)
    await stream.closed('logout')
    // The broker's events are dropped with the last stream: the message path is back to no listeners.
    await waitFor(() => d.rt.broker.events.listeners.published === undefined, 'the published listener detached')
  } finally {
    await d.close()
  }
})

test('admin: disconnect a client (MQTT 5 gets DISCONNECT 0x98) and clear a retained message, both logged', async () => {
  const d = await startDashboard()
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.mqttPort}`, { ...auth('device'), clientId: 'victim', protocolVersion: 5, reconnectPeriod: 0 })
  try {
    const b = new Browser(d.base)
    await b.login('admin', Users.admin)
    const reason = new Promise<number | undefined>((resolve) => c.on('disconnect', (p) => resolve(p.reasonCode)))
    const r = await b.request('POST', '/api/clients/victim/disconnect')
    assert.equal(r.status, 200, r.text)
    assert.equal(await reason, 0x98)
    assert.equal((await b.request('POST', '/api/clients/victim/disconnect')).status, 404)

    await c.endAsync()
    const s = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.mqttPort}`, { ...auth('admin'), reconnectPeriod: 0 })
    await s.publishAsync('devices/lamp', 'on', { qos: 1, retain: true })
    assert.ok(d.rt.broker.retained.get('devices/lamp') !== undefined)
    assert.equal((await b.request('DELETE', '/api/retained?topic=devices/%2B')).status, 400)
    assert.equal((await b.request('DELETE', '/api/retained?topic=devices/lamp')).status, 200)
    assert.equal(d.rt.broker.retained.get('devices/lamp'), undefined)
    assert.equal((await b.request('DELETE', '/api/retained?topic=devices/lamp')).status, 404)
    // A new subscriber gets nothing retained: the first message it sees is one published after its SUBACK
    // (a retained one would have come first).
    const first = new Promise<string>((resolve) => s.once('message', (_t, m) => resolve(m.toString())))
    await s.subscribeAsync('devices/lamp')
    await s.publishAsync('devices/lamp', 'after', { qos: 1 })
    assert.equal(await first, 'after')
    await s.endAsync()
    const log = await b.get<string[]>('/api/log')
    assert.ok(log.some((l) => /Dashboard: user admin from 127\.0\.0\.1 disconnected client victim/.test(l)))
    assert.ok(log.some((l) => /Dashboard: user admin from 127\.0\.0\.1 cleared the retained message of devices\/lamp/.test(l)))
  } finally {
    await d.close()
  }
})

test('admin: a user added from the dashboard logs in with mosquitto_pub at once ($7$ hash, file replaced); removing it locks it out', async () => {
  const d = await startDashboard()
  try {
    const b = new Browser(d.base)
    await b.login('admin', Users.admin)
    const pub = (pw: string): Promise<number | null> => runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(d.mqttPort), '-u', 'sensor', '-P', pw, '-t', 'devices/s', '-m', '1']).then((r) => r.code)
    assert.notEqual(await pub('s3cret'), 0, 'no such user yet')
    assert.equal((await b.request('PUT', '/api/users/bad%3Aname', { password: 'x' })).status, 400)
    assert.equal((await b.request('PUT', '/api/users/sensor', { password: '' })).status, 400)
    const added = await b.request('PUT', '/api/users/sensor', { password: 's3cret' })
    assert.equal(added.status, 201, added.text)
    const text = readFileSync(d.passwd, 'utf8')
    assert.match(text, /^sensor:\$7\$10000\$/m)
    assert.equal(parsePasswordFile(text).size, 4)
    assert.equal(await pub('s3cret'), 0)
    assert.equal((await b.request('PUT', '/api/users/sensor', { password: 'other' })).status, 200)
    assert.notEqual(await pub('s3cret'), 0, 'the old password no longer works')
    assert.equal(await pub('other'), 0)
    assert.deepEqual((await b.get<string[]>('/api/users')).sort(), ['admin', 'device', 'sensor', 'viewer'])
    assert.equal((await b.request('DELETE', '/api/users/sensor')).status, 200)
    assert.equal((await b.request('DELETE', '/api/users/sensor')).status, 404)
    assert.notEqual(await pub('other'), 0)
    // A new password ends the user's dashboard sessions; so does its removal, from here or on disk.
    const viewer = new Browser(d.base)
    await viewer.login('viewer', Users.viewer)
    assert.equal((await b.request('PUT', '/api/users/viewer', { password: 'new-viewer-pw' })).status, 200)
    assert.equal((await viewer.request('GET', '/api/session')).status, 401)
    assert.equal((await viewer.login('viewer', 'new-viewer-pw')).status, 200)
    assert.equal((await b.request('DELETE', '/api/users/viewer')).status, 200)
    assert.equal((await viewer.request('GET', '/api/session')).status, 401)
    assert.equal((await b.request('PUT', '/api/users/viewer', { password: Users.viewer })).status, 201)
    assert.equal((await viewer.login('viewer', Users.viewer)).status, 200)
    writeFileSync(d.passwd, readFileSync(d.passwd, 'utf8').replace(/^viewer:.*\n/m, ''))
    assert.equal(await d.rt.security.reloadFile(d.passwd), true)
    assert.equal((await viewer.request('GET', '/api/session')).status, 401, 'removed on disk')
    assert.equal((await b.request('GET', '/api/session')).status, 200, 'the admin stays logged in')
  } finally {
    await d.close()
  }
})

test('admin: an ACL with a bad line is refused with its line number and the file is untouched; a good one applies at once', async () => {
  const d = await startDashboard()
  try {
    const b = new Browser(d.base)
    await b.login('admin', Users.admin)
    const bad = await b.request('PUT', '/api/acl', { text: `${DefaultAcl}user device\ntopic sideways devices/#\n` })
    assert.equal(bad.status, 400)
    const errors = (bad.body as { errors: Array<{ line: number; message: string }> }).errors
    assert.equal(errors.length, 1)
    assert.equal(errors[0]?.line, DefaultAcl.split('\n').length + 1)
    assert.match(errors[0]?.message ?? '', /unknown access 'sideways'/)
    assert.equal(readFileSync(d.acl, 'utf8'), DefaultAcl)

    const sub = (): Promise<boolean> => mqtt.connectAsync(`mqtt://127.0.0.1:${d.mqttPort}`, { ...auth('device'), reconnectPeriod: 0 }).then(async (c) => {
      // mqtt.js rejects a SUBACK refusing the filter.
      const granted = await c.subscribeAsync('other/x').then((g) => g[0]?.qos !== 128, () => false)
      await c.endAsync()
      return granted
    })
    assert.equal(await sub(), false)
    const next = `${DefaultAcl}topic read other/#\n`
    const ok = await b.request('PUT', '/api/acl', { text: next })
    assert.equal(ok.status, 200, ok.text)
    assert.equal(readFileSync(d.acl, 'utf8'), next)
    assert.equal(await sub(), true, 'the new line applies without a restart')
    assert.deepEqual(await b.get('/api/acl'), { text: next, file: d.acl })
  } finally {
    await d.close()
  }
})

test('409 when the listener has no password_file or acl_file to edit', async () => {
  const d = await startDashboard({ acl: DefaultAcl })
  // A second runtime whose http block has a password file but no ACL (everyone may do everything).
  const rt = await startMidge(loadConfigText(`log_dest none\nper_listener_settings true\nlistener 0 127.0.0.1\nprotocol http\npassword_file ${d.passwd}\n`))
  try {
    const port = rt.listeners()[0]?.addresses[0]?.port as number
    const b = new Browser(`http://127.0.0.1:${port}`)
    const r = await b.login('device', Users.device)
    assert.equal((r.body as { admin: boolean }).admin, true, 'without an ACL every user may do everything')
    assert.equal((await b.request('GET', '/api/acl')).status, 409)
    assert.equal((await b.request('PUT', '/api/acl', { text: '' })).status, 409)
    assert.equal((await b.request('GET', '/api/users')).status, 200)
  } finally {
    await rt.close()
    await d.close()
  }
})

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('a retained message cleared from the dashboard stays cleared after a restart (persistence)', async () => {
  const store = mkdtempSync(join(tmpdir(), 'midge-dash-store-'))
  const global = ['persistence true', `persistence_location ${store}/`]
  let d = await startDashboard({ global })
  try {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.mqttPort}`, { ...auth('admin'), reconnectPeriod: 0 })
    await c.publishAsync('keep', 'k', { qos: 1, retain: true })
    await c.publishAsync('gone', 'g', { qos: 1, retain: true })
    await c.endAsync()
    const b = new Browser(d.base)
    await b.login('admin', Users.admin)
    assert.equal((await b.request('DELETE', '/api/retained?topic=gone')).status, 200)
    await d.close()
    d = await startDashboard({ global })
    assert.ok(d.rt.broker.retained.get('keep') !== undefined, 'the store was read back')
    assert.equal(d.rt.broker.retained.get('gone'), undefined)
  } finally {
    await d.close()
    rmSync(store, { recursive: true, force: true })
  }
})

test('overview: a TLS listener\'s certificate (subject, issuer, expiry) and a bridge\'s state, queue and last error', async () => {
  const pki = new TestPki()
  const cert = pki.issue('mqtts', { cn: 'broker.example' })
  // The bridge's remote: another Midge, closed once the bridge is up so that messages queue for it.
  const remote = await startMidge(loadConfigText('log_dest none\nallow_anonymous true\nlistener 0 127.0.0.1\n'))
  const remotePort = remote.listeners()[0]?.addresses[0]?.port as number
  const d = await startDashboard({
    global: [
      'connection home', `address 127.0.0.1:${remotePort}`, 'topic out/# out 1', 'restart_timeout 1', 'cleansession false',
      'listener 0 127.0.0.1', `certfile ${cert.cert}`, `keyfile ${cert.key}`,
    ],
  })
  try {
    const b = new Browser(d.base)
    await b.login('admin', Users.admin)
    type Overview = { listeners: Array<{ kind: string; tls?: { subject: string; issuer: string; notAfter: string } }>; bridges: Array<Record<string, unknown>> }
    const o = await b.get<Overview>('/api/overview')
    const tls = o.listeners.find((l) => l.kind === 'tls')?.tls
    const x509 = new X509Certificate(readFileSync(cert.cert))
    assert.deepEqual(tls, { subject: tls?.subject, issuer: tls?.issuer, notAfter: new Date(x509.validTo).toISOString() })
    assert.match(tls?.subject ?? '', /(^|,)CN=broker\.example(,|$)/)
    assert.match(tls?.issuer ?? '', /CN=/)
    assert.equal(o.listeners.find((l) => l.kind === 'mqtt')?.tls, undefined)

    let bridge: Record<string, unknown> | undefined
    const bridgeNow = async (): Promise<Record<string, unknown> | undefined> => (bridge = (await b.get<Overview>('/api/overview')).bridges[0])
    await waitFor(async () => (await bridgeNow())?.state === 'connected', 'the bridge connected')
    assert.deepEqual(bridge, { name: 'home', state: 'connected', address: `127.0.0.1:${remotePort}`, queued: 0, lastError: null })
    await remote.close()
    await waitFor(async () => (await bridgeNow())?.state !== 'connected', 'the bridge to notice its remote gone')
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.mqttPort}`, { ...auth('admin'), reconnectPeriod: 0 })
    await c.publishAsync('out/x', '1', { qos: 1 })
    await c.endAsync()
    await waitFor(async () => (await bridgeNow())?.queued === 1 && typeof bridge?.lastError === 'string', 'a message queued for the lost remote, with the reason')
    assert.ok(['connecting', 'waiting'].includes(String(bridge?.state)), String(bridge?.state))
  } finally {
    await d.close()
    await remote.close()
    pki.remove()
  }
})
