/**
 * CONNECT / CONNACK (MQTT 3.1.1 section 3.1-3.2, MQTT 5.0 section 3.1-3.2): return and reason codes,
 * client identifier rules, protocol levels, first-packet and second-CONNECT rules, session takeover,
 * Clean Start / Session Present. Expected CONNACK bytes are written by hand, not by the codec.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import { setup, hex } from '../helpers/broker-harness.js'
import { bytes, packet, utf8, u16, props, prop } from '../helpers/wire.js'

/** A v3.1.1 CONNECT, by hand: name "MQTT", level, flags, keep alive, client id. */
function rawConnect (level: number, flags: number, clientId: string, name = 'MQTT'): Buffer {
  return packet(0x10, utf8(name), level, flags, u16(0), utf8(clientId))
}

/** A v5 CONNECT, by hand, with an empty property block unless given. */
function rawConnect5 (flags: number, clientId: string, properties: number[] = [0]): Buffer {
  return packet(0x10, utf8('MQTT'), 5, flags, u16(0), properties, utf8(clientId))
}

test('[MQTT-3.2.2-1] v3.1.1: an accepted CONNECT gets CONNACK 20 02 00 00', async (t) => {
  const h = setup(t)
  const c = h.raw(4)
  c.sendRaw(rawConnect(4, 0x02, 'c1'))
  const f = await c.nextFrame()
  assert.deepEqual([...f.raw], [0x20, 0x02, 0x00, 0x00])
})

test('[MQTT-3.1.2-2] v3.1 (MQIsdp, level 3) is accepted with CONNACK 20 02 00 00', async (t) => {
  const h = setup(t)
  const c = h.raw(3)
  c.sendRaw(rawConnect(3, 0x02, 'old-client', 'MQIsdp'))
  const f = await c.nextFrame()
  assert.deepEqual([...f.raw], [0x20, 0x02, 0x00, 0x00])
  // and it works: subscribe + publish at QoS 1
  const sub = await c.subscribe('v31/t', { qos: 1 })
  assert.deepEqual(sub.reasonCodes, [1])
  await c.publishAcked('v31/t', 'x', { qos: 1 })
  const m = await c.publishOn('v31/t')
  assert.equal(m.payload.toString(), 'x')
})

test('[MQTT-3.1.4-5] v5: an accepted CONNECT gets CONNACK reason 0x00 with a property block', async (t) => {
  const h = setup(t)
  const c = h.raw(5)
  c.sendRaw(rawConnect5(0x02, 'c5'))
  const f = await c.nextFrame()
  assert.equal(f.raw[0], 0x20)
  assert.equal(f.raw[2], 0x00, 'session present 0')
  assert.equal(f.raw[3], 0x00, 'reason code Success')
  const ack = f.packet
  assert.equal(ack?.type, PacketType.Connack)
})

test('[MQTT-3.1.3-7] v3.1.1: zero-length client id with CleanSession=1 is accepted', async (t) => {
  const h = setup(t)
  const c = h.raw(4)
  c.sendRaw(rawConnect(4, 0x02, ''))
  const f = await c.nextFrame()
  assert.deepEqual([...f.raw], [0x20, 0x02, 0x00, 0x00])
  await c.sync()
})

test('[MQTT-3.1.3-8] v3.1.1: zero-length client id with CleanSession=0 gets CONNACK 0x02 and the connection is closed', async (t) => {
  const h = setup(t)
  const c = h.raw(4)
  c.sendRaw(rawConnect(4, 0x00, ''))
  const f = await c.nextFrame()
  assert.deepEqual([...f.raw], [0x20, 0x02, 0x00, 0x02])
  await c.waitClosed()
})

test('[MQTT-3.1.3-8] v3.1: zero-length client id is rejected with CONNACK 0x02 (3.1 requires 1-23 characters)', async (t) => {
  const h = setup(t)
  const c = h.raw(3)
  c.sendRaw(rawConnect(3, 0x02, '', 'MQIsdp'))
  const f = await c.nextFrame()
  assert.deepEqual([...f.raw], [0x20, 0x02, 0x00, 0x02])
  await c.waitClosed()
})

test('[MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.2.2-16] v5: zero-length client id gets a unique Assigned Client Identifier', async (t) => {
  const h = setup(t)
  const a = h.raw(5)
  const ackA = await a.connect({ clientId: '' })
  assert.equal(ackA.reasonCode, 0)
  const idA = ackA.properties?.assignedClientIdentifier
  assert.ok(idA !== undefined && idA.length > 0, 'CONNACK carries Assigned Client Identifier')
  // also with Clean Start 0 (allowed in v5)
  const b = h.raw(5)
  const ackB = await b.connect({ clientId: '', cleanStart: false, properties: { sessionExpiryInterval: 30 } })
  assert.equal(ackB.reasonCode, 0)
  const idB = ackB.properties?.assignedClientIdentifier
  assert.ok(idB !== undefined && idB.length > 0)
  assert.notEqual(idA, idB, 'assigned identifiers are unique')
  // both stay connected (no takeover happened)
  await a.sync()
  await b.sync()
})

test('[MQTT-3.1.3-8] v5: a server that refuses zero-length ids answers CONNACK 0x85 and closes', async (t) => {
  const h = setup(t, { allowZeroLengthClientId: false })
  const c = h.raw(5)
  const ack = await c.connect({ clientId: '' })
  assert.equal(ack.reasonCode, ReasonCode.ClientIdentifierNotValid)
  assert.equal(ack.sessionPresent, false)
  await c.waitClosed()
  const c4 = h.raw(4)
  const ack4 = await c4.connect({ clientId: '' })
  assert.equal(ack4.reasonCode, 0x02)
  await c4.waitClosed()
})

test('[MQTT-3.1.0-1] a first packet other than CONNECT closes the connection without any answer', async (t) => {
  const h = setup(t)
  for (const first of [
    packet(0xc0), // PINGREQ
    packet(0x30, utf8('a'), 0x78), // PUBLISH QoS 0
    packet(0x82, u16(1), utf8('a'), 0), // SUBSCRIBE
    packet(0xe0), // DISCONNECT
  ]) {
    const c = h.raw(4)
    c.sendRaw(first)
    await c.waitClosed()
    assert.deepEqual(c.history, [], `nothing sent back after ${first.toString('hex')}`)
  }
})

test('[MQTT-3.1.0-2] v3.1.1: a second CONNECT closes the connection', async (t) => {
  const h = setup(t)
  const c = await h.client(4, { clientId: 'twice' })
  c.sendRaw(rawConnect(4, 0x02, 'twice'))
  await c.expectProtocolClose([])
  assert.equal(c.history.filter((f) => f.type === PacketType.Connack).length, 1, 'only one CONNACK [MQTT-3.2.0-2]')
})

test('[MQTT-3.1.0-2] v5: a second CONNECT gets DISCONNECT 0x82 Protocol Error, then the close', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'twice5' })
  c.sendRaw(rawConnect5(0x02, 'twice5'))
  await c.expectProtocolClose([ReasonCode.ProtocolError])
})

test('[MQTT-3.1.2-2] v3.1.1: an unsupported protocol level gets CONNACK 0x01 and the close', async (t) => {
  const h = setup(t)
  for (const level of [6, 2, 0x7f]) {
    const c = h.raw(4)
    c.sendRaw(rawConnect(level, 0x02, 'lvl'))
    const f = await c.nextFrame()
    assert.deepEqual([...f.raw], [0x20, 0x02, 0x00, 0x01], `level ${level}`)
    await c.waitClosed()
  }
  // 'MQIsdp' with a level other than 3 is an unknown 3.x dialect too
  const c = h.raw(3)
  c.sendRaw(rawConnect(4, 0x02, 'lvl', 'MQIsdp'))
  const f = await c.nextFrame()
  assert.deepEqual([...f.raw], [0x20, 0x02, 0x00, 0x01])
  await c.waitClosed()
})

test('[MQTT-3.1.2-2] v5: a level-5 CONNECT the server cannot accept in that dialect gets CONNACK 0x84 in the v5 layout', async (t) => {
  const h = setup(t)
  const c = h.raw(5)
  // "MQIsdp" only exists at level 3: at level 5 the version is unsupported; answered in the 5.0 CONNACK layout.
  c.sendRaw(packet(0x10, utf8('MQIsdp'), 5, 0x02, u16(0), [0], utf8('x')))
  const f = await c.nextFrame()
  assert.equal(f.raw[0], 0x20)
  assert.equal(f.raw[3], ReasonCode.UnsupportedProtocolVersion)
  await c.waitClosed()
})

test('[MQTT-3.1.2-1] an unknown protocol name closes the connection with no CONNACK', async (t) => {
  const h = setup(t)
  const c = h.raw(4)
  c.sendRaw(rawConnect(4, 0x02, 'x', 'MQTX'))
  await c.waitClosed()
  assert.deepEqual(c.history.filter((f) => f.type === PacketType.Connack && (f.packet as { reasonCode: number }).reasonCode === 0), [])
})

test('[MQTT-3.1.2-3] v3.1.1: CONNECT with the reserved flag set closes the connection without success', async (t) => {
  const h = setup(t)
  const c = h.raw(4)
  c.sendRaw(rawConnect(4, 0x03, 'res'))
  await c.waitClosed()
  assert.equal(c.history.some((f) => f.type === PacketType.Connack && f.raw[3] === 0), false)
})

test('[MQTT-3.1.2-3] v5: CONNECT with the reserved flag set is malformed (no success CONNACK; CONNACK 0x81 if any)', async (t) => {
  const h = setup(t)
  const c = h.raw(5)
  c.sendRaw(rawConnect5(0x03, 'res5'))
  await c.waitClosed()
  for (const f of c.history) {
    assert.equal(f.type, PacketType.Connack)
    assert.equal(f.raw[3], ReasonCode.MalformedPacket, `got ${hex(f.raw[3]!)}`)
  }
})

test('[MQTT-3.1.4-2] v3.1.1: a second connection with the same client id takes over; the old one is closed', async (t) => {
  const h = setup(t)
  const old = await h.client(4, { clientId: 'dup' })
  const fresh = await h.client(4, { clientId: 'dup' })
  await old.waitClosed()
  assert.deepEqual(old.drain(), [], 'a 3.1.1 client gets no DISCONNECT')
  await fresh.sync()
})

test('[MQTT-3.1.4-3] v5: on takeover the old connection gets DISCONNECT 0x8E Session taken over and is closed', async (t) => {
  const h = setup(t)
  const old = await h.client(5, { clientId: 'dup5' })
  const fresh = await h.client(5, { clientId: 'dup5' })
  await old.waitClosed()
  const d = old.drain()
  assert.equal(d.length, 1)
  assert.deepEqual([...d[0]!.raw.subarray(0, 3)], [0xe0, d[0]!.raw[1], ReasonCode.SessionTakenOver])
  await fresh.sync()
})

test('[MQTT-3.1.4-3] takeover keeps the session (Clean Start 0): subscriptions carry over and Session Present is 1', async (t) => {
  const h = setup(t)
  const old = await h.client(5, { clientId: 'keep', cleanStart: false, properties: { sessionExpiryInterval: 60 } })
  await old.subscribe('keep/t', { qos: 1 })
  const fresh = h.raw(5)
  const ack = await fresh.connect({ clientId: 'keep', cleanStart: false, properties: { sessionExpiryInterval: 60 } })
  assert.equal(ack.sessionPresent, true)
  await old.waitClosed()
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('keep/t', 'after', { qos: 1 })
  const m = await fresh.publishOn('keep/t')
  assert.equal(m.payload.toString(), 'after')
})

test('[MQTT-3.2.2-1] v3.1.1: CleanSession=1 gives Session Present 0 even when a session existed', async (t) => {
  const h = setup(t)
  const a = await h.client(4, { clientId: 'sp', cleanStart: false })
  await a.subscribe('sp/t', { qos: 1 })
  await a.disconnect()
  const b = h.raw(4)
  const ack = await b.connect({ clientId: 'sp', cleanStart: true })
  assert.deepEqual([...b.history[0]!.raw], [0x20, 0x02, 0x00, 0x00])
  assert.equal(ack.sessionPresent, false)
})

test('[MQTT-3.2.2-2] v3.1.1: CleanSession=0 with a stored session gives Session Present 1; without one 0 [MQTT-3.2.2-3]', async (t) => {
  const h = setup(t)
  const a = h.raw(4)
  const first = await a.connect({ clientId: 'sp2', cleanStart: false })
  assert.equal(first.sessionPresent, false, 'no session yet')
  await a.disconnect()
  const b = h.raw(4)
  await b.connect({ clientId: 'sp2', cleanStart: false })
  assert.deepEqual([...b.history[0]!.raw], [0x20, 0x02, 0x01, 0x00])
})

test('[MQTT-3.1.2-6] v3.1.1: a CleanSession=1 session ends with the connection', async (t) => {
  const h = setup(t)
  const a = await h.client(4, { clientId: 'eph', cleanStart: true })
  await a.subscribe('eph/t', { qos: 1 })
  await a.disconnect()
  const b = h.raw(4)
  const ack = await b.connect({ clientId: 'eph', cleanStart: false })
  assert.equal(ack.sessionPresent, false)
  const pub = await h.client(4, { clientId: 'eph-pub' })
  await pub.publishAcked('eph/t', 'x', { qos: 1 })
  await b.expectNothing(PacketType.Publish, 'the old subscription is gone')
})

test('[MQTT-3.1.2-4] [MQTT-3.2.2-2] v5: Clean Start 1 discards the session: Session Present 0 and no old subscriptions', async (t) => {
  const h = setup(t)
  const a = await h.client(5, { clientId: 'cs', cleanStart: false, properties: { sessionExpiryInterval: 100 } })
  await a.subscribe('cs/t', { qos: 1 })
  await a.disconnect()
  const b = h.raw(5)
  const ack = await b.connect({ clientId: 'cs', cleanStart: true })
  assert.equal(ack.sessionPresent, false)
  const pub = await h.client(5, { clientId: 'cs-pub' })
  const puback = await pub.publishAcked('cs/t', 'x', { qos: 1 })
  assert.equal(puback?.reasonCode, ReasonCode.NoMatchingSubscribers)
  await b.expectNothing(PacketType.Publish)
})

test('[MQTT-3.1.2-5] [MQTT-3.2.2-3] v5: Clean Start 0 resumes a stored session with Session Present 1', async (t) => {
  const h = setup(t)
  const a = await h.client(5, { clientId: 'res', cleanStart: false, properties: { sessionExpiryInterval: 100 } })
  await a.subscribe('res/t', { qos: 1 })
  await a.disconnect()
  const b = h.raw(5)
  const ack = await b.connect({ clientId: 'res', cleanStart: false, properties: { sessionExpiryInterval: 100 } })
  assert.equal(ack.sessionPresent, true)
  const pub = await h.client(5, { clientId: 'res-pub' })
  await pub.publishAcked('res/t', 'x', { qos: 1 })
  const m = await b.publishOn('res/t')
  assert.equal(m.payload.toString(), 'x')
})

test('[MQTT-3.2.2-6] a refused CONNACK has Session Present 0 even when a session is stored', async (t) => {
  const h = setup(t, { maxKeepalive: 60 })
  const a = await h.client(4, { clientId: 'stored', cleanStart: false, keepAlive: 30 })
  await a.subscribe('stored/t', { qos: 1 })
  await a.disconnect()
  const c = h.raw(4)
  // refused (keep alive above max_keepalive) although the id has a stored session
  const ack = await c.connect({ clientId: 'stored', cleanStart: false, keepAlive: 120 })
  assert.equal(ack.reasonCode, 0x02)
  assert.equal(ack.sessionPresent, false)
  await c.waitClosed()
})

test('[MQTT-3.12.4-1] PINGREQ is answered with PINGRESP d0 00', async (t) => {
  const h = setup(t)
  for (const v of [3, 4, 5] as const) {
    const c = await h.client(v, { clientId: `ping${v}` })
    c.sendRaw(packet(0xc0))
    const f = await c.nextFrame()
    assert.deepEqual([...f.raw], [0xd0, 0x00])
  }
})

test('[MQTT-3.14.4-2] DISCONNECT makes the broker close the connection', async (t) => {
  const h = setup(t)
  const c = await h.client(4, { clientId: 'bye' })
  c.sendRaw(packet(0xe0))
  await c.waitClosed()
  const c5 = await h.client(5, { clientId: 'bye5' })
  c5.sendRaw(packet(0xe0, 0x00, props()))
  await c5.waitClosed()
  assert.deepEqual(c5.drain(), [], 'the server sends nothing after a client DISCONNECT')
})

test('[MQTT-3.1.2-22] v3.1.1: keep alive above max_keepalive is refused with CONNACK 0x02 (mosquitto behaviour)', async (t) => {
  const h = setup(t, { maxKeepalive: 60 })
  const c = h.raw(4)
  const ack = await c.connect({ clientId: 'ka', keepAlive: 120 })
  assert.equal(ack.reasonCode, 0x02)
  await c.waitClosed()
  const ok = await h.client(4, { clientId: 'ka-ok', keepAlive: 30 })
  await ok.sync()
})

test('[MQTT-3.1.2-21] v5: keep alive above max_keepalive is accepted with Server Keep Alive', async (t) => {
  const h = setup(t, { maxKeepalive: 60 })
  const c = h.raw(5)
  const ack = await c.connect({ clientId: 'ka5', keepAlive: 120 })
  assert.equal(ack.reasonCode, 0)
  assert.equal(ack.properties?.serverKeepAlive, 60)
})

test('[MQTT-4.12.0-1] v5: an unsupported Authentication Method gets CONNACK 0x8C and the close', async (t) => {
  const h = setup(t)
  const c = h.raw(5)
  const ack = await c.connect({ clientId: 'auth', properties: { authenticationMethod: 'SCRAM-SHA-1' } })
  assert.equal(ack.reasonCode, ReasonCode.BadAuthenticationMethod)
  await c.waitClosed()
})

test('[MQTT-3.3.2-2] a will topic with a wildcard is refused (no successful CONNACK) and closed', async (t) => {
  const h = setup(t)
  for (const v of [4, 5] as const) {
    const c = h.raw(v)
    const ack = await c.connect({ clientId: `willwild${v}`, will: { topic: 'a/#', payload: Buffer.from('x'), qos: 0, retain: false } })
    assert.notEqual(ack.reasonCode, 0)
    await c.waitClosed()
  }
})

test('[MQTT-3.1.4-6] packets sent after a refused CONNECT are not processed', async (t) => {
  const h = setup(t)
  const watcher = await h.client(4, { clientId: 'watch' })
  await watcher.subscribe('after/refused')
  const c = h.raw(4)
  // zero-length id + CleanSession 0 (refused), then a PUBLISH in the same chunk
  c.sendRaw(Buffer.concat([rawConnect(4, 0x00, ''), packet(0x30, utf8('after/refused'), 0x41)]))
  await c.waitClosed()
  await watcher.expectNothing(PacketType.Publish)
})

test('a CONNECT split into one-byte chunks and packets coalesced in one chunk are both handled', async (t) => {
  const h = setup(t)
  const c = h.raw(5)
  const connect = rawConnect5(0x02, 'bytewise', props(prop.u32(0x11, 0)))
  for (const b of connect) c.sendRaw(Buffer.from([b]))
  const ack = await c.next(PacketType.Connack)
  assert.equal(ack.reasonCode, 0)
  // SUBSCRIBE + PUBLISH + PINGREQ in one write
  c.sendRaw(Buffer.concat([
    packet(0x82, u16(7), props(), utf8('chunk/t'), 0x00),
    packet(0x30, utf8('chunk/t'), props(), bytes(0x68, 0x69)),
    packet(0xc0),
  ]))
  const sub = await c.next(PacketType.Suback)
  assert.equal(sub.packetId, 7)
  const m = await c.next(PacketType.Publish)
  assert.equal(m.payload.toString(), 'hi')
  await c.next(PacketType.Pingresp)
})

test('[MQTT-3.1.3-5] client ids of 1 to 23 characters [0-9a-zA-Z] are accepted, and longer UTF-8 ones too', async (t) => {
  const h = setup(t)
  for (const clientId of ['a', '0123456789abcdefghijklm', 'ABCDEFGHIJKLMNOPQRSTUVW', 'x'.repeat(200), 'ünï/cødé client+#']) {
    for (const v of [4, 5] as const) {
      const c = h.raw(v)
      const ack = await c.connect({ clientId })
      assert.equal(ack.reasonCode, 0, `${v}: ${clientId}`)
      await c.disconnect()
    }
  }
})

test('MQTT 5.0 §3.1.2.11 v5: Receive Maximum 0 or Maximum Packet Size 0 in CONNECT is a Protocol Error', async (t) => {
  const h = setup(t)
  for (const property of [prop.u16(0x21, 0), prop.u32(0x27, 0)]) {
    const c = h.raw(5)
    c.sendRaw(rawConnect5(0x02, 'zero', props(property)))
    await c.waitClosed()
    for (const f of c.history) {
      assert.equal(f.type, PacketType.Connack)
      assert.ok(f.raw[3] === ReasonCode.ProtocolError || f.raw[3] === ReasonCode.MalformedPacket, `got ${hex(f.raw[3]!)}`)
    }
  }
})
