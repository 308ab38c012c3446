/**
 * `protocol http` listeners (server/http-listener.ts): /metrics parsed by a strict Prometheus text parser and
 * checked against traffic this test sends; /healthz; https with certfile/keyfile; basic auth by a password-file
 * user the ACL lets read $SYS/#, its refusals, and wrong passwords banned by the same throttle as MQTT.
 *
 * Tests may only bind loopback addresses, where credentials are not asked by default, so the login path is
 * driven by `http_require_auth true` — an option operators need anyway (a reverse proxy on the same host
 * makes every remote request arrive on loopback). The loopback rule itself is the socket's local address
 * against auth/throttle.ts isLoopback, which test/auth covers.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { formatPasswordHash, hashPassword } from '../../src/auth/password-hash.js'
import { loadConfigText } from '../../src/config/load.js'
import { startMidge, type MidgeRuntime } from '../../src/server/index.js'
import { TestPki } from '../helpers/certs.js'
import { parsePrometheusText, sampleValue } from '../helpers/prometheus-text.js'

let dir: string
let pki: TestPki
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'midge-http-'))
  pki = new TestPki()
  const line = async (user: string, pw: string): Promise<string> => `${user}:${formatPasswordHash(await hashPassword(pw))}\n`
  writeFileSync(join(dir, 'passwd'), (await line('monitor', 'right')) + (await line('device', 'devpw')))
  writeFileSync(join(dir, 'acl'), 'user monitor\ntopic read $SYS/#\n\nuser device\ntopic readwrite #\n')
})
after(() => {
  rmSync(dir, { recursive: true, force: true })
  pki.remove()
})

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

function get(port: number, path: string, headers: Record<string, string> = {}, secure?: { ca: string[] }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, headers, agent: false as const, ...(secure === undefined ? {} : { ca: secure.ca, servername: 'localhost' }) }
    const req = (secure === undefined ? http : https).get(options, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
  })
}

const basic = (user: string, pw: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` })

function portOf(rt: MidgeRuntime, kind: 'mqtt' | 'http' | 'https' | 'tls'): number {
  const port = rt.listeners().find((l) => l.kind === kind)?.addresses[0]?.port
  assert.ok(port !== undefined, `no ${kind} listener`)
  return port
}

test('/metrics: strict Prometheus text whose counters follow the traffic sent; /healthz says ok', async () => {
  const rt = await startMidge(loadConfigText('log_dest none\nsys_interval 0\nallow_anonymous true\nlistener 0 127.0.0.1\nlistener 0 127.0.0.1\nprotocol http\n'))
  try {
    const httpPort = portOf(rt, 'http')
    const before = parsePrometheusText((await get(httpPort, '/metrics')).body)
    for (const f of before.values()) {
      assert.ok(f.help !== undefined && f.help.length > 0, `${f.name} has HELP`)
      assert.ok(f.type === 'counter' || f.type === 'gauge', `${f.name} has TYPE`)
      if (f.type === 'counter') assert.match(f.name, /_total$/, `counter ${f.name} ends in _total`)
    }
    assert.equal(sampleValue(before, 'midge_clients_connected'), 0)

    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${portOf(rt, 'mqtt')}`, { reconnectPeriod: 0 })
    await c.subscribeAsync('m/#', { qos: 1 })
    const got = new Promise<void>((resolve) => { let n = 0; c.on('message', () => { if (++n === 6) resolve() }) })
    for (let i = 0; i < 3; i++) await c.publishAsync('m/a', 'x'.repeat(10), { qos: 0 })
    for (let i = 0; i < 2; i++) await c.publishAsync('m/b', 'y'.repeat(100), { qos: 1 })
    await c.publishAsync('m/r', 'zz', { qos: 2, retain: true })
    await got

    const res = await get(httpPort, '/metrics')
    assert.equal(res.status, 200)
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
    const m = parsePrometheusText(res.body)
    assert.equal(sampleValue(m, 'midge_clients_connected'), 1)
    assert.equal(sampleValue(m, 'midge_messages_received_total', { qos: '0' }), 3)
    assert.equal(sampleValue(m, 'midge_messages_received_total', { qos: '1' }), 2)
    assert.equal(sampleValue(m, 'midge_messages_received_total', { qos: '2' }), 1)
    assert.equal(sampleValue(m, 'midge_messages_sent_total'), 6)
    assert.equal(sampleValue(m, 'midge_publish_bytes_received_total'), 3 * 10 + 2 * 100 + 2)
    assert.equal(sampleValue(m, 'midge_publish_bytes_sent_total'), 3 * 10 + 2 * 100 + 2)
    assert.equal(sampleValue(m, 'midge_subscriptions'), 1)
    assert.equal(sampleValue(m, 'midge_retained_messages'), 1)
    assert.equal(sampleValue(m, 'midge_connections_total'), 1)
    // Bytes on the wire: more than the payloads (headers, topics, CONNECT, acks), and they only grow.
    assert.ok(sampleValue(m, 'midge_bytes_received_total') > 232, 'bytes received counted')
    assert.ok(sampleValue(m, 'midge_bytes_sent_total') > 232, 'bytes sent counted')
    assert.ok(sampleValue(m, 'midge_packets_received_total') >= 1 + 1 + 6 + 1, 'CONNECT, SUBSCRIBE, 6 PUBLISH, PUBREL at least')
    assert.ok(sampleValue(m, 'process_resident_memory_bytes') > 10_000_000)
    assert.ok(sampleValue(m, 'process_cpu_seconds_total') > 0)
    assert.ok(Math.abs(sampleValue(m, 'process_start_time_seconds') - (Date.now() / 1000 - process.uptime())) < 5)
    assert.ok(sampleValue(m, 'nodejs_eventloop_lag_seconds') >= 0)
    assert.deepEqual(m.get('midge_bridge_up')?.samples, [])
    await c.endAsync()

    const health = await get(httpPort, '/healthz')
    assert.deepEqual([health.status, health.body], [200, 'ok\n'])
    const json = await get(httpPort, '/healthz', { accept: 'application/json' })
    assert.equal(JSON.parse(json.body).status, 'ok')
    assert.deepEqual(JSON.parse(json.body).listeners.map((l: { kind: string }) => l.kind), ['mqtt', 'http'])
    assert.equal((await get(httpPort, '/nothing')).status, 404)
  } finally {
    await rt.close()
  }
})

test('https: a protocol http block with certfile/keyfile serves /metrics over TLS, with each TLS certificate\'s expiry', async () => {
  const cert = pki.issue('http', { cn: 'localhost' })
  const tls = `certfile ${cert.cert}\nkeyfile ${cert.key}\n`
  const rt = await startMidge(loadConfigText(`log_dest none\nallow_anonymous true\nlistener 0 127.0.0.1\n${tls}listener 0 127.0.0.1\nprotocol http\n${tls}`))
  try {
    const res = await get(portOf(rt, 'https'), '/metrics', {}, { ca: [readFileSync(pki.root.cert, 'utf8'), readFileSync(pki.intermediate.cert, 'utf8')] })
    assert.equal(res.status, 200)
    const m = parsePrometheusText(res.body)
    const expiry = Math.floor(new Date(new X509Certificate(readFileSync(cert.cert)).validTo).getTime() / 1000)
    const names = rt.config.listeners.map((l) => l.name)
    for (const listener of names) assert.equal(sampleValue(m, 'midge_tls_certificate_expiry_timestamp_seconds', { listener }), expiry)
  } finally {
    await rt.close()
  }
})

test('http_require_auth: basic auth by a password-file user allowed $SYS/# by the ACL; wrong passwords are throttled as MQTT ones', async () => {
  const text = [
    'log_dest none', 'per_listener_settings true', 'auth_fail_limit 3', 'auth_fail_exempt_loopback false',
    'listener 0 127.0.0.1', `password_file ${join(dir, 'passwd')}`,
    'listener 0 127.0.0.1', 'protocol http', 'http_require_auth true', `password_file ${join(dir, 'passwd')}`, `acl_file ${join(dir, 'acl')}`,
  ].join('\n') + '\n'
  const rt = await startMidge(loadConfigText(text))
  try {
    const port = portOf(rt, 'http')
    const anonymous = await get(port, '/metrics')
    assert.equal(anonymous.status, 401)
    assert.equal(anonymous.headers['www-authenticate'], 'Basic realm="midge", charset="UTF-8"')
    assert.equal((await get(port, '/healthz')).status, 401)
    assert.equal((await get(port, '/metrics', basic('monitor', 'right'))).status, 200)
    assert.equal((await get(port, '/healthz', basic('monitor', 'right'))).body, 'ok\n')
    // A valid user whose ACL does not cover $SYS/# ('#' never does).
    assert.equal((await get(port, '/metrics', basic('device', 'devpw'))).status, 403)

    assert.equal((await get(port, '/metrics', basic('monitor', 'wrong1'))).status, 401)
    assert.equal((await get(port, '/metrics', basic('monitor', 'wrong2'))).status, 401)
    assert.equal(rt.throttle.failures, 2)
    assert.equal((await get(port, '/metrics', basic('monitor', 'wrong3'))).status, 401)
    // Third failure within the window: 127.0.0.1 is banned, the right password included, over HTTP and MQTT.
    assert.equal(rt.throttle.bannedNow(), 1)
    const banned = await get(port, '/metrics', basic('monitor', 'right'))
    assert.equal(banned.status, 429)
    const mqttRefused = await mqtt.connectAsync(`mqtt://127.0.0.1:${portOf(rt, 'mqtt')}`, { reconnectPeriod: 0, connectTimeout: 5000, username: 'monitor', password: 'right' }).then(
      async (c) => { await c.endAsync(); return false }, () => true)
    assert.equal(mqttRefused, true, 'a banned address is refused on the MQTT listener too')
    rt.throttle.forgive('127.0.0.1')
    const m = parsePrometheusText((await get(port, '/metrics', basic('monitor', 'right'))).body)
    assert.equal(sampleValue(m, 'midge_auth_failures_total'), 3)
    assert.equal(sampleValue(m, 'midge_auth_bans_total'), 1)
    assert.equal(sampleValue(m, 'midge_auth_banned_addresses'), 0)
    // The same counts under $SYS/broker/auth/ (Midge's own values).
    const sys = (k: string): string | undefined => rt.broker.sysValues.get(k)?.()
    assert.deepEqual([sys('auth/failures'), sys('auth/bans/total'), sys('auth/bans/current')], ['3', '1', '0'])
  } finally {
    await rt.close()
  }
})

test('a loopback http listener without http_require_auth serves without credentials; requests with a body or another method are refused', async () => {
  const rt = await startMidge(loadConfigText('log_dest none\nallow_anonymous true\nlistener 0 127.0.0.1\nprotocol http\n'))
  try {
    const port = portOf(rt, 'http')
    assert.equal((await get(port, '/metrics')).status, 200)
    const post = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/metrics', method: 'POST', agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('error', reject)
      req.end('x')
    })
    assert.equal(post, 405)
    const withBody = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/metrics', method: 'GET', agent: false, headers: { 'content-length': '5' } }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('error', reject)
      req.end('hello')
    })
    assert.equal(withBody, 413)
  } finally {
    await rt.close()
  }
})
