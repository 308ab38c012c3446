/**
 * Retained messages through the broker (MQTT 3.1.1 section 3.3.1.3, MQTT 5.0 section 3.3.1.3 and the
 * Retain Handling option of 3.8.3.1): set, replace, clear, wildcard delivery with RETAIN=1, normal
 * delivery with RETAIN=0, QoS of retained deliveries, expiry of retained messages.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import { setup, FakeClock } from '../helpers/broker-harness.js'

for (const v of [4, 5] as const) {
  test(`[MQTT-3.3.1-5] [MQTT-3.3.1-8] v${v}: a retained message is stored and sent to a new subscriber with RETAIN=1`, async (t) => {
    const h = setup(t)
    const pub = await h.client(v, { clientId: 'pub' })
    await pub.publishAcked('ret/t', 'kept', { qos: 1, retain: true })
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('ret/t', { qos: 1 })
    const m = await sub.publishOn('ret/t')
    assert.equal(m.retain, true)
    assert.equal(m.payload.toString(), 'kept')
    assert.equal(sub.history.at(-1)!.raw[0]! & 0x01, 1, 'RETAIN bit in the fixed header')
  })

  test(`[MQTT-3.3.1-9] (3.1.1) [MQTT-3.3.1-12] v${v}: a retained publish reaching an existing subscription is sent with RETAIN=0`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('live/t')
    const pub = await h.client(v, { clientId: 'pub' })
    pub.publish('live/t', 'x', { retain: true })
    const m = await sub.publishOn('live/t')
    assert.equal(m.retain, false)
  })

  test(`[MQTT-3.3.1-5] v${v}: a new retained message replaces the old one`, async (t) => {
    const h = setup(t)
    const pub = await h.client(v, { clientId: 'pub' })
    await pub.publishAcked('rep/t', 'first', { qos: 1, retain: true })
    await pub.publishAcked('rep/t', 'second', { qos: 0, retain: true })
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('rep/t', { qos: 1 })
    const m = await sub.publishOn('rep/t')
    assert.equal(m.payload.toString(), 'second')
    assert.equal(m.qos, 0, 'the QoS 0 retained message replaced the QoS 1 one')
    await sub.expectNothing(PacketType.Publish)
  })

  test(`[MQTT-3.3.1-10] [MQTT-3.3.1-11] (3.1.1) [MQTT-3.3.1-6] [MQTT-3.3.1-7] v${v}: an empty retained payload clears the topic and is delivered as normal`, async (t) => {
    const h = setup(t)
    const pub = await h.client(v, { clientId: 'pub' })
    await pub.publishAcked('clr/t', 'kept', { qos: 1, retain: true })
    const live = await h.client(v, { clientId: 'live' })
    await live.subscribe('clr/t')
    assert.equal((await live.publishOn('clr/t')).payload.toString(), 'kept')
    await pub.publishAcked('clr/t', '', { qos: 1, retain: true })
    const empty = await live.publishOn('clr/t')
    assert.equal(empty.payload.length, 0, 'existing subscribers get the zero-byte message')
    const late = await h.client(v, { clientId: 'late' })
    await late.subscribe('clr/#')
    await late.expectNothing(PacketType.Publish, 'nothing retained any more')
  })

  test(`[MQTT-3.3.1-8] (5.0) v${v}: a non-retained publish neither stores nor clears the retained message`, async (t) => {
    const h = setup(t)
    const pub = await h.client(v, { clientId: 'pub' })
    await pub.publishAcked('keep/t', 'kept', { qos: 1, retain: true })
    await pub.publishAcked('keep/t', 'live', { qos: 1, retain: false })
    await pub.publishAcked('keep/t', '', { qos: 1, retain: false })
    await pub.publishAcked('keep/other', 'live', { qos: 1, retain: false })
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('keep/#')
    const m = await sub.publishOn('keep/t')
    assert.equal(m.payload.toString(), 'kept')
    await sub.expectNothing(PacketType.Publish)
  })

  test(`[MQTT-3.3.1-6] (3.1.1) v${v}: a wildcard subscription gets every matching retained message, each with RETAIN=1`, async (t) => {
    const h = setup(t)
    const pub = await h.client(v, { clientId: 'pub' })
    for (const topic of ['w/a', 'w/b/c', 'w', 'wx', 'other/w']) await pub.publishAcked(topic, topic, { qos: 1, retain: true })
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('w/#')
    await sub.sync()
    const got = sub.pending(PacketType.Publish)
    assert.deepEqual(got.map((m) => m.topic).sort(), ['w', 'w/a', 'w/b/c'])
    for (const m of got) {
      assert.equal(m.retain, true)
      assert.equal(m.payload.toString(), m.topic)
    }
  })

  test(`[MQTT-3.8.4-8] v${v}: a retained message is sent at min(stored QoS, granted QoS)`, async (t) => {
    const h = setup(t)
    const pub = await h.client(v, { clientId: 'pub' })
    await pub.publishAcked('rq/two', '2', { qos: 2, retain: true })
    await pub.publishAcked('rq/zero', '0', { qos: 0, retain: true })
    const s1 = await h.client(v, { clientId: 's1' })
    await s1.subscribe('rq/+', { qos: 1 })
    const two = await s1.publishOn('rq/two')
    const zero = await s1.publishOn('rq/zero')
    assert.equal(two.qos, 1)
    assert.ok(two.packetId > 0)
    assert.equal(zero.qos, 0)
    await s1.ack(two)
    const s2 = await h.client(v, { clientId: 's2' })
    await s2.subscribe('rq/two', { qos: 2 })
    const full = await s2.publishOn('rq/two')
    assert.equal(full.qos, 2)
    await s2.ack(full)
  })

  test(`[MQTT-3.8.4-3] v${v}: re-subscribing with the same filter re-sends the retained messages (Retain Handling 0)`, async (t) => {
    const h = setup(t)
    const pub = await h.client(v, { clientId: 'pub' })
    await pub.publishAcked('again/t', 'kept', { qos: 1, retain: true })
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('again/t')
    await sub.publishOn('again/t')
    await sub.subscribe('again/t')
    const m = await sub.publishOn('again/t')
    assert.equal(m.retain, true)
  })

  test(`v${v}: retained messages on '$' topics are not sent to '#' [MQTT-4.7.2-1]`, async (t) => {
    const h = setup(t)
    h.broker.publish('$SYS/broker/version', Buffer.from('v'), 0, true, undefined)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe(['#', '+/broker/version'])
    await sub.expectNothing(PacketType.Publish)
    await sub.subscribe('$SYS/#')
    const m = await sub.publishOn('$SYS/broker/version')
    assert.equal(m.retain, true)
  })
}

test('[MQTT-3.3.1-9] v5: Retain Handling 0 sends retained messages at every subscribe', async (t) => {
  const h = setup(t)
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('rh/t', 'kept', { qos: 1, retain: true })
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('rh/t', { retainHandling: 0 })
  await sub.publishOn('rh/t')
  await sub.subscribe('rh/t', { retainHandling: 0 })
  await sub.publishOn('rh/t')
})

test('[MQTT-3.3.1-10] v5: Retain Handling 1 sends retained messages only if the subscription did not exist', async (t) => {
  const h = setup(t)
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('rh1/t', 'kept', { qos: 1, retain: true })
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('rh1/t', { retainHandling: 1 })
  assert.equal((await sub.publishOn('rh1/t')).retain, true)
  await sub.subscribe('rh1/t', { retainHandling: 1 })
  await sub.expectNothing(PacketType.Publish, 'the subscription already existed')
  await sub.unsubscribe('rh1/t')
  await sub.subscribe('rh1/t', { retainHandling: 1 })
  assert.equal((await sub.publishOn('rh1/t')).payload.toString(), 'kept', 'new again after UNSUBSCRIBE')
})

test('[MQTT-3.3.1-11] v5: Retain Handling 2 never sends retained messages at subscribe', async (t) => {
  const h = setup(t)
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('rh2/t', 'kept', { qos: 1, retain: true })
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('rh2/#', { retainHandling: 2 })
  await sub.expectNothing(PacketType.Publish)
  pub.publish('rh2/t', 'live')
  assert.equal((await sub.publishOn('rh2/t')).payload.toString(), 'live', 'live messages still flow')
})

test('[MQTT-3.3.1-8] (3.1.1) v5: a retained message sent because of a new subscription has RETAIN=1 even without Retain As Published', async (t) => {
  const h = setup(t)
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('rap0/t', 'kept', { qos: 1, retain: true })
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('rap0/t', { retainAsPublished: false })
  assert.equal((await sub.publishOn('rap0/t')).retain, true)
})

test('MQTT 5.0 §3.2.2.3.5 v5: with retain unavailable, CONNACK says Retain Available 0 and a retained PUBLISH gets DISCONNECT 0x9A', async (t) => {
  const h = setup(t, { retainAvailable: false })
  const c = h.raw(5)
  const ack = await c.connect({ clientId: 'noret' })
  assert.equal(ack.properties?.retainAvailable, 0)
  c.publish('noret/t', 'x', { retain: true })
  await c.expectProtocolClose([ReasonCode.RetainNotSupported])
})

test('[MQTT-3.3.2-5] v5: an expired retained message is no longer sent; a live one has its expiry counted down [MQTT-3.3.2-6]', async (t) => {
  const h = setup(t)
  const clock = new FakeClock(h.broker)
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('rexp/short', 's', { qos: 1, retain: true, properties: { messageExpiryInterval: 5 } })
  await pub.publishAcked('rexp/long', 'l', { qos: 1, retain: true, properties: { messageExpiryInterval: 100 } })
  clock.advance(10_000)
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('rexp/#')
  const m = await sub.publishOn('rexp/long')
  assert.equal(m.properties?.messageExpiryInterval, 90)
  await sub.expectNothing(PacketType.Publish, 'the expired retained message')
})

test('v3.1.1: a retained message published by a v5 client is delivered to a 3.1.1 subscriber without properties', async (t) => {
  const h = setup(t)
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('mix/t', 'kept', { qos: 1, retain: true, properties: { userProperties: [['k', 'v']], contentType: 'text/plain' } })
  const sub = await h.client(4, { clientId: 'sub' })
  await sub.subscribe('mix/t')
  const m = await sub.publishOn('mix/t')
  // 3.1.1 PUBLISH: 30, len, topic, payload, nothing else
  assert.deepEqual([...sub.history.at(-1)!.raw], [0x31, 2 + 5 + 4, 0x00, 0x05, ...Buffer.from('mix/t'), ...Buffer.from('kept')])
  assert.equal(m.payload.toString(), 'kept')
})

test('[MQTT-3.3.4-3] v5: a retained message sent at subscribe carries that subscription\'s identifier and its original properties', async (t) => {
  const h = setup(t)
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('rp/t', 'kept', {
    qos: 1,
    retain: true,
    properties: { userProperties: [['k', '1'], ['k', '2']], contentType: 'text/x', responseTopic: 'rp/resp', correlationData: Buffer.from('c') },
  })
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('rp/#', { qos: 1, id: 7 })
  const m = await sub.publishOn('rp/t')
  assert.deepEqual(m.properties?.subscriptionIdentifiers, [7])
  assert.deepEqual(m.properties?.userProperties, [['k', '1'], ['k', '2']])
  assert.equal(m.properties?.contentType, 'text/x')
  assert.equal(m.properties?.responseTopic, 'rp/resp')
  assert.equal(m.properties?.correlationData?.toString(), 'c')
})
