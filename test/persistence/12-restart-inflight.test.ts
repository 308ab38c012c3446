/**
 * In-flight QoS 1/2 state across a crash, both directions (MQTT 5 section 4.3 and 4.4):
 * outgoing PUBLISH not yet acknowledged is resent with DUP and the same packet id, an outgoing QoS 2
 * already PUBREC'd continues with PUBREL, and an inbound QoS 2 packet id received but not yet released
 * is remembered, so a resent PUBLISH is not delivered twice (exactly once across the restart).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode, type ProtocolVersion } from '../../src/protocol/constants.js'
import type { ConnectFields } from '../helpers/broker-harness.js'
import { BrokerLife } from './crash-harness.js'
import { tempDir } from './tmp-dir.js'

function persistent(v: ProtocolVersion, clientId: string, expiry = 3600): ConnectFields {
  return v === 5 ? { clientId, cleanStart: false, properties: { sessionExpiryInterval: expiry } } : { clientId, cleanStart: false }
}

describe('in-flight QoS 1/2 state survives a crash', { concurrency: true }, () => {
  for (const v of [4, 5] as const) {
    test(`[MQTT-4.4.0-1] [MQTT-3.3.1-1] v${v}: an outgoing QoS 1 PUBLISH not yet acknowledged is resent after a crash with DUP 1 and the same packet id, before queued ones`, async (t) => {
      const life = new BrokerLife(t, tempDir(t))
      const b1 = await life.start()
      const { c: s1 } = await b1.connect(v, persistent(v, 'sub'))
      await s1.subscribe('t', { qos: 1 })
      const { c: pub } = await b1.connect(v, { clientId: 'pub' })
      await pub.publishAcked('t', 'first', { qos: 1 })
      const first = await s1.publishOn('t')
      s1.destroy() // never acknowledged
      await s1.waitClosed()
      await pub.publishAcked('t', 'second', { qos: 1 })
      life.crash()
      const b2 = await life.start()
      const { c: s2, present } = await b2.connect(v, persistent(v, 'sub'))
      assert.equal(present, true)
      const again = await s2.publishOn('t')
      assert.deepEqual([again.payload.toString(), again.dup, again.packetId], ['first', true, first.packetId])
      await s2.ack(again)
      const second = await s2.publishOn('t')
      assert.deepEqual([second.payload.toString(), second.dup], ['second', false])
      assert.notEqual(second.packetId, first.packetId)
      await s2.ack(second)
      await s2.expectNothing(PacketType.Publish)
    })

    test(`[MQTT-4.3.3-?] v${v}: an outgoing QoS 2 PUBLISH not yet PUBREC'd is resent after a crash with DUP 1 and the same packet id`, async (t) => {
      const life = new BrokerLife(t, tempDir(t))
      const b1 = await life.start()
      const { c: s1 } = await b1.connect(v, persistent(v, 'sub'))
      await s1.subscribe('t', { qos: 2 })
      const { c: pub } = await b1.connect(v, { clientId: 'pub' })
      await pub.publishAcked('t', 'once', { qos: 2 })
      const first = await s1.publishOn('t')
      await s1.sync()
      life.crash()
      const b2 = await life.start()
      const { c: s2 } = await b2.connect(v, persistent(v, 'sub'))
      const again = await s2.publishOn('t')
      assert.deepEqual([again.payload.toString(), again.dup, again.qos, again.packetId], ['once', true, 2, first.packetId])
      await s2.ack(again)
      await s2.expectNothing()
    })

    test(`[MQTT-4.4.0-1] v${v}: an outgoing QoS 2 already PUBREC'd continues with PUBREL after a crash (no second PUBLISH), and ends there`, async (t) => {
      const life = new BrokerLife(t, tempDir(t))
      const b1 = await life.start()
      const { c: s1 } = await b1.connect(v, persistent(v, 'sub'))
      await s1.subscribe('t', { qos: 2 })
      const { c: pub } = await b1.connect(v, { clientId: 'pub' })
      await pub.publishAcked('t', 'exactly once', { qos: 2 })
      const m = await s1.publishOn('t')
      s1.send({ type: PacketType.Pubrec, packetId: m.packetId, reasonCode: 0 })
      await s1.waitFor(PacketType.Pubrel, (r) => r.packetId === m.packetId)
      life.crash() // before our PUBCOMP
      const b2 = await life.start()
      const { c: s2 } = await b2.connect(v, persistent(v, 'sub'))
      const rel = await s2.waitFor(PacketType.Pubrel)
      assert.equal(rel.packetId, m.packetId)
      s2.send({ type: PacketType.Pubcomp, packetId: rel.packetId, reasonCode: 0 })
      await s2.expectNothing(PacketType.Publish, 'the message itself is not sent again')
      life.crash()
      const b3 = await life.start()
      const { c: s3 } = await b3.connect(v, persistent(v, 'sub'))
      await s3.expectNothing(undefined, 'PUBCOMP ended the exchange for good')
    })

    test(`[MQTT-4.3.3-9] v${v}: an inbound QoS 2 packet id PUBREC'd before a crash is remembered: the resent PUBLISH is not delivered again`, async (t) => {
      const life = new BrokerLife(t, tempDir(t))
      const b1 = await life.start()
      const { c: s1 } = await b1.connect(v, persistent(v, 'sub'))
      await s1.subscribe('t', { qos: 2 })
      await s1.disconnect()
      const { c: p1 } = await b1.connect(v, persistent(v, 'pub'))
      p1.publish('t', 'exactly once', { qos: 2, packetId: 7 })
      await p1.waitFor(PacketType.Pubrec, (a) => a.packetId === 7)
      life.crash() // before the publisher's PUBREL
      const b2 = await life.start()
      const { c: p2, present } = await b2.connect(v, persistent(v, 'pub'))
      assert.equal(present, true)
      p2.publish('t', 'exactly once', { qos: 2, packetId: 7, dup: true })
      const rec = await p2.waitFor(PacketType.Pubrec, (a) => a.packetId === 7)
      assert.equal(rec.reasonCode, 0)
      p2.send({ type: PacketType.Pubrel, packetId: 7, reasonCode: 0 })
      const comp = await p2.waitFor(PacketType.Pubcomp, (a) => a.packetId === 7)
      assert.equal(comp.reasonCode, 0)
      const { c: s2 } = await b2.connect(v, persistent(v, 'sub'))
      const m = await s2.publishOn('t')
      assert.equal(m.payload.toString(), 'exactly once')
      await s2.ack(m)
      await s2.expectNothing(PacketType.Publish, 'delivered once, not once per PUBLISH')
    })
  }

  test('[MQTT-4.3.3-9] v5: after a crash, PUBREL for a packet id PUBREC\'d before it completes with PUBCOMP Success (not 0x92 Packet Identifier not found)', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const { c: p1 } = await b1.connect(5, persistent(5, 'pub'))
    p1.publish('t', 'x', { qos: 2, packetId: 300 })
    await p1.waitFor(PacketType.Pubrec, (a) => a.packetId === 300)
    life.crash()
    const b2 = await life.start()
    const { c: p2 } = await b2.connect(5, persistent(5, 'pub'))
    p2.send({ type: PacketType.Pubrel, packetId: 300, reasonCode: 0 })
    const comp = await p2.waitFor(PacketType.Pubcomp, (a) => a.packetId === 300)
    assert.equal(comp.reasonCode, ReasonCode.Success)
    p2.send({ type: PacketType.Pubrel, packetId: 300, reasonCode: 0 })
    const second = await p2.waitFor(PacketType.Pubcomp, (a) => a.packetId === 300)
    assert.equal(second.reasonCode, ReasonCode.PacketIdentifierNotFound, 'released: the id is forgotten, durably or not')
  })

  test('every QoS 1 message acknowledged to the publisher before a crash is delivered after it (200 messages, crash right after the last PUBACK)', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const { c: s1 } = await b1.connect(4, persistent(4, 'sub'))
    await s1.subscribe('load/#', { qos: 1 })
    await s1.disconnect()
    const { c: pub } = await b1.connect(4, { clientId: 'pub' })
    const ids: number[] = []
    for (let i = 0; i < 200; i++) ids.push(pub.publish(`load/${i % 7}`, `n${i}`, { qos: 1 }))
    const last = ids.at(-1)!
    await pub.waitFor(PacketType.Puback, (a) => a.packetId === last)
    life.crash()
    const b2 = await life.start()
    const { c: s2 } = await b2.connect(4, persistent(4, 'sub'))
    const got: string[] = []
    for (let i = 0; i < 200; i++) {
      const m = await s2.waitFor(PacketType.Publish)
      got.push(m.payload.toString())
      await s2.ack(m)
    }
    assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => `n${i}`))
  })

  test('a subscriber that was online at the crash gets its in-flight window resent and its queue after it, each message once', async (t) => {
    const life = new BrokerLife(t, tempDir(t), { maxInflightMessages: 5 })
    const b1 = await life.start()
    const { c: s1 } = await b1.connect(4, persistent(4, 'sub'))
    await s1.subscribe('w', { qos: 1 })
    const { c: pub } = await b1.connect(4, { clientId: 'pub' })
    for (let i = 0; i < 12; i++) await pub.publishAcked('w', `m${i}`, { qos: 1 })
    await s1.sync()
    const window = s1.pending(PacketType.Publish).map((p) => p.payload.toString())
    assert.deepEqual(window, ['m0', 'm1', 'm2', 'm3', 'm4'], 'five in flight, seven queued, none acknowledged')
    life.crash()
    const b2 = await life.start()
    const { c: s2 } = await b2.connect(4, persistent(4, 'sub'))
    const got: Array<[string, boolean]> = []
    for (let i = 0; i < 12; i++) {
      const m = await s2.waitFor(PacketType.Publish)
      got.push([m.payload.toString(), m.dup])
      await s2.ack(m)
    }
    assert.deepEqual(got, Array.from({ length: 12 }, (_, i) => [`m${i}`, i < 5] as [string, boolean]))
    await s2.expectNothing(PacketType.Publish)
  })
})
