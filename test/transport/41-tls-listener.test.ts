/**
 * The TLS listener in front of the broker: the chain it sends, ALPN, tls_version, what it tells at
 * start, and how it refuses to start.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import mqtt from 'mqtt'
import { TestPki, type Issued } from '../helpers/certs.js'
import { RecordingLogger, probe, readPem, startTlsBroker } from '../helpers/tls-harness.js'
import { TlsConfigError, TlsProblemCode, startTlsListener, tlsSysValues } from '../../src/transport/tls.js'

let pki: TestPki
let server: Issued
let chain: string

before(() => {
  pki = new TestPki()
  server = pki.issue('server')
  chain = pki.bundle('chain.pem', pki.intermediate.cert)
})
after(() => pki.remove())

test("cert.pem + chain.pem (cafile): a client trusting only the root verifies the served chain and talks MQTT", async () => {
  const tb = await startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: chain })
  try {
    const p = await probe(tb.port, { ca: readPem(pki.root.cert) })
    assert.equal(p.authorized, true, p.authorizationError)
    assert.equal(p.fingerprint, server.fingerprint)

    // A fresh object each time: MQTT.js writes its generated client id into the options it is given.
    const opts = (): mqtt.IClientOptions => ({ host: '127.0.0.1', port: tb.port, protocol: 'mqtts', ca: readPem(pki.root.cert), servername: 'localhost', reconnectPeriod: 0 })
    const sub = await mqtt.connectAsync(opts())
    const pub = await mqtt.connectAsync(opts())
    await sub.subscribeAsync('test', { qos: 1 })
    const got = new Promise<string>((resolve) => sub.once('message', (_t, m) => resolve(m.toString())))
    await pub.publishAsync('test', 'hello world', { qos: 1 })
    assert.equal(await got, 'hello world')
    await pub.endAsync()
    await sub.endAsync()
  } finally {
    await tb.close()
  }
})

test("ALPN: 'mqtt' is negotiated when offered; no ALPN is fine; a client wanting only another protocol is refused", async () => {
  const tb = await startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: chain })
  try {
    assert.equal((await probe(tb.port, { ALPNProtocols: ['mqtt'] })).alpn, 'mqtt')
    assert.equal((await probe(tb.port, { ALPNProtocols: ['x-unknown', 'mqtt'] })).alpn, 'mqtt')
    assert.equal((await probe(tb.port)).alpn, false)
    await assert.rejects(probe(tb.port, { ALPNProtocols: ['http/1.1'] }), /no application protocol/)
  } finally {
    await tb.close()
  }
})

test('tls_version is a minimum: tlsv1.3 refuses a TLS 1.2 client; the default accepts 1.2 and 1.3', async () => {
  const strict = await startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: chain, tlsVersion: 'tlsv1.3' })
  try {
    await assert.rejects(probe(strict.port, { maxVersion: 'TLSv1.2' }))
    assert.equal((await probe(strict.port)).protocol, 'TLSv1.3')
  } finally {
    await strict.close()
  }
  const dflt = await startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: chain })
  try {
    assert.equal((await probe(dflt.port, { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2')
    assert.equal((await probe(dflt.port)).protocol, 'TLSv1.3')
    await assert.rejects(probe(dflt.port, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1' }))
  } finally {
    await dflt.close()
  }
})

test('ciphers limits TLS 1.2 suites and keeps TLS 1.3 working; ciphers_tls1.3 limits 1.3 suites', async () => {
  const tb = await startTlsBroker({
    certfile: server.cert, keyfile: server.key, cafile: chain,
    ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384', ciphersTls13: 'TLS_CHACHA20_POLY1305_SHA256',
  })
  try {
    await assert.rejects(probe(tb.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }))
    assert.equal((await probe(tb.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' })).protocol, 'TLSv1.2')
    assert.equal((await probe(tb.port)).protocol, 'TLSv1.3')
    await assert.rejects(probe(tb.port, { ciphers: 'TLS_AES_128_GCM_SHA256', minVersion: 'TLSv1.3' }))
  } finally {
    await tb.close()
  }
})

test('certificateInfo(), onCertificate and the $SYS values report the served certificate as openssl prints it', async () => {
  const seen: string[] = []
  const tb = await startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: chain, onCertificate: (i) => seen.push(i.fingerprint) })
  try {
    const info = tb.listener.certificateInfo()
    assert.equal(info.subject, server.subject)
    assert.equal(info.issuer, pki.intermediate.subject)
    assert.equal(info.fingerprint, server.fingerprint)
    assert.deepEqual(info.names, ['localhost', '127.0.0.1'])
    assert.ok(info.notAfter.getTime() > Date.now() + 80 * 86_400_000)
    assert.deepEqual(seen, [server.fingerprint])
    const sys = new Map(tlsSysValues('8883#1', tb.listener).map(([k, f]) => [k, f()]))
    assert.deepEqual([...sys.keys()], ['expires', 'days_left', 'subject', 'fingerprint'].map((k) => `tls/8883_1/certificate/${k}`))
    assert.equal(sys.get('tls/8883_1/certificate/expires'), info.notAfter.toISOString())
    assert.ok(Number(sys.get('tls/8883_1/certificate/days_left')) >= 89)
    assert.equal(sys.get('tls/8883_1/certificate/fingerprint'), server.fingerprint)
    assert.ok(tb.logger.lines.some((l) => l.startsWith(`TLS listener tls serves CN=server (serial ${info.serial}, valid until`)), tb.logger.lines.join('\n'))
  } finally {
    await tb.close()
  }
})

test('a certificate expiring within 14 days is warned about at start and by the daily check', async () => {
  const soon = pki.issue('soon', { days: 3 })
  const tb = await startTlsBroker({ certfile: soon.cert, keyfile: soon.key, cafile: chain })
  try {
    assert.ok(tb.logger.lines.some((l) => l.includes('expires on') && l.includes('in 2 days')), tb.logger.lines.join('\n'))
    const from = tb.logger.lines.length
    tb.listener.certificate.checkExpiry(new Date(Date.now() + 86_400_000))
    await tb.logger.waitFor(/expires on .* in 1 days/, 1000, from)
    tb.listener.certificate.checkExpiry(new Date(Date.now() + 10 * 86_400_000))
    await tb.logger.waitFor(/expired on .*clients refuse it/, 1000, from)
  } finally {
    await tb.close()
  }
})

test('start refuses bad files with every problem, each its own sentence', async () => {
  const other = pki.issue('other')
  const old = pki.issue('old', { startDate: '200101000000Z', endDate: '200201000000Z', key: other.key })
  const logger = new RecordingLogger()
  await assert.rejects(
    startTlsListener({ host: '127.0.0.1', port: 0, certfile: old.cert, keyfile: server.key, cafile: chain, requireCertificate: false, useIdentityAsUsername: false, useSubjectAsUsername: false, logger }, () => {}),
    (err: unknown) => {
      assert.ok(err instanceof TlsConfigError)
      assert.equal(err.code, 'TLS_ERR_CONFIG')
      assert.deepEqual(err.problems.map((p) => p.code).sort(), [TlsProblemCode.CertExpired, TlsProblemCode.KeyMismatch].sort())
      assert.match(err.message, /expired on 2020-02-01/)
      assert.match(err.message, /does not match the certificate/)
      return true
    })
})

test('several addresses (localhost: 127.0.0.1 and ::1) share one certificate and follow one reload', async () => {
  const dir = pki.path('multi')
  fs.mkdirSync(dir)
  fs.copyFileSync(server.cert, `${dir}/cert.pem`)
  fs.copyFileSync(server.key, `${dir}/key.pem`)
  const tb = await startTlsBroker({ certfile: `${dir}/cert.pem`, keyfile: `${dir}/key.pem`, cafile: chain, host: ['127.0.0.1', '::1'], watch: false, certCheckIntervalMs: 0 })
  try {
    const [v4, v6] = tb.listener.addresses()
    assert.equal(v4?.address, '127.0.0.1')
    assert.equal(v6?.address, '::1')
    const next = pki.issue('multi-next', { key: server.key })
    fs.copyFileSync(next.cert, `${dir}/cert.pem`)
    assert.equal(await tb.listener.reload(), true)
    assert.equal((await probe(v4?.port ?? 0)).fingerprint, next.fingerprint)
    assert.equal((await probe(v6?.port ?? 0, { host: '::1' })).fingerprint, next.fingerprint)
    assert.equal(tb.logger.lines.filter((l) => l.includes('now serves a new certificate')).length, 1)
  } finally {
    await tb.close()
  }
})

test('a port in use is named in the error', async () => {
  const blocker = net.createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  const port = (blocker.address() as net.AddressInfo).port
  try {
    await assert.rejects(startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: chain, port }),
      (err: Error & { code?: string }) => err.code === 'EADDRINUSE' && err.message.includes(`port ${port} is already in use`))
  } finally {
    await new Promise((resolve) => blocker.close(resolve))
  }
})

test('close() ends open connections, does not wait for a stalled handshake, and frees the port', async () => {
  const tb = await startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: chain })
  const raw = net.connect(tb.port, '127.0.0.1') // never starts a handshake
  await new Promise((resolve) => raw.once('connect', resolve))
  const client = await mqtt.connectAsync({ host: '127.0.0.1', port: tb.port, protocol: 'mqtts', rejectUnauthorized: false, reconnectPeriod: 0 })
  const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()))
  await tb.close()
  await clientClosed
  raw.destroy()
  client.end(true)
  await assert.rejects(probe(tb.port), /ECONNREFUSED/)
})
