/**
 * Issue #12 item 14: acknowledgements that don't fit the state of a known outgoing message — PUBCOMP for a
 * QoS 2 message never PUBREC'd, PUBREC or PUBCOMP for a QoS 1 message, PUBACK for a QoS 2 one — are protocol
 * violations: 3.1.1 closes the connection [MQTT-4.8.0-1], v5 sends DISCONNECT 0x82 Protocol Error first
 * [MQTT-4.13.1-1]. The message stays in the session and comes back (DUP) when the client resumes it.
 * Unknown packet ids stay tolerated (see 11-publish-qos): a v5 PUBREC for one gets PUBREL 0x92.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode, type QoS } from '../../src/protocol/constants.js'
import type { ConnectFields, Harness, TestClient } from '../helpers/broker-harness.js'
import { setup } from '../helpers/broker-harness.js'

type AckType = typeof PacketType.Puback | typeof PacketType.Pubrec | typeof PacketType.Pubcomp

function persistent(v: 4 | 5, clientId: string): ConnectFields {
  return v === 5 ? { clientId, cleanStart: false, properties: { sessionExpiryInterval: 600 } } : { clientId, cleanStart: false }
}

/** A persistent subscriber that has received one message at `qos` (not acknowledged). */
async function receiving(h: Harness, v: 4 | 5, qos: QoS): Promise<{ sub: TestClient; id: number }> {
  const sub = await h.client(v, persistent(v, 'sub'))
  await sub.subscribe('acks/t', { qos: 2 })
  const pub = await h.client(4, { clientId: 'pub' })
  await pub.publishAcked('acks/t', 'keep me', { qos })
  const m = await sub.publishOn('acks/t')
  assert.equal(m.qos, qos)
  return { sub, id: m.packetId }
}

async function expectRedelivered(h: Harness, v: 4 | 5, id: number): Promise<void> {
  const back = h.raw(v)
  const ack = await back.connect(persistent(v, 'sub'))
  assert.equal(ack.sessionPresent, true)
  const again = await back.publishOn('acks/t')
  assert.equal(again.payload.toString(), 'keep me', 'the message was not lost')
  assert.equal(again.packetId, id)
  assert.equal(again.dup, true)
}

const cases: Array<{ qos: QoS; ack: AckType; what: string }> = [
  { qos: 2, ack: PacketType.Pubcomp, what: 'PUBCOMP for a QoS 2 message never PUBREC\'d' },
  { qos: 1, ack: PacketType.Pubrec, what: 'PUBREC for a QoS 1 message' },
  { qos: 1, ack: PacketType.Pubcomp, what: 'PUBCOMP for a QoS 1 message' },
  { qos: 2, ack: PacketType.Puback, what: 'PUBACK for a QoS 2 message' },
]

describe('acknowledgements of the wrong kind', { concurrency: true }, () => {
  for (const v of [4, 5] as const) {
    for (const c of cases) {
      const expected = v === 5 ? 'DISCONNECT 0x82' : 'the close'
      test(`[MQTT-4.8.0-1] [MQTT-4.3.2-1] [MQTT-4.3.3-1] v${v}: ${c.what} gets ${expected}; the message is redelivered on resume`, async (t) => {
        const h = setup(t)
        const { sub, id } = await receiving(h, v, c.qos)
        sub.send({ type: c.ack, packetId: id, reasonCode: 0 })
        await sub.expectProtocolClose([ReasonCode.ProtocolError])
        assert.equal(sub.history.filter((f) => f.type === PacketType.Pubrel).length, 0, 'no PUBREL for an ack of the wrong kind')
        await expectRedelivered(h, v, id)
      })
    }
  }

  test('[MQTT-4.3.3-1] v5: PUBCOMP for a released QoS 2 message completes it (the right order still works)', async (t) => {
    const h = setup(t)
    const { sub, id } = await receiving(h, 5, 2)
    sub.send({ type: PacketType.Pubrec, packetId: id, reasonCode: 0 })
    await sub.waitFor(PacketType.Pubrel, (r) => r.packetId === id)
    sub.send({ type: PacketType.Pubcomp, packetId: id, reasonCode: 0 })
    await sub.expectNothing()
    assert.equal(sub.closed, false)
    assert.equal(h.broker.sessions.get('sub')!.inflight.size, 0)
  })

  test('MQTT 5.0 §3.6.2.1 v5: PUBREC for an unknown packet id is legal: PUBREL 0x92, the connection stays', async (t) => {
    const h = setup(t)
    const c = await h.client(5, { clientId: 'u' })
    c.send({ type: PacketType.Pubrec, packetId: 77, reasonCode: 0 })
    const rel = await c.waitFor(PacketType.Pubrel)
    assert.deepEqual([rel.packetId, rel.reasonCode], [77, ReasonCode.PacketIdentifierNotFound])
    await c.expectNothing()
    assert.equal(c.closed, false)
  })
})
