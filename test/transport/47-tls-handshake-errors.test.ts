/**
 * TLS handshake failures in words (issue #12, item 7): the reason a listener logs for each tlsClientError,
 * instead of OpenSSL's error queue text.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeHandshakeFailure } from '../../src/transport/tls-errors.js'

const err = (code: string, message = 'x'): NodeJS.ErrnoException => Object.assign(new Error(message), { code })

test('alerts the client sends are named with their number and what they mean', () => {
  assert.deepEqual(describeHandshakeFailure(err('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), 10_000), { reason: 'the client does not trust our certificate (alert 48 unknown ca)', notable: true })
  assert.equal(describeHandshakeFailure(err('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'), 10_000).reason, 'the client rejected our certificate (alert 42 bad certificate)')
  assert.match(describeHandshakeFailure(err('ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN'), 10_000).reason, /\(alert 46 certificate unknown\)$/)
  assert.match(describeHandshakeFailure(err('ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED'), 10_000).reason, /expired .*\(alert 45 certificate expired\)$/)
  assert.equal(describeHandshakeFailure(err('ERR_SSL_TLSV1_ALERT_SOMETHING_NEW'), 10_000).reason, 'the client ended the handshake (alert something new)')
})

test('timeouts and resets are information; plain text, versions, ciphers and client certificates are notable', () => {
  assert.deepEqual(describeHandshakeFailure(err('ERR_TLS_HANDSHAKE_TIMEOUT'), 1500), { reason: 'no handshake within 1.5 s', notable: false })
  assert.equal(describeHandshakeFailure(err('ECONNRESET', 'socket hang up'), 10_000).notable, false)
  assert.equal(describeHandshakeFailure(err('ERR_SSL_HTTP_REQUEST'), 10_000).reason, 'the client did not speak TLS (plain MQTT or HTTP sent to a TLS port?)')
  assert.equal(describeHandshakeFailure(err('ERR_SSL_WRONG_VERSION_NUMBER'), 10_000).reason, 'the client did not speak TLS (plain MQTT or HTTP sent to a TLS port?)')
  assert.match(describeHandshakeFailure(err('ERR_SSL_UNSUPPORTED_PROTOCOL'), 10_000).reason, /tls_version/)
  assert.match(describeHandshakeFailure(err('ERR_SSL_NO_SHARED_CIPHER'), 10_000).reason, /ciphers/)
  assert.match(describeHandshakeFailure(err('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'), 10_000).reason, /require_certificate/)
})

test('an unknown OpenSSL error keeps only its reason phrase', () => {
  const e = err('ERR_SSL_SOMETHING', '808CEE35207F0000:error:0A0000EB:SSL routines:tls_do_something:some odd reason:../deps/openssl/openssl/ssl/statem/statem_srvr.c:2172:\n')
  assert.deepEqual(describeHandshakeFailure(e, 10_000), { reason: 'TLS error: some odd reason', notable: true })
})
