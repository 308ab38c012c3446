/**
 * SUBSCRIBE / UNSUBSCRIBE and routing (MQTT 3.1.1 sections 3.8-3.11, 4.7; MQTT 5.0 the same plus 4.8):
 * SUBACK codes, wildcards and '$' topics, overlapping subscriptions, v5 subscription options (No Local,
 * Retain As Published, subscription identifiers) and shared subscriptions.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import { setup, type TestClient } from '../helpers/broker-harness.js'
import { packet, utf8, u16, props, prop } from '../helpers/wire.js'

/** Publishes each topic (QoS 0) and returns the topics `sub` received, sorted. */
async function received (pub: TestClient, sub: TestClient, topics: string[]): Promise<string[]> {
  for (const topic of topics) pub.publish(topic, topic)
  await pub.sync()
  await sub.sync()
  return sub.drain().filter((f) => f.type === PacketType.Publish).map((f) => (f.packet as { topic: string }).topic).sort()
}

for (const v of [4, 5] as const) {
  test(`[MQTT-3.8.4-2] [MQTT-3.9.3-1] v${v}: SUBACK has the SUBSCRIBE's packet id and one code per filter, in order`, async (t) => {
    const h = setup(t)
    const c = await h.client(v, { clientId: 'c' })
    c.send({
      type: PacketType.Subscribe,
      packetId: 0x0102,
      subscriptions: [
        { topicFilter: 'a/2', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { topicFilter: 'a/0', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { topicFilter: 'a/#/bad', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { topicFilter: 'a/1', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    })
    const f = await c.nextFrame()
    assert.equal(f.raw[0], 0x90)
    assert.deepEqual([...f.raw.subarray(2, 4)], [0x01, 0x02])
    const failure = v === 5 ? ReasonCode.TopicFilterInvalid : 0x80
    if (v === 4) assert.deepEqual([...f.raw], [0x90, 0x06, 0x01, 0x02, 0x02, 0x00, failure, 0x01])
    else assert.deepEqual((f.packet as { reasonCodes: number[] }).reasonCodes, [2, 0, failure, 1])
  })

  test(`[MQTT-4.7.1-2] [MQTT-4.7.1-3] v${v}: '#' matches the parent and all children, '+' exactly one level`, async (t) => {
    const h = setup(t)
    const pub = await h.client(v, { clientId: 'pub' })
    const topics = ['sport', 'sport/', 'sport/tennis', 'sport/tennis/p1', 'sport/tennis/p1/rank', 'sports', '/sport', 'x/sport/tennis']
    const hash = await h.client(v, { clientId: 'hash' })
    await hash.subscribe('sport/#')
    assert.deepEqual(await received(pub, hash, topics), ['sport', 'sport/', 'sport/tennis', 'sport/tennis/p1', 'sport/tennis/p1/rank'])
    const plus = await h.client(v, { clientId: 'plus' })
    await plus.subscribe('sport/+')
    assert.deepEqual(await received(pub, plus, topics), ['sport/', 'sport/tennis'])
    const mid = await h.client(v, { clientId: 'mid' })
    await mid.subscribe('+/tennis/#')
    assert.deepEqual(await received(pub, mid, topics), ['sport/tennis', 'sport/tennis/p1', 'sport/tennis/p1/rank'])
    const lead = await h.client(v, { clientId: 'lead' })
    await lead.subscribe('+/+')
    assert.deepEqual(await received(pub, lead, topics), ['/sport', 'sport/', 'sport/tennis'])
    const all = await h.client(v, { clientId: 'all' })
    await all.subscribe('#')
    assert.deepEqual(await received(pub, all, topics), [...topics].sort())
  })

  test(`[MQTT-4.7.2-1] v${v}: filters starting with a wildcard do not match '$' topics; '$SYS/#' does`, async (t) => {
    const h = setup(t)
    const hash = await h.client(v, { clientId: 'hash' })
    await hash.subscribe(['#', '+/broker/#', '+/+'])
    const sys = await h.client(v, { clientId: 'sys' })
    await sys.subscribe('$SYS/#')
    h.broker.publish('$SYS/broker/uptime', Buffer.from('1'), 0, false, undefined)
    h.broker.publish('$other/x', Buffer.from('1'), 0, false, undefined)
    await hash.expectNothing(PacketType.Publish)
    const m = await sys.publishOn('$SYS/broker/uptime')
    assert.equal(m.payload.toString(), '1')
  })

  test(`[MQTT-4.7.3-4] v${v}: topic matching is case sensitive and does not normalise spaces or slashes`, async (t) => {
    const h = setup(t)
    const pub = await h.client(v, { clientId: 'pub' })
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe(['Case/T', 'sp ace', 'a//b'])
    assert.deepEqual(await received(pub, sub, ['case/t', 'Case/T', 'sp ace', 'space', 'a//b', 'a/b']), ['Case/T', 'a//b', 'sp ace'])
  })

  test(`[MQTT-3.8.4-3] v${v}: an identical filter replaces the subscription (new QoS, one delivery)`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('rep/t', { qos: 0 })
    const again = await sub.subscribe('rep/t', { qos: 2 })
    assert.deepEqual(again.reasonCodes, [2])
    const pub = await h.client(v, { clientId: 'pub' })
    await pub.publishAcked('rep/t', 'x', { qos: 2 })
    const m = await sub.publishOn('rep/t')
    assert.equal(m.qos, 2)
    await sub.ack(m)
    await sub.expectNothing(PacketType.Publish, 'not delivered twice')
  })

  test(`[MQTT-3.3.5-1] [MQTT-3.3.4-2] v${v}: overlapping subscriptions give one delivery at the highest QoS`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('ov/#', { qos: 0 })
    await sub.subscribe('ov/+', { qos: 2 })
    await sub.subscribe('ov/t', { qos: 1 })
    const pub = await h.client(v, { clientId: 'pub' })
    await pub.publishAcked('ov/t', 'x', { qos: 2 })
    const m = await sub.publishOn('ov/t')
    assert.equal(m.qos, 2)
    await sub.ack(m)
    await sub.expectNothing(PacketType.Publish)
  })

  test(`[MQTT-3.10.4-4] [MQTT-3.10.4-5] [MQTT-3.10.4-2] v${v}: UNSUBSCRIBE is answered with UNSUBACK (same id) and stops delivery`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe(['un/a', 'un/b'], { qos: 1 })
    sub.send({ type: PacketType.Unsubscribe, packetId: 0x0a0b, topicFilters: ['un/a', 'never/subscribed'] })
    const f = await sub.nextFrame()
    assert.equal(f.raw[0], 0xb0)
    assert.deepEqual([...f.raw.subarray(2, 4)], [0x0a, 0x0b])
    if (v === 4) assert.deepEqual([...f.raw], [0xb0, 0x02, 0x0a, 0x0b])
    else assert.deepEqual((f.packet as { reasonCodes: number[] }).reasonCodes, [0x00, ReasonCode.NoSubscriptionExisted], '[MQTT-3.11.3-1]')
    const pub = await h.client(v, { clientId: 'pub' })
    assert.deepEqual(await received(pub, sub, ['un/a', 'un/b']), ['un/b'])
  })

  test(`[MQTT-3.8.3-1] v${v}: invalid filters get a failure code and the others are still granted`, async (t) => {
    const h = setup(t)
    const c = await h.client(v, { clientId: 'c' })
    const bad = ['a/#/b', 'a+', 'a/b#', '+a/b', '$share/g', '$share//t', '$share/g+/t']
    const sub = await c.subscribe([...bad, 'ok/+'], { qos: 1 })
    const failure = v === 5 ? ReasonCode.TopicFilterInvalid : 0x80
    assert.deepEqual(sub.reasonCodes, [...bad.map(() => failure), 1])
    await c.sync()
  })
}

test('[MQTT-3.3.4-3] [MQTT-3.3.4-4] v5: one delivery for overlapping subscriptions carries every Subscription Identifier', async (t) => {
  const h = setup(t)
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('sid/#', { qos: 1 }, { subscriptionIdentifiers: [1] })
  await sub.subscribe('sid/+', { qos: 0, id: 2 })
  await sub.subscribe('sid/t', { qos: 0 }) // no identifier
  await sub.subscribe('other/#', { qos: 0, id: 268_435_455 })
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('sid/t', 'x', { qos: 1 })
  const m = await sub.publishOn('sid/t')
  assert.equal(m.qos, 1)
  assert.deepEqual([...(m.properties?.subscriptionIdentifiers ?? [])].sort((a, b) => a - b), [1, 2])
  await sub.ack(m)
  await sub.expectNothing(PacketType.Publish)
  await pub.publishAcked('other/x', 'y', { qos: 0 })
  const o = await sub.publishOn('other/x')
  assert.deepEqual(o.properties?.subscriptionIdentifiers, [268_435_455], 'largest identifier is carried as a 4-byte VBI')
})

test('v5: a delivery through a subscription without an identifier carries no Subscription Identifier', async (t) => {
  const h = setup(t)
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('noid/t')
  const pub = await h.client(5, { clientId: 'pub' })
  pub.publish('noid/t', 'x')
  const m = await sub.publishOn('noid/t')
  assert.equal(m.properties?.subscriptionIdentifiers, undefined)
})

test('[MQTT-3.8.3-3] v5: No Local: own messages are not delivered back; others\' are', async (t) => {
  const h = setup(t)
  const a = await h.client(5, { clientId: 'a' })
  await a.subscribe('nl/t', { noLocal: true, qos: 1 })
  await a.publishAcked('nl/t', 'mine', { qos: 1 })
  await a.expectNothing(PacketType.Publish)
  const b = await h.client(5, { clientId: 'b' })
  await b.publishAcked('nl/t', 'theirs', { qos: 1 })
  const m = await a.publishOn('nl/t')
  assert.equal(m.payload.toString(), 'theirs')
})

test('[MQTT-3.8.3-3] v5: No Local on one subscription does not hide a message matched by another without it', async (t) => {
  const h = setup(t)
  const a = await h.client(5, { clientId: 'a' })
  await a.subscribe('nl2/t', { noLocal: true })
  await a.subscribe('nl2/#', { noLocal: false })
  a.publish('nl2/t', 'mine')
  const m = await a.publishOn('nl2/t')
  assert.equal(m.payload.toString(), 'mine')
})

test('[MQTT-3.8.3-4] v5: No Local on a shared subscription is a Protocol Error (DISCONNECT 0x82)', async (t) => {
  const h = setup(t)
  const a = await h.client(5, { clientId: 'a' })
  a.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: '$share/g/t', qos: 0, noLocal: true, retainAsPublished: false, retainHandling: 0 }] })
  await a.expectProtocolClose([ReasonCode.ProtocolError])
})

test('[MQTT-3.3.1-12] [MQTT-3.3.1-13] v5: Retain As Published keeps RETAIN on live delivery; without it RETAIN is 0', async (t) => {
  const h = setup(t)
  const rap = await h.client(5, { clientId: 'rap' })
  await rap.subscribe('rap/t', { retainAsPublished: true })
  const plain = await h.client(5, { clientId: 'plain' })
  await plain.subscribe('rap/t')
  const pub = await h.client(5, { clientId: 'pub' })
  pub.publish('rap/t', 'r', { retain: true })
  pub.publish('rap/t', 'n', { retain: false })
  const r1 = await rap.publishOn('rap/t')
  const r2 = await rap.publishOn('rap/t')
  assert.deepEqual([r1.payload.toString(), r1.retain, r2.payload.toString(), r2.retain], ['r', true, 'n', false])
  const p1 = await plain.publishOn('rap/t')
  const p2 = await plain.publishOn('rap/t')
  assert.deepEqual([p1.retain, p2.retain], [false, false])
  assert.equal(plain.history.at(-2)!.raw[0], 0x30, 'fixed header RETAIN bit clear')
})

test('v5: the subscription options byte is honoured when written by hand (No Local 0x04 | RAP 0x08 | RH 2 0x20 | QoS 1)', async (t) => {
  const h = setup(t)
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('opt/t', 'kept', { qos: 1, retain: true })
  const c = await h.client(5, { clientId: 'c' })
  c.sendRaw(packet(0x82, u16(3), props(), utf8('opt/t'), 0x2d))
  const ack = await c.next(PacketType.Suback)
  assert.deepEqual(ack.reasonCodes, [1])
  await c.expectNothing(PacketType.Publish, 'Retain Handling 2: no retained message')
  c.publish('opt/t', 'own', { qos: 1, retain: true })
  await c.waitFor(PacketType.Puback)
  await c.expectNothing(PacketType.Publish, 'No Local')
  pub.publish('opt/t', 'live', { retain: true })
  const m = await c.publishOn('opt/t')
  assert.equal(m.retain, true, 'Retain As Published')
})

for (const v of [4, 5] as const) {
  test(`MQTT 5.0 §4.8.2 v${v}: a shared subscription delivers each message to one member, round robin`, async (t) => {
    const h = setup(t)
    const a = await h.client(v, { clientId: 'a' })
    const b = await h.client(v, { clientId: 'b' })
    assert.deepEqual((await a.subscribe('$share/g/sh/t', { qos: 1 })).reasonCodes, [1])
    assert.deepEqual((await b.subscribe('$share/g/sh/t', { qos: 1 })).reasonCodes, [1])
    const pub = await h.client(v, { clientId: 'pub' })
    for (let i = 0; i < 10; i++) await pub.publishAcked('sh/t', String(i), { qos: 1 })
    await a.sync()
    await b.sync()
    const ga = a.pending(PacketType.Publish)
    const gb = b.pending(PacketType.Publish)
    assert.equal(ga.length + gb.length, 10, 'each message exactly once')
    assert.equal(ga.length, 5)
    assert.equal(gb.length, 5)
    for (const m of [...ga, ...gb]) assert.equal(m.topic, 'sh/t', 'delivered with the real topic name')
  })

  test(`MQTT 5.0 §4.8.2 v${v}: each share group and each plain subscriber gets its own copy`, async (t) => {
    const h = setup(t)
    const g1 = await h.client(v, { clientId: 'g1' })
    await g1.subscribe('$share/one/multi/#')
    const g2 = await h.client(v, { clientId: 'g2' })
    await g2.subscribe('$share/two/multi/+')
    const plain = await h.client(v, { clientId: 'plain' })
    await plain.subscribe('multi/x')
    const pub = await h.client(v, { clientId: 'pub' })
    pub.publish('multi/x', 'm')
    for (const c of [g1, g2, plain]) assert.equal((await c.publishOn('multi/x')).payload.toString(), 'm')
  })
}

test('MQTT 5.0 §3.8.4 v5: shared subscriptions get no retained messages when made', async (t) => {
  const h = setup(t)
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('shr/t', 'kept', { qos: 1, retain: true })
  const a = await h.client(5, { clientId: 'a' })
  await a.subscribe('$share/g/shr/t', { qos: 1 })
  await a.expectNothing(PacketType.Publish)
})

test('v5: a shared subscriber that leaves stops getting messages; the other member gets all', async (t) => {
  const h = setup(t)
  const a = await h.client(5, { clientId: 'a' })
  const b = await h.client(5, { clientId: 'b' })
  await a.subscribe('$share/g/lv/t')
  await b.subscribe('$share/g/lv/t')
  const un = await b.unsubscribe('$share/g/lv/t')
  assert.deepEqual(un.reasonCodes, [0])
  const pub = await h.client(5, { clientId: 'pub' })
  for (let i = 0; i < 4; i++) pub.publish('lv/t', String(i))
  await pub.sync()
  await a.sync()
  await b.sync()
  assert.equal(a.pending(PacketType.Publish).length, 4)
  assert.equal(b.pending(PacketType.Publish).length, 0)
})

test('v5: SUBSCRIBE with a Subscription Identifier of 0 is a Protocol Error', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'c' })
  c.sendRaw(packet(0x82, u16(1), props(prop.vbi(0x0b, 0)), utf8('z/t'), 0x00))
  await c.expectProtocolClose([ReasonCode.ProtocolError])
})

test('[MQTT-3.10.4-1] UNSUBSCRIBE compares filters character by character; a wildcard does not remove narrower filters', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'c' })
  await c.subscribe(['w/+', 'w/b'])
  const un = await c.unsubscribe(['w/#', 'W/b', 'w/+/'])
  assert.deepEqual(un.reasonCodes, [ReasonCode.NoSubscriptionExisted, ReasonCode.NoSubscriptionExisted, ReasonCode.NoSubscriptionExisted])
  const pub = await h.client(5, { clientId: 'pub' })
  pub.publish('w/b', 'x')
  await c.publishOn('w/b')
})

test('[MQTT-3.10.4-3] v5: after UNSUBSCRIBE an in-flight QoS 2 delivery is still completed', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'c' })
  await c.subscribe('inf/t', { qos: 2 })
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('inf/t', 'x', { qos: 2 })
  const m = await c.publishOn('inf/t')
  await c.unsubscribe('inf/t')
  c.send({ type: PacketType.Pubrec, packetId: m.packetId, reasonCode: 0 })
  const rel = await c.waitFor(PacketType.Pubrel)
  assert.deepEqual([rel.packetId, rel.reasonCode], [m.packetId, 0])
  c.send({ type: PacketType.Pubcomp, packetId: m.packetId, reasonCode: 0 })
  await c.expectNothing()
})

test('a 3.1.1 bridge connecting with the private bridge flag (try_private) is not sent its own messages back', async (t) => {
  const h = setup(t)
  const bridge = h.raw(4)
  await bridge.connect({ clientId: 'bridge-1', bridge: true })
  await bridge.subscribe('b/#', { qos: 1 })
  const other = await h.client(4, { clientId: 'other' })
  await other.subscribe('b/#')
  bridge.publish('b/from-bridge', 'x', { qos: 1, packetId: 7 })
  await other.waitFor(PacketType.Publish, (p) => p.topic === 'b/from-bridge')
  await bridge.expectNothing(PacketType.Publish, 'its own message')
})
