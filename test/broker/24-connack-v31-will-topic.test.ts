/**
 * Issue #12 item 15. MQTT 3.1 (protocol level 3) has no Session Present flag: the first CONNACK byte is
 * reserved and stays 0 even when a session is resumed (3.1.1 introduced the flag, [MQTT-3.2.2-2]).
 * An empty will topic breaks [MQTT-4.7.3-1] (a topic name is at least one character): a protocol violation,
 * so 3.x closes without any CONNACK [MQTT-4.8.0-1] and v5 may answer CONNACK 0x82 before closing
 * [MQTT-4.13.1-1]; the CONNECT is never accepted.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import { setup } from '../helpers/broker-harness.js'

describe('CONNACK of MQTT 3.1, empty will topics', { concurrency: true }, () => {
  test('[MQTT-3.2.2-2] v3.1: resuming a session still gets CONNACK 20 02 00 00 (no Session Present in 3.1)', async (t) => {
    const h = setup(t)
    const first = await h.client(3, { clientId: 'old31', cleanStart: false })
    await first.subscribe('v31/keep', { qos: 1 })
    first.destroy()
    await first.waitClosed()
    const again = h.raw(3)
    again.send(again.connectPacket({ clientId: 'old31', cleanStart: false }))
    const f = await again.nextFrame()
    assert.deepEqual([...f.raw], [0x20, 0x02, 0x00, 0x00])
    // The session was resumed all the same: its subscription still delivers.
    const pub = await h.client(4, { clientId: 'pub' })
    await pub.publishAcked('v31/keep', 'still subscribed', { qos: 1 })
    assert.equal((await again.publishOn('v31/keep')).payload.toString(), 'still subscribed')
  })

  test('[MQTT-3.2.2-2] v3.1.1: resuming a session sets Session Present (unchanged)', async (t) => {
    const h = setup(t)
    const first = await h.client(4, { clientId: 'c311', cleanStart: false })
    first.destroy()
    await first.waitClosed()
    const again = h.raw(4)
    again.send(again.connectPacket({ clientId: 'c311', cleanStart: false }))
    assert.deepEqual([...(await again.nextFrame()).raw], [0x20, 0x02, 0x01, 0x00])
  })

  for (const v of [3, 4] as const) {
    test(`[MQTT-4.7.3-1] [MQTT-4.8.0-1] v${v}: an empty will topic closes the connection without a CONNACK`, async (t) => {
      const h = setup(t)
      const watch = await h.client(4, { clientId: 'watch' })
      await watch.subscribe('#')
      const c = h.raw(v)
      c.send(c.connectPacket({ clientId: `empty-will-${v}`, will: { topic: '', payload: Buffer.from('x'), qos: 0, retain: false } }))
      await c.waitClosed()
      assert.deepEqual(c.history.map((f) => f.type), [], 'nothing was sent before the close')
      assert.equal(h.broker.sessions.has(`empty-will-${v}`), false)
      await watch.expectNothing(PacketType.Publish)
    })
  }

  test('[MQTT-4.7.3-1] [MQTT-4.13.1-1] v5: an empty will topic gets CONNACK 0x82 Protocol Error and the close', async (t) => {
    const h = setup(t)
    const c = h.raw(5)
    const ack = await c.connect({ clientId: 'empty-will-5', will: { topic: '', payload: Buffer.from('x'), qos: 0, retain: false } })
    assert.equal(ack.reasonCode, ReasonCode.ProtocolError)
    assert.equal(ack.sessionPresent, false)
    await c.waitClosed()
    assert.equal(h.broker.sessions.has('empty-will-5'), false)
  })
})
