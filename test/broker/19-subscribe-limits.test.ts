/**
 * Issue #12 items 1, 8, 9 in-process: a filter repeated in one SUBSCRIBE, the per-client subscription limit,
 * and the bounded outgoing topic aliases.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultBrokerOptions } from '../../src/broker/options.js'
import { loadConfig } from '../../src/config/load.js'
import { PacketType } from '../../src/protocol/constants.js'
import { Decoder } from '../../src/protocol/decoder.js'
import { encode } from '../../src/protocol/encoder.js'
import { setup } from '../helpers/broker-harness.js'

for (const v of [4, 5] as const) {
  test(`[MQTT-3.8.4-3] [MQTT-3.8.4-6] v${v}: a filter repeated in one SUBSCRIBE is one subscription (the later options win), one SUBACK code per filter, retained messages sent once`, async (t) => {
    const h = setup(t)
    const pub = await h.client(v, { clientId: 'pub' })
    await pub.publishAcked('dup/r', 'kept', { qos: 1, retain: true })
    const sub = await h.client(v, { clientId: 'sub' })
    const ack = await sub.subscribe(['dup/#', 'other/x', 'dup/#'], { qos: 0 })
    assert.deepEqual(ack.reasonCodes, [0, 0, 0])
    await sub.sync()
    assert.deepEqual(sub.pending(PacketType.Publish).map((p) => p.topic), ['dup/r'])
    sub.drain()
    // Repeated with different QoS: the later one is the subscription.
    sub.send({ type: PacketType.Subscribe, packetId: 50, subscriptions: [
      { topicFilter: 'q/#', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      { topicFilter: 'q/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
    ] })
    const ack2 = await sub.waitFor(PacketType.Suback, (s) => s.packetId === 50)
    assert.deepEqual(ack2.reasonCodes, [2, 1])
    await pub.publishAcked('q/a', 'm', { qos: 2 })
    const m = await sub.publishOn('q/a')
    assert.equal(m.qos, 1)
    await sub.ack(m)
    await sub.expectNothing(PacketType.Publish, 'one delivery for one subscription')
  })
}

test('v5: max_subscriptions_per_client: filters past the limit get SUBACK 0x97 Quota exceeded; replacing one held, repeats and room made by UNSUBSCRIBE are fine', async (t) => {
  const h = setup(t, { maxSubscriptionsPerClient: 3 })
  const c = await h.client(5, { clientId: 'lim5' })
  const ack = await c.subscribe(['a', 'b', 'b', 'c', 'd', 'e'])
  assert.deepEqual(ack.reasonCodes, [0, 0, 0, 0, 0x97, 0x97])
  assert.deepEqual((await c.subscribe(['a', 'c'], { qos: 1 })).reasonCodes, [1, 1], 'replacing a held subscription is not a new one')
  assert.deepEqual((await c.subscribe('f')).reasonCodes, [0x97])
  await c.unsubscribe('b')
  assert.deepEqual((await c.subscribe(['f', 'g'])).reasonCodes, [0, 0x97])
  assert.equal(h.broker.sessions.get('lim5')!.subscriptions.size, 3)
})

test('v3.1.1: max_subscriptions_per_client: filters past the limit get SUBACK 0x80', async (t) => {
  const h = setup(t, { maxSubscriptionsPerClient: 2 })
  const c = await h.client(4, { clientId: 'lim4' })
  const ack = await c.subscribe(['a/#', '+/b', 'c'], { qos: 1 })
  assert.deepEqual(ack.reasonCodes, [1, 1, 0x80])
  const pub = await h.client(4, { clientId: 'p' })
  pub.publish('c', 'not subscribed')
  pub.publish('a/b', 'subscribed twice')
  const m = await c.publishOn('a/b')
  assert.equal(m.payload.toString(), 'subscribed twice')
  await c.expectNothing(PacketType.Publish)
})

test('[MQTT-3.3.2-12] v5: outgoing topic aliases stand for at most max_outgoing_topic_alias_bytes of topics; the least recently assigned is re-mapped, with the topic', async (t) => {
  const h = setup(t, { maxOutgoingTopicAliasBytes: 10 })
  const sub = await h.client(5, { clientId: 'ab-sub', properties: { topicAliasMaximum: 10 } })
  await sub.subscribe('#')
  const pub = await h.client(5, { clientId: 'ab-pub' })
  // 4 bytes each: two fit in 10; a topic over 10 bytes never gets an alias.
  const topics = ['ab/1', 'ab/2', 'ab/1', 'ab/3', 'ab/2', 'ab/3', 'ab/longer-than-10', 'ab/longer-than-10', 'ab/1']
  for (const topic of topics) pub.publish(topic, topic)
  const got: Array<[string, number | undefined]> = []
  for (let i = 0; i < topics.length; i++) {
    const m = await sub.waitFor(PacketType.Publish)
    assert.equal(m.payload.toString(), topics[i])
    got.push([m.topic, m.properties?.topicAlias])
  }
  assert.deepEqual(got, [
    ['ab/1', 1], ['ab/2', 2], ['', 1],
    ['ab/3', 1], ['', 2], ['', 1],
    ['ab/longer-than-10', undefined], ['ab/longer-than-10', undefined],
    ['ab/1', 2],
  ])
})

test('v5: max_outgoing_topic_alias_bytes 0 disables outgoing topic aliases', async (t) => {
  const h = setup(t, { maxOutgoingTopicAliasBytes: 0 })
  const sub = await h.client(5, { clientId: 'na-sub', properties: { topicAliasMaximum: 10 } })
  await sub.subscribe('na/#')
  const pub = await h.client(5, { clientId: 'na-pub' })
  pub.publish('na/1', 'x')
  pub.publish('na/1', 'y')
  for (const payload of ['x', 'y']) {
    const m = await sub.waitFor(PacketType.Publish)
    assert.deepEqual([m.topic, m.properties?.topicAlias, m.payload.toString()], ['na/1', undefined, payload])
  }
})

test('config: max_subscriptions_per_client and max_outgoing_topic_alias_bytes reach the broker; defaults 10000 and 65536', () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-limits-'))
  try {
    const file = join(dir, 'm.conf')
    writeFileSync(file, 'max_subscriptions_per_client 50\nmax_outgoing_topic_alias_bytes 4096\n')
    const cfg = loadConfig(file)
    assert.equal(cfg.broker.maxSubscriptionsPerClient, 50)
    assert.equal(cfg.broker.maxOutgoingTopicAliasBytes, 4096)
    writeFileSync(file, 'max_subscriptions_per_client -1\n')
    assert.throws(() => loadConfig(file), /max_subscriptions_per_client/)
    const defaults = defaultBrokerOptions()
    assert.equal(defaults.maxSubscriptionsPerClient, 10_000)
    assert.equal(defaults.maxOutgoingTopicAliasBytes, 65_536)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('decoder: pause() from onPacket holds the rest of the chunk (and later pushes) until resume()', () => {
  const seen: number[] = []
  let pauseAt = 2
  const d = new Decoder((p) => {
    seen.push(p.type)
    if (seen.length === pauseAt) d.pause()
  })
  const ping = encode({ type: PacketType.Pingreq }, 4)
  const sub = encode({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'a', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] }, 4)
  const all = Buffer.concat([ping, sub, ping, sub])
  assert.equal(d.push(all.subarray(0, all.length - 3)), null)
  assert.deepEqual(seen, [12, 8])
  assert.ok(d.paused)
  assert.equal(d.push(all.subarray(all.length - 3)), null)
  assert.deepEqual(seen, [12, 8], 'nothing is emitted while paused')
  pauseAt = 0
  assert.equal(d.resume(), null)
  assert.equal(d.paused, false)
  assert.deepEqual(seen, [12, 8, 12, 8])
})

test('a turn with more than 256 KB of output reaches the socket in bounded writes, not one concatenation', async (t) => {
  const h = setup(t)
  const c = await h.client(4, { clientId: 'many-pings' })
  const chunks: number[] = []
  c.stream.on('data', (chunk: Buffer) => { chunks.push(chunk.length) })
  // 200,000 PINGREQs in one read: 400 KB of PINGRESP in one turn.
  const ping = encode({ type: PacketType.Pingreq }, 4)
  c.sendRaw(Buffer.concat(new Array<Buffer>(200_000).fill(ping)))
  await c.sync(10_000)
  assert.equal(c.history.filter((f) => f.type === PacketType.Pingresp).length, 200_001)
  assert.ok(chunks.length > 1 && Math.max(...chunks) <= 256 * 1024 + 2, `writes of ${chunks.join(', ')} bytes`)
})
