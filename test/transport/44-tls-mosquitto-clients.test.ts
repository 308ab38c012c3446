/**
 * The seed's exchange with the real mosquitto clients over TLS:
 *   mosquitto_sub -h HOST -t test -p 8883 --capath DIR   /   mosquitto_pub -h HOST -t test -m "hello world" ...
 * against Midge's broker behind the TLS listener, with --cafile, with a capath made by openssl rehash,
 * with client certificates (--cert/--key, require_certificate, use_identity_as_username), and across a
 * certificate renewal. A missing mosquitto_pub/mosquitto_sub fails, naming the Debian package.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { TestPki, type Issued } from '../helpers/certs.js'
import { payloadLines, runMosquitto, startSubscriber, startTlsBroker } from '../helpers/tls-harness.js'

let pki: TestPki
let server: Issued

before(() => {
  pki = new TestPki()
  server = pki.issue('server', { cn: 'localhost' })
})
after(() => pki.remove())

const target = (port: number): string[] => ['-h', 'localhost', '-p', String(port), '-V', 'mqttv311']

test("[seed] mosquitto_sub and mosquitto_pub with --cafile exchange 'hello world' over TLS", async () => {
  const le = pki.letsEncrypt('seed.example.test', server)
  const tb = await startTlsBroker({ certfile: le.cert, keyfile: le.privkey, cafile: le.chain })
  try {
    const tls = ['--cafile', pki.root.cert]
    const sub = await startSubscriber([...target(tb.port), ...tls, '-t', 'test', '-C', '1', '-i', 'seed-sub'])
    const pub = await runMosquitto('mosquitto_pub', [...target(tb.port), ...tls, '-t', 'test', '-m', 'hello world', '-i', 'seed-pub'])
    assert.equal(pub.code, 0, pub.stderr)
    const got = await sub.done
    assert.equal(got.code, 0, got.stderr)
    assert.deepEqual(payloadLines(got.stdout), ['hello world'])
  } finally {
    await tb.close()
  }
})

test('[seed] --capath DIR (hashed with openssl rehash) works as in the seed', async () => {
  const capath = pki.capath('client-capath', pki.root)
  const tb = await startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: pki.intermediate.cert })
  try {
    const tls = ['--capath', capath]
    const sub = await startSubscriber([...target(tb.port), ...tls, '-t', 'sensors/#', '-C', '2', '-i', 'capath-sub', '-v'])
    for (const [t, m] of [['sensors/a', 'one'], ['sensors/b', 'two']] as const) {
      const pub = await runMosquitto('mosquitto_pub', [...target(tb.port), ...tls, '-t', t, '-m', m, '-q', '1'])
      assert.equal(pub.code, 0, pub.stderr)
    }
    const got = await sub.done
    assert.deepEqual(payloadLines(got.stdout), ['sensors/a one', 'sensors/b two'])
  } finally {
    await tb.close()
  }
})

test('mosquitto_pub refuses a server whose chain it cannot verify (no chain configured, client trusts only the root)', async () => {
  const tb = await startTlsBroker({ certfile: server.cert, keyfile: server.key })
  try {
    const pub = await runMosquitto('mosquitto_pub', [...target(tb.port), '--cafile', pki.root.cert, '-t', 'x', '-m', 'y', '-d'])
    assert.notEqual(pub.code, 0)
    assert.match(pub.stdout + pub.stderr, /certificate verify failed|A TLS error occurred/i)
    assert.equal(tb.identities.length, 0)
    // The operator was told at start.
    await tb.logger.waitFor(/TLS_WARN|issued by CN=Midge Test Intermediate, which is in no configured file/)
  } finally {
    await tb.close()
  }
})

test('client certificates: --cert/--key with require_certificate and use_identity_as_username; no certificate, no connection', async () => {
  const alice = pki.issue('alice', { kind: 'client', cn: 'alice' })
  const cas = pki.bundle('client-cas.pem', pki.intermediate.cert, pki.root.cert)
  const tb = await startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: cas, requireCertificate: true, useIdentityAsUsername: true })
  try {
    const tls = ['--cafile', pki.root.cert, '--cert', alice.cert, '--key', alice.key]
    const sub = await startSubscriber([...target(tb.port), ...tls, '-t', 'devices/#', '-C', '1', '-i', 'alice-sub'])
    const pub = await runMosquitto('mosquitto_pub', [...target(tb.port), ...tls, '-t', 'devices/alice', '-m', 'signed', '-i', 'alice-pub'])
    assert.equal(pub.code, 0, pub.stderr)
    assert.deepEqual(payloadLines((await sub.done).stdout), ['signed'])
    assert.deepEqual(tb.identities, ['alice', 'alice'])

    const anonymous = await runMosquitto('mosquitto_pub', [...target(tb.port), '--cafile', pki.root.cert, '-t', 'devices/x', '-m', 'no'])
    assert.notEqual(anonymous.code, 0, 'a client without a certificate must not get through')
    assert.equal(tb.identities.length, 2)
  } finally {
    await tb.close()
  }
})

test('a mosquitto_sub connected before a renewal keeps receiving; mosquitto_pub after it verifies the new certificate', async () => {
  const first = pki.issue('renew-1', { cn: 'localhost' })
  const le = pki.letsEncrypt('renew.example.test', first)
  const tb = await startTlsBroker({ certfile: le.cert, keyfile: le.privkey, cafile: le.chain, certCheckIntervalMs: 600_000 })
  try {
    const tls = ['--cafile', pki.root.cert]
    const sub = await startSubscriber([...target(tb.port), ...tls, '-t', 'renewal', '-C', '2', '-i', 'long-lived', '-q', '1'])
    const before = await runMosquitto('mosquitto_pub', [...target(tb.port), ...tls, '-t', 'renewal', '-m', 'before', '-q', '1'])
    assert.equal(before.code, 0, before.stderr)
    const second = pki.issue('renew-2', { cn: 'localhost' })
    const from = tb.logger.lines.length
    le.renew(second)
    await tb.logger.waitFor(/now serves a new certificate/, 2000, from)
    const after = await runMosquitto('mosquitto_pub', [...target(tb.port), ...tls, '-t', 'renewal', '-m', 'after', '-q', '1'])
    assert.equal(after.code, 0, after.stderr)
    assert.deepEqual(payloadLines((await sub.done).stdout), ['before', 'after'])
    assert.equal(tb.listener.certificateInfo().fingerprint, second.fingerprint)
  } finally {
    await tb.close()
  }
})
