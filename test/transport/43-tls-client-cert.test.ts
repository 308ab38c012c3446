/**
 * Client certificates: require_certificate refuses clients without one (or with one from another CA);
 * use_identity_as_username hands over the CN, use_subject_as_username the RFC 2253 subject exactly as
 * `openssl x509 -subject -nameopt RFC2253` prints it (Mosquitto's XN_FLAG_RFC2253).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { TestPki, type Issued } from '../helpers/certs.js'
import { probe, readPem, startTlsBroker } from '../helpers/tls-harness.js'

let pki: TestPki
let server: Issued
let alice: Issued
let stranger: Issued
let trust: string

before(() => {
  pki = new TestPki()
  server = pki.issue('server')
  alice = pki.issue('alice', { kind: 'client', cn: 'alice', subjectTail: '/O=Midge Test, Inc./OU=Sensors' })
  const otherCa = pki.selfSigned('other-ca', 'Someone Else CA')
  stranger = pki.issue('stranger', { kind: 'client', cn: 'alice', issuer: otherCa })
  // The CAs trusted for client certificates, and the chain for the server's certificate.
  trust = pki.bundle('client-cas.pem', pki.intermediate.cert, pki.root.cert)
})
after(() => pki.remove())

const clientCert = (c: Issued): { cert: string; key: string; ca: string } => ({ cert: readPem(c.cert), key: readPem(c.key), ca: readPem(pki.root.cert) })

test('require_certificate: no certificate and a certificate from another CA are refused; ours is accepted', async () => {
  const tb = await startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: trust, requireCertificate: true })
  try {
    const ca = readPem(pki.root.cert)
    // Over TLS 1.2 the refusal ends the client's handshake.
    await assert.rejects(probe(tb.port, { ca, maxVersion: 'TLSv1.2' }))
    await assert.rejects(probe(tb.port, { ...clientCert(stranger), maxVersion: 'TLSv1.2' }))
    // Over TLS 1.3 the client's side completes before the server checks; the server refuses all the same.
    await probe(tb.port, { ca }).catch(() => undefined)
    const ok = await probe(tb.port, clientCert(alice))
    assert.equal(ok.authorized, true, ok.authorizationError)
    await tb.handedOver(1)
    assert.deepEqual(tb.identities, [undefined])
    await tb.logger.waitFor(/handshake with .* failed: .*(certificate|CERTIFICATE)/)
  } finally {
    await tb.close()
  }
})

test('use_identity_as_username hands over the CN of the client certificate', async () => {
  const tb = await startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: trust, requireCertificate: true, useIdentityAsUsername: true })
  try {
    await probe(tb.port, clientCert(alice))
    await tb.handedOver(1)
    assert.deepEqual(tb.identities, ['alice'])
  } finally {
    await tb.close()
  }
})

test('use_subject_as_username hands over the subject as openssl prints it with -nameopt RFC2253', async () => {
  const tb = await startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: trust, requireCertificate: true, useSubjectAsUsername: true })
  try {
    await probe(tb.port, clientCert(alice))
    await tb.handedOver(1)
    assert.equal(alice.subject, 'OU=Sensors,O=Midge Test\\, Inc.,CN=alice')
    assert.deepEqual(tb.identities, [alice.subject])
  } finally {
    await tb.close()
  }
})

test('a client certificate without a CN is refused when use_identity_as_username needs one', async () => {
  const named = pki.issue('named', { kind: 'client', cn: 'x' })
  // An empty CN in openssl's -subj leaves the attribute out: the subject is O=No Common Name alone.
  const onlyOrg = pki.issue('only-org', { kind: 'client', cn: '', subjectTail: '/O=No Common Name' })
  const tb = await startTlsBroker({ certfile: server.cert, keyfile: server.key, cafile: trust, requireCertificate: true, useIdentityAsUsername: true })
  try {
    await probe(tb.port, clientCert(named))
    await probe(tb.port, clientCert(onlyOrg)).catch(() => undefined)
    await tb.logger.waitFor(/refusing .*its client certificate has no usable common name \(CN\)/)
    await tb.handedOver(1)
    assert.deepEqual(tb.identities, ['x'])
  } finally {
    await tb.close()
  }
})
