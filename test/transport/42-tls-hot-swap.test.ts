/**
 * Certificate hot-swap: certbot-style renewals (new files in archive/, live/ symlinks repointed) are
 * served to the next connection within 2 s while open connections stay up; broken renewals are
 * refused and logged, and the old certificate keeps serving. Also: the poll alone, and SIGHUP's reload().
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import mqtt from 'mqtt'
import { TestPki, type Issued } from '../helpers/certs.js'
import { probe, readPem, startTlsBroker, type TlsBroker } from '../helpers/tls-harness.js'

let pki: TestPki
let first: Issued

before(() => {
  pki = new TestPki()
  first = pki.issue('gen1', { cn: 'localhost' })
})
after(() => pki.remove())

function leFiles(le: { cert: string; privkey: string; chain: string }): { certfile: string; keyfile: string; cafile: string } {
  return { certfile: le.cert, keyfile: le.privkey, cafile: le.chain }
}

const clientOptions = (tb: TlsBroker, id: string): mqtt.IClientOptions => ({
  host: '127.0.0.1', port: tb.port, protocol: 'mqtts', ca: readPem(pki.root.cert), servername: 'localhost', clientId: id, reconnectPeriod: 0,
})

/** Probes new connections until one is served `fingerprint`; returns the ms it took, or throws past `limitMs`. */
async function servedWithin(tb: TlsBroker, fingerprint: string, limitMs: number): Promise<number> {
  const start = Date.now()
  for (;;) {
    const p = await probe(tb.port, { ca: readPem(pki.root.cert) })
    if (p.fingerprint === fingerprint) {
      assert.equal(p.authorized, true, p.authorizationError)
      return Date.now() - start
    }
    if (Date.now() - start > limitMs) throw new Error(`still serving ${p.fingerprint} after ${limitMs} ms, wanted ${fingerprint}; log:\n${tb.logger.lines.join('\n')}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

test('a certbot renewal is served to the next connection within 2 s; a client connected before keeps publishing', async () => {
  const le = pki.letsEncrypt('swap.example.test', first)
  // A long poll interval: the file watch must do it.
  const tb = await startTlsBroker({ ...leFiles(le), certCheckIntervalMs: 600_000 })
  try {
    const sub = await mqtt.connectAsync(clientOptions(tb, 'sub'))
    const pub = await mqtt.connectAsync(clientOptions(tb, 'pub-before-swap'))
    await sub.subscribeAsync('renewal/#', { qos: 1 })
    const received: string[] = []
    sub.on('message', (_t, m) => received.push(m.toString()))
    await pub.publishAsync('renewal/test', 'before', { qos: 1 })
    const beforeCert = (pub.stream as unknown as import('node:tls').TLSSocket).getPeerX509Certificate()?.fingerprint256
    assert.equal(beforeCert, first.fingerprint)

    const second = pki.issue('gen2', { cn: 'localhost' })
    le.renew(second)
    const took = await servedWithin(tb, second.fingerprint, 2000)
    assert.ok(took <= 2000, `took ${took} ms`)
    await tb.logger.waitFor(/now serves a new certificate: CN=localhost/)

    // The connection made before the swap is untouched and still works.
    assert.equal(pub.connected, true)
    await pub.publishAsync('renewal/test', 'after', { qos: 1 })
    const fresh = await mqtt.connectAsync(clientOptions(tb, 'pub-after-swap'))
    await fresh.publishAsync('renewal/test', 'new', { qos: 1 })
    assert.equal((fresh.stream as unknown as import('node:tls').TLSSocket).getPeerX509Certificate()?.fingerprint256, second.fingerprint)
    while (received.length < 3) await new Promise((resolve) => sub.once('message', resolve))
    assert.deepEqual(received, ['before', 'after', 'new'])
    assert.equal(tb.listener.certificateInfo().fingerprint, second.fingerprint)
    await Promise.all([pub.endAsync(), sub.endAsync(), fresh.endAsync()])
  } finally {
    await tb.close()
  }
})

test('a broken renewal (new certificate, old key) is refused and logged; the old certificate keeps serving until it is fixed', async () => {
  const le = pki.letsEncrypt('broken.example.test', first)
  const tb = await startTlsBroker({ ...leFiles(le), certCheckIntervalMs: 600_000 })
  try {
    const next = pki.issue('gen-next', { cn: 'localhost' })
    le.renew(next, { privkey: false })
    const refusal = await tb.logger.waitFor(/the new ones are refused; still serving CN=localhost/)
    assert.match(refusal, /serial [0-9A-F]+, valid until /)
    await tb.logger.waitFor(/does not match the certificate in certfile/)
    assert.equal((await probe(tb.port, { ca: readPem(pki.root.cert) })).fingerprint, first.fingerprint)
    assert.equal(tb.listener.certificateInfo().fingerprint, first.fingerprint)

    // The missing key arrives: the pair is complete and is swapped in.
    le.renew(next)
    await servedWithin(tb, next.fingerprint, 2000)
  } finally {
    await tb.close()
  }
})

test('a half-written certificate file is refused; the completed file is served', async () => {
  const dir = pki.path('half')
  fs.mkdirSync(dir)
  const certfile = `${dir}/cert.pem`
  const keyfile = `${dir}/key.pem`
  fs.copyFileSync(first.cert, certfile)
  fs.copyFileSync(first.key, keyfile)
  const tb = await startTlsBroker({ certfile, keyfile, cafile: pki.intermediate.cert, certCheckIntervalMs: 600_000 })
  try {
    const next = pki.issue('gen-half', { cn: 'localhost', key: first.key })
    const text = fs.readFileSync(next.cert, 'utf8')
    fs.writeFileSync(certfile, text.slice(0, 200))
    await tb.logger.waitFor(/ends inside a PEM block: it looks half-written/)
    assert.equal((await probe(tb.port)).fingerprint, first.fingerprint)
    fs.writeFileSync(certfile, text)
    await servedWithin(tb, next.fingerprint, 2000)
  } finally {
    await tb.close()
  }
})

test('an expired renewal is refused', async () => {
  const le = pki.letsEncrypt('expired.example.test', first)
  const tb = await startTlsBroker({ ...leFiles(le), certCheckIntervalMs: 600_000 })
  try {
    const old = pki.issue('gen-expired', { cn: 'localhost', startDate: '200101000000Z', endDate: '200201000000Z' })
    le.renew(old)
    await tb.logger.waitFor(/expired on 2020-02-01/)
    assert.equal((await probe(tb.port)).fingerprint, first.fingerprint)
  } finally {
    await tb.close()
  }
})

test('with file watching off (a filesystem where it fails), the periodic check picks up the renewal', async () => {
  const le = pki.letsEncrypt('poll.example.test', first)
  const tb = await startTlsBroker({ ...leFiles(le), watch: false, certCheckIntervalMs: 200 })
  try {
    const next = pki.issue('gen-poll', { cn: 'localhost' })
    le.renew(next)
    await servedWithin(tb, next.fingerprint, 2000)
  } finally {
    await tb.close()
  }
})

test('reload() (SIGHUP) swaps a valid pair at once and refuses a mismatched one', async () => {
  const le = pki.letsEncrypt('sighup.example.test', first)
  const tb = await startTlsBroker({ ...leFiles(le), watch: false, certCheckIntervalMs: 0 })
  try {
    const next = pki.issue('gen-hup', { cn: 'localhost' })
    le.renew(next)
    assert.equal(await tb.listener.reload(), true)
    assert.equal((await probe(tb.port)).fingerprint, next.fingerprint)
    const stray = pki.issue('gen-stray', { cn: 'localhost' })
    le.renew(stray, { privkey: false })
    assert.equal(await tb.listener.reload(), false)
    assert.equal((await probe(tb.port)).fingerprint, next.fingerprint)
    // Unchanged valid files: a SIGHUP reloads them anyway (and says it is the same certificate).
    le.renew(next)
    assert.equal(await tb.listener.reload(), true)
    assert.equal(await tb.listener.reload(), true)
    await tb.logger.waitFor(/reloaded the same certificate/)
  } finally {
    await tb.close()
  }
})
