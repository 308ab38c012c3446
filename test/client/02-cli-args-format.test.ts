/**
 * The pure parts of `midge pub`/`midge sub`: flag parsing, -F checks and output bytes, strftime and cJSON
 * number printing. Expected values come from mosquitto_sub 2.0.11, glibc's strftime (via perl POSIX) and C's
 * printf, not from the code under test; test/interop/41-cli-sub-format.test.ts compares whole outputs live.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseClientArgs } from '../../src/cli/client-args.js'
import type { ClientConfig } from '../../src/cli/client-args.js'
import { checkFormat, formatMessage } from '../../src/cli/sub-format.js'
import { strftime } from '../../src/cli/strftime.js'
import { formatG, parseCJson, printCJson } from '../../src/cli/cjson.js'
import { connectFailure } from '../../src/cli/client-connect.js'
import { ClientError, ClientErrorCode, classifySocketError } from '../../src/client/errors.js'
import type { PublishPacket } from '../../src/protocol/index.js'

function ok (kind: 'pub' | 'sub', argv: string[]): ClientConfig {
  const r = parseClientArgs(kind, argv)
  if (!r.ok) assert.fail(r.help ? 'help' : r.error)
  return r.config
}

function refused (kind: 'pub' | 'sub', argv: string[]): string {
  const r = parseClientArgs(kind, argv)
  if (r.ok || r.help) assert.fail(`accepted: ${argv.join(' ')}`)
  return r.error
}

test('-L mqtt(s)/ws(s) URLs set user, password, host, port, topic, TLS and transport', () => {
  const a = ok('pub', ['-L', 'mqtts://me:s3cr:et@broker.example:1234/a/b', '-m', 'x'])
  assert.deepEqual([a.username, a.password, a.host, a.port, a.topic, a.tls.useOsCerts, a.transport], ['me', 's3cr:et', 'broker.example', 1234, 'a/b', true, 'tcp'])
  const b = ok('sub', ['-L', 'ws://[::1]/x/#'])
  assert.deepEqual([b.host, b.port, b.topics, b.transport, b.tls.useOsCerts], ['::1', 1883, ['x/#'], 'ws', false])
  assert.equal(ok('sub', ['-L', 'MQTTS://h/t']).port, 8883)
  assert.equal(refused('pub', ['-L', 'http://h/t']), 'Error: unsupported URL scheme.')
})

test('-V accepts mqttv31/31, mqttv311/311, mqttv5/5; -D implies v5 and fills per-command properties', () => {
  for (const [v, n] of [['mqttv31', 3], ['31', 3], ['mqttv311', 4], ['311', 4], ['mqttv5', 5], ['5', 5]] as const) {
    assert.equal(ok('sub', ['-t', 't', '-V', v]).protocolVersion, n)
  }
  const c = ok('pub', ['-t', 't', '-m', 'x', '-D', 'publish', 'user-property', 'k', 'v', '-D', 'publish', 'user-property', 'k', 'w',
    '-D', 'connect', 'receive-maximum', '10', '-D', 'publish', 'correlation-data', 'cd'])
  assert.equal(c.protocolVersion, 5)
  assert.deepEqual(c.props.publish?.userProperties, [['k', 'v'], ['k', 'w']])
  assert.deepEqual(c.props.publish?.correlationData, Buffer.from('cd'))
  assert.equal(c.props.connect?.receiveMaximum, 10)
  assert.deepEqual(ok('sub', ['-t', 't', '-D', 'subscribe', 'subscription-identifier', '3']).props.subscribe?.subscriptionIdentifiers, [3])
  assert.equal(refused('pub', ['-t', 't', '-m', 'x', '-D', 'connect', 'receive-maximum', '70000']), 'Error: Property value (70000) out of range for property receive-maximum.')
})

test('session expiry: -c on v5 means never expires and needs -i; -x takes -1, ∞ and hex', () => {
  const c = ok('sub', ['-t', 't', '-V', '5', '-c', '-i', 'me'])
  assert.equal(c.props.connect?.sessionExpiryInterval, 0xffffffff)
  assert.equal(ok('sub', ['-t', 't', '-V', '5', '-x', '0x10']).props.connect?.sessionExpiryInterval, 16)
  assert.equal(ok('sub', ['-t', 't', '-V', '5', '-i', 'me', '-x', '∞']).sessionExpiry, 0xffffffff)
  assert.equal(refused('sub', ['-t', 't', '-V', '5', '-c']), 'Error: You must provide a client id if you are using an infinite session expiry interval.')
  assert.equal(refused('sub', ['-t', 't', '-x', '4294967296']), 'Error: session-expiry-interval out of range.')
})

test('pub without topic or message asks for both, with the full usage', () => {
  const r = parseClientArgs('pub', ['-t', 'x'])
  assert.ok(!r.ok && !r.help)
  assert.equal(r.error, 'Error: Both topic and message must be supplied.')
  assert.equal(r.showUsage, 'full')
})

test('connect failures: a close before CONNACK is mosquitto_pub\'s "connection was lost" (7); TLS alerts name the refusal', () => {
  const pub = ok('pub', ['-t', 't', '-m', 'x'])
  // mosquitto_pub 2.0.11 against a server that closes the socket after CONNECT prints this and exits 7.
  assert.deepEqual(connectFailure(new ClientError(ClientErrorCode.Closed, 'connection closed'), pub), { lines: ['Error: The connection was lost.'], code: 7 })
  // Node's words for a TLS 1.3 alert received after the handshake (the server wants a client certificate).
  const alert = Object.assign(new Error('80BC4F6E2A7F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n'),
    { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' })
  const e = classifySocketError(alert, true)
  assert.deepEqual([e.code, e.tlsReason, e.message], [ClientErrorCode.Tls, 'certificate-required', 'tlsv13 alert certificate required'])
  assert.deepEqual(connectFailure(e, pub), { lines: ['Error: A TLS error occurred: the broker requires a client certificate (--cert and --key) (tlsv13 alert certificate required).'], code: 8 })
  const unknownCa = classifySocketError(Object.assign(new Error('x:error:0A000418:SSL routines:ssl3_read_bytes:tlsv1 alert unknown ca:f.c:1:SSL alert number 48'), { code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' }), true)
  assert.equal(connectFailure(unknownCa, pub).lines[0], 'Error: A TLS error occurred: the broker refused the client certificate (tlsv1 alert unknown ca).')
  assert.equal(classifySocketError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true).code, ClientErrorCode.Network)
})

test('check_format: mosquitto\'s error sentences', () => {
  assert.equal(checkFormat('%t %p %j %J %I %U %x %X %A %C %D %E %F %l %m %P %q %R %r %S %% @H @@ \\n\\0\\e'), null)
  assert.equal(checkFormat('%-010.5t'), null)
  assert.equal(checkFormat('%y'), "Error: Invalid format specifier 'y'.")
  assert.equal(checkFormat('%-'), 'Error: Incomplete format specifier.')
  assert.equal(checkFormat('ab@'), 'Error: Incomplete format specifier.')
  assert.equal(checkFormat('\\x'), "Error: Invalid escape specifier 'x'.")
})

function msg (payload: string | Buffer, extra: Partial<PublishPacket> = {}): PublishPacket {
  return { type: 3, topic: 'a/b', payload: Buffer.from(payload), qos: 1, retain: false, dup: false, packetId: 42, ...extra }
}

const at = { date: new Date(1_700_000_000_123), ns: 123_456_789 }

function fmt (format: string, m: PublishPacket, eol = false): string {
  return formatMessage(m, { format, verbose: false, eol, pretty: false }, at).out.toString('latin1')
}

test('-F widths follow mosquitto_sub, quirks included', () => {
  assert.equal(fmt('[%5p]', msg('hello world')), '[hello]', 'a width truncates the payload')
  assert.equal(fmt('[%-p]', msg('abc')), '[abc   ]', 'printf("%*s", -3, "") pads by the length')
  assert.equal(fmt('[%5x]', msg('abcdef')), '[ 6162]', 'width 5 keeps floor(5 / 2) bytes, then pads')
  assert.equal(fmt('[%08X]', msg(Buffer.from([1, 0xab]))), '[00000001]', 'with a width, hex output keeps half the bytes')
  assert.equal(fmt('[%05m|%-5m|%5l]', msg('xyz')), '[00042|42   |    3]')
  assert.equal(fmt('[%10.3t|%-6t]', msg('')), '[       a/b|a/b   ]')
  assert.equal(fmt('[%5C|%05E|%R|%5S]', msg('')), '[     |00000||     ]', 'absent properties: blanks, or nothing for %R')
  assert.equal(fmt('%P', msg('', { properties: { userProperties: [['k', 'v'], ['k', 'w']] } })), 'k:v k:w')
  assert.equal(formatMessage(msg(''), { format: undefined, verbose: true, eol: true, pretty: false }, at).out.toString(), 'a/b (null)\n')
  assert.equal(formatMessage(msg(''), { format: undefined, verbose: false, eol: true, pretty: false }, at).out.length, 0)
})

test('%j escapes as cJSON and stops the payload at NUL; %J re-prints JSON as cJSON; bad JSON is an error', () => {
  process.env.TZ = 'UTC'
  const j = fmt('%j', msg(Buffer.from('a"\\\n\x01b\x00rest')))
  assert.equal(j, '{"tst":"2023-11-14T22:13:20.123456Z+0000","topic":"a/b","qos":1,"retain":0,"payloadlen":11,"mid":42,"payload":"a\\"\\\\\\n\\u0001b"}')
  const J = fmt('%J', msg(' {"n":[1.50, -0, 1e21, 0.1e1],"s":"\\u00e9"} '))
  assert.ok(J.endsWith('"payload":{"n":[1.5,-0,1e+21,1],"s":"\xc3\xa9"}}'), J)
  const bad = formatMessage(msg('{'), { format: '%J|', verbose: false, eol: true, pretty: false }, at)
  assert.equal(bad.out.toString(), '|\n')
  assert.equal(bad.error, 'Error: Message payload is not valid JSON on topic a/b.')
  assert.equal(parseCJson(Buffer.from('nullx')), null)
  const out: Buffer[] = []
  printCJson({ t: 'object', entries: [[Buffer.from('a'), { t: 'array', items: [{ t: 'object', entries: [] }] }]] }, true, out)
  assert.equal(Buffer.concat(out).toString(), '{\n\t"a":\t[{\n\t\t}]\n}')
})

test('%1.15g / %1.17g as C printf', () => {
  const cases: Array<[number, number, string]> = [
    [0.1, 15, '0.1'], [0.1, 17, '0.10000000000000001'], [1e21, 15, '1e+21'], [1.5e-7, 15, '1.5e-07'],
    [123456789012, 15, '123456789012'], [1e15, 15, '1e+15'], [123456.5, 15, '123456.5'], [-2.5e-300, 15, '-2.5e-300'],
    [0.0001, 15, '0.0001'], [0.00001, 15, '1e-05'], [-0, 15, '-0'],
  ]
  for (const [d, p, s] of cases) assert.equal(formatG(d, p), s, `${d} %1.${p}g`)
})

test('strftime matches glibc in the C locale (values from perl POSIX::strftime)', () => {
  process.env.TZ = 'UTC'
  const t = new Date(1_700_000_000_000)
  assert.equal(strftime('%a|%A|%b|%B|%c|%C|%D|%e|%F|%g|%G|%h|%I|%j|%k|%l|%p|%P|%r|%R|%T|%u|%U|%V|%w|%W|%x|%X|%y|%z|%Z|%s|%Q|%%', t),
    'Tue|Tuesday|Nov|November|Tue Nov 14 22:13:20 2023|20|11/14/23|14|2023-11-14|23|2023|Nov|10|318|22|10|PM|pm|10:13:20 PM|22:13|22:13:20|2|46|46|2|46|11/14/23|22:13:20|23|+0000|UTC|1700000000|%Q|%')
  const weeks = (s: number): string => strftime('%a %G %g %V %U %W %j %u %w %e %l %I %p', new Date(s * 1000))
  assert.equal(weeks(1609459200), 'Fri 2020 20 53 00 00 001 5 5  1 12 12 AM')
  assert.equal(weeks(1704067199), 'Sun 2023 23 52 53 52 365 7 0 31 11 11 PM')
  assert.equal(weeks(1230768000), 'Thu 2009 09 01 00 00 001 4 4  1 12 12 AM')
  process.env.TZ = 'Europe/Berlin'
  assert.equal(strftime('%z %Z', new Date(1_700_000_000_000)), '+0100 CET')
  assert.equal(strftime('%z %Z', new Date(1_690_000_000_000)), '+0200 CEST')
  process.env.TZ = 'UTC'
})
