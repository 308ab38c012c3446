/**
 * The HTTP upgrade in front of MQTT over WebSockets: which subprotocols are answered [MQTT-6.0.0-3],
 * [MQTT-6.0.0-4], the optional path, plain HTTP requests, X-Forwarded-For (trusted only when asked),
 * max_connections and listen errors.
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { lastForwardedFor } from '../../src/transport/ws-handshake.js'
import { startWsListener } from '../../src/transport/ws.js'
import type { WsListenerOptions } from '../../src/transport/ws.js'
import { waitUntil } from '../helpers/broker-harness.js'
import { Connack311Accepted, RawPeer, connect311, startWsBroker, wsInfo, type WsBroker } from '../helpers/ws-harness.js'

async function broker (t: TestContext, listener: Partial<WsListenerOptions> = {}): Promise<WsBroker> {
  const b = await startWsBroker({ listener })
  t.after(() => b.close())
  return b
}

function peer (t: TestContext, url: string, protocols: string[], headers: Record<string, string> = {}): RawPeer {
  const p = new RawPeer(url, protocols, { headers })
  t.after(() => p.terminate())
  return p
}

const accepted: Array<[string[], string]> = [
  [['mqtt'], 'mqtt'],
  [['mqttv3.1'], 'mqttv3.1'],
  [['mqttv3.1', 'mqtt'], 'mqttv3.1'],
  [['mqtt', 'mqttv3.1'], 'mqtt'],
  [['graphql-ws', 'mqtt'], 'mqtt'],
]
for (const [offered, chosen] of accepted) {
  test(`[MQTT-6.0.0-4] Sec-WebSocket-Protocol ${offered.join(', ')} is answered with ${chosen} (the client's first acceptable name)`, async (t) => {
    const b = await broker(t)
    const p = peer(t, b.url, offered)
    assert.deepEqual(await p.handshake, { kind: 'open', protocol: chosen })
  })
}

const refused: Array<[string, string[]]> = [
  ['no subprotocol at all', []],
  ['only mqttv5 (no such registered name)', ['mqttv5']],
  ['only an unrelated subprotocol', ['chat']],
  ['MQTT in capitals (subprotocol names are case-sensitive)', ['MQTT']],
]
for (const [what, offered] of refused) {
  test(`[MQTT-6.0.0-3] a handshake offering ${what} is refused with 400 naming the subprotocol needed`, async (t) => {
    const b = await broker(t)
    const h = await peer(t, b.url, offered).handshake
    assert.equal(h.kind, 'refused')
    assert.ok(h.kind === 'refused' && h.status === 400 && h.body.includes('subprotocol mqtt'), JSON.stringify(h))
    assert.equal(b.broker.connections.size, 0)
  })
}

test('without a path option every request path is served (as Mosquitto)', async (t) => {
  const b = await broker(t)
  for (const path of ['/', '/mqtt', '/ws/x?token=1']) {
    assert.equal((await peer(t, b.url + path, ['mqtt']).handshake).kind, 'open', path)
  }
})

test('with path /mqtt only /mqtt (query string aside) is served; other paths get 404', async (t) => {
  const b = await broker(t, { path: '/mqtt' })
  assert.equal((await peer(t, `${b.url}/mqtt`, ['mqtt']).handshake).kind, 'open')
  assert.equal((await peer(t, `${b.url}/mqtt?client=7`, ['mqtt']).handshake).kind, 'open')
  for (const path of ['/', '/mqtt/', '/other']) {
    const h = await peer(t, b.url + path, ['mqtt']).handshake
    assert.ok(h.kind === 'refused' && h.status === 404 && h.body.includes('/mqtt'), `${path}: ${JSON.stringify(h)}`)
  }
})

test('a plain HTTP request (no upgrade) gets 426 Upgrade Required with Upgrade: websocket', async (t) => {
  const b = await broker(t)
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: b.port, path: '/', agent: false }, resolve).on('error', reject)
  })
  let body = ''
  res.setEncoding('utf8')
  for await (const chunk of res) body += chunk as string
  assert.equal(res.statusCode, 426)
  assert.equal(res.headers.upgrade, 'websocket')
  assert.match(body, /MQTT over WebSockets/)
})

test('a malformed upgrade (no Sec-WebSocket-Key) is refused with 400 by the WebSocket layer', async (t) => {
  const b = await broker(t)
  const reply = await new Promise<string>((resolve, reject) => {
    const s = net.connect(b.port, '127.0.0.1', () => {
      s.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n')
    })
    let data = ''
    s.setEncoding('utf8')
    s.on('data', (d: string) => { data += d })
    s.on('close', () => resolve(data))
    s.on('error', reject)
  })
  assert.match(reply, /^HTTP\/1\.1 400 /)
})

async function connectedMeta (t: TestContext, b: WsBroker, headers: Record<string, string>): Promise<{ remoteIp: string; remoteAddress: string }> {
  const p = peer(t, b.url, ['mqtt'], headers)
  await p.open()
  await p.send(connect311(`fwd-${Object.values(headers).join('')}`))
  assert.deepEqual(await p.waitForBytes(4), Connack311Accepted)
  const conn = [...b.broker.connections][0]
  assert.ok(conn !== undefined)
  return conn.meta
}

test('X-Forwarded-For is ignored by default: the address is the socket peer', async (t) => {
  const b = await broker(t)
  const meta = await connectedMeta(t, b, { 'X-Forwarded-For': '203.0.113.9' })
  assert.equal(meta.remoteIp, '127.0.0.1')
  assert.match(meta.remoteAddress, /^127\.0\.0\.1:\d+$/)
})

test('with trustForwardedFor the last X-Forwarded-For entry is the client address; the proxy stays in the log form', async (t) => {
  const b = await broker(t, { trustForwardedFor: true })
  const meta = await connectedMeta(t, b, { 'X-Forwarded-For': '198.51.100.1, 203.0.113.9' })
  assert.equal(meta.remoteIp, '203.0.113.9')
  assert.match(meta.remoteAddress, /^203\.0\.113\.9 via 127\.0\.0\.1:\d+$/)
})

test('with trustForwardedFor and no usable X-Forwarded-For the socket address is kept', async (t) => {
  const b = await broker(t, { trustForwardedFor: true })
  const meta = await connectedMeta(t, b, { 'X-Forwarded-For': '203.0.113.9, unknown' })
  assert.equal(meta.remoteIp, '127.0.0.1')
})

test('lastForwardedFor: right-most entry, IPv6 with or without brackets, invalid last entry = none', () => {
  assert.equal(lastForwardedFor('198.51.100.1, 203.0.113.9'), '203.0.113.9')
  assert.equal(lastForwardedFor(['198.51.100.1', '2001:db8::7']), '2001:db8::7')
  assert.equal(lastForwardedFor('[2001:db8::7]'), '2001:db8::7')
  assert.equal(lastForwardedFor('203.0.113.9, '), '203.0.113.9')
  assert.equal(lastForwardedFor('203.0.113.9, evil.example'), undefined)
  assert.equal(lastForwardedFor(undefined), undefined)
})

test('max_connections 1: a second client is turned away while the first one stays connected', async (t) => {
  const b = await broker(t, { maxConnections: 1 })
  const first = peer(t, b.url, ['mqtt'])
  await first.open()
  const second = await peer(t, b.url, ['mqtt']).handshake
  assert.equal(second.kind, 'error')
  await first.send(connect311('first'))
  assert.deepEqual(await first.waitForBytes(4), Connack311Accepted)
  await waitUntil(() => b.broker.connections.size === 1, 'one connection')
})

test('a port already in use is reported in words', async (t) => {
  const b = await broker(t)
  const err = await startWsListener(b.broker, { host: '127.0.0.1', port: b.port, noDelay: true, maxConnections: -1, info: wsInfo })
    .then(async (l) => { await l.close(); return undefined }, (e: Error) => e)
  assert.ok(err !== undefined, 'second listen on the same port fails')
  assert.match(err.message, /already in use/)
})
