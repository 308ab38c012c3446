import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/load.js'
import { ConfigErrorCode, ConfigInvalidError, type ConfigError } from '../../src/config/errors.js'

/** Loads `text` as a config file named c.conf and returns the errors as 'LINE: message' plus their codes. */
function errorsOf(text: string): Array<{ code: string; msg: string; fix: string | undefined }> {
  const dir = mkdtempSync(join(tmpdir(), 'midge-cfg-'))
  const file = join(dir, 'c.conf')
  try {
    writeFileSync(file, text)
    try {
      loadConfig(file)
    } catch (err) {
      assert.ok(err instanceof ConfigInvalidError, String(err))
      return err.errors.map((e: ConfigError) => {
        assert.equal(e.file, file)
        assert.ok(e.message.startsWith(`${file}:${e.line}: `))
        return { code: e.code, msg: `${e.line}: ${e.detail}`, fix: e.fix }
      })
    }
    return []
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test('unknown option: file:line, the name, and the closest option when it looks like a typo', () => {
  assert.deepEqual(errorsOf('persistance true\nfrobnicate 3\nallow_anonymus false\n'), [
    { code: ConfigErrorCode.UnknownOption, msg: "1: unknown option 'persistance' (did you mean 'persistence'?)", fix: undefined },
    { code: ConfigErrorCode.UnknownOption, msg: "2: unknown option 'frobnicate'", fix: undefined },
    { code: ConfigErrorCode.UnknownOption, msg: "3: unknown option 'allow_anonymus' (did you mean 'allow_anonymous'?)", fix: undefined },
  ])
})

test('a Mosquitto option Midge does not implement is refused with that sentence, never ignored', () => {
  assert.deepEqual(errorsOf('bridge_psk 00ff\nthreshold 10\nauth_plugin /usr/lib/x.so\nauth_opt_db_host x\npsk_hint hint\nmemory_limit 0\n').map((e) => e.msg), [
    "1: option 'bridge_psk' is a Mosquitto option Midge does not support yet",
    "2: option 'threshold' is a Mosquitto option Midge does not support yet",
    "3: option 'auth_plugin' is a Mosquitto option Midge does not support yet",
    "4: option 'auth_opt_db_host' is a Mosquitto option Midge does not support yet",
    "5: option 'psk_hint' is a Mosquitto option Midge does not support yet",
    "6: option 'memory_limit' is a Mosquitto option Midge does not support yet",
  ])
  assert.ok(errorsOf('bridge_identity b\n').every((e) => e.code === ConfigErrorCode.UnsupportedOption))
})

test('a bad value names the expected type and range', () => {
  const text = [
    'allow_duplicate_messages yes',
    'max_inflight_messages 70000',
    'max_queued_messages -1',
    'max_packet_size 10',
    'persistent_client_expiration 14',
    'log_type verbose',
    'log_dest dlt',
    'sys_interval ten',
    'log_timestamp_format %Y %Q',
    'listener 99999',
    'protocol mqtts',
    'socket_domain ipv5',
    'tls_version tlsv1.0',
    'max_qos 3',
  ].join('\n')
  assert.deepEqual(errorsOf(text).map((e) => e.msg), [
    "1: option 'allow_duplicate_messages' expects true or false, got 'yes'",
    "2: option 'max_inflight_messages' expects an integer from 0 to 65535, got '70000'",
    "3: option 'max_queued_messages' expects an integer of at least 0, got '-1'",
    "4: option 'max_packet_size' expects 0 or an integer from 20 to 268435460 (bytes), got '10'",
    "5: option 'persistent_client_expiration' expects a duration: a whole number followed by h, d, w, m or y (e.g. 14d), got '14'",
    "6: option 'log_type' expects one of error, warning, notice, information, debug, subscribe, unsubscribe, websockets, all, none, got 'verbose'",
    '7: log_dest dlt is not supported yet; use stdout, stderr, file PATH, syslog or topic',
    "8: option 'sys_interval' expects an integer of at least 0 (seconds), got 'ten'",
    "9: log_timestamp_format uses '%Q', which Midge does not support; use %Y %m %d %H %M %S %s %z %F %T %y %b %B %a %A %e %j %I %p %%",
    "10: option 'listener' expects a port from 0 to 65535 and an optional bind address or host name, got '99999'",
    "11: option 'protocol' expects one of mqtt, websockets, http, got 'mqtts'",
    "12: option 'socket_domain' expects one of ipv4, ipv6, got 'ipv5'",
    "13: option 'tls_version' expects one of tlsv1.3, tlsv1.2, tlsv1.1, got 'tlsv1.0'",
    "14: option 'max_qos' expects an integer from 0 to 2, got '3'",
  ])
  assert.ok(errorsOf('max_qos 3\n').every((e) => e.code === ConfigErrorCode.BadValue))
})

test('an option without its value says what value it needs', () => {
  assert.deepEqual(errorsOf('listener 1883\npassword_file\nallow_anonymous\n').map((e) => [e.code, e.msg]), [
    [ConfigErrorCode.MissingValue, "2: option 'password_file' needs a value: a file path"],
    [ConfigErrorCode.MissingValue, "3: option 'allow_anonymous' needs a value: true or false"],
  ])
})

test('a trailing # comment after a single-word value is tolerated, extra words are not', () => {
  assert.deepEqual(errorsOf('listener 1883\nallow_anonymous true # anyone can connect\nmax_qos 1 2\n').map((e) => e.msg), [
    "3: option 'max_qos' expects an integer from 0 to 2, got '1 2'",
  ])
})

test('a listener option before any listener line is an error with the fix', () => {
  assert.deepEqual(errorsOf('certfile /etc/ssl/cert.pem\nmount_point site/\nlistener 1883\n'), [
    { code: ConfigErrorCode.NeedsListener, msg: "1: option 'certfile' applies to a listener, but no 'listener' line comes before it", fix: "add a line such as 'listener 8883' above it" },
    { code: ConfigErrorCode.NeedsListener, msg: "2: option 'mount_point' applies to a listener, but no 'listener' line comes before it", fix: "add a line such as 'listener 1883' above it" },
  ])
})

test('with per_listener_settings true, a security option before any listener line is an error', () => {
  assert.deepEqual(errorsOf('per_listener_settings true\nallow_anonymous false\npassword_file /etc/mosquitto/passwd\nlistener 1883\nallow_anonymous true\n').map((e) => [e.code, e.msg]), [
    [ConfigErrorCode.NeedsListener, "2: option 'allow_anonymous' must follow a 'listener' line because per_listener_settings is true"],
    [ConfigErrorCode.NeedsListener, "3: option 'password_file' must follow a 'listener' line because per_listener_settings is true"],
  ])
  // Without per_listener_settings the same lines are global and fine.
  assert.deepEqual(errorsOf('allow_anonymous false\npassword_file /etc/mosquitto/passwd\nlistener 1883\n'), [])
})

test('a duplicate listener port is an error naming the first listener', () => {
  const errs = errorsOf('listener 1883\nlistener 8883\nlistener 1883 127.0.0.1\nlistener 8883\n')
  assert.deepEqual(errs.map((e) => e.code), [ConfigErrorCode.DuplicateListener, ConfigErrorCode.DuplicateListener])
  assert.match(errs[0]?.msg ?? '', /^3: duplicate listener: port 1883 on 127\.0\.0\.1 is already used by the listener at .*c\.conf:1 \(all interfaces\)$/)
  assert.match(errs[1]?.msg ?? '', /^4: duplicate listener: port 8883 is already used by the listener at .*c\.conf:2 \(all interfaces\)$/)
  // The same port on two different addresses is fine, as in Mosquitto.
  assert.deepEqual(errorsOf('listener 1883 127.0.0.1\nlistener 1883 ::1\n'), [])
})

test('a TLS listener without certfile or keyfile is an error naming the missing file', () => {
  const errs = errorsOf([
    'listener 8883', 'certfile /c.pem',
    'listener 8884', 'keyfile /k.pem',
    'listener 8885', 'cafile /ca.pem', 'require_certificate true',
    'listener 8886', 'certfile /c.pem', 'keyfile /k.pem', 'require_certificate true',
    'listener 8887', 'certfile /c.pem', 'keyfile /k.pem', 'use_identity_as_username true',
  ].join('\n'))
  assert.deepEqual(errs.map((e) => [e.code, e.msg]), [
    [ConfigErrorCode.TlsIncomplete, '1: listener 8883 has certfile but no keyfile: a TLS listener needs both certfile and keyfile'],
    [ConfigErrorCode.TlsIncomplete, '3: listener 8884 has keyfile but no certfile: a TLS listener needs both certfile and keyfile'],
    [ConfigErrorCode.TlsIncomplete, '5: listener 8885 sets cafile, require_certificate but has no certfile and keyfile: a TLS listener needs both'],
    [ConfigErrorCode.TlsIncomplete, '8: listener 8886 has require_certificate true but no cafile or capath to verify client certificates with'],
    [ConfigErrorCode.TlsIncomplete, '12: listener 8887 has use_identity_as_username true but require_certificate is false: there would be no verified certificate to take the username from'],
  ])
  assert.equal(errs[0]?.fix, "add 'keyfile /path/to/privkey.pem' to this listener")
})

test('differing per-listener values the broker cannot honour yet are refused, not half applied', () => {
  const errs = errorsOf('listener 1883\nmax_qos 1\nlistener 1884\nmax_qos 2\n')
  assert.deepEqual(errs.map((e) => e.code), [ConfigErrorCode.Conflict])
  assert.match(errs[0]?.msg ?? '', /^3: listener 1884 has max_qos 2 but the listener at \S+c\.conf:1 has 1: Midge does not support different max_qos values per listener yet$/)
  assert.equal(errs[0]?.fix, 'use the same max_qos in every listener block')
})

test('every error of a file is reported in one pass, in line order', () => {
  const errs = errorsOf('bogus 1\nlistener 1883\nmax_qos 9\nlistener 1883\ncertfile /x\n')
  assert.deepEqual(errs.map((e) => e.msg.split(':')[0]), ['1', '3', '4', '4'])
})
