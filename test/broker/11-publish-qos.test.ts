/**
 * PUBLISH and its acknowledgements (MQTT 3.1.1 section 3.3-3.7 and 4.3, MQTT 5.0 the same): the QoS 0/1/2
 * flows in both directions, exactly-once on duplicates, PUBREL for an unknown id, QoS downgrade to the
 * subscription's QoS, packet identifiers, ordering. Every flow runs for 3.1.1 and 5.0 (as mosquitto's
 * test/broker suite runs v4 then v5).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode, type QoS } from '../../src/protocol/constants.js'
import { setup } from '../helpers/broker-harness.js'
import { packet, utf8, u16 } from '../helpers/wire.js'

const versions = [4, 5] as const

for (const v of versions) {
  test(`[MQTT-3.3.1-2] v${v}: QoS 0 is delivered as QoS 0 with DUP 0 and no packet identifier`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('q0/t', { qos: 2 })
    const pub = await h.client(v, { clientId: 'pub' })
    pub.publish('q0/t', 'zero')
    const m = await sub.publishOn('q0/t')
    assert.equal(m.qos, 0)
    assert.equal(m.dup, false)
    assert.equal(m.payload.toString(), 'zero')
    const raw = sub.history.at(-1)!.raw
    assert.equal(raw[0], 0x30, 'fixed header: PUBLISH, no flags')
  })

  test(`[MQTT-3.3.4-1] [MQTT-4.3.2-4] v${v}: QoS 1 from a client is answered with PUBACK carrying its packet id`, async (t) => {
    const h = setup(t)
    const pub = await h.client(v, { clientId: 'pub' })
    pub.publish('q1/in', 'x', { qos: 1, packetId: 0x1234 })
    const f = await pub.nextFrame()
    assert.equal(f.raw[0], 0x40)
    assert.deepEqual([...f.raw.subarray(2, 4)], [0x12, 0x34])
    if (v === 4) assert.deepEqual([...f.raw], [0x40, 0x02, 0x12, 0x34])
    else assert.equal((f.packet as { reasonCode: number }).reasonCode, ReasonCode.NoMatchingSubscribers)
  })

  test(`[MQTT-4.3.2-1] [MQTT-4.3.2-2] v${v}: QoS 1 to a subscriber carries a fresh packet id and is forgotten after PUBACK`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('q1/t', { qos: 1 })
    const pub = await h.client(v, { clientId: 'pub' })
    await pub.publishAcked('q1/t', 'one', { qos: 1 })
    const m = await sub.publishOn('q1/t')
    assert.equal(m.qos, 1)
    assert.equal(m.dup, false)
    assert.ok(m.packetId > 0)
    sub.send({ type: PacketType.Puback, packetId: m.packetId, reasonCode: 0 })
    await sub.expectNothing(PacketType.Publish, 'no resend on the same connection after PUBACK')
  })

  test(`[MQTT-4.3.3-1] v${v}: QoS 2 from a client: PUBREC, then PUBCOMP for the PUBREL (PUBREL flags 0x62 accepted)`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('q2/in', { qos: 2 })
    const pub = await h.client(v, { clientId: 'pub' })
    pub.publish('q2/in', 'two', { qos: 2, packetId: 9 })
    const rec = await pub.nextFrame()
    assert.equal(rec.raw[0], 0x50)
    assert.deepEqual([...rec.raw.subarray(2, 4)], [0x00, 0x09])
    pub.sendRaw(packet(0x62, u16(9)))
    const comp = await pub.nextFrame()
    assert.equal(comp.raw[0], 0x70)
    assert.deepEqual([...comp.raw.subarray(2, 4)], [0x00, 0x09])
    if (v === 4) assert.equal(comp.raw.length, 4)
    const m = await sub.publishOn('q2/in')
    assert.equal(m.qos, 2)
  })

  test(`[MQTT-4.3.3-3] [MQTT-4.3.3-5] v${v}: QoS 2 to a subscriber: PUBLISH, PUBREC -> PUBREL (0x62), PUBCOMP`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('q2/out', { qos: 2 })
    const pub = await h.client(v, { clientId: 'pub' })
    await pub.publishAcked('q2/out', 'two', { qos: 2 })
    const m = await sub.publishOn('q2/out')
    assert.equal(m.qos, 2)
    assert.ok(m.packetId > 0)
    sub.send({ type: PacketType.Pubrec, packetId: m.packetId, reasonCode: 0 })
    const relFrame = await sub.nextFrame()
    assert.equal(relFrame.raw[0], 0x62, 'PUBREL fixed header flags are 0010 [MQTT-3.6.1-1]')
    assert.deepEqual([...relFrame.raw.subarray(2, 4)], [m.packetId >> 8, m.packetId & 0xff])
    sub.send({ type: PacketType.Pubcomp, packetId: m.packetId, reasonCode: 0 })
    await sub.expectNothing(undefined, 'the exchange is complete')
  })

  test(`[MQTT-4.3.3-10] v${v}: a resent QoS 2 PUBLISH before PUBREL gets PUBREC again and is delivered once`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('dup/t', { qos: 0 })
    const pub = await h.client(v, { clientId: 'pub' })
    pub.publish('dup/t', 'once', { qos: 2, packetId: 5 })
    await pub.waitFor(PacketType.Pubrec, (a) => a.packetId === 5)
    pub.publish('dup/t', 'once', { qos: 2, packetId: 5, dup: true })
    await pub.waitFor(PacketType.Pubrec, (a) => a.packetId === 5)
    pub.publish('dup/t', 'once', { qos: 2, packetId: 5, dup: true })
    await pub.waitFor(PacketType.Pubrec, (a) => a.packetId === 5)
    pub.send({ type: PacketType.Pubrel, packetId: 5, reasonCode: 0 })
    await pub.waitFor(PacketType.Pubcomp, (a) => a.packetId === 5)
    await pub.sync()
    await sub.sync()
    assert.equal(sub.pending(PacketType.Publish).length, 1, 'delivered exactly once')
    // after PUBREL the id is free: the same id now carries a new message
    sub.drain()
    await pub.publishAcked('dup/t', 'again', { qos: 2, packetId: 5 })
    const m = await sub.publishOn('dup/t')
    assert.equal(m.payload.toString(), 'again')
  })

  test(`[MQTT-4.3.3-11] v${v}: PUBREL for an unknown packet id is still answered with PUBCOMP`, async (t) => {
    const h = setup(t)
    const c = await h.client(v, { clientId: 'c' })
    c.send({ type: PacketType.Pubrel, packetId: 77, reasonCode: 0 })
    const comp = await c.next(PacketType.Pubcomp)
    assert.equal(comp.packetId, 77)
    if (v === 5) assert.equal(comp.reasonCode, ReasonCode.PacketIdentifierNotFound)
    else assert.equal(comp.reasonCode, 0)
    await c.sync()
  })

  test(`v${v}: a PUBACK or PUBCOMP for an unknown packet id is ignored (the connection stays up)`, async (t) => {
    const h = setup(t)
    const c = await h.client(v, { clientId: 'c' })
    c.send({ type: PacketType.Puback, packetId: 11, reasonCode: 0 })
    c.send({ type: PacketType.Pubcomp, packetId: 12, reasonCode: 0 })
    await c.sync()
    assert.equal(c.closed, false)
  })

  test(`[MQTT-3.8.4-8] [MQTT-3.3.5-1] v${v}: delivery QoS is min(published QoS, granted QoS)`, async (t) => {
    const h = setup(t)
    const subs = []
    for (const q of [0, 1, 2] as const) {
      const s = await h.client(v, { clientId: `sub${q}` })
      await s.subscribe('down/t', { qos: q })
      subs.push(s)
    }
    const pub = await h.client(v, { clientId: 'pub' })
    for (const pq of [0, 1, 2] as const) {
      await pub.publishAcked('down/t', `p${pq}`, { qos: pq })
      for (const sq of [0, 1, 2] as const) {
        const m = await subs[sq]!.publishOn('down/t')
        assert.equal(m.payload.toString(), `p${pq}`)
        assert.equal(m.qos, Math.min(pq, sq) as QoS, `published ${pq}, granted ${sq}`)
        await subs[sq]!.ack(m)
      }
    }
  })

  test(`[MQTT-2.3.1-2] [MQTT-2.3.1-4] v${v}: unacknowledged QoS 1/2 deliveries carry distinct non-zero packet ids`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('ids/t', { qos: 2 })
    const pub = await h.client(v, { clientId: 'pub' })
    for (let i = 0; i < 6; i++) await pub.publishAcked('ids/t', String(i), { qos: (1 + (i % 2)) as QoS })
    const ids = new Set<number>()
    for (let i = 0; i < 6; i++) {
      const m = await sub.publishOn('ids/t')
      assert.ok(m.packetId >= 1 && m.packetId <= 65535)
      ids.add(m.packetId)
    }
    assert.equal(ids.size, 6)
  })

  test(`[MQTT-4.6.0-6] v${v}: messages on a topic are delivered in the order published, per QoS level`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('order/#', { qos: 2 })
    const pub = await h.client(v, { clientId: 'pub' })
    const sent: string[][] = [[], [], []]
    for (let i = 0; i < 45; i++) {
      const q = (i % 3) as QoS
      pub.publish('order/t', String(i), { qos: q })
      sent[q]!.push(String(i))
    }
    const got: string[][] = [[], [], []]
    for (let i = 0; i < 45; i++) {
      const m = await sub.publishOn('order/t')
      got[m.qos]!.push(m.payload.toString())
      await sub.ack(m)
    }
    assert.deepEqual(got, sent)
  })

  test(`[MQTT-3.3.2-3] v${v}: the topic name delivered is the one published, not the subscription's filter`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('name/+/x')
    const pub = await h.client(v, { clientId: 'pub' })
    pub.publish('name/ümlaut €/x', 'u')
    const m = await sub.waitFor(PacketType.Publish)
    assert.equal(m.topic, 'name/ümlaut €/x')
  })

  test(`v${v}: payloads are delivered byte for byte (empty, binary, 300 kB)`, async (t) => {
    const h = setup(t)
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('bin/t', { qos: 1 })
    const pub = await h.client(v, { clientId: 'pub' })
    const big = Buffer.alloc(300_000)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff
    for (const payload of [Buffer.alloc(0), Buffer.from([0, 255, 0x80, 0xc0, 0]), big]) {
      await pub.publishAcked('bin/t', payload, { qos: 1 })
      const m = await sub.publishOn('bin/t')
      assert.ok(m.payload.equals(payload))
      await sub.ack(m)
    }
  })
}

test('[MQTT-3.3.1-3] a message published with DUP=1 is delivered with DUP=0 (DUP is per hop)', async (t) => {
  const h = setup(t)
  const sub = await h.client(4, { clientId: 'sub' })
  await sub.subscribe('dupflag/t', { qos: 1 })
  const pub = await h.client(4, { clientId: 'pub' })
  pub.publish('dupflag/t', 'x', { qos: 1, dup: true })
  await pub.next(PacketType.Puback)
  const m = await sub.publishOn('dupflag/t')
  assert.equal(m.dup, false)
})

test('[MQTT-3.2.2-9] v5: Maximum QoS 1 is announced; a QoS 2 PUBLISH gets DISCONNECT 0x9B; SUBSCRIBE QoS 2 is granted 1', async (t) => {
  const h = setup(t, { maxQos: 1 })
  const c = h.raw(5)
  const ack = await c.connect({ clientId: 'mq' })
  assert.equal(ack.properties?.maximumQoS, 1)
  const sub = await c.subscribe('mq/t', { qos: 2 })
  assert.deepEqual(sub.reasonCodes, [1])
  c.publish('mq/t', 'x', { qos: 2 })
  await c.expectProtocolClose([ReasonCode.QoSNotSupported])
})

test('v5: PUBACK says 0x10 No matching subscribers when nobody subscribed, 0x00 otherwise', async (t) => {
  const h = setup(t)
  const pub = await h.client(5, { clientId: 'pub' })
  assert.equal((await pub.publishAcked('nobody/t', 'x', { qos: 1 }))?.reasonCode, ReasonCode.NoMatchingSubscribers)
  assert.equal((await pub.publishAcked('nobody/t', 'x', { qos: 2 }))?.reasonCode, 0, 'PUBCOMP')
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('nobody/#')
  assert.equal((await pub.publishAcked('nobody/t', 'x', { qos: 1 }))?.reasonCode, 0)
})

test('v5: a PUBREC with a failure reason ends the QoS 2 exchange: no PUBREL, the id is freed', async (t) => {
  const h = setup(t, { maxInflightMessages: 1 })
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('recfail/t', { qos: 2 })
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('recfail/t', 'a', { qos: 2 })
  await pub.publishAcked('recfail/t', 'b', { qos: 2 })
  const a = await sub.publishOn('recfail/t')
  assert.equal(a.payload.toString(), 'a')
  await sub.expectNothing(PacketType.Publish, 'window of 1 is full')
  sub.send({ type: PacketType.Pubrec, packetId: a.packetId, reasonCode: ReasonCode.ImplementationSpecificError })
  const b = await sub.publishOn('recfail/t')
  assert.equal(b.payload.toString(), 'b')
  assert.equal(sub.pending(PacketType.Pubrel).length, 0)
})

test('a client PUBLISH to $SYS is not distributed (mosquitto behaviour)', async (t) => {
  const h = setup(t)
  const sub = await h.client(4, { clientId: 'sub' })
  await sub.subscribe('$SYS/#')
  const pub = await h.client(4, { clientId: 'pub' })
  pub.sendRaw(packet(0x30, utf8('$SYS/fake'), 0x41))
  await pub.sync()
  await sub.expectNothing(PacketType.Publish)
})

test('a PUBREC for an unknown packet id is answered with PUBREL (v5: reason 0x92) so the client can finish', async (t) => {
  const h = setup(t)
  const c5 = await h.client(5, { clientId: 'c5' })
  c5.send({ type: PacketType.Pubrec, packetId: 500, reasonCode: 0 })
  const rel5 = await c5.next(PacketType.Pubrel)
  assert.deepEqual([rel5.packetId, rel5.reasonCode], [500, ReasonCode.PacketIdentifierNotFound])
  const c4 = await h.client(4, { clientId: 'c4' })
  c4.send({ type: PacketType.Pubrec, packetId: 501, reasonCode: 0 })
  const f = await c4.nextFrame()
  assert.deepEqual([...f.raw], [0x62, 0x02, 0x01, 0xf5])
})
