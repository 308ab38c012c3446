/**
 * `midge pub`/`midge sub` over TLS to mosquitto, with certificates made by openssl at test time: --cafile and
 * --capath trust exactly those CAs, the system store is used (and said so under -d) without them, and
 * verification failures exit 8 as mosquitto_pub does, naming the reason (unknown CA, name mismatch, expired).
 *
 * Should also run against Midge's broker (TLS listener) once it exists.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { TestPki, opensslDate } from '../helpers/certs.js'
import type { Issued } from '../helpers/certs.js'
import { Mosquitto } from '../client/support/mosquitto.js'
import { midge, run, runMidge } from '../client/support/cli.js'

let pki: TestPki
let broker: Mosquitto
let other: Issued
let capath: string
/** Listener ports: good certificate, certificate for another name, expired certificate. */
let good: number
let wrongName: number
let expired: number

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

before(async () => {
  pki = new TestPki()
  const leaf = pki.issue('server', { issuer: pki.root })
  const misnamed = pki.issue('misnamed', { issuer: pki.root, sans: ['DNS:elsewhere.example'] })
  const day = 86_400_000
  const stale = pki.issue('stale', { issuer: pki.root, startDate: opensslDate(new Date(Date.now() - 10 * day)), endDate: opensslDate(new Date(Date.now() - day)) })
  other = pki.selfSigned('other', 'Some Other CA')
  capath = pki.capath('capath', pki.root)
  readable(pki.dir)
  const tlsLines = (c: Issued): string[] => [`certfile ${c.cert}`, `keyfile ${c.key}`]
  broker = await Mosquitto.start({ listeners: [tlsLines(leaf), tlsLines(misnamed), tlsLines(stale)] })
  ;[, good, wrongName, expired] = broker.ports as [number, number, number, number]
})

after(async () => {
  await broker.stop()
  pki.remove()
})

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

test('expired server certificate: exit code 8 with the reason', async () => {
  const args = ['-h', '127.0.0.1', '-p', String(expired), '--cafile', pki.root.cert, '-t', 't', '-m', 'x']
  const ours = await runMidge(['pub', ...args])
  assertTlsFailure((await run('mosquitto_pub', args)).code)
  assert.equal(ours.code, 8)
  assert.match(ours.stderr, /^Error: A TLS error occurred: certificate verify failed: expired \(.+\)\.\n$/)
})

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
