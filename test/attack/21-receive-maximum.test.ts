/**
 * Issue #12 item 16 against a real process: `max_inflight_messages` from the config file is the Receive
 * Maximum announced in a v5 CONNACK, and a raw client that keeps opening QoS 2 exchanges without ever sending
 * PUBREL is disconnected with 0x93 at the first PUBLISH over it [MQTT-3.3.4-9], instead of making the broker
 * hold state for up to 65,535 of them.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import { AttackTarget } from './harness.js'

test('[MQTT-3.3.4-9] max_inflight_messages 5: CONNACK Receive Maximum 5, the 6th QoS 2 PUBLISH without PUBREL gets DISCONNECT 0x93', async () => {
  const t = await AttackTarget.start('receive-max', 'allow_anonymous true\nmax_inflight_messages 5\n')
  try {
    const c = await t.client(5)
    const ack = await c.connect({ clientId: 'no-pubrel' })
    assert.equal(ack.reasonCode, 0)
    assert.equal(ack.properties?.receiveMaximum, 5)
    for (let id = 1; id <= 5; id++) c.publish('flood/q2', `m${id}`, { qos: 2, packetId: id })
    for (let id = 1; id <= 5; id++) await c.waitFor(PacketType.Pubrec, (r) => r.packetId === id, 5000)
    for (let id = 6; id <= 50; id++) c.publish('flood/q2', `m${id}`, { qos: 2, packetId: id })
    const d = await c.expectProtocolClose([ReasonCode.ReceiveMaximumExceeded], 5000)
    assert.equal(d?.reasonCode, ReasonCode.ReceiveMaximumExceeded)
    assert.equal(c.history.filter((f) => f.type === PacketType.Pubrec).length, 5, 'nothing past the limit was accepted')
    await t.midge.waitFor(/no-pubrel.*Receive Maximum 5/)
    await t.assertServes(5000)
  } finally {
    await t.stop()
  }
})
