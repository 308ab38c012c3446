/**
 * Issue #12 item 16: the Receive Maximum Midge announces to v5 clients comes from `max_inflight_messages`
 * (as in Mosquitto 2: default 20, 0 = 65535, which is not sent; MQTT 5.0 §3.2.2.3.3), and it
 * is enforced: a client with more unacknowledged QoS 2 PUBLISHes than that gets DISCONNECT 0x93 Receive
 * Maximum exceeded [MQTT-3.3.4-9]. MQTT 3.x has no such limit and is not held to it.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import { setup, type TestClient } from '../helpers/broker-harness.js'

/** Sends QoS 2 PUBLISHes with ids 1..n and waits for their PUBRECs (no PUBREL: they stay unacknowledged). */
async function openQos2(c: TestClient, n: number): Promise<void> {
  for (let id = 1; id <= n; id++) c.publish('rm/t', `m${id}`, { qos: 2, packetId: id })
  for (let id = 1; id <= n; id++) {
    const rec = await c.waitFor(PacketType.Pubrec, (r) => r.packetId === id)
    assert.equal(rec.reasonCode < 0x80, true)
  }
}

describe('Receive Maximum', { concurrency: true }, () => {
  test('MQTT 5.0 §3.2.2.3.3 v5: CONNACK announces max_inflight_messages as Receive Maximum (default 20, as Mosquitto)', async (t) => {
    const h = setup(t)
    const ack = await h.raw(5).connect({ clientId: 'rm-default' })
    assert.equal(ack.properties?.receiveMaximum, 20)
  })

  test('MQTT 5.0 §3.2.2.3.3 v5: max_inflight_messages 0 means 65535, which is the absent value', async (t) => {
    const h = setup(t, { maxInflightMessages: 0 })
    const ack = await h.raw(5).connect({ clientId: 'rm-none' })
    assert.equal(ack.properties?.receiveMaximum, undefined)
  })

  test('[MQTT-3.3.4-9] v5: one QoS 2 PUBLISH beyond our Receive Maximum gets DISCONNECT 0x93; it is not delivered', async (t) => {
    const h = setup(t, { maxInflightMessages: 3 })
    const watch = await h.client(4, { clientId: 'watch' })
    await watch.subscribe('rm/t', { qos: 0 })
    const c = h.raw(5)
    const ack = await c.connect({ clientId: 'greedy' })
    assert.equal(ack.properties?.receiveMaximum, 3)
    await openQos2(c, 3)
    c.publish('rm/t', 'one too many', { qos: 2, packetId: 4 })
    const d = await c.expectProtocolClose([ReasonCode.ReceiveMaximumExceeded])
    assert.equal(d?.reasonCode, ReasonCode.ReceiveMaximumExceeded)
    await watch.sync()
    const got = watch.pending(PacketType.Publish).map((p) => p.payload.toString())
    assert.deepEqual(got, ['m1', 'm2', 'm3'])
  })

  test('[MQTT-3.3.4-9] v5: a PUBREL frees the slot: the client may then send another QoS 2 PUBLISH', async (t) => {
    const h = setup(t, { maxInflightMessages: 2 })
    const c = await h.client(5, { clientId: 'polite' })
    await openQos2(c, 2)
    c.send({ type: PacketType.Pubrel, packetId: 1, reasonCode: 0 })
    await c.waitFor(PacketType.Pubcomp, (p) => p.packetId === 1)
    c.publish('rm/t', 'fits again', { qos: 2, packetId: 3 })
    const rec = await c.waitFor(PacketType.Pubrec, (r) => r.packetId === 3)
    assert.ok(rec.reasonCode < 0x80, `PUBREC ${rec.reasonCode}`)
    await c.expectNothing(PacketType.Disconnect)
    assert.equal(c.closed, false)
  })

  test('[MQTT-3.3.4-9] v5: QoS 1 PUBLISHes are acknowledged as they come and never exceed it', async (t) => {
    const h = setup(t, { maxInflightMessages: 2 })
    const c = await h.client(5, { clientId: 'q1' })
    for (let id = 1; id <= 10; id++) c.publish('rm/t', `q1-${id}`, { qos: 1, packetId: id })
    for (let id = 1; id <= 10; id++) await c.waitFor(PacketType.Puback, (a) => a.packetId === id)
    await c.expectNothing(PacketType.Disconnect)
  })

  test('[MQTT-3.3.4-9] v5: a client is held to the Receive Maximum it was told, not to one a later reload sets', async (t) => {
    const h = setup(t, { maxInflightMessages: 3 })
    const c = await h.client(5, { clientId: 'before-reload' })
    h.broker.options.maxInflightMessages = 1 // what a SIGHUP reload does
    await openQos2(c, 3)
    await c.expectNothing(PacketType.Disconnect)
    const later = h.raw(5)
    assert.equal((await later.connect({ clientId: 'after-reload' })).properties?.receiveMaximum, 1)
  })

  test('v3.1.1: no Receive Maximum exists in 3.1.1, so more QoS 2 in flight than max_inflight_messages is accepted', async (t) => {
    const h = setup(t, { maxInflightMessages: 2 })
    const c = await h.client(4, { clientId: 'v311' })
    await openQos2(c, 5)
    assert.equal(c.closed, false)
  })
})
