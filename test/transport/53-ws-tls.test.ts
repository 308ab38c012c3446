/**
 * wss://: the WebSocket listener over TLS, with fixed certificate options or following a
 * TlsCertificate (tls-certificate.ts) across a renewal, setSecureContext(), ALPN http/1.1 and client
 * certificates (require_certificate, use_identity_as_username). Certificates come from a throwaway
 * PKI made with openssl (test/helpers/certs.ts).
 */
import { after, before, test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type tls from 'node:tls'
import mqtt from 'mqtt'
import { silentLogger } from '../../src/observability/logger.js'
import { TlsCertificate } from '../../src/transport/tls-certificate.js'
import type { WssOptions } from '../../src/transport/ws.js'
import { TestPki, type Issued } from '../helpers/certs.js'
import { probe, readPem } from '../helpers/tls-harness.js'
import { Connack311Accepted, RawPeer, connect311, startWsBroker, type WsBroker } from '../helpers/ws-harness.js'

let pki: TestPki
let first: Issued
let second: Issued
let alice: Issued

before(() => {
  pki = new TestPki()
  first = pki.issue('server-1', { cn: 'localhost' })
  second = pki.issue('server-2', { cn: 'localhost' })
  alice = pki.issue('alice', { cn: 'alice', kind: 'client' })
})
after(() => pki.remove())

function fixed (server: Issued): tls.SecureContextOptions {
  return { key: readPem(server.key), cert: readPem(server.cert) + readPem(pki.intermediate.cert) }
}

async function wssBroker (t: TestContext, tls: WssOptions): Promise<WsBroker> {
  const b = await startWsBroker({ listener: { tls } })
  t.after(() => b.close())
  return b
}

async function exchange (t: TestContext, url: string, topic: string): Promise<void> {
  const opts = { ca: readPem(pki.root.cert), reconnectPeriod: 0, connectTimeout: 5000 }
  const sub = await mqtt.connectAsync(url, { ...opts, clientId: `${topic}-sub`, protocolVersion: 5 })
  t.after(() => sub.endAsync(true))
  const pub = await mqtt.connectAsync(url, { ...opts, clientId: `${topic}-pub`, protocolVersion: 4 })
  t.after(() => pub.endAsync(true))
  await sub.subscribeAsync(topic, { qos: 1 })
  const got = new Promise<string>((resolve) => sub.once('message', (_topic, payload) => resolve(payload.toString())))
  await pub.publishAsync(topic, 'over wss', { qos: 1 })
  assert.equal(await got, 'over wss')
}

test('wss:// with fixed key and certificate: MQTT.js 3.1.1 and 5 exchange a message, the chain verified against the root', async (t) => {
  const b = await wssBroker(t, { certificate: fixed(first) })
  assert.ok(b.url.startsWith('wss://'))
  await exchange(t, b.url, 'fixed')
  assert.equal((await probe(b.port, { ALPNProtocols: ['http/1.1'] })).fingerprint, first.fingerprint)
})

test('wss:// follows a TlsCertificate: after a renewal new connections get the new certificate, open ones keep working', async (t) => {
  const le = pki.letsEncrypt('wss.example.test', first)
  const cert = TlsCertificate.load({ name: 'wss', certfile: le.fullchain, keyfile: le.privkey, logger: silentLogger(), watch: false, certCheckIntervalMs: 0 })
  assert.ok(cert instanceof TlsCertificate, JSON.stringify(cert))
  t.after(() => cert.close())
  const b = await wssBroker(t, { certificate: cert })
  const opts = { ca: readPem(pki.root.cert), reconnectPeriod: 0, protocolVersion: 5 as const }
  const early = await mqtt.connectAsync(b.url, { ...opts, clientId: 'early' })
  t.after(() => early.endAsync(true))
  assert.equal((await probe(b.port)).fingerprint, first.fingerprint)

  le.renew(second)
  assert.equal(cert.reload(), true)
  assert.equal((await probe(b.port)).fingerprint, second.fingerprint)
  await exchange(t, b.url, 'renewed')
  // The connection made before the swap is still served.
  await early.subscribeAsync('early/t', { qos: 1 })
  const got = new Promise<string>((resolve) => early.once('message', (_topic, payload) => resolve(payload.toString())))
  await early.publishAsync('early/t', 'still here', { qos: 1 })
  assert.equal(await got, 'still here')
})

test('setSecureContext() on a wss listener with fixed options serves the new certificate to new handshakes', async (t) => {
  const b = await wssBroker(t, { certificate: fixed(first) })
  assert.equal((await probe(b.port)).fingerprint, first.fingerprint)
  assert.ok(b.listener.setSecureContext !== undefined)
  b.listener.setSecureContext(fixed(second))
  assert.equal((await probe(b.port)).fingerprint, second.fingerprint)
})

test('a plain ws:// listener has no setSecureContext', async (t) => {
  const b = await startWsBroker()
  t.after(() => b.close())
  assert.equal(b.listener.setSecureContext, undefined)
})

test('ALPN: http/1.1 is selected; a client offering only h2 is refused (WebSockets need HTTP/1.1)', async (t) => {
  const b = await wssBroker(t, { certificate: fixed(first) })
  assert.equal((await probe(b.port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpn, 'http/1.1')
  await assert.rejects(probe(b.port, { ALPNProtocols: ['h2'] }), /no_application_protocol|NO_APPLICATION_PROTOCOL|alert number 120/i)
})

test('require_certificate + use_identity_as_username: the client certificate CN becomes the username', async (t) => {
  const ca = readPem(pki.root.cert) + readPem(pki.intermediate.cert)
  const b = await wssBroker(t, { certificate: { ...fixed(first), ca }, requireCertificate: true, useIdentityAsUsername: true })
  const p = new RawPeer(b.url, ['mqtt'], { ca: readPem(pki.root.cert), cert: readPem(alice.cert) + readPem(pki.intermediate.cert), key: readPem(alice.key) })
  t.after(() => p.terminate())
  await p.open()
  await p.send(connect311('with-cert'))
  assert.deepEqual(await p.waitForBytes(4), Connack311Accepted)
  const conn = [...b.broker.connections][0]
  assert.equal(conn?.meta.certificateUsername, 'alice')
})

test('require_certificate: a client without a certificate never completes the WebSocket handshake', async (t) => {
  const ca = readPem(pki.root.cert) + readPem(pki.intermediate.cert)
  const b = await wssBroker(t, { certificate: { ...fixed(first), ca }, requireCertificate: true })
  const p = new RawPeer(b.url, ['mqtt'], { ca: readPem(pki.root.cert) })
  t.after(() => p.terminate())
  const h = await p.handshake
  assert.equal(h.kind, 'error', JSON.stringify(h))
  assert.equal(b.broker.connections.size, 0)
})

test('use_identity_as_username without a client certificate: the upgrade is refused with 403 saying why', async (t) => {
  const b = await wssBroker(t, { certificate: fixed(first), useIdentityAsUsername: true })
  const p = new RawPeer(b.url, ['mqtt'], { ca: readPem(pki.root.cert) })
  t.after(() => p.terminate())
  const h = await p.handshake
  assert.ok(h.kind === 'refused' && h.status === 403 && /client certificate/.test(h.body), JSON.stringify(h))
})
