/**
 * Issue #12 item 13: a will waiting out its Will Delay Interval is cancelled by any new connection with the
 * same client id before the delay ends [MQTT-3.1.2-8] [MQTT-3.1.3-9] — Clean Start 1 included, although that
 * new connection discards the session (a session ending otherwise does publish the will).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType } from '../../src/protocol/constants.js'
import type { WillMessage } from '../../src/protocol/packets.js'
import { setup, FakeClock, sweepBarrier } from '../helpers/broker-harness.js'

const delayedWill = (topic: string): WillMessage => ({ topic, payload: Buffer.from('gone'), qos: 0, retain: false, properties: { willDelayInterval: 30 } })

describe('will delay and Clean Start', { concurrency: true }, () => {
  test('[MQTT-3.1.2-8] [MQTT-3.1.3-9] v5: a reconnect with Clean Start 1 within the Will Delay Interval cancels the will', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const watch = await h.client(5, { clientId: 'watch' })
    await watch.subscribe('will/#')
    const c = await h.client(5, { clientId: 'back', cleanStart: false, properties: { sessionExpiryInterval: 600 }, will: delayedWill('will/back') })
    c.destroy()
    await c.waitClosed()
    clock.advance(10_000)
    await sweepBarrier(h.broker, clock)
    const again = h.raw(5)
    const ack = await again.connect({ clientId: 'back', cleanStart: true })
    assert.equal(ack.reasonCode, 0)
    assert.equal(ack.sessionPresent, false, 'Clean Start 1 discarded the session')
    clock.advance(60_000)
    await sweepBarrier(h.broker, clock)
    await watch.expectNothing(PacketType.Publish, 'the will was cancelled by the new connection')
  })

  test('[MQTT-3.1.2-8] [MQTT-3.1.4-3] v5: taking over a connected session with Clean Start 1 does not publish the old connection\'s delayed will', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const watch = await h.client(5, { clientId: 'watch' })
    await watch.subscribe('will/#')
    const old = await h.client(5, { clientId: 'same', cleanStart: false, properties: { sessionExpiryInterval: 600 }, will: delayedWill('will/same') })
    await h.client(5, { clientId: 'same', cleanStart: true })
    await old.waitClosed()
    clock.advance(60_000)
    await sweepBarrier(h.broker, clock)
    await watch.expectNothing(PacketType.Publish, 'the new connection came within the delay')
  })

  test('MQTT 5.0 §3.1.3.2.2 v5: without a reconnect the delayed will is still published when the delay ends', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const watch = await h.client(5, { clientId: 'watch' })
    await watch.subscribe('will/#')
    const c = await h.client(5, { clientId: 'gone', cleanStart: false, properties: { sessionExpiryInterval: 600 }, will: delayedWill('will/gone') })
    c.destroy()
    await c.waitClosed()
    clock.advance(31_000)
    await sweepBarrier(h.broker, clock)
    assert.equal((await watch.publishOn('will/gone')).payload.toString(), 'gone')
  })
})
