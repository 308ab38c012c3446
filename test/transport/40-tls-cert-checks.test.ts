/**
 * What `midge check` and a listener's start say about certificate files: each problem its own code
 * and sentence naming the file. Certificates are made by openssl at test time (test/helpers/certs.ts).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { TestPki, opensslDate, type Issued } from '../helpers/certs.js'
import { checkTlsFiles } from '../../src/transport/tls.js'
import { TlsProblemCode, type TlsProblem } from '../../src/transport/tls-errors.js'

let pki: TestPki
let server: Issued

before(() => {
  pki = new TestPki()
  fs.chmodSync(pki.dir, 0o755)
  server = pki.issue('server', { cn: 'mqtt.example.test', sans: ['DNS:mqtt.example.test', 'DNS:localhost', 'IP:127.0.0.1'] })
})
after(() => pki.remove())

const base = { requireCertificate: false, useIdentityAsUsername: false, useSubjectAsUsername: false }
const codes = (ps: TlsProblem[]): string[] => ps.map((p) => p.code)
const only = (ps: TlsProblem[], code: string): TlsProblem => {
  const p = ps.find((x) => x.code === code)
  assert.ok(p !== undefined, `expected ${code}, got ${JSON.stringify(ps, null, 1)}`)
  return p
}

test("the seed's Let's Encrypt trio (cert.pem, chain.pem as cafile, privkey.pem) passes", () => {
  const chain = pki.bundle('chain.pem', pki.intermediate.cert)
  assert.deepEqual(checkTlsFiles({ ...base, certfile: server.cert, keyfile: server.key, cafile: chain, domain: 'mqtt.example.test' }), [])
})

test('fullchain.pem as certfile passes without a cafile', () => {
  const full = pki.bundle('fullchain.pem', server.cert, pki.intermediate.cert)
  assert.deepEqual(checkTlsFiles({ ...base, certfile: full, keyfile: server.key }), [])
})

test('a leaf without its chain is a warning naming the missing issuer and the fix', () => {
  const ps = checkTlsFiles({ ...base, certfile: server.cert, keyfile: server.key })
  assert.deepEqual(codes(ps), [TlsProblemCode.ChainIncomplete])
  const p = only(ps, TlsProblemCode.ChainIncomplete)
  assert.equal(p.severity, 'warning')
  assert.match(p.message, /issued by CN=Midge Test Intermediate/)
  assert.match(p.message, /fullchain\.pem/)
})

test('a key that does not match its certificate is an error naming both files', () => {
  const other = pki.issue('other-server')
  const ps = checkTlsFiles({ ...base, certfile: server.cert, keyfile: other.key })
  const p = only(ps, TlsProblemCode.KeyMismatch)
  assert.equal(p.severity, 'error')
  assert.ok(p.message.includes(other.key) && p.message.includes(server.cert), p.message)
})

test('an expired certificate is an error with its end date', () => {
  const old = pki.issue('expired', { startDate: '200101000000Z', endDate: '200201000000Z' })
  const p = only(checkTlsFiles({ ...base, certfile: old.cert, keyfile: old.key, cafile: pki.intermediate.cert }), TlsProblemCode.CertExpired)
  assert.equal(p.severity, 'error')
  assert.match(p.message, /expired on 2020-02-01T00:00:00Z/)
})

test('a certificate not valid yet is an error that mentions the clock', () => {
  const future = new Date(Date.now() + 10 * 86_400_000)
  const early = pki.issue('future', { startDate: opensslDate(future), endDate: opensslDate(new Date(future.getTime() + 86_400_000)) })
  const p = only(checkTlsFiles({ ...base, certfile: early.cert, keyfile: early.key, cafile: pki.intermediate.cert }), TlsProblemCode.CertNotYetValid)
  assert.match(p.message, /clock/)
})

test('a certificate expiring within 14 days is a warning, and passes', () => {
  const soon = pki.issue('soon', { days: 5 })
  const ps = checkTlsFiles({ ...base, certfile: soon.cert, keyfile: soon.key, cafile: pki.intermediate.cert })
  assert.deepEqual(codes(ps), [TlsProblemCode.ExpiresSoon])
  assert.match(only(ps, TlsProblemCode.ExpiresSoon).message, /in [45] days/)
})

test("a certificate for another name than the listener's domain is an error listing the names it covers", () => {
  const p = only(checkTlsFiles({ ...base, certfile: server.cert, keyfile: server.key, cafile: pki.intermediate.cert, domain: 'broker.elsewhere.test' }), TlsProblemCode.CertWrongName)
  assert.match(p.message, /is for mqtt\.example\.test, localhost, 127\.0\.0\.1, not for the listener's domain broker\.elsewhere\.test/)
  assert.deepEqual(checkTlsFiles({ ...base, certfile: server.cert, keyfile: server.key, cafile: pki.intermediate.cert, domain: '127.0.0.1' }), [])
})

test('a chain file from another CA that has the issuer\'s name but not its key: the chain does not lead to its issuer', () => {
  const impostor = pki.selfSigned('impostor', 'Midge Test Intermediate')
  const p = only(checkTlsFiles({ ...base, certfile: server.cert, keyfile: server.key, cafile: impostor.cert }), TlsProblemCode.ChainBroken)
  assert.equal(p.severity, 'error')
  assert.match(p.message, /does not lead to its issuer/)
  assert.match(p.message, /another key/)
})

test('a chain file that does not hold the issuer at all (from another certificate) is a broken chain', () => {
  const otherCa = pki.selfSigned('other-ca', 'Some Other CA')
  const p = only(checkTlsFiles({ ...base, certfile: server.cert, keyfile: server.key, cafile: otherCa.cert }), TlsProblemCode.ChainBroken)
  assert.match(p.message, /issued by CN=Midge Test Intermediate, which cafile .* does not hold/)
})

test('a fullchain whose second certificate did not issue the first is a broken chain', () => {
  const wrong = pki.bundle('wrong-fullchain.pem', server.cert, pki.root.cert)
  const p = only(checkTlsFiles({ ...base, certfile: wrong, keyfile: server.key }), TlsProblemCode.ChainBroken)
  assert.match(p.message, /CN=Midge Test Root CA, which did not issue it/)
})

test('a half-written certificate (cut inside the PEM block) is refused as half-written', () => {
  const text = fs.readFileSync(server.cert, 'utf8')
  const cut = pki.path('cut.pem')
  fs.writeFileSync(cut, text.slice(0, Math.floor(text.length / 2)))
  const p = only(checkTlsFiles({ ...base, certfile: cut, keyfile: server.key }), TlsProblemCode.CertUnparseable)
  assert.match(p.message, /half-written/)
})

test('swapped certfile and keyfile are named as such', () => {
  const ps = checkTlsFiles({ ...base, certfile: server.key, keyfile: server.cert })
  assert.match(only(ps, TlsProblemCode.CertUnparseable).message, /holds a private key, not a certificate/)
  assert.match(only(ps, TlsProblemCode.KeyUnparseable).message, /holds a certificate, not a private key/)
})

test('an encrypted key is refused: listeners have no passphrase option, as in Mosquitto', () => {
  const enc = pki.issue('encrypted', { passphrase: 'secret' })
  const p = only(checkTlsFiles({ ...base, certfile: enc.cert, keyfile: enc.key, cafile: pki.intermediate.cert }), TlsProblemCode.KeyEncrypted)
  assert.match(p.message, /passphrase/)
})

test('a missing file, and a dangling symlink, name the file', () => {
  const missing = pki.path('nope/cert.pem')
  assert.match(only(checkTlsFiles({ ...base, certfile: missing, keyfile: server.key }), TlsProblemCode.FileMissing).message, /certfile .*nope\/cert\.pem/)
  const link = pki.path('dangling.pem')
  fs.symlinkSync('archive/gone.pem', link)
  const p = only(checkTlsFiles({ ...base, certfile: server.cert, keyfile: link }), TlsProblemCode.FileMissing)
  assert.match(p.message, /dangling\.pem is a symlink to archive\/gone\.pem, which does not exist/)
})

test('an unreadable file names the file, the user, the missing permission and the directory that blocks it', () => {
  // The seed's problem: /etc/letsencrypt/live and archive are 0700 root.
  const le = pki.letsEncrypt('perm.example.test', server)
  const liveRoot = path.dirname(le.live)
  const archiveRoot = path.dirname(le.archive)
  fs.chmodSync(liveRoot, 0o700)
  try {
    const ps = checkTlsFiles({ ...base, certfile: le.cert, keyfile: le.privkey, cafile: le.chain }, 'nobody')
    const p = only(ps, TlsProblemCode.FileUnreadable)
    assert.equal(p.file, le.cert)
    assert.ok(p.message.includes(`certfile ${le.cert}`), p.message)
    assert.match(p.message, /user 'nobody'/)
    assert.ok(p.message.includes(`directory ${liveRoot} (mode 0700 root)`), p.message)
    assert.match(p.message, /search \(x\) permission is missing/)
    // The same files are fine for the user running the check (root here).
    assert.deepEqual(checkTlsFiles({ ...base, certfile: le.cert, keyfile: le.privkey, cafile: le.chain }), [])
    // Opening live/ is not enough: the symlinks lead into archive/, checked as well.
    fs.chmodSync(liveRoot, 0o755)
    fs.chmodSync(archiveRoot, 0o700)
    const q = only(checkTlsFiles({ ...base, certfile: le.cert, keyfile: le.privkey, cafile: le.chain }, 'nobody'), TlsProblemCode.FileUnreadable)
    assert.ok(q.message.includes(`directory ${archiveRoot}`), q.message)
    // With both directories open, the 0600 key file itself is what blocks.
    fs.chmodSync(archiveRoot, 0o755)
    const k = checkTlsFiles({ ...base, certfile: le.cert, keyfile: le.privkey, cafile: le.chain }, 'nobody')
    assert.deepEqual(codes(k), [TlsProblemCode.FileUnreadable])
    assert.match(k[0]?.message ?? '', /privkey1\.pem \(the target of .*privkey\.pem\) \(mode 0600 root\) does not let user 'nobody' read it: read \(r\) permission is missing/)
  } finally {
    fs.chmodSync(liveRoot, 0o755)
    fs.chmodSync(archiveRoot, 0o755)
  }
})

test('capath: hashed with openssl rehash passes; without hash names it is a warning naming the command', () => {
  const hashed = pki.capath('capath-ok', pki.root, pki.intermediate)
  assert.deepEqual(checkTlsFiles({ ...base, certfile: server.cert, keyfile: server.key, capath: hashed }), [])
  const plain = pki.path('capath-plain')
  fs.mkdirSync(plain)
  fs.copyFileSync(pki.root.cert, path.join(plain, 'root.pem'))
  const ps = checkTlsFiles({ ...base, certfile: server.cert, keyfile: server.key, cafile: pki.intermediate.cert, capath: plain })
  assert.match(only(ps, TlsProblemCode.CapathNotHashed).message, /openssl rehash/)
})

test('option combinations that cannot work are errors', () => {
  const files = { certfile: server.cert, keyfile: server.key }
  assert.match(only(checkTlsFiles({ ...base, ...files, requireCertificate: true }), TlsProblemCode.BadOption).message, /neither cafile nor capath/)
  assert.match(only(checkTlsFiles({ ...base, ...files, cafile: pki.intermediate.cert, useIdentityAsUsername: true }), TlsProblemCode.BadOption).message, /use_identity_as_username is true but require_certificate is false/)
  assert.match(only(checkTlsFiles({ ...base, ...files, cafile: pki.intermediate.cert, tlsVersion: 'tlsv1.0' }), TlsProblemCode.BadOption).message, /tls_version tlsv1\.0 is not one of tlsv1\.3, tlsv1\.2, tlsv1\.1/)
  assert.match(only(checkTlsFiles({ ...base, ...files, cafile: pki.intermediate.cert, ciphers: 'NO-SUCH-CIPHER' }), TlsProblemCode.BadOption).message, /ciphers NO-SUCH-CIPHER matches no cipher/)
  assert.deepEqual(checkTlsFiles({ ...base, ...files, cafile: pki.intermediate.cert, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', ciphersTls13: 'TLS_AES_128_GCM_SHA256' }), [])
})

test("checkTlsFiles for a user that does not exist says so", () => {
  const ps = checkTlsFiles({ ...base, certfile: server.cert, keyfile: server.key }, 'no-such-user-midge')
  assert.match(only(ps, TlsProblemCode.BadOption).message, /user 'no-such-user-midge' does not exist/)
})
