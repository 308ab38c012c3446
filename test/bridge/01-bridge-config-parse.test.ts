/**
 * mosquitto.conf bridge blocks: what each line means, Mosquitto's defaults, and every refusal naming its
 * file and line. Parsed through the same entry point load.ts uses (parseBridgeEntries over parseText).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hostname } from 'node:os'
import { parseBridgeEntries } from '../../src/config/bridge-blocks.js'
import { parseBridgeAddress } from '../../src/config/bridge-values.js'
import { BridgeOptionTable } from '../../src/config/bridge-options.js'
import { parseText } from '../../src/config/parse.js'

function parse (text: string): ReturnType<typeof parseBridgeEntries> {
  return parseBridgeEntries(parseText(text, '/etc/midge/midge.conf'), { baseDir: '/etc/midge' })
}

function errors (text: string): string[] {
  return parse(text).errors.map((e) => e.message)
}

test('a minimal block gets Mosquitto\'s defaults (client ids from the host name, notifications, backoff 5 30)', () => {
  const { bridges, errors: errs } = parse('connection vps\naddress vps.example.org\ntopic #\n')
  assert.deepEqual(errs, [])
  const host = hostname()
  assert.deepEqual(bridges, [{
    name: 'vps',
    addresses: [{ host: 'vps.example.org', port: 1883 }],
    roundRobin: false,
    topics: [{ pattern: '#', direction: 'out', qos: 0, localPrefix: undefined, remotePrefix: undefined }],
    remoteClientId: `${host}.vps`,
    localClientId: `local.${host}.vps`,
    remoteUsername: undefined,
    remotePassword: undefined,
    localUsername: undefined,
    cleanSession: false,
    localCleanSession: false,
    keepalive: 60,
    restartTimeout: { base: 5, cap: 30 },
    protocolVersion: 4,
    tryPrivate: true,
    notifications: true,
    notificationsLocalOnly: false,
    notificationTopic: `$SYS/broker/connection/${host}.vps/state`,
    tls: undefined,
    bindAddress: undefined,
    startType: 'automatic',
    outgoingRetain: true,
    maxPacketSize: 0,
    attemptUnsubscribe: true,
  }])
})

test('defaults live in the option table alone: writing each shown default out changes nothing', () => {
  const base = 'connection vps\naddress vps.example.org\ntopic #\nbridge_cafile /etc/ssl/ca.pem\n'
  const plain = parse(base)
  assert.deepEqual(plain.errors, [])
  const constants = BridgeOptionTable.filter((o) => o.fallback !== undefined && !/[A-Z]|^cleansession$/.test(o.default))
  assert.deepEqual(constants.map((o) => o.name).sort(), ['bridge_attempt_unsubscribe', 'bridge_insecure', 'bridge_max_packet_size', 'bridge_outgoing_retain',
    'bridge_protocol_version', 'cleansession', 'keepalive_interval', 'notifications', 'notifications_local_only', 'restart_timeout', 'round_robin', 'start_type', 'try_private'])
  for (const o of constants) {
    const explicit = parse(`${base}${o.name} ${o.default}\n`)
    assert.deepEqual(explicit.errors, [], o.name)
    assert.deepEqual(explicit.bridges, plain.bridges, `${o.name} ${o.default} is what an unset ${o.name} gives`)
  }
})

test('every option of a full block lands where it belongs; relative TLS paths resolve against the config directory', () => {
  const { bridges, errors: errs, warnings } = parse(`
connection home-to-vps
address vps.example.org:8883 [2001:db8::1]:8883 backup.example.org
round_robin true
remote_clientid pi
local_clientid pi-local
remote_username pi
remote_password two words
local_username bridge
cleansession true
local_cleansession false
keepalive_interval 30
restart_timeout 10 60
bridge_protocol_version mqttv50
try_private false
notifications true
notifications_local_only true
notification_topic home/bridge/state
start_type once
bridge_outgoing_retain false
bridge_max_packet_size 65536
bridge_attempt_unsubscribe false
bridge_bind_address 192.0.2.10
bridge_cafile certs/ca.pem
bridge_certfile /etc/midge/pi.pem
bridge_keyfile /etc/midge/pi.key
bridge_tls_version tlsv1.3
bridge_alpn mqtt
topic sensors/# out 1 home/ pi/
topic cmd/# in 2 home/ vps/
topic "" both 0 home/temp vps/temperature
`)
  assert.deepEqual(errs, [])
  assert.deepEqual(warnings, [])
  const b = bridges[0]!
  assert.deepEqual(b.addresses, [{ host: 'vps.example.org', port: 8883 }, { host: '2001:db8::1', port: 8883 }, { host: 'backup.example.org', port: 1883 }])
  assert.equal(b.roundRobin, true)
  assert.equal(b.remoteClientId, 'pi')
  assert.equal(b.localClientId, 'pi-local')
  assert.equal(b.remotePassword, 'two words')
  assert.equal(b.localUsername, 'bridge')
  assert.equal(b.cleanSession, true)
  assert.equal(b.localCleanSession, false)
  assert.equal(b.keepalive, 30)
  assert.deepEqual(b.restartTimeout, { base: 10, cap: 60 })
  assert.equal(b.protocolVersion, 5)
  assert.equal(b.tryPrivate, false)
  assert.equal(b.notificationsLocalOnly, true)
  assert.equal(b.notificationTopic, 'home/bridge/state')
  assert.equal(b.startType, 'once')
  assert.equal(b.outgoingRetain, false)
  assert.equal(b.maxPacketSize, 65536)
  assert.equal(b.attemptUnsubscribe, false)
  assert.equal(b.bindAddress, '192.0.2.10')
  assert.deepEqual(b.tls, { cafile: '/etc/midge/certs/ca.pem', capath: undefined, certfile: '/etc/midge/pi.pem', keyfile: '/etc/midge/pi.key', insecure: false, version: 'tlsv1.3', alpn: 'mqtt' })
  assert.deepEqual(b.topics, [
    { pattern: 'sensors/#', direction: 'out', qos: 1, localPrefix: 'home/', remotePrefix: 'pi/' },
    { pattern: 'cmd/#', direction: 'in', qos: 2, localPrefix: 'home/', remotePrefix: 'vps/' },
    { pattern: undefined, direction: 'both', qos: 0, localPrefix: 'home/temp', remotePrefix: 'vps/temperature' },
  ])
})

test('topic lines: optional parts, "" placeholders, comments, and each malformed form refused', () => {
  const topics = (line: string): unknown => parse(`connection b\naddress h\n${line}\n`).bridges[0]?.topics[0]
  assert.deepEqual(topics('topic a/#'), { pattern: 'a/#', direction: 'out', qos: 0, localPrefix: undefined, remotePrefix: undefined })
  assert.deepEqual(topics('topic a/# IN'), { pattern: 'a/#', direction: 'in', qos: 0, localPrefix: undefined, remotePrefix: undefined })
  assert.deepEqual(topics('topic # both 2 "" R/'), { pattern: '#', direction: 'both', qos: 2, localPrefix: undefined, remotePrefix: 'R/' })
  assert.deepEqual(topics('topic # out 1 L/'), { pattern: '#', direction: 'out', qos: 1, localPrefix: 'L/', remotePrefix: undefined })
  assert.deepEqual(topics('topic # out 1 # everything, at QoS 1'), { pattern: '#', direction: 'out', qos: 1, localPrefix: undefined, remotePrefix: undefined })
  assert.deepEqual(topics('topic # # everything'), { pattern: '#', direction: 'out', qos: 0, localPrefix: undefined, remotePrefix: undefined })
  const refused: Array<[string, RegExp]> = [
    ['topic # sideways', /:3: bridge topic direction 'sideways' is not one of out, in, both/],
    ['topic # out 3', /:3: bridge topic QoS '3' is not 0, 1 or 2/],
    ['topic # out 1 L/ R/ extra', /:3: bridge topic line has 1 word too many after the remote prefix: 'extra'/],
    ['topic "" out 1 L ""', /:3: invalid bridge topic '"" out 1 L ""': the pattern "" needs both a local and a remote prefix/],
    ['topic # out 1 L/+ R/', /:3: invalid bridge topic .*local prefix 'L\/\+' is not a valid topic prefix/],
    ['topic # out 1 home R/', /:3: invalid bridge topic .*'home#' is not a valid topic filter \(does the local prefix 'home' need a trailing '\/'\?\)/],
    ['topic', /:3: option 'topic' needs a value/],
  ]
  for (const [line, re] of refused) {
    const errs = errors(`connection b\naddress h\n${line}\n`)
    assert.equal(errs.length >= 1, true, line)
    assert.match(errs[0]!, re, line)
  }
})

test('addresses: host, host:port, IPv6 with its port (mosquitto\'s last-colon rule) or in brackets; bad ports refused', () => {
  assert.deepEqual(parseBridgeAddress('vps'), { host: 'vps', port: 1883 })
  assert.deepEqual(parseBridgeAddress('vps:8883'), { host: 'vps', port: 8883 })
  assert.deepEqual(parseBridgeAddress('::1:1883'), { host: '::1', port: 1883 })
  assert.deepEqual(parseBridgeAddress('[::1]:8883'), { host: '::1', port: 8883 })
  assert.deepEqual(parseBridgeAddress('[::1]'), { host: '::1', port: 1883 })
  assert.throws(() => parseBridgeAddress('vps:0'), /port '0' is not a number from 1 to 65535/)
  assert.throws(() => parseBridgeAddress('vps:mqtt'), /port 'mqtt'/)
  assert.throws(() => parseBridgeAddress('2001:db8::1'), /an IPv6 address needs its port/)
  assert.throws(() => parseBridgeAddress('[vps]:1883'), /not an IPv6 address/)
  assert.throws(() => parseBridgeAddress(':1883'), /has no host/)
})

test('restart_timeout, protocol version, start_type: values and refusals', () => {
  const one = (line: string): ReturnType<typeof parse> => parse(`connection b\naddress h\ntopic #\n${line}\n`)
  assert.deepEqual(one('restart_timeout 20').bridges[0]!.restartTimeout, { base: 20, cap: 0 })
  assert.deepEqual(one('restart_timeout 10 30 # jitter').bridges[0]!.restartTimeout, { base: 10, cap: 30 })
  assert.match(one('restart_timeout 0').errors[0]!.message, /:4: restart_timeout must be at least 1 second/)
  assert.match(one('restart_timeout 30 10').errors[0]!.message, /:4: restart_timeout cap 10 is below its base 30/)
  assert.match(one('restart_timeout soon').errors[0]!.message, /:4: option 'restart_timeout' expects one number of seconds/)
  assert.equal(one('bridge_protocol_version mqttv31').bridges[0]!.protocolVersion, 3)
  assert.match(one('bridge_protocol_version mqttv5').errors[0]!.message, /expects one of mqttv50, mqttv311, mqttv31, got 'mqttv5'/)
  assert.match(one('start_type lazy').errors[0]!.message, /:4: start_type lazy is not supported by Midge: use automatic \(the default\), or once/)
  assert.match(one('keepalive_interval 2').errors[0]!.message, /keepalive_interval' expects an integer from 5 to 65535/)
  assert.match(one('notification_topic a/#').errors[0]!.message, /expects a topic name without \+ or #/)
})

test('old spellings clientid / username / password work inside a block', () => {
  const b = parse('connection b\naddress h\ntopic #\nclientid pi\nusername u\npassword p\n').bridges[0]!
  assert.equal(b.remoteClientId, 'pi')
  assert.equal(b.remoteUsername, 'u')
  assert.equal(b.remotePassword, 'p')
})

test('block structure: options before any connection, or after a listener line, are refused with the reason', () => {
  assert.deepEqual(errors('address h\n'), [`/etc/midge/midge.conf:1: option 'address' belongs to a bridge, but no 'connection' line comes before it`])
  const afterListener = errors('connection b\naddress h\ntopic #\nlistener 1883\ntopic a/#\n')
  assert.deepEqual(afterListener, [`/etc/midge/midge.conf:5: option 'topic' belongs to a bridge, but no 'connection' line comes before it (a 'listener' line ends a bridge block)`])
  // Options of the main table are left alone, inside a block or not.
  const r = parseBridgeEntries(parseText('connection b\naddress h\ntopic #\nmax_queued_messages 10\n', 'x.conf'), { baseDir: '/' })
  assert.deepEqual(r.errors, [])
})

test('a block must be complete and consistent: every problem is reported, each at its line', () => {
  const errs = errors(`connection a
remote_password secret
bridge_certfile /c.pem
connection a
address h
address h2
topic #
connection c1
address h
topic #
local_clientid same
connection c2
address h
topic #
local_clientid same
`)
  const byLine = errs.map((m, i) => ({ m, i })).sort((x, y) => lineOf(x.m) - lineOf(y.m) || x.i - y.i).map((x) => x.m)
  assert.deepEqual(byLine, [
    `/etc/midge/midge.conf:1: bridge a has no address: it needs to know which broker to connect to`,
    `/etc/midge/midge.conf:1: bridge a has no topic line: nothing would be bridged`,
    `/etc/midge/midge.conf:2: bridge a has remote_password but no remote_username: MQTT sends a password only with a username`,
    `/etc/midge/midge.conf:3: bridge a sets bridge_certfile but neither bridge_cafile nor bridge_capath: TLS to the remote is on only with a CA to verify it`,
    `/etc/midge/midge.conf:3: bridge a has bridge_certfile but no bridge_keyfile: a client certificate needs both`,
    `/etc/midge/midge.conf:4: a bridge named 'a' is already defined at /etc/midge/midge.conf:1`,
    `/etc/midge/midge.conf:6: bridge a has a second address line (first at /etc/midge/midge.conf:5)`,
    `/etc/midge/midge.conf:12: bridges c1 (/etc/midge/midge.conf:8) and c2 both use the local client id 'same': each would take the other's session over`,
  ])
})

function lineOf (m: string): number {
  return Number(/:(\d+): /.exec(m)?.[1] ?? 0)
}

test('warnings: local_password has no effect, bridge_insecure weakens TLS, repeated options', () => {
  const { warnings, errors: errs } = parse('connection b\naddress h\ntopic #\nlocal_password x\nbridge_cafile /ca.pem\nbridge_insecure true\nkeepalive_interval 10\nkeepalive_interval 20\n')
  assert.deepEqual(errs, [])
  const text = warnings.map((w) => `${w.line}: ${w.message}`)
  assert.equal(text.length, 3)
  assert.match(text.find((t) => t.startsWith('4:'))!, /local_password has no effect/)
  assert.match(text.find((t) => t.startsWith('6:'))!, /bridge_insecure true/)
  assert.match(text.find((t) => t.startsWith('8:'))!, /'keepalive_interval' is set again in bridge b \(first at \/etc\/midge\/midge.conf:7\)/)
})
