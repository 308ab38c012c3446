/**
 * `midge pub`/`midge sub` over TLS, against each broker of test/client/support/brokers.ts (mosquitto and
 * Midge), with certificates made by openssl at test time: --cafile and --capath trust exactly those CAs, the
 * system store is used (and said so under -d) without them, and verification failures exit 8 as
 * mosquitto_pub does, naming the reason (unknown CA, name mismatch, expired).
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { TestPki, opensslDate } from '../helpers/certs.js'
import type { Issued } from '../helpers/certs.js'
import { Brokers } from '../client/support/brokers.js'
import type { BrokerKind, BrokerProcess } from '../client/support/brokers.js'
import { midge, run, runMidge } from '../client/support/cli.js'

let pki: TestPki
let leaf: Issued
let misnamed: Issued
let stale: Issued
let other: Issued
let device: Issued
let stranger: Issued
let capath: string

/** mosquitto drops to the 'mosquitto' user before reading its certificates. */
function readable (dir: string): void {
  fs.chmodSync(dir, 0o755)
  for (const f of fs.readdirSync(dir)) {
    const p = path.join(dir, f)
    if (fs.statSync(p).isFile()) fs.chmodSync(p, 0o644)
  }
}

/**
 * mosquitto_pub exits 8 ("Error: A TLS error occurred.") when the handshake fails in its loop, but 1 ("Unable
 * to connect (A TLS error occurred.).") when it fails inside its connect call: which one is a race. Midge
 * always exits 8.
 */
function assertTlsFailure (code: number | null): void {
  assert.ok(code === 8 || code === 1, `mosquitto_pub exit code ${code}`)
}

before(() => {
  pki = new TestPki()
  leaf = pki.issue('server', { issuer: pki.root })
  misnamed = pki.issue('misnamed', { issuer: pki.root, sans: ['DNS:elsewhere.example'] })
  const day = 86_400_000
  stale = pki.issue('stale', { issuer: pki.root, startDate: opensslDate(new Date(Date.now() - 10 * day)), endDate: opensslDate(new Date(Date.now() - day)) })
  other = pki.selfSigned('other', 'Some Other CA')
  device = pki.issue('device', { cn: 'device-1', issuer: pki.root, kind: 'client' })
  stranger = pki.issue('stranger', { cn: 'device-2', issuer: other, kind: 'client' })
  capath = pki.capath('capath', pki.root)
  readable(pki.dir)
})

after(() => { pki?.remove() })

function tlsSuite (kind: BrokerKind): void {
  let broker: BrokerProcess
  /** Listener ports: good certificate, another name, expired (if served). */
  let good: number
  let wrongName: number
  let expired: number

  before(async () => {
    const tlsLines = (c: Issued): string[] => [`certfile ${c.cert}`, `keyfile ${c.key}`]
    const listeners = [tlsLines(leaf), tlsLines(misnamed)]
    if (kind.servesExpiredCertificates) listeners.push(tlsLines(stale))
    broker = await kind.start({ listeners })
    ;[, good, wrongName, expired] = broker.ports as [number, number, number, number]
  })

  after(async () => { await broker?.stop() })

  test('--cafile: midge pub and midge sub talk over TLS (3.1.1 and 5)', async () => {
    for (const v of ['mqttv311', 'mqttv5']) {
      const id = `tls-sub-${v}`
      const sub = midge(['sub', '-h', 'localhost', '-p', String(good), '--cafile', pki.root.cert, '-t', 'tls/#', '-v', '-C', '1', '-i', id, '-V', v])
      await broker.waitForSubscription(id, 'tls/#')
      const pub = await runMidge(['pub', '-h', '127.0.0.1', '-p', String(good), '--cafile', pki.root.cert, '-t', 'tls/x', '-m', 'secret', '-q', '1', '-V', v])
      assert.equal(pub.code, 0, pub.stderr)
      const got = await sub.result
      assert.equal(got.code, 0, got.stderr)
      assert.equal(got.stdout.toString(), 'tls/x secret\n')
    }
  })

  test('--capath: the CAs in the directory are trusted', async () => {
    const r = await runMidge(['pub', '-h', '127.0.0.1', '-p', String(good), '--capath', capath, '-t', 't', '-m', 'x', '-d'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout.toString(), /TLS: trusting only the 1 CA certificate\(s\) from /)
  })

  test('unknown CA: exit code 8 as mosquitto_pub, with the reason', async () => {
    const args = ['-h', '127.0.0.1', '-p', String(good), '--cafile', other.cert, '-t', 't', '-m', 'x']
    const ours = await runMidge(['pub', ...args])
    const theirs = await run('mosquitto_pub', args)
    assertTlsFailure(theirs.code)
    assert.equal(ours.code, 8)
    assert.match(ours.stderr, /^Error: A TLS error occurred: certificate verify failed: unknown CA \(.+\)\.\n$/)
    const sub = await runMidge(['sub', ...args.filter((a) => a !== '-m' && a !== 'x')])
    assert.equal(sub.code, 8)
  })

  test('name mismatch: exit code 8 with the reason; --insecure skips the name check only', async () => {
    const args = ['-h', '127.0.0.1', '-p', String(wrongName), '--cafile', pki.root.cert, '-t', 't', '-m', 'x']
    const ours = await runMidge(['pub', ...args])
    assertTlsFailure((await run('mosquitto_pub', args)).code)
    assert.equal(ours.code, 8)
    assert.match(ours.stderr, /^Error: A TLS error occurred: certificate verify failed: name mismatch \(.+\)\.\n$/)
    const insecure = await runMidge(['pub', ...args, '--insecure'])
    assert.equal(insecure.code, 0, insecure.stderr)
    const stillUnknown = await runMidge(['pub', '-h', '127.0.0.1', '-p', String(wrongName), '--cafile', other.cert, '-t', 't', '-m', 'x', '--insecure'])
    assert.equal(stillUnknown.code, 8)
  })

  // Midge refuses to start with an expired certificate, so only mosquitto can show the client an expired one.
  if (kind.servesExpiredCertificates) {
    test('expired server certificate: exit code 8 with the reason', async () => {
      const args = ['-h', '127.0.0.1', '-p', String(expired), '--cafile', pki.root.cert, '-t', 't', '-m', 'x']
      const ours = await runMidge(['pub', ...args])
      assertTlsFailure((await run('mosquitto_pub', args)).code)
      assert.equal(ours.code, 8)
      assert.match(ours.stderr, /^Error: A TLS error occurred: certificate verify failed: expired \(.+\)\.\n$/)
    })
  }

  test('mqtts:// without --cafile uses the system trust store and says so under -d', async () => {
    const url = `mqtts://127.0.0.1:${good}/sys/t`
    const r = await runMidge(['pub', '-L', url, '-m', 'x', '-d'])
    assert.equal(r.code, 8, 'the test CA is not in the system store')
    assert.match(r.stdout.toString(), /TLS: no --cafile or --capath given, using the system trust store \(.+, \d+ certificates\)/)
    assert.match(r.stderr, /unknown CA/)
    // OpenSSL's SSL_CERT_FILE names the system store, as it does for mosquitto_pub.
    const env = { SSL_CERT_FILE: pki.root.cert }
    const ok = await runMidge(['pub', '-L', url, '-m', 'x'], { env })
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal((await run('mosquitto_pub', ['-L', url, '-m', 'x'], { env })).code, 0)
  })

  test('--tls-version and a missing --cafile file', async () => {
    const r = await runMidge(['pub', '-h', '127.0.0.1', '-p', String(good), '--cafile', pki.root.cert, '--tls-version', 'tlsv1.2', '-t', 't', '-m', 'x'])
    assert.equal(r.code, 0, r.stderr)
    const missing = ['-h', '127.0.0.1', '-p', String(good), '--cafile', path.join(pki.dir, 'nope.pem'), '-t', 't', '-m', 'x']
    const ours = await runMidge(['pub', ...missing])
    const theirs = await run('mosquitto_pub', missing)
    assert.equal(ours.stderr, theirs.stderr)
    assert.equal(ours.code, theirs.code)
  })
}

/**
 * The usual private-CA setup for client certificates, as in mosquitto's documentation: one CA signs the
 * server and the clients, and is the listener's cafile. A broker of its own, so a broker that refuses this
 * configuration fails these tests only.
 */
function clientCertificateSuite (kind: BrokerKind): void {
  let broker: BrokerProcess
  let mutual: number

  before(async () => {
    const lines = [`certfile ${leaf.cert}`, `keyfile ${leaf.key}`, `cafile ${pki.root.cert}`, 'require_certificate true', 'use_identity_as_username true']
    broker = await kind.start({ listeners: [lines] })
    mutual = broker.ports[1]!
  })

  after(async () => { await broker?.stop() })

  test('--cert/--key: a client certificate opens a listener with require_certificate (3.1.1 and 5)', async () => {
    const tls = ['-p', String(mutual), '--cafile', pki.root.cert, '--cert', device.cert, '--key', device.key]
    const sub = midge(['sub', '-h', 'localhost', ...tls, '-t', 'mtls/#', '-v', '-C', '1', '-i', 'mtls-sub', '-V', 'mqttv5'])
    await broker.waitForSubscription('mtls-sub', 'mtls/#')
    const pub = await runMidge(['pub', '-h', '127.0.0.1', ...tls, '-t', 'mtls/x', '-m', 'mutual', '-q', '1', '-V', 'mqttv311'])
    assert.equal(pub.code, 0, pub.stderr)
    const got = await sub.result
    assert.equal(got.code, 0, got.stderr)
    assert.equal(got.stdout.toString(), 'mtls/x mutual\n')
  })

  test('no client certificate: refused with a TLS alert, exit code 8 with the reason', async () => {
    // mosquitto_pub fails too, but says "Protocol error" or "The connection was lost." (exit 1 or 7).
    const base = ['-h', '127.0.0.1', '-p', String(mutual), '--cafile', pki.root.cert, '-t', 'mtls/x']
    const [pub, theirs, sub] = await Promise.all([
      runMidge(['pub', ...base, '-m', 'x']),
      run('mosquitto_pub', [...base, '-m', 'x']),
      runMidge(['sub', ...base, '-V', 'mqttv5']),
    ])
    assert.notEqual(theirs.code, 0)
    assert.equal(pub.code, 8)
    assert.match(pub.stderr, /^Error: A TLS error occurred: the broker requires a client certificate \(--cert and --key\) \(tlsv13 alert certificate required\)\.\n$/)
    assert.equal(sub.code, 8, sub.stderr)
  })

  test(`a client certificate from another CA: refused (${kind.refusesClientCertificateBy === 'alert' ? 'TLS alert, exit code 8' : 'connection closed, exit code 7 as mosquitto_pub'})`, async () => {
    const args = ['-h', '127.0.0.1', '-p', String(mutual), '--cafile', pki.root.cert, '--cert', stranger.cert, '--key', stranger.key, '-t', 'mtls/x', '-m', 'x']
    const [ours, theirs] = await Promise.all([runMidge(['pub', ...args]), run('mosquitto_pub', args)])
    assert.notEqual(theirs.code, 0)
    if (kind.refusesClientCertificateBy === 'alert') {
      assert.equal(ours.code, 8)
      assert.match(ours.stderr, /^Error: A TLS error occurred: the broker refused the client certificate \(tlsv1 alert unknown ca\)\.\n$/)
    } else {
      assert.equal(ours.stderr, 'Error: The connection was lost.\n')
      assert.equal(ours.code, 7)
      assert.equal(ours.stderr, theirs.stderr)
      assert.equal(ours.code, theirs.code)
    }
  })
}

for (const kind of Brokers) {
  describe(`against ${kind.name}`, () => {
    tlsSuite(kind)
    describe('client certificates', () => { clientCertificateSuite(kind) })
  })
}
