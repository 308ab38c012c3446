/**
 * The one capath rule (transport/cert-files.ts readCapath), used by TLS listeners, bridges and `midge pub/sub`, and
 * the one client-side TLS builder (client/tls-options.ts) that bridge and CLI share. OpenSSL looks CAs up by subject
 * hash in HASH.N files made by `openssl rehash`; Node cannot, so every regular file holding PEM certificates is
 * loaded, each certificate once, and every other entry is skipped with its reason.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import tls from 'node:tls'
import { once } from 'node:events'
import { TestPki, type Issued } from '../helpers/certs.js'
import { readCapath } from '../../src/transport/cert-files.js'
import { TlsProblemCode } from '../../src/transport/tls-errors.js'
import { ClientTlsFileError, clientTlsOptions } from '../../src/client/tls-options.js'
import { lookupUser } from '../../src/transport/file-access.js'

let pki: TestPki
let server: Issued
let other: Issued

before(() => {
  pki = new TestPki()
  fs.chmodSync(pki.dir, 0o755)
  server = pki.issue('server')
  other = pki.selfSigned('other-root', 'Another Root')
})
after(() => pki.remove())

test('capath hashed by openssl rehash: each certificate once, though both the .pem and its hash link hold it', () => {
  const dir = pki.capath('hashed', pki.root, pki.intermediate)
  const names = fs.readdirSync(dir)
  assert.equal(names.filter((n) => /^[0-9a-f]{8}\.0$/.test(n)).length, 2, `openssl rehash made two hash links: ${names.join(' ')}`)
  const r = readCapath(dir)
  assert.deepEqual(r.problems, [])
  assert.deepEqual(r.skipped, [])
  assert.equal(r.certs.length, 2)
  assert.deepEqual(new Set(r.certs.map((c) => c.trim())), new Set([pki.root, pki.intermediate].map((i) => fs.readFileSync(i.cert, 'utf8').trim())))
})

test('capath: other entries are skipped with a reason; a directory without hash names warns about OpenSSL tools', () => {
  const dir = pki.path('mixed')
  fs.mkdirSync(dir)
  fs.copyFileSync(pki.root.cert, path.join(dir, 'root.crt'))
  fs.writeFileSync(path.join(dir, 'two.pem'), fs.readFileSync(pki.intermediate.cert, 'utf8') + fs.readFileSync(other.cert, 'utf8'))
  fs.copyFileSync(server.key, path.join(dir, 'server.key'))
  fs.writeFileSync(path.join(dir, 'README'), 'CA certificates\n')
  fs.mkdirSync(path.join(dir, 'old'))
  fs.symlinkSync(path.join(dir, 'gone.pem'), path.join(dir, 'dangling.pem'))
  fs.symlinkSync(path.join(dir, 'root.crt'), path.join(dir, 'link-to-root'))
  const r = readCapath(dir)
  assert.equal(r.certs.length, 3, 'root (twice, by its link: once), intermediate and the other root from one file')
  assert.deepEqual(r.skipped.sort(), ['README: no PEM certificate in it', 'dangling.pem: a link to nothing', 'old: not a regular file', 'server.key: no PEM certificate in it'])
  assert.deepEqual(r.problems.map((p) => [p.severity, p.code]), [['warning', TlsProblemCode.CapathNotHashed]])
  assert.match(r.problems[0]!.message, /openssl rehash/)
})

test('capath: a missing directory, and a certificate file its user cannot read, are errors naming the path', () => {
  const missing = readCapath(pki.path('no-such-dir'))
  assert.deepEqual(missing.problems.map((p) => p.code), [TlsProblemCode.FileMissing])
  const nobody = lookupUser('nobody')
  assert.ok(nobody !== undefined, 'the user nobody exists (Debian base-passwd)')
  const dir = pki.capath('private', pki.root)
  const file = path.join(dir, 'root.pem')
  fs.chmodSync(file, 0o600)
  const r = readCapath(dir, nobody)
  // Both names lead to the file: the hash link and root.pem itself.
  const link = fs.readdirSync(dir).find((n) => n !== 'root.pem')!
  assert.deepEqual(r.problems.map((p) => [p.code, p.file]), [[TlsProblemCode.FileUnreadable, path.join(dir, link)], [TlsProblemCode.FileUnreadable, file]])
  for (const p of r.problems) assert.match(p.message, /unreadable for user 'nobody'/)
  assert.equal(r.certs.length, 0)
})

/** Handshakes against a server presenting server.pem + the intermediate; resolves the client's verdict. */
async function handshake (options: tls.ConnectionOptions, leaf = server): Promise<string> {
  const srv = tls.createServer({ cert: fs.readFileSync(leaf.cert, 'utf8') + fs.readFileSync(pki.intermediate.cert, 'utf8'), key: fs.readFileSync(leaf.key) }, (s) => s.end())
  srv.on('tlsClientError', () => {})
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  try {
    const port = (srv.address() as { port: number }).port
    const sock = tls.connect({ ...options, host: '127.0.0.1', port, servername: 'localhost' })
    const verdict = await new Promise<string>((resolve) => {
      sock.once('secureConnect', () => resolve(`ok ${sock.getProtocol()}`))
      sock.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    })
    sock.destroy()
    return verdict
  } finally {
    srv.close()
  }
}

test('the client builder trusts exactly the capath (or cafile) CAs: the chain to the root verifies, another root does not', async () => {
  const trusted = clientTlsOptions({ capath: pki.capath('client-capath', pki.root) })
  assert.equal(trusted.caCount, 1)
  assert.match(await handshake(trusted.options), /^ok TLSv1\.3$/)
  const fromFile = clientTlsOptions({ cafile: pki.root.cert })
  assert.match(await handshake(fromFile.options), /^ok /)
  const stranger = clientTlsOptions({ capath: pki.capath('stranger-capath', other) })
  assert.equal(await handshake(stranger.options), 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY')
})

test('the client builder: tls version is the lowest offered (libmosquitto), insecure skips the name check only', async () => {
  const v12 = clientTlsOptions({ cafile: pki.root.cert, version: 'tlsv1.2' })
  assert.equal(v12.options.minVersion, 'TLSv1.2')
  assert.equal(v12.options.maxVersion, undefined)
  assert.match(await handshake(v12.options), /^ok TLSv1\.3$/, 'tlsv1.2 still allows 1.3, as mosquitto_pub --tls-version')
  const elsewhere = pki.issue('elsewhere', { sans: ['DNS:elsewhere.test'] })
  assert.equal(await handshake(clientTlsOptions({ cafile: pki.root.cert }).options, elsewhere), 'ERR_TLS_CERT_ALTNAME_INVALID')
  assert.match(await handshake(clientTlsOptions({ cafile: pki.root.cert, insecure: true }).options, elsewhere), /^ok /)
  assert.equal(await handshake(clientTlsOptions({ capath: pki.capath('insecure-stranger', other), insecure: true }).options, elsewhere),
    'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'insecure still verifies the chain')
  assert.deepEqual(clientTlsOptions({ alpn: 'mqtt', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }).options, { ALPNProtocols: ['mqtt'], ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' })
})

test('the client builder: an unreadable file or capath throws ClientTlsFileError naming it', () => {
  const missing = pki.path('no-such.pem')
  assert.throws(() => clientTlsOptions({ cafile: missing }), (e: unknown) => e instanceof ClientTlsFileError && e.file === missing && /cafile .*no-such\.pem cannot be read/.test(e.message))
  assert.throws(() => clientTlsOptions({ cafile: pki.root.cert, keyfile: missing }), (e: unknown) => e instanceof ClientTlsFileError && e.file === missing)
  const noDir = pki.path('no-such-capath')
  assert.throws(() => clientTlsOptions({ capath: noDir }), (e: unknown) => e instanceof ClientTlsFileError && e.file === noDir)
})
