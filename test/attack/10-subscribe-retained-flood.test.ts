/**
 * Issue #12 item 1: one SUBSCRIBE makes the broker build every retained delivery of the turn at once.
 * A 60 KB retained message and `#` listed 75,000 times (300 KB of SUBSCRIBE) was 4.5 GB joined by one
 * Buffer.concat: RangeError, and the process exited. Distinct filters matching it (within the subscription
 * limit) still built 60 KB per filter in one turn. Now a repeated filter counts once, retained deliveries
 * respect the connection's congestion (pending bytes included) and queue within max_queued_messages, and a
 * turn's output leaves in bounded batches.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PacketType } from '../../src/protocol/constants.js'
import type { SubscribePacket } from '../../src/protocol/packets.js'
import { AttackTarget } from './harness.js'
import { MB, withinRss } from './rss-bound.js'

function subscribePacket(packetId: number, filters: string[]): SubscribePacket {
  return { type: PacketType.Subscribe, packetId, subscriptions: filters.map((topicFilter) => ({ topicFilter, qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 })) }
}

test('[MQTT-3.8.4-3] attack: a 60 KB retained message and one SUBSCRIBE listing # 75,000 times: one delivery, the broker stays up, RSS bounded', async () => {
  const t = await AttackTarget.start('sub-dup')
  try {
    const c = await t.client(4)
    await c.connect({ clientId: 'attacker-dup' })
    await c.publishAcked('big/r', Buffer.alloc(60_000, 0x61), { qos: 1, retain: true })
    const before = t.rss()
    c.send(subscribePacket(7, new Array<string>(75_000).fill('#')))
    const ack = await withinRss(t, before, 300 * MB, t.midge.guard(c.waitFor(PacketType.Suback, (s) => s.packetId === 7, 15_000), 'SUBACK', 15_000))
    // [MQTT-3.8.4-6] one reason code per filter, even for repeats.
    assert.equal(ack.reasonCodes.length, 75_000)
    assert.ok(ack.reasonCodes.every((code) => code === 0))
    await c.sync(10_000)
    const retained = c.pending(PacketType.Publish).filter((p) => p.topic === 'big/r')
    assert.equal(retained.length, 1, 'a filter repeated in one SUBSCRIBE gets its retained message once')
    assert.ok(t.rss() - before < 300 * MB)
    await t.assertServes(5000)
  } finally {
    await t.stop()
  }
})

test('attack: 8,192 distinct filters matching a 60 KB retained message, subscriber not reading: deliveries wait in the bounded queue, RSS bounded', async () => {
  const t = await AttackTarget.start('sub-distinct', 'allow_anonymous true\nmax_queued_messages 1000\n')
  try {
    const levels = 12
    const topic = `t/${new Array<string>(levels).fill('a').join('/')}`
    const filters: string[] = []
    for (let m = 0; m < 1 << levels; m++) {
      const parts = ['t']
      for (let i = 0; i < levels; i++) parts.push((m >> i) & 1 ? '+' : 'a')
      filters.push(parts.join('/'), `${parts.join('/')}/#`)
    }
    const c = await t.client(4)
    await c.connect({ clientId: 'attacker-distinct' })
    await c.publishAcked(topic, Buffer.alloc(60_000, 0x62), { qos: 1, retain: true })
    // From here the attacker reads nothing: whatever the broker builds for it stays in the broker.
    c.stream.pause()
    const before = t.rss()
    const logFrom = t.midge.lines.length
    c.send(subscribePacket(9, filters))
    // 8,192 x 60 KB built at once would be 480 MB (twice that while joined).
    await withinRss(t, before, 300 * MB, t.midge.guard(t.midge.waitFor(/Outgoing messages are being dropped for client attacker-distinct from 127\.0\.0\.1:\d+: its queue is full \(max_queued_messages 1000\)/, logFrom, 15_000), 'drop log line', 15_000))
    await t.assertServes(5000)
    // Once it reads, the attacker gets what fitted: the queue (after 'drain') and what was written before
    // it filled, a turn's worth (4 MiB) and a socket's (1 MiB) at most.
    c.stream.resume()
    for (let i = 0; i < 1000; i++) await t.midge.guard(c.waitFor(PacketType.Publish, () => true, 15_000), `retained delivery ${i}`, 15_000)
    await c.sync(15_000)
    const got = c.history.filter((f) => f.type === PacketType.Publish).length
    assert.ok(got <= 1000 + Math.ceil((5 * MB) / 60_000) + 2, `received ${got} retained deliveries`)
    assert.ok(t.alive)
  } finally {
    await t.stop()
  }
})
