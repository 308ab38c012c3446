/**
 * Will messages (MQTT 3.1.1 section 3.1.2.5, MQTT 5.0 sections 3.1.2.5, 3.1.3.2 and 3.14.2.1): published
 * on an abnormal close, discarded by a normal DISCONNECT, published on v5 DISCONNECT 0x04, delayed by the
 * Will Delay Interval and cancelled by a reconnect, and on session takeover.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode, type QoS } from '../../src/protocol/constants.js'
import type { Properties, WillMessage } from '../../src/protocol/packets.js'
import { setup, FakeClock, sweepBarrier } from '../helpers/broker-harness.js'
import { packet, utf8, u16 } from '../helpers/wire.js'

function will (topic: string, payload = 'gone', qos: QoS = 0, retain = false, properties?: Properties): WillMessage {
  const w: WillMessage = { topic, payload: Buffer.from(payload), qos, retain }
  if (properties !== undefined) w.properties = properties
  return w
}

describe('wills (tests run concurrently: several wait for the once-a-second sweep)', { concurrency: true }, () => {
  for (const v of [3, 4, 5] as const) {
    test(`[MQTT-3.1.2-8] v${v}: the will is published when the connection closes without DISCONNECT`, async (t) => {
      const h = setup(t)
      const watch = await h.client(v, { clientId: 'watch' })
      await watch.subscribe('will/t', { qos: 2 })
      const c = await h.client(v, { clientId: 'dying', will: will('will/t', 'bye', 1) })
      c.destroy()
      const m = await watch.publishOn('will/t')
      assert.equal(m.payload.toString(), 'bye')
      assert.equal(m.qos, 1)
      assert.equal(m.retain, false, '[MQTT-3.1.2-14] will retain 0: published as non-retained')
    })

    test(`[MQTT-3.1.2-10] [MQTT-3.14.4-3] v${v}: a normal DISCONNECT discards the will`, async (t) => {
      const h = setup(t)
      const watch = await h.client(v, { clientId: 'watch' })
      await watch.subscribe('will/t')
      const c = await h.client(v, { clientId: 'polite', will: will('will/t') })
      await c.disconnect()
      await watch.expectNothing(PacketType.Publish)
    })

    test(`[MQTT-3.1.2-8] v${v}: a protocol error closing the connection publishes the will`, async (t) => {
      const h = setup(t)
      const watch = await h.client(v, { clientId: 'watch' })
      await watch.subscribe('will/t')
      const c = await h.client(v, { clientId: 'rude', will: will('will/t', 'err') })
      c.sendRaw(packet(0x30 | 0x06, utf8('x'), u16(1))) // PUBLISH with QoS 3
      await c.waitClosed()
      assert.equal((await watch.publishOn('will/t')).payload.toString(), 'err')
    })
  }

  test('[MQTT-3.1.2-15] (5.0) [MQTT-3.1.2-17] (3.1.1): a will with Will Retain 1 is published retained', async (t) => {
    const h = setup(t)
    const c = await h.client(4, { clientId: 'rw', will: will('will/ret', 'last words', 1, true) })
    const live = await h.client(4, { clientId: 'live' })
    await live.subscribe('will/ret', { qos: 1 })
    c.destroy()
    const m = await live.publishOn('will/ret')
    assert.equal(m.retain, false, 'live subscribers get RETAIN 0')
    await live.ack(m)
    const late = await h.client(4, { clientId: 'late' })
    await late.subscribe('will/ret', { qos: 1 })
    const r = await late.publishOn('will/ret')
    assert.equal(r.retain, true)
    assert.equal(r.payload.toString(), 'last words')
  })

  test('[MQTT-3.14.2-1] v5: DISCONNECT with reason 0x04 publishes the will', async (t) => {
    const h = setup(t)
    const watch = await h.client(5, { clientId: 'watch' })
    await watch.subscribe('will/t')
    const c = await h.client(5, { clientId: 'wants-will', will: will('will/t', 'as asked') })
    await c.disconnect(ReasonCode.DisconnectWithWillMessage)
    assert.equal((await watch.publishOn('will/t')).payload.toString(), 'as asked')
  })

  test('[MQTT-3.1.3-10] v5: will properties reach subscribers unchanged (user properties in order), Will Delay Interval is not forwarded', async (t) => {
    const h = setup(t)
    const watch = await h.client(5, { clientId: 'watch' })
    await watch.subscribe('will/p')
    const properties: Properties = {
      willDelayInterval: 0,
      payloadFormatIndicator: 1,
      contentType: 'text/plain',
      responseTopic: 'reply/here',
      correlationData: Buffer.from([1, 2, 3]),
      userProperties: [['b', '2'], ['a', '1'], ['b', '3']],
    }
    const c = await h.client(5, { clientId: 'wp', will: will('will/p', 'props', 0, false, properties) })
    c.destroy()
    const m = await watch.publishOn('will/p')
    assert.equal(m.properties?.payloadFormatIndicator, 1)
    assert.equal(m.properties?.contentType, 'text/plain')
    assert.equal(m.properties?.responseTopic, 'reply/here')
    assert.deepEqual([...(m.properties?.correlationData ?? [])], [1, 2, 3])
    assert.deepEqual(m.properties?.userProperties, [['b', '2'], ['a', '1'], ['b', '3']])
    assert.equal(m.properties?.willDelayInterval, undefined)
  })

  test('[MQTT-3.1.2-8] v5: with a Will Delay Interval the will waits for the delay (real timers)', async (t) => {
    const h = setup(t)
    const watch = await h.client(5, { clientId: 'watch' })
    await watch.subscribe('will/delay')
    const c = await h.client(5, { clientId: 'delayed', cleanStart: false, properties: { sessionExpiryInterval: 60 }, will: will('will/delay', 'late', 0, false, { willDelayInterval: 1 }) })
    const closedAt = Date.now()
    c.destroy()
    await c.waitClosed()
    await watch.expectNothing(PacketType.Publish, 'not before the delay')
    const m = await watch.publishOn('will/delay', 5000)
    assert.equal(m.payload.toString(), 'late')
    assert.ok(Date.now() - closedAt >= 900, `published after ${Date.now() - closedAt} ms`)
  })

  test('[MQTT-3.1.3-9] v5: a reconnect before the Will Delay Interval has passed cancels the will', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const watch = await h.client(5, { clientId: 'watch' })
    await watch.subscribe('will/cancel')
    const opts = { clientId: 'back', cleanStart: false, properties: { sessionExpiryInterval: 600 }, will: will('will/cancel', 'x', 0, false, { willDelayInterval: 30 }) }
    const c = await h.client(5, opts)
    c.destroy()
    await c.waitClosed()
    clock.advance(10_000)
    await sweepBarrier(h.broker, clock)
    const again = h.raw(5)
    const ack = await again.connect({ clientId: 'back', cleanStart: false, properties: { sessionExpiryInterval: 600 } })
    assert.equal(ack.sessionPresent, true)
    clock.advance(60_000)
    await sweepBarrier(h.broker, clock)
    await watch.expectNothing(PacketType.Publish, 'the will was cancelled by the reconnect')
  })

  test('MQTT 5.0 §3.1.3.2.2 v5: the will is published when the session ends before the Will Delay Interval', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const watch = await h.client(5, { clientId: 'watch' })
    await watch.subscribe('will/#')
    // Session Expiry 0: the session ends with the connection, so the 1-hour delay does not apply
    const a = await h.client(5, { clientId: 'a', will: will('will/a', 'a', 0, false, { willDelayInterval: 3600 }) })
    a.destroy()
    assert.equal((await watch.publishOn('will/a')).payload.toString(), 'a')
    // Session Expiry 5 s, delay 1 h: published when the session expires
    const b = await h.client(5, { clientId: 'b', cleanStart: false, properties: { sessionExpiryInterval: 5 }, will: will('will/b', 'b', 0, false, { willDelayInterval: 3600 }) })
    b.destroy()
    await b.waitClosed()
    clock.advance(3_000)
    await sweepBarrier(h.broker, clock)
    await watch.expectNothing(PacketType.Publish, 'session still alive')
    clock.advance(3_000)
    await sweepBarrier(h.broker, clock)
    assert.equal((await watch.publishOn('will/b')).payload.toString(), 'b')
  })

  test('[MQTT-3.1.4-3] v5: on session takeover the old connection\'s will (no delay) is published', async (t) => {
    const h = setup(t)
    const watch = await h.client(5, { clientId: 'watch' })
    await watch.subscribe('will/to')
    await h.client(5, { clientId: 'same', will: will('will/to', 'taken over') })
    await h.client(5, { clientId: 'same' })
    assert.equal((await watch.publishOn('will/to')).payload.toString(), 'taken over')
  })

  test('[MQTT-3.1.3-9] v5: on takeover of a kept session the will with a delay is not published', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const watch = await h.client(5, { clientId: 'watch' })
    await watch.subscribe('will/tk')
    const properties = { sessionExpiryInterval: 600 }
    const old = await h.client(5, { clientId: 'same', cleanStart: false, properties, will: will('will/tk', 'x', 0, false, { willDelayInterval: 10 }) })
    await h.client(5, { clientId: 'same', cleanStart: false, properties })
    await old.waitClosed()
    clock.advance(20_000)
    await sweepBarrier(h.broker, clock)
    await watch.expectNothing(PacketType.Publish)
  })

  test('[MQTT-3.1.2-8] v3.1.1: on session takeover the old connection\'s will is published', async (t) => {
    const h = setup(t)
    const watch = await h.client(4, { clientId: 'watch' })
    await watch.subscribe('will/to4')
    const old = await h.client(4, { clientId: 'same4', will: will('will/to4', 'taken over') })
    await h.client(4, { clientId: 'same4' })
    await old.waitClosed()
    assert.equal((await watch.publishOn('will/to4')).payload.toString(), 'taken over')
  })

  test('[MQTT-3.2.2-12] v5: a Will QoS above Maximum QoS is refused (CONNACK 0x9B)', async (t) => {
    const h = setup(t, { maxQos: 1 })
    const c = h.raw(5)
    const ack = await c.connect({ clientId: 'wq', will: will('will/q', 'x', 2) })
    assert.equal(ack.reasonCode, ReasonCode.QoSNotSupported)
    await c.waitClosed()
  })

  test('[MQTT-3.2.2-14] v5: Will Retain 1 when retain is unavailable is refused (CONNACK 0x9A)', async (t) => {
    const h = setup(t, { retainAvailable: false })
    const c = h.raw(5)
    const ack = await c.connect({ clientId: 'wr', will: will('will/r', 'x', 0, true) })
    assert.equal(ack.reasonCode, ReasonCode.RetainNotSupported)
    await c.waitClosed()
  })

  test('[MQTT-3.1.2-8] v5: a will with Message Expiry Interval is forwarded with it', async (t) => {
    const h = setup(t)
    const watch = await h.client(5, { clientId: 'watch' })
    await watch.subscribe('will/exp')
    const c = await h.client(5, { clientId: 'we', will: will('will/exp', 'x', 0, false, { messageExpiryInterval: 50 }) })
    c.destroy()
    const m = await watch.publishOn('will/exp')
    assert.ok(m.properties?.messageExpiryInterval !== undefined && m.properties.messageExpiryInterval <= 50 && m.properties.messageExpiryInterval >= 49)
  })
})
