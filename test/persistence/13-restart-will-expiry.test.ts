/**
 * Wills and session expiry across a restart: a v5 will waiting out its Will Delay Interval is still
 * published on time after a crash; the will of a client that was connected when the broker died is
 * published at the restart [MQTT-3.1.2-8]; an offline session's expiry keeps counting from its
 * disconnect, whether the broker crashed or was shut down cleanly.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, type ProtocolVersion } from '../../src/protocol/constants.js'
import { sweepBarrier, type ConnectFields } from '../helpers/broker-harness.js'
import { BrokerLife } from './crash-harness.js'
import { tempDir } from './tmp-dir.js'

function persistent(v: ProtocolVersion, clientId: string, expiry = 3600): ConnectFields {
  return v === 5 ? { clientId, cleanStart: false, properties: { sessionExpiryInterval: expiry } } : { clientId, cleanStart: false }
}

const will = (delay: number) => ({ topic: 'will/t', payload: Buffer.from('gone'), qos: 1 as const, retain: false, properties: { willDelayInterval: delay, contentType: 'text/plain' } })

describe('wills and session expiry across a restart', { concurrency: true }, () => {
  test('[MQTT-3.1.3-9] v5: a will waiting out its delay when the broker crashed is published when the delay ends, not before', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const t0 = b1.clock.now
    const { c: w } = await b1.connect(5, { ...persistent(5, 'willer', 600), will: will(30) })
    w.destroy() // network failure: the delay starts
    await w.waitClosed()
    const { c: s1 } = await b1.connect(5, persistent(5, 'watcher'))
    await s1.subscribe('will/t', { qos: 1 })
    await s1.sync()
    life.crash()
    const b2 = await life.start(t0 + 10_000)
    const { c: s2 } = await b2.connect(5, persistent(5, 'watcher'))
    await sweepBarrier(b2.broker, b2.clock)
    await s2.expectNothing(PacketType.Publish, '10 s of 30: the will is still waiting')
    b2.clock.now = t0 + 31_000
    await sweepBarrier(b2.broker, b2.clock)
    const m = await s2.publishOn('will/t')
    assert.equal(m.payload.toString(), 'gone')
    assert.equal(m.properties?.contentType, 'text/plain')
    assert.equal(m.properties?.willDelayInterval, undefined, 'Will Delay Interval is not forwarded')
  })

  test('[MQTT-3.1.3-9] v5: a delayed will restored after a crash is cancelled when its client comes back in time', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const t0 = b1.clock.now
    const { c: w } = await b1.connect(5, { ...persistent(5, 'willer', 600), will: will(30) })
    w.destroy()
    await w.waitClosed()
    const { c: s1 } = await b1.connect(5, persistent(5, 'watcher'))
    await s1.subscribe('will/t', { qos: 1 })
    life.crash()
    const b2 = await life.start(t0 + 5000)
    await b2.connect(5, persistent(5, 'willer', 600))
    b2.clock.now = t0 + 40_000
    await sweepBarrier(b2.broker, b2.clock)
    const { c: s2 } = await b2.connect(5, persistent(5, 'watcher'))
    await s2.expectNothing(PacketType.Publish, 'the will was cancelled by the reconnect')
  })

  for (const v of [4, 5] as const) {
    test(`[MQTT-3.1.2-8] v${v}: the will of a client connected when the broker crashed is published at the restart (to a persistent subscriber's queue)`, async (t) => {
      const life = new BrokerLife(t, tempDir(t))
      const b1 = await life.start()
      const { c: s1 } = await b1.connect(v, persistent(v, 'watcher'))
      await s1.subscribe('will/t', { qos: 1 })
      await s1.disconnect()
      const plainWill = { topic: 'will/t', payload: Buffer.from('died with the broker'), qos: 1 as const, retain: false }
      await b1.connect(v, { ...persistent(v, 'willer'), will: plainWill })
      life.crash()
      const b2 = await life.start()
      const { c: s2 } = await b2.connect(v, persistent(v, 'watcher'))
      const m = await s2.publishOn('will/t')
      assert.equal(m.payload.toString(), 'died with the broker')
      await s2.ack(m)
      await s2.sync() // the PUBACK is processed (and committed) before the crash
      life.crash()
      const b3 = await life.start()
      const { c: s3 } = await b3.connect(v, persistent(v, 'watcher'))
      await s3.expectNothing(PacketType.Publish, 'published once, not at every restart')
    })
  }

  test('v5: the will of a client that disconnected normally is not published after a crash [MQTT-3.1.2-10]', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const { c: s1 } = await b1.connect(5, persistent(5, 'watcher'))
    await s1.subscribe('will/t', { qos: 1 })
    await s1.disconnect()
    const { c: w } = await b1.connect(5, { ...persistent(5, 'willer'), will: will(0) })
    await w.disconnect()
    life.crash()
    const b2 = await life.start()
    const { c: s2 } = await b2.connect(5, persistent(5, 'watcher'))
    await s2.expectNothing(PacketType.Publish)
  })

  test('[MQTT-3.1.2-23] v5: an offline session whose expiry passed while the broker was down is gone after the restart', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const t0 = b1.clock.now
    const { c } = await b1.connect(5, persistent(5, 'short', 10))
    await c.subscribe('t', { qos: 1 })
    await c.disconnect()
    life.crash()
    const b2 = await life.start(t0 + 11_000)
    await sweepBarrier(b2.broker, b2.clock)
    const { present } = await b2.connect(5, persistent(5, 'short', 10))
    assert.equal(present, false)
  })

  test('v5: an offline session whose expiry has not passed is present after the restart, and expires on schedule', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const t0 = b1.clock.now
    const { c } = await b1.connect(5, persistent(5, 'short', 10))
    await c.disconnect()
    const { c: keep } = await b1.connect(5, persistent(5, 'long', 10))
    await keep.disconnect()
    life.crash()
    const b2 = await life.start(t0 + 5000)
    await sweepBarrier(b2.broker, b2.clock)
    const { present } = await b2.connect(5, persistent(5, 'long', 10))
    assert.equal(present, true)
    b2.clock.now = t0 + 10_500
    await sweepBarrier(b2.broker, b2.clock)
    assert.equal(b2.broker.sessions.has('short'), false, 'expired 10 s after its disconnect, counting the time before the crash')
  })

  test('v5: a clean shutdown does not restart the expiry clock of offline sessions', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const t0 = b1.clock.now
    const { c } = await b1.connect(5, persistent(5, 'short', 60))
    await c.disconnect()
    b1.clock.now = t0 + 50_000
    await life.stop() // compacts: the snapshot must keep the disconnect time, not the shutdown time
    const b2 = await life.start(t0 + 70_000)
    await sweepBarrier(b2.broker, b2.clock)
    const { present } = await b2.connect(5, persistent(5, 'short', 60))
    assert.equal(present, false, 'disconnected at t0 with a 60 s expiry: gone at t0 + 70 s')
  })

  test('v3.1.1: a persistent session never expires, however long the broker was down', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const t0 = b1.clock.now
    const { c } = await b1.connect(4, persistent(4, 'forever'))
    await c.subscribe('t', { qos: 1 })
    await c.disconnect()
    life.crash()
    const b2 = await life.start(t0 + 400 * 86_400_000)
    await sweepBarrier(b2.broker, b2.clock)
    const { present } = await b2.connect(4, persistent(4, 'forever'))
    assert.equal(present, true)
  })
})
