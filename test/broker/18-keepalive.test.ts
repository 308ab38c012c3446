/**
 * Keep alive and connect timeout (MQTT 3.1.1 section 3.1.2.10 [MQTT-3.1.2-24], MQTT 5.0 sections
 * 3.1.2.10 [MQTT-3.1.2-22] and 3.2.2.3.14): a silent client is dropped after 1.5 x Keep Alive (v5 told
 * 0x8D first), its will is published, any packet counts as activity, Keep Alive 0 disables the check,
 * Server Keep Alive replaces the client's value, and a connection that never sends CONNECT is closed.
 * The real-timer tests run concurrently (the broker sweeps once a second); the precise ones use a fake clock.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import { setup, FakeClock, sweepBarrier } from '../helpers/broker-harness.js'

describe('keep alive and connect timeout (tests run concurrently)', { concurrency: true }, () => {
  for (const v of [4, 5] as const) {
    test(`[MQTT-3.1.2-24] (3.1.1) [MQTT-3.1.2-22] (5.0) v${v}: Keep Alive 1 s: a silent client is dropped after 1.5 s and its will published`, async (t) => {
      const h = setup(t)
      const watch = await h.client(v, { clientId: 'watch' })
      await watch.subscribe('ka/will')
      const c = await h.client(v, { clientId: 'silent', keepAlive: 1, will: { topic: 'ka/will', payload: Buffer.from('timed out'), qos: 0, retain: false } })
      const start = Date.now()
      await c.waitClosed(6000)
      const elapsed = Date.now() - start
      assert.ok(elapsed >= 1400, `dropped after ${elapsed} ms, before 1.5 x Keep Alive`)
      if (v === 5) {
        const d = c.drain()
        assert.equal(d.length, 1)
        assert.equal(d[0]!.type, PacketType.Disconnect)
        assert.equal(d[0]!.raw[2], ReasonCode.KeepAliveTimeout)
      } else {
        assert.deepEqual(c.drain(), [])
      }
      assert.equal((await watch.publishOn('ka/will')).payload.toString(), 'timed out')
    })
  }

  test('[MQTT-3.1.2-24] PINGREQ every 500 ms keeps a Keep Alive 1 s connection open', async (t) => {
    const h = setup(t)
    const c = await h.client(4, { clientId: 'pinger', keepAlive: 1 })
    const until = Date.now() + 2600
    while (Date.now() < until) {
      await c.sync()
      await new Promise((r) => setTimeout(r, 500))
    }
    assert.equal(c.closed, false)
    await c.sync()
  })

  test('a connection that sends no CONNECT is closed after connectTimeoutMs, with no CONNACK', async (t) => {
    const h = setup(t, { connectTimeoutMs: 300 })
    const c = h.raw(4)
    await c.waitClosed(5000)
    assert.deepEqual(c.history, [])
  })

  test('[MQTT-3.1.2-24] the limit is exactly 1.5 x Keep Alive (fake clock): open at 14 s, dropped after 16 s for Keep Alive 10', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const c = await h.client(5, { clientId: 'ka10', keepAlive: 10 })
    clock.advance(14_000)
    await sweepBarrier(h.broker, clock)
    assert.equal(c.closed, false)
    clock.advance(2_000)
    await sweepBarrier(h.broker, clock)
    await c.waitClosed()
  })

  test('[MQTT-3.1.2-24] any control packet counts as activity, not only PINGREQ', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const c = await h.client(4, { clientId: 'busy', keepAlive: 10 })
    for (let i = 0; i < 3; i++) {
      clock.advance(10_000)
      c.publish('busy/t', 'x') // a QoS 0 PUBLISH, no answer expected
      await sweepBarrier(h.broker, clock)
      assert.equal(c.closed, false, `still open after ${(i + 1) * 10} s`)
    }
  })

  test('MQTT 5.0 §3.1.2.10 Keep Alive 0 turns the keep-alive check off', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const c = await h.client(4, { clientId: 'forever', keepAlive: 0 })
    clock.advance(48 * 3600 * 1000)
    await sweepBarrier(h.broker, clock)
    assert.equal(c.closed, false)
    await c.sync()
  })

  test('[MQTT-3.2.2-21] v5: the broker enforces the Server Keep Alive it sent, not the client\'s value', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10, maxKeepalive: 4 })
    const clock = new FakeClock(h.broker)
    const c = h.raw(5)
    const ack = await c.connect({ clientId: 'ska', keepAlive: 0 })
    assert.equal(ack.properties?.serverKeepAlive, 4)
    clock.advance(5_000)
    await sweepBarrier(h.broker, clock)
    assert.equal(c.closed, false)
    clock.advance(2_000)
    await sweepBarrier(h.broker, clock)
    await c.waitClosed()
  })

  test('a connection that has sent CONNECT is not hit by the connect timeout', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const c = await h.client(4, { clientId: 'on-time' })
    clock.advance(60_000)
    await sweepBarrier(h.broker, clock)
    assert.equal(c.closed, false)
  })
})
