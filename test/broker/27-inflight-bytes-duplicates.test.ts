/**
 * Two mosquitto.conf(5) options of the delivery path, with Mosquitto 2.0's behaviour:
 *
 * max_inflight_bytes: outgoing QoS 1/2 messages go in flight until their payload bytes reach the limit;
 * further ones wait in the session queue (bounded by max_queued_*) until acknowledgements make room. The
 * check is made before a message is added, so one larger than the limit still goes, but alone. It combines
 * with max_inflight_messages: whichever is reached first holds the next message back.
 *
 * allow_duplicate_messages: with it, an MQTT 3 client whose subscriptions overlap gets one copy per matching
 * subscription, each at that subscription's QoS (what Mosquitto 2.0.11 does, measured with mosquitto_sub -V
 * mqttv311 -t 'foo/#' -t 'foo/+/baz'); without it (the default, as in Mosquitto 2.0) one copy at the highest
 * QoS [MQTT-3.3.5-1]. MQTT 5 clients get one copy with every Subscription Identifier either way.
 *
 * And the byte counters those limits sit beside: BrokerStats.bytesReceived / bytesSent ($SYS/broker/bytes/*).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType } from '../../src/protocol/constants.js'
import type { PublishPacket } from '../../src/protocol/packets.js'
import { setup, type TestClient } from '../helpers/broker-harness.js'

const payload = (n: number, tag: string): Buffer => Buffer.concat([Buffer.from(tag), Buffer.alloc(n - tag.length, 0x2e)])

/** Everything the subscriber has been sent so far (a PINGREQ round trip flushes it), as payload tags. */
async function received(c: TestClient): Promise<PublishPacket[]> {
  await c.sync()
  return c.pending(PacketType.Publish)
}

const tag = (p: PublishPacket): string => p.payload.toString().replace(/\.+$/, '')

describe('max_inflight_bytes', { concurrency: true }, () => {
  test('QoS 1 messages go in flight until their payload bytes reach the limit; the rest wait for PUBACKs', async (t) => {
    const h = setup(t, { maxInflightBytes: 250, maxInflightMessages: 0 })
    const sub = await h.client(4, { clientId: 'bytes-sub' })
    await sub.subscribe('ib/t', { qos: 1 })
    const pub = await h.client(4, { clientId: 'bytes-pub' })
    for (let i = 1; i <= 6; i++) await pub.publishAcked('ib/t', payload(100, `m${i}`), { qos: 1 })
    // 0 < 250, 100 < 250, 200 < 250: three go; at 300 bytes in flight the next waits.
    let got = await received(sub)
    assert.deepEqual(got.map(tag), ['m1', 'm2', 'm3'])
    sub.drain()
    sub.send({ type: PacketType.Puback, packetId: got[0]!.packetId, reasonCode: 0 })
    got = await received(sub)
    assert.deepEqual(got.map(tag), ['m4'], 'one PUBACK (200 bytes left in flight) lets exactly one more go')
    sub.drain()
    for (const p of [...got]) sub.send({ type: PacketType.Puback, packetId: p.packetId, reasonCode: 0 })
    got = await received(sub)
    assert.deepEqual(got.map(tag), ['m5'], 'still 200 bytes in flight: m5 goes, m6 waits behind it')
  })

  test('a message larger than the limit still goes, but alone (mosquitto.conf(5): limit 100, larger messages one at a time)', async (t) => {
    const h = setup(t, { maxInflightBytes: 100, maxInflightMessages: 0 })
    const sub = await h.client(4, { clientId: 'big-sub' })
    await sub.subscribe('ib/big', { qos: 1 })
    const pub = await h.client(4, { clientId: 'big-pub' })
    for (let i = 1; i <= 3; i++) await pub.publishAcked('ib/big', payload(500, `b${i}`), { qos: 1 })
    for (let i = 1; i <= 3; i++) {
      const got = await received(sub)
      assert.deepEqual(got.map(tag), [`b${i}`])
      sub.drain()
      sub.send({ type: PacketType.Puback, packetId: got[0]!.packetId, reasonCode: 0 })
    }
    assert.deepEqual((await received(sub)).length, 0)
  })

  test('QoS 2 messages count until PUBCOMP, and max_inflight_messages still applies with it (whichever is reached first)', async (t) => {
    const h = setup(t, { maxInflightBytes: 10_000, maxInflightMessages: 2 })
    const sub = await h.client(4, { clientId: 'q2-sub' })
    await sub.subscribe('ib/q2', { qos: 2 })
    const pub = await h.client(4, { clientId: 'q2-pub' })
    for (let i = 1; i <= 3; i++) await pub.publishAcked('ib/q2', payload(10, `c${i}`), { qos: 2 })
    const got = await received(sub)
    assert.deepEqual(got.map(tag), ['c1', 'c2'], 'the count limit (2) holds the third back although the bytes are far below 10000')
    sub.drain()
    sub.send({ type: PacketType.Pubrec, packetId: got[0]!.packetId, reasonCode: 0 })
    await sub.waitFor(PacketType.Pubrel, (r) => r.packetId === got[0]!.packetId)
    assert.deepEqual((await received(sub)).map(tag), [], 'PUBREC alone does not free the slot: the message is in flight until PUBCOMP')
    sub.send({ type: PacketType.Pubcomp, packetId: got[0]!.packetId, reasonCode: 0 })
    assert.deepEqual((await received(sub)).map(tag), ['c3'])
  })

  test('QoS 0 is not held back by it, and 0 (the default) means no byte limit', async (t) => {
    const h = setup(t, { maxInflightBytes: 50, maxInflightMessages: 0 })
    const sub = await h.client(4, { clientId: 'q0-sub' })
    await sub.subscribe('ib/q0', { qos: 0 })
    const pub = await h.client(4, { clientId: 'q0-pub' })
    for (let i = 1; i <= 5; i++) pub.publish('ib/q0', payload(100, `z${i}`))
    await pub.sync()
    assert.deepEqual((await received(sub)).map(tag), ['z1', 'z2', 'z3', 'z4', 'z5'])

    const h0 = setup(t, { maxInflightMessages: 0 })
    assert.equal(h0.broker.options.maxInflightBytes, 0)
    const sub0 = await h0.client(4, { clientId: 'nolimit-sub' })
    await sub0.subscribe('ib/n', { qos: 1 })
    const pub0 = await h0.client(4, { clientId: 'nolimit-pub' })
    for (let i = 1; i <= 5; i++) await pub0.publishAcked('ib/n', payload(100_000, `n${i}`), { qos: 1 })
    assert.equal((await received(sub0)).length, 5)
  })

  test('a reload (options changed at run time) applies from the next message', async (t) => {
    const h = setup(t, { maxInflightMessages: 0 })
    const sub = await h.client(4, { clientId: 'reload-sub' })
    await sub.subscribe('ib/r', { qos: 1 })
    const pub = await h.client(4, { clientId: 'reload-pub' })
    h.broker.options.maxInflightBytes = 1 // what a SIGHUP reload does
    for (let i = 1; i <= 3; i++) await pub.publishAcked('ib/r', payload(20, `r${i}`), { qos: 1 })
    assert.deepEqual((await received(sub)).map(tag), ['r1'])
  })
})

describe('allow_duplicate_messages', { concurrency: true }, () => {
  for (const version of [3, 4] as const) {
    test(`MQTT 3 (level ${version}): true gives one copy per matching subscription, each at its subscription's QoS`, async (t) => {
      const h = setup(t, { allowDuplicateMessages: true })
      const sub = await h.client(version, { clientId: `dup-${version}` })
      await sub.subscribe('foo/#', { qos: 0 })
      await sub.subscribe('foo/+/baz', { qos: 1 })
      const pub = await h.client(4, { clientId: `dup-pub-${version}` })
      await pub.publishAcked('foo/bar/baz', 'x', { qos: 1 })
      const got = await received(sub)
      assert.deepEqual(got.map((p) => [p.topic, p.qos]).sort(), [['foo/bar/baz', 0], ['foo/bar/baz', 1]])
      // A topic only one filter matches is sent once.
      sub.drain()
      await pub.publishAcked('foo/other', 'y', { qos: 1 })
      assert.equal((await received(sub)).length, 1)
    })
  }

  test('false (the default, as in Mosquitto 2.0): an MQTT 3 client gets one copy, at the highest matching QoS [MQTT-3.3.5-1]', async (t) => {
    const h = setup(t)
    assert.equal(h.broker.options.allowDuplicateMessages, false)
    const sub = await h.client(4, { clientId: 'once' })
    await sub.subscribe('foo/#', { qos: 0 })
    await sub.subscribe('foo/+/baz', { qos: 1 })
    const pub = await h.client(4, { clientId: 'once-pub' })
    await pub.publishAcked('foo/bar/baz', 'x', { qos: 1 })
    const got = await received(sub)
    assert.deepEqual(got.map((p) => p.qos), [1])
  })

  test('MQTT 5 clients get one copy carrying every Subscription Identifier, with the option or without', async (t) => {
    const h = setup(t, { allowDuplicateMessages: true })
    const sub = await h.client(5, { clientId: 'v5-sub' })
    await sub.subscribe('foo/#', { qos: 0, id: 1 })
    await sub.subscribe('foo/+/baz', { qos: 1, id: 2 })
    const pub = await h.client(4, { clientId: 'v5-pub' })
    await pub.publishAcked('foo/bar/baz', 'x', { qos: 1 })
    const got = await received(sub)
    assert.equal(got.length, 1)
    assert.equal(got[0]!.qos, 1)
    assert.deepEqual([...(got[0]!.properties?.subscriptionIdentifiers ?? [])].sort(), [1, 2])
  })

  test('authorizeDeliver refusing a subscriber refuses every copy: the duplicates too', async (t) => {
    const h = setup(t, { allowDuplicateMessages: true, hooks: { authorizeDeliver: (c, m) => !(c.clientId === 'dup-refused' && m.topic.startsWith('secret/')) } })
    const refused = await h.client(4, { clientId: 'dup-refused' })
    await refused.subscribe(['secret/#', 'secret/+/x', '#'], { qos: 1 })
    const allowed = await h.client(4, { clientId: 'dup-allowed' })
    await allowed.subscribe(['secret/#', 'secret/+/x'], { qos: 1 })
    const pub = await h.client(4, { clientId: 'dup-hook-pub' })
    await pub.publishAcked('secret/a/x', 'hidden', { qos: 1 })
    assert.deepEqual((await received(allowed)).map((p) => p.payload.toString()), ['hidden', 'hidden'])
    assert.deepEqual(await received(refused), [])
  })

  test('the copies for an offline persistent MQTT 3 session are queued too, one per subscription', async (t) => {
    const h = setup(t, { allowDuplicateMessages: true })
    const sub = await h.client(4, { clientId: 'dup-offline', cleanStart: false })
    await sub.subscribe(['foo/#', 'foo/+/baz'], { qos: 1 })
    await sub.disconnect()
    const pub = await h.client(4, { clientId: 'dup-offline-pub' })
    await pub.publishAcked('foo/bar/baz', 'queued', { qos: 1 })
    const back = await h.client(4, { clientId: 'dup-offline', cleanStart: false })
    const got = await received(back)
    assert.deepEqual(got.map((p) => p.payload.toString()), ['queued', 'queued'])
  })
})

describe('BrokerStats bytes', () => {
  test('bytesReceived and bytesSent count every byte read from and written to the clients\' streams', async (t) => {
    const h = setup(t)
    const before = { ...h.broker.stats }
    let sent = 0
    let received = 0
    const c = h.raw(4)
    const write = c.stream.write.bind(c.stream)
    c.stream.write = ((chunk: Buffer, ...rest: never[]) => { sent += chunk.length; return write(chunk, ...rest) }) as typeof c.stream.write
    c.stream.on('data', (chunk: Buffer) => { received += chunk.length })
    await c.connect({ clientId: 'bytes' })
    await c.subscribe('b/t', { qos: 1 })
    await c.publishAcked('b/t', 'x'.repeat(1000), { qos: 1 })
    const p = await c.publishOn('b/t')
    await c.ack(p)
    await c.sync()
    assert.ok(sent > 1000 && received > 1000, `${sent} / ${received}`)
    assert.equal(h.broker.stats.bytesReceived - before.bytesReceived, sent)
    assert.equal(h.broker.stats.bytesSent - before.bytesSent, received)
  })
})
