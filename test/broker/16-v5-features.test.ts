/**
 * MQTT 5.0 features the broker must honour (sections 3.1.2.11, 3.3.2.3, 4.9): inbound topic aliases,
 * the client's Maximum Packet Size and Receive Maximum, properties forwarded unchanged (request/response,
 * user properties), Message Expiry Interval, AUTH without a method, and the shutdown DISCONNECT.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import { setup, FakeClock } from '../helpers/broker-harness.js'
import { packet, utf8, u16, props, prop } from '../helpers/wire.js'

test('[MQTT-3.3.2-12] v5: CONNACK announces a Topic Alias Maximum; an alias set with a topic can be used with an empty topic', async (t) => {
  const h = setup(t, { topicAliasMaximum: 5 })
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('alias/#')
  const c = h.raw(5)
  const ack = await c.connect({ clientId: 'c' })
  assert.equal(ack.properties?.topicAliasMaximum, 5)
  c.publish('alias/one', 'set', { properties: { topicAlias: 5 } })
  c.publish('', 'use', { properties: { topicAlias: 5 } })
  c.publish('alias/two', 'reset', { properties: { topicAlias: 5 } })
  c.publish('', 'use2', { properties: { topicAlias: 5 } })
  await c.sync()
  const got = []
  for (let i = 0; i < 4; i++) {
    const m = await sub.waitFor(PacketType.Publish)
    got.push([m.topic, m.payload.toString()])
    assert.equal(m.properties?.topicAlias, undefined, '[MQTT-3.1.2-27] no alias sent to a client that allowed none')
  }
  assert.deepEqual(got, [['alias/one', 'set'], ['alias/one', 'use'], ['alias/two', 'reset'], ['alias/two', 'use2']])
})

test('[MQTT-3.3.2-7] v5: topic aliases do not carry over to a new connection', async (t) => {
  const h = setup(t)
  const a = await h.client(5, persistent('alias-sess'))
  a.publish('al/t', 'x', { properties: { topicAlias: 1 } })
  await a.disconnect()
  const b = await h.client(5, persistent('alias-sess'))
  b.publish('', 'y', { properties: { topicAlias: 1 } })
  await b.expectProtocolClose([ReasonCode.ProtocolError, ReasonCode.TopicAliasInvalid])
})

function persistent (clientId: string) {
  return { clientId, cleanStart: false, properties: { sessionExpiryInterval: 60 } }
}

test('MQTT 5.0 §3.3.2.3.4 v5: an empty topic with an alias that was never set is a Protocol Error (DISCONNECT 0x82)', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'c' })
  c.publish('', 'x', { properties: { topicAlias: 3 } })
  await c.expectProtocolClose([ReasonCode.ProtocolError])
})

test('[MQTT-3.3.2-8] v5: Topic Alias 0 gets DISCONNECT 0x94 Topic Alias invalid', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'c' })
  c.sendRaw(packet(0x30, utf8('a/t'), props(prop.u16(0x23, 0)), 0x78))
  await c.expectProtocolClose([ReasonCode.TopicAliasInvalid])
})

test('[MQTT-3.3.2-9] v5: a Topic Alias above the announced maximum gets DISCONNECT 0x94', async (t) => {
  const h = setup(t, { topicAliasMaximum: 10 })
  const c = await h.client(5, { clientId: 'c' })
  c.publish('a/t', 'x', { properties: { topicAlias: 11 } })
  await c.expectProtocolClose([ReasonCode.TopicAliasInvalid])
})

test('[MQTT-3.2.2-17] v5: with topic aliases disabled (maximum 0) any alias gets DISCONNECT 0x94', async (t) => {
  const h = setup(t, { topicAliasMaximum: 0 })
  const c = h.raw(5)
  const ack = await c.connect({ clientId: 'c' })
  assert.ok((ack.properties?.topicAliasMaximum ?? 0) === 0, 'no alias maximum above 0 is announced')
  c.publish('a/t', 'x', { properties: { topicAlias: 1 } })
  await c.expectProtocolClose([ReasonCode.TopicAliasInvalid])
})

test('[MQTT-3.3.2-2] v5: an empty topic without an alias is a Protocol Error', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'c' })
  c.sendRaw(packet(0x30, utf8(''), props(), 0x78))
  await c.expectProtocolClose([ReasonCode.ProtocolError, ReasonCode.TopicNameInvalid, ReasonCode.MalformedPacket])
})

test('[MQTT-3.1.2-24] [MQTT-3.1.2-25] v5: messages larger than the client\'s Maximum Packet Size are not sent; smaller ones are', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'small', properties: { maximumPacketSize: 64 } })
  await c.subscribe('mps/#', { qos: 1 })
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('mps/big', Buffer.alloc(200, 0x61), { qos: 1 })
  await pub.publishAcked('mps/big0', Buffer.alloc(200, 0x61), { qos: 0 })
  await pub.publishAcked('mps/small', 'fits', { qos: 1 })
  const m = await c.publishOn('mps/small')
  assert.equal(m.payload.toString(), 'fits')
  await c.ack(m)
  await c.expectNothing(PacketType.Publish)
  for (const f of c.history) assert.ok(f.raw.length <= 64, `a ${f.raw.length}-byte packet was sent`)
})

test('[MQTT-3.1.2-24] v5: an oversized retained message is skipped at subscribe, the others are sent', async (t) => {
  const h = setup(t)
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('mpr/big', Buffer.alloc(500), { qos: 1, retain: true })
  await pub.publishAcked('mpr/small', 's', { qos: 1, retain: true })
  const c = await h.client(5, { clientId: 'small', properties: { maximumPacketSize: 100 } })
  await c.subscribe('mpr/#', { qos: 1 })
  const m = await c.publishOn('mpr/small')
  await c.ack(m)
  await c.expectNothing(PacketType.Publish)
})

test('[MQTT-3.3.4-9] v5: no more than the client\'s Receive Maximum QoS 1/2 messages are in flight', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'slow', properties: { receiveMaximum: 2 } })
  await c.subscribe('rm/t', { qos: 2 })
  const pub = await h.client(5, { clientId: 'pub' })
  for (let i = 0; i < 6; i++) await pub.publishAcked('rm/t', `m${i}`, { qos: (1 + (i % 2)) as 1 | 2 })
  await c.sync()
  const first = c.pending(PacketType.Publish)
  assert.deepEqual(first.map((m) => m.payload.toString()), ['m0', 'm1'])
  c.drain()
  // PUBACK frees one slot: exactly one more message
  c.send({ type: PacketType.Puback, packetId: first[0]!.packetId, reasonCode: 0 })
  const third = await c.publishOn('rm/t')
  assert.equal(third.payload.toString(), 'm2')
  await c.expectNothing(PacketType.Publish, 'still two in flight')
  // PUBREC does not free the slot of a QoS 2 message, PUBCOMP does
  c.send({ type: PacketType.Pubrec, packetId: first[1]!.packetId, reasonCode: 0 })
  await c.waitFor(PacketType.Pubrel)
  await c.expectNothing(PacketType.Publish, 'a PUBREC\'d QoS 2 message still counts')
  c.send({ type: PacketType.Pubcomp, packetId: first[1]!.packetId, reasonCode: 0 })
  const fourth = await c.publishOn('rm/t')
  assert.equal(fourth.payload.toString(), 'm3')
})

test('[MQTT-3.3.4-10] [MQTT-4.9.0-3] v5: a full Receive Maximum window delays only PUBLISH: other packets are still answered', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'slow', properties: { receiveMaximum: 1 } })
  await c.subscribe('rm0/#', { qos: 1 })
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('rm0/a', 'first', { qos: 1 })
  await pub.publishAcked('rm0/b', 'waits', { qos: 1 })
  pub.publish('rm0/c', 'q0')
  await pub.sync()
  const first = await c.publishOn('rm0/a')
  await c.sync() // PINGRESP while the window is full
  const sub = await c.subscribe('other/t', { qos: 1 }) // SUBACK while the window is full
  assert.deepEqual(sub.reasonCodes, [1])
  assert.equal(c.pending(PacketType.Publish).filter((m) => m.qos > 0).length, 0, 'no second QoS 1 PUBLISH in flight')
  c.send({ type: PacketType.Puback, packetId: first.packetId, reasonCode: 0 })
  // QoS 0 may be sent at once or held back with the rest [MQTT-4.9.0-2]; it must not be lost
  const b = await c.publishOn('rm0/b')
  assert.equal(b.payload.toString(), 'waits')
  assert.equal((await c.publishOn('rm0/c')).qos, 0)
})

test('[MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20] [MQTT-3.3.2-4] v5: request/response and user properties are forwarded unchanged', async (t) => {
  const h = setup(t)
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('req/t', { qos: 1 })
  const pub = await h.client(5, { clientId: 'pub' })
  const userProperties: Array<[string, string]> = [['z', '1'], ['a', 'ü'], ['z', '2'], ['', ''], ['dup', 'x'], ['dup', 'x']]
  await pub.publishAcked('req/t', 'ask', {
    qos: 1,
    properties: {
      responseTopic: 'resp/ü/1',
      correlationData: Buffer.from([0, 1, 2, 255]),
      contentType: 'application/json; charset=utf-8',
      payloadFormatIndicator: 1,
      userProperties,
    },
  })
  const m = await sub.publishOn('req/t')
  assert.equal(m.properties?.responseTopic, 'resp/ü/1')
  assert.deepEqual([...(m.properties?.correlationData ?? [])], [0, 1, 2, 255])
  assert.equal(m.properties?.contentType, 'application/json; charset=utf-8')
  assert.equal(m.properties?.payloadFormatIndicator, 1)
  assert.deepEqual(m.properties?.userProperties, userProperties)
  await sub.ack(m)
  // and the responder can answer on the Response Topic with the Correlation Data
  const requester = await h.client(5, { clientId: 'requester' })
  await requester.subscribe('resp/ü/1')
  sub.publish(m.properties!.responseTopic!, 'answer', { properties: { correlationData: m.properties!.correlationData! } })
  const r = await requester.publishOn('resp/ü/1')
  assert.deepEqual([...(r.properties?.correlationData ?? [])], [0, 1, 2, 255])
})

test('v5: properties are dropped, not garbled, when a v5 message goes to a 3.1.1 subscriber', async (t) => {
  const h = setup(t)
  const sub = await h.client(4, { clientId: 'sub' })
  await sub.subscribe('p4/t')
  const pub = await h.client(5, { clientId: 'pub' })
  pub.publish('p4/t', 'body', { properties: { userProperties: [['k', 'v']], responseTopic: 'r' } })
  await sub.publishOn('p4/t')
  assert.deepEqual([...sub.history.at(-1)!.raw], [0x30, 2 + 4 + 4, 0x00, 0x04, ...Buffer.from('p4/t'), ...Buffer.from('body')])
})

test('[MQTT-3.3.2-6] v5: Message Expiry Interval is forwarded, reduced by the time the message waited', async (t) => {
  const h = setup(t)
  const clock = new FakeClock(h.broker)
  const slow = await h.client(5, { clientId: 'slow', properties: { receiveMaximum: 1 } })
  await slow.subscribe('mei/t', { qos: 1 })
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('mei/t', 'a', { qos: 1, properties: { messageExpiryInterval: 30 } })
  await pub.publishAcked('mei/t', 'b', { qos: 1, properties: { messageExpiryInterval: 30 } })
  await pub.publishAcked('mei/t', 'c', { qos: 1, properties: { messageExpiryInterval: 5 } })
  const a = await slow.publishOn('mei/t')
  assert.equal(a.properties?.messageExpiryInterval, 30, 'sent at once: unchanged')
  clock.advance(12_000)
  slow.send({ type: PacketType.Puback, packetId: a.packetId, reasonCode: 0 })
  const b = await slow.publishOn('mei/t')
  assert.equal(b.payload.toString(), 'b')
  assert.equal(b.properties?.messageExpiryInterval, 18, 'waited 12 s in the queue')
  slow.send({ type: PacketType.Puback, packetId: b.packetId, reasonCode: 0 })
  await slow.expectNothing(PacketType.Publish, '[MQTT-3.3.2-5] c expired in the queue')
})

test('[MQTT-3.3.4-6] v5: a PUBLISH from a client carrying a Subscription Identifier is a Protocol Error', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'c' })
  c.sendRaw(packet(0x30, utf8('a/t'), props(prop.vbi(0x0b, 1)), 0x78))
  await c.expectProtocolClose([ReasonCode.ProtocolError])
})

test('[MQTT-4.12.0-1] v5: AUTH when no authentication method was negotiated is a Protocol Error', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'c' })
  c.sendRaw(packet(0xf0, 0x19, props(prop.str(0x15, 'SCRAM'))))
  await c.expectProtocolClose([ReasonCode.ProtocolError])
})

test('MQTT 5.0 §3.14.2.1 v5: broker shutdown tells v5 clients DISCONNECT 0x8B and closes 3.1.1 clients', async (t) => {
  const h = setup(t)
  const c5 = await h.client(5, { clientId: 'c5' })
  const c4 = await h.client(4, { clientId: 'c4' })
  h.broker.close()
  await c5.waitClosed()
  await c4.waitClosed()
  const d = c5.drain()
  assert.equal(d.length, 1)
  assert.equal(d[0]!.type, PacketType.Disconnect)
  assert.equal(d[0]!.raw[2], ReasonCode.ServerShuttingDown)
  assert.deepEqual(c4.drain(), [])
})

test('MQTT 5.0 §3.2.2.3.6 v5: a packet over the broker\'s Maximum Packet Size gets DISCONNECT 0x95 and the close', async (t) => {
  const h = setup(t, { maxPacketSize: 1024 })
  const c = h.raw(5)
  const ack = await c.connect({ clientId: 'big' })
  assert.equal(ack.properties?.maximumPacketSize, 1024)
  c.publish('big/t', Buffer.alloc(2000))
  await c.expectProtocolClose([ReasonCode.PacketTooLarge])
})

test('v5: UNSUBSCRIBE of a filter that was never subscribed answers 0x11; of an existing one 0x00', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'c' })
  await c.subscribe('u/a')
  const un = await c.unsubscribe(['u/a', 'u/b', 'u/a'])
  assert.deepEqual(un.reasonCodes, [0x00, ReasonCode.NoSubscriptionExisted, ReasonCode.NoSubscriptionExisted])
})

test('v5: SUBSCRIBE with user properties is accepted; SUBACK echoes the packet id', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'c' })
  c.sendRaw(packet(0x82, u16(99), props(prop.pair('k', 'v')), utf8('up/t'), 0x01))
  const s = await c.next(PacketType.Suback)
  assert.equal(s.packetId, 99)
  assert.deepEqual(s.reasonCodes, [1])
})

test('v5: a retained PUBLISH sent through a topic alias is stored under the full topic name', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'c' })
  c.publish('alias/ret', 'first', { properties: { topicAlias: 2 } })
  c.publish('', 'kept', { retain: true, qos: 1, properties: { topicAlias: 2 } })
  await c.waitFor(PacketType.Puback)
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('alias/#')
  const m = await sub.publishOn('alias/ret')
  assert.deepEqual([m.payload.toString(), m.retain], ['kept', true])
  assert.equal(m.properties?.topicAlias, undefined)
})

test('[MQTT-3.3.4-3] v5: a shared subscription\'s Subscription Identifier is sent with its deliveries', async (t) => {
  const h = setup(t)
  const a = await h.client(5, { clientId: 'a' })
  await a.subscribe('$share/g/sid/t', { id: 33 })
  const pub = await h.client(5, { clientId: 'pub' })
  pub.publish('sid/t', 'x')
  const m = await a.publishOn('sid/t')
  assert.deepEqual(m.properties?.subscriptionIdentifiers, [33])
})

test('[MQTT-3.3.2-12] v5: outbound topic aliases up to the client\'s Topic Alias Maximum; later messages carry the alias and an empty topic; once all are used the least recently assigned is re-mapped, with the topic', async (t) => {
  const h = setup(t)
  const sub = await h.client(5, { clientId: 'alias-sub', properties: { topicAliasMaximum: 2 } })
  await sub.subscribe('oa/#')
  const pub = await h.client(5, { clientId: 'alias-pub' })
  for (const topic of ['oa/a', 'oa/b', 'oa/a', 'oa/c', 'oa/b', 'oa/c']) pub.publish(topic, topic)
  const got: Array<[string, number | undefined, string]> = []
  for (let i = 0; i < 6; i++) {
    const m = await sub.waitFor(PacketType.Publish)
    got.push([m.topic, m.properties?.topicAlias, m.payload.toString()])
  }
  assert.deepEqual(got, [
    ['oa/a', 1, 'oa/a'], ['oa/b', 2, 'oa/b'], ['', 1, 'oa/a'],
    ['oa/c', 1, 'oa/c'], ['', 2, 'oa/b'], ['', 1, 'oa/c'],
  ])
})
