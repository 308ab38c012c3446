/**
 * Options whose effect no other test proved, each taken from a mosquitto.conf line to what a client or the
 * listening socket sees: the config is loaded as the broker loads it (loadConfig), its broker settings
 * start an in-memory broker (test/helpers/broker-harness.ts), its listener settings go through the function
 * that turns them into bind addresses. test/config/17-option-effects names this file for each of them.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/load.js'
import { listenAddresses } from '../../src/config/listen-addresses.js'
import type { MidgeConfig } from '../../src/config/types.js'
import { Logger, type LogSink } from '../../src/observability/logger.js'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import { Broker } from '../../src/broker/broker.js'
import type { Store } from '../../src/persistence/store.js'
import { startTcpListener } from '../../src/transport/tcp.js'
import { TcpHandleStream } from '../../src/transport/tcp-handle.js'
import { loadConfigText } from '../../src/config/load.js'
import { startMidge } from '../../src/server/index.js'
import { TestPki } from '../helpers/certs.js'
import { setup, waitUntil, type Harness } from '../helpers/broker-harness.js'

function load(t: TestContext, text: string): MidgeConfig {
  const dir = mkdtempSync(join(tmpdir(), 'midge-effect-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'midge.conf')
  writeFileSync(file, text)
  return loadConfig(file)
}

/** A broker running with the broker settings of `text`, and the log lines it writes. */
function brokerFrom(t: TestContext, text: string): { h: Harness; lines: string[] } {
  const cfg = load(t, text)
  const lines: string[] = []
  const sink: LogSink = { write: (line) => { lines.push(line) } }
  const logger = new Logger({ types: ['error', 'warning', 'notice', 'information'], sinks: [sink], timestamp: false })
  return { h: setup(t, { ...cfg.broker, logger }), lines }
}

test('bind_address and port (deprecated) make the default listener, bound where bind_address says', async (t) => {
  const cfg = load(t, 'port 1884\nbind_address 127.0.0.1\nallow_anonymous true\n')
  assert.equal(cfg.listeners.length, 1)
  assert.equal(cfg.listeners[0]!.port, 1884)
  assert.deepEqual(await listenAddresses(cfg.listeners[0]!), ['127.0.0.1'])
})

test('bind_interface binds to the addresses of the named interface; socket_domain keeps one family', async (t) => {
  const lo = Object.entries(networkInterfaces()).find(([, addrs]) => addrs?.some((a) => a.internal && a.family === 'IPv4'))
  assert.ok(lo !== undefined, 'no loopback interface')
  const [name, addrs] = lo
  const v4 = addrs!.filter((a) => a.family === 'IPv4').map((a) => a.address)
  const both = load(t, `listener 1883\nbind_interface ${name}\n`)
  const got = await listenAddresses(both.listeners[0]!)
  for (const a of v4) assert.ok(got.includes(a), `${a} of ${name} in ${got.join(', ')}`)
  const only4 = load(t, `listener 1883\nbind_interface ${name}\nsocket_domain ipv4\n`)
  assert.deepEqual((await listenAddresses(only4.listeners[0]!)).sort(), [...v4].sort())
  assert.deepEqual(await listenAddresses(load(t, 'listener 1883\n').listeners[0]!), ['0.0.0.0', '::'])
  assert.deepEqual(await listenAddresses(load(t, 'listener 1883\nsocket_domain ipv6\n').listeners[0]!), ['::'])
  assert.deepEqual(await listenAddresses(load(t, 'listener 1883\nsocket_domain ipv4\n').listeners[0]!), ['0.0.0.0'])
})

test('max_qos: CONNACK announces it to v5 clients and a PUBLISH above it is refused', async (t) => {
  const { h } = brokerFrom(t, 'listener 1883\nmax_qos 1\n')
  const c = h.raw(5)
  const ack = await c.connect({ clientId: 'mq' })
  assert.equal(ack.properties?.maximumQoS, 1)
  c.publish('t', 'x', { qos: 2, packetId: 1 })
  await c.expectProtocolClose([ReasonCode.QoSNotSupported])
})

test('max_topic_alias: the Topic Alias Maximum in CONNACK, and an alias above it is refused', async (t) => {
  const { h } = brokerFrom(t, 'listener 1883\nmax_topic_alias 3\n')
  const c = h.raw(5)
  assert.equal((await c.connect({ clientId: 'ta' })).properties?.topicAliasMaximum, 3)
  c.publish('t', 'x', { properties: { topicAlias: 4 } })
  await c.expectProtocolClose([ReasonCode.TopicAliasInvalid])
})

test('auto_id_prefix and allow_zero_length_clientid: the id the broker assigns, or a refusal', async (t) => {
  const { h } = brokerFrom(t, 'auto_id_prefix edge-\n')
  const ack = await h.raw(5).connect({ clientId: '' })
  assert.match(ack.properties?.assignedClientIdentifier ?? '', /^edge-[0-9a-f]+$/)
  const { h: h2 } = brokerFrom(t, 'allow_zero_length_clientid false\n')
  assert.equal((await h2.raw(4).connect({ clientId: '' })).reasonCode, 2, 'CONNACK 2 Identifier rejected')
})

test('upgrade_outgoing_qos: a QoS 0 message goes out at the subscription\'s QoS 1 (it was delivered at QoS 0 before #14)', async (t) => {
  for (const [text, want] of [['upgrade_outgoing_qos true\n', 1], ['upgrade_outgoing_qos false\n', 0]] as const) {
    const { h } = brokerFrom(t, text)
    const sub = await h.client(4, { clientId: 'up-sub' })
    await sub.subscribe('up/t', { qos: 1 })
    const pub = await h.client(4, { clientId: 'up-pub' })
    pub.publish('up/t', 'x')
    assert.equal((await sub.publishOn('up/t')).qos, want, text)
  }
})

test('message_size_limit: a larger payload is dropped (v5 PUBACK 0x97) and not delivered', async (t) => {
  const { h, lines } = brokerFrom(t, 'message_size_limit 10\n')
  const sub = await h.client(4, { clientId: 'msl-sub' })
  await sub.subscribe('msl/t', { qos: 1 })
  const pub = await h.client(5, { clientId: 'msl-pub' })
  const big = await pub.publishAcked('msl/t', 'x'.repeat(11), { qos: 1 })
  assert.equal(big?.reasonCode, ReasonCode.QuotaExceeded)
  await pub.publishAcked('msl/t', 'x'.repeat(10), { qos: 1 })
  await sub.sync()
  assert.deepEqual(sub.pending(PacketType.Publish).map((p) => p.payload.length), [10])
  assert.ok(lines.some((l) => l.includes('exceeds message_size_limit 10')), lines.join('\n'))
})

test('retain_available false: CONNACK says so and a retained PUBLISH is refused', async (t) => {
  const { h } = brokerFrom(t, 'retain_available false\n')
  const c = h.raw(5)
  assert.equal((await c.connect({ clientId: 'ra' })).properties?.retainAvailable, 0)
  c.publish('t', 'x', { retain: true })
  await c.expectProtocolClose([ReasonCode.RetainNotSupported])
})

test('connection_messages: the connect and disconnect lines are logged, or not', async (t) => {
  for (const [text, want] of [['connection_messages true\n', true], ['connection_messages false\n', false]] as const) {
    const { h, lines } = brokerFrom(t, text)
    const c = await h.client(4, { clientId: 'cm' })
    await c.disconnect()
    assert.equal(lines.some((l) => /^New client connected from .* as cm \(p2, c1, k0\)\.$/.test(l)), want, `${text}${lines.join('\n')}`)
    assert.equal(lines.some((l) => /^Client cm from .* disconnected\.$/.test(l)), want, `${text}${lines.join('\n')}`)
  }
})

test('max_inflight_bytes and allow_duplicate_messages reach the broker from the config file', async (t) => {
  const { h } = brokerFrom(t, 'max_inflight_bytes 1\nmax_inflight_messages 0\nallow_duplicate_messages true\n')
  const sub = await h.client(4, { clientId: 'cfg-sub' })
  await sub.subscribe(['cfg/#', 'cfg/+'], { qos: 1 })
  const pub = await h.client(4, { clientId: 'cfg-pub' })
  await pub.publishAcked('cfg/a', 'x', { qos: 1 })
  await sub.sync()
  // Two copies (allow_duplicate_messages), of which one is in flight (1 byte reached) and one queued.
  assert.equal(sub.pending(PacketType.Publish).length, 1)
  sub.send({ type: PacketType.Puback, packetId: sub.pending(PacketType.Publish)[0]!.packetId, reasonCode: 0 })
  await sub.sync()
  assert.equal(sub.pending(PacketType.Publish).length, 2)
})

test('log_timestamp: each line starts with a timestamp, or not', (t) => {
  for (const [text, stamped] of [['log_timestamp true\n', true], ['log_timestamp false\n', false]] as const) {
    const cfg = load(t, text)
    const lines: string[] = []
    const logger = new Logger({ timestamp: cfg.global.logTimestamp, timestampFormat: cfg.global.logTimestampFormat, sinks: [{ write: (line) => { lines.push(line) } }] })
    logger.notice('hello')
    assert.equal(lines.length, 1)
    assert.equal(lines[0] === 'hello', !stamped, `${text}: ${lines[0]}`)
    assert.ok(lines[0]!.endsWith('hello'))
  }
})

test('log_type: only the listed kinds of message are logged', (t) => {
  const cfg = load(t, 'log_type error\nlog_type subscribe\n')
  const lines: string[] = []
  const logger = new Logger({ types: cfg.global.logType, timestamp: false, sinks: [{ write: (line) => { lines.push(line) } }] })
  logger.error('an error')
  logger.notice('a notice')
  logger.log('subscribe', 'c1 0 a/b')
  logger.warning('a warning')
  assert.deepEqual(lines, ['an error', 'c1 0 a/b'])
})

test('set_tcp_nodelay: accepted sockets of an MQTT listener get TCP_NODELAY, or keep Nagle', async (t) => {
  const calls: boolean[] = []
  const original = net.Socket.prototype.setNoDelay
  net.Socket.prototype.setNoDelay = function (this: net.Socket, on?: boolean) { calls.push(on ?? true); return original.call(this, on) }
  t.after(() => { net.Socket.prototype.setNoDelay = original })
  // Plain TCP listeners accept bare handles where Node has them (transport/tcp-handle.ts).
  const originalHandle = TcpHandleStream.prototype.setNoDelay
  TcpHandleStream.prototype.setNoDelay = function (this: TcpHandleStream, on: boolean) { calls.push(on); originalHandle.call(this, on) }
  t.after(() => { TcpHandleStream.prototype.setNoDelay = originalHandle })
  for (const [text, want] of [['set_tcp_nodelay true\n', true], ['set_tcp_nodelay false\n', false]] as const) {
    const cfg = load(t, text)
    const { h } = brokerFrom(t, '')
    const l = await startTcpListener(h.broker, { host: '127.0.0.1', port: 0, noDelay: cfg.global.setTcpNodelay, maxConnections: -1, info: { name: 'nd', allowAnonymous: true, mountPoint: '', protocol: 'mqtt' } })
    calls.length = 0
    const socket = net.connect(l.address().port, '127.0.0.1')
    await once(socket, 'connect')
    await waitUntil(() => h.broker.connections.size === 1, 'the broker took the connection')
    socket.destroy()
    await l.close()
    // The client's own socket is Node's default (Nagle on); only the accepted side is the listener's doing.
    assert.equal(calls.includes(true), want, `${text}: setNoDelay calls ${JSON.stringify(calls)}`)
  }
})

test('set_tcp_nodelay: accepted sockets of TLS and wss listeners follow it too', async (t) => {
  const pki = new TestPki()
  t.after(() => pki.remove())
  const cert = pki.issue('nodelay', { cn: 'localhost' })
  const calls: boolean[] = []
  const original = net.Socket.prototype.setNoDelay
  net.Socket.prototype.setNoDelay = function (this: net.Socket, on?: boolean) { calls.push(on ?? true); return original.call(this, on) }
  t.after(() => { net.Socket.prototype.setNoDelay = original })
  for (const [value, want] of [['true', true], ['false', false]] as const) {
    for (const ws of [false, true]) {
      const text = ['log_dest none', `set_tcp_nodelay ${value}`, 'allow_anonymous true', 'listener 0 127.0.0.1', ...(ws ? ['protocol websockets'] : []), `certfile ${cert.cert}`, `keyfile ${cert.key}`].join('\n') + '\n'
      const rt = await startMidge(loadConfigText(text))
      try {
        const port = rt.listeners()[0]?.addresses[0]?.port as number
        calls.length = 0
        const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' })
        await once(socket, 'secureConnect')
        // The server side has taken the socket once the broker counts it (TLS), or after the upgrade (wss).
        if (ws) socket.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n')
        await waitUntil(() => rt.broker.connections.size === 1, `set_tcp_nodelay ${value} ${ws ? 'wss' : 'TLS'}: the broker took the connection`)
        socket.destroy()
        // The last word on the accepted socket is the listener's (ws sets it on by itself first).
        assert.equal(calls.at(-1), want, `set_tcp_nodelay ${value} ${ws ? 'wss' : 'TLS'}: setNoDelay calls ${JSON.stringify(calls)}`)
      } finally {
        await rt.close()
      }
    }
  }
})

test('autosave_interval: the store is compacted on that period once its log has grown; with 0 only at exit', async (t) => {
  for (const [text, byTimer] of [['persistence true\nautosave_interval 1\n', true], ['persistence true\nautosave_interval 0\n', false]] as const) {
    const cfg = load(t, text)
    let compactions = 0
    const store = { dirty: false, changesSinceCompaction: 5000, recordsAtCompaction: 0, commit() {}, close() {}, compact() { compactions++; this.changesSinceCompaction = 0 } }
    const b = new Broker({ sysInterval: 0, store: store as unknown as Store, autosaveInterval: cfg.global.autosaveInterval })
    t.after(() => b.close())
    if (byTimer) {
      await waitUntil(() => compactions === 1, 'a compaction by the autosave timer', 5000)
    } else {
      assert.equal(compactions, 0)
      b.close()
      assert.equal(compactions, 1, 'compacted at exit')
    }
  }
})
