/**
 * crlfile: a client certificate the CA has revoked is refused, the others still get in. The CRLs are made the
 * way an operator makes them (`openssl ca -revoke`, then `openssl ca -gencrl`).
 *
 * Node (unlike Mosquitto, which checks the client's own certificate only) checks revocation along the whole
 * chain: with an intermediate CA, crlfile must hold the CRL of every CA of the chain below the root (the
 * root's, listing revoked intermediates, too). The last test pins that, and schema.ts says it.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { TestPki, type Issued } from '../helpers/certs.js'
import { probe, readPem, startTlsBroker } from '../helpers/tls-harness.js'

let pki: TestPki
let server: Issued
let alice: Issued
let mallory: Issued
let bob: Issued
let rootCrl: string
let chainCrls: string

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: pki.dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
}

/** `openssl ca -gencrl` by `ca`, after revoking `revoke`. */
function crlOf(ca: Issued, name: string, revoke: Issued[] = []): string {
  const args = ['ca', '-batch', '-config', pki.path('ca.cnf'), '-cert', ca.cert, '-keyfile', ca.key]
  for (const r of revoke) openssl([...args, '-revoke', r.cert])
  const out = pki.path(name)
  openssl([...args, '-gencrl', '-crldays', '30', '-out', out])
  return out
}

before(() => {
  pki = new TestPki()
  server = pki.issue('server')
  alice = pki.issue('alice', { kind: 'client', cn: 'alice', issuer: pki.root })
  mallory = pki.issue('mallory', { kind: 'client', cn: 'mallory', issuer: pki.root })
  bob = pki.issue('bob', { kind: 'client', cn: 'bob' }) // issued by the intermediate
  rootCrl = crlOf(pki.root, 'root.crl.pem', [mallory])
  chainCrls = pki.bundle('chain.crl.pem', rootCrl, crlOf(pki.intermediate, 'intermediate.crl.pem'))
})
after(() => pki.remove())

const clientCert = (c: Issued): { cert: string; key: string; ca: string } => ({ cert: readPem(c.cert), key: readPem(c.key), ca: readPem(pki.root.cert) })
const listener = (crlfile?: string) => ({ certfile: server.cert, keyfile: server.key, cafile: pki.bundle('cas.pem', pki.intermediate.cert, pki.root.cert), crlfile, requireCertificate: true, useIdentityAsUsername: true })

test('crlfile: a revoked client certificate is refused; an unrevoked one of the same CA is accepted', async () => {
  const tb = await startTlsBroker(listener(rootCrl))
  try {
    // TLS 1.2: the server's refusal ends the client's handshake.
    await assert.rejects(probe(tb.port, { ...clientCert(mallory), maxVersion: 'TLSv1.2' }))
    const ok = await probe(tb.port, { ...clientCert(alice), maxVersion: 'TLSv1.2' })
    assert.equal(ok.authorized, true, ok.authorizationError)
    await tb.handedOver(1)
    assert.deepEqual(tb.identities, ['alice'])
  } finally {
    await tb.close()
  }
})

test('without crlfile the same revoked certificate gets in: the refusal above is the CRL\'s doing', async () => {
  const tb = await startTlsBroker(listener())
  try {
    await probe(tb.port, { ...clientCert(mallory), maxVersion: 'TLSv1.2' })
    await tb.handedOver(1)
    assert.deepEqual(tb.identities, ['mallory'])
  } finally {
    await tb.close()
  }
})

test('crlfile with an intermediate CA: the CRLs of the whole chain are needed, and then its clients get in', async () => {
  const rootOnly = await startTlsBroker(listener(rootCrl))
  try {
    await assert.rejects(probe(rootOnly.port, { ...clientCert(bob), maxVersion: 'TLSv1.2' }), 'no CRL of the intermediate: refused')
  } finally {
    await rootOnly.close()
  }
  const tb = await startTlsBroker(listener(chainCrls))
  try {
    await probe(tb.port, { ...clientCert(bob), maxVersion: 'TLSv1.2' })
    await tb.handedOver(1)
    assert.deepEqual(tb.identities, ['bob'])
    await assert.rejects(probe(tb.port, { ...clientCert(mallory), maxVersion: 'TLSv1.2' }))
  } finally {
    await tb.close()
  }
})
