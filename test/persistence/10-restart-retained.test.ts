/**
 * Retained messages across a crash (kill -9 simulated in-process, see crash-harness.ts): every
 * retained message a client was told about is back after the restart, with its QoS, properties and
 * remaining expiry; clearing and replacing are durable too.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType } from '../../src/protocol/constants.js'
import { sweepBarrier } from '../helpers/broker-harness.js'
import { BrokerLife } from './crash-harness.js'
import { tempDir } from './tmp-dir.js'

describe('retained messages survive a crash', { concurrency: true }, () => {
  for (const v of [4, 5] as const) {
    test(`v${v}: retained messages published at QoS 0, 1 and 2 are back after a crash, RETAIN set, at their QoS`, async (t) => {
      const life = new BrokerLife(t, tempDir(t))
      const b1 = await life.start()
      const { c: pub } = await b1.connect(v, { clientId: 'pub' })
      pub.publish('r/q0', 'zero', { retain: true })
      await pub.publishAcked('r/q1', 'one', { qos: 1, retain: true })
      await pub.publishAcked('r/q2', 'two', { qos: 2, retain: true })
      await pub.sync()
      life.crash()
      const b2 = await life.start()
      const { c: sub } = await b2.connect(v, { clientId: 'sub' })
      await sub.subscribe('r/#', { qos: 2 })
      await sub.sync()
      const got = sub.pending(PacketType.Publish).map((p) => [p.topic, p.payload.toString(), p.qos, p.retain]).sort()
      assert.deepEqual(got, [['r/q0', 'zero', 0, true], ['r/q1', 'one', 1, true], ['r/q2', 'two', 2, true]])
    })
  }

  test('v5: a retained message keeps its properties (user properties in order, content type, response topic, correlation data, payload format)', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const { c: pub } = await b1.connect(5, { clientId: 'pub' })
    const properties = {
      payloadFormatIndicator: 1, contentType: 'application/json', responseTopic: 'reply/here',
      correlationData: Buffer.from([1, 2, 3, 0]), userProperties: [['b', '2'], ['a', '1'], ['b', '3']] as Array<[string, string]>,
    }
    await pub.publishAcked('props/t', '{"x":1}', { qos: 1, retain: true, properties })
    life.crash()
    const b2 = await life.start()
    const { c: sub } = await b2.connect(5, { clientId: 'sub' })
    await sub.subscribe('props/t', { qos: 1 })
    const m = await sub.publishOn('props/t')
    assert.equal(m.payload.toString(), '{"x":1}')
    assert.deepEqual(m.properties, properties)
  })

  test('a retained message cleared with an empty payload stays cleared, and a replaced one comes back as the newest', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const { c: pub } = await b1.connect(4, { clientId: 'pub' })
    await pub.publishAcked('keep', 'old', { qos: 1, retain: true })
    await pub.publishAcked('keep', 'new', { qos: 1, retain: true })
    await pub.publishAcked('drop', 'x', { qos: 1, retain: true })
    await pub.publishAcked('drop', '', { qos: 1, retain: true })
    life.crash()
    const b2 = await life.start()
    const { c: sub } = await b2.connect(4, { clientId: 'sub' })
    await sub.subscribe('#', { qos: 1 })
    await sub.sync()
    assert.deepEqual(sub.pending(PacketType.Publish).map((p) => `${p.topic}=${p.payload.toString()}`), ['keep=new'])
  })

  test('two crashes in a row (the second before anything new happens) lose nothing', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const { c: pub } = await b1.connect(4, { clientId: 'pub' })
    for (let i = 0; i < 20; i++) await pub.publishAcked(`many/${i}`, `v${i}`, { qos: 1, retain: true })
    life.crash()
    await life.start()
    life.crash()
    const b3 = await life.start()
    const { c: sub } = await b3.connect(4, { clientId: 'sub' })
    await sub.subscribe('many/#', { qos: 0 })
    await sub.sync()
    assert.equal(sub.pending(PacketType.Publish).length, 20)
  })

  test('[MQTT-3.3.2-5] [MQTT-3.3.2-6] v5: a retained message keeps its expiry across a restart: the interval counts down, and once past it is gone', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const t0 = b1.clock.now
    const { c: pub } = await b1.connect(5, { clientId: 'pub' })
    await pub.publishAcked('exp/t', 'soon gone', { qos: 1, retain: true, properties: { messageExpiryInterval: 60 } })
    life.crash()
    const b2 = await life.start(t0 + 20_000)
    const { c: early } = await b2.connect(5, { clientId: 'early' })
    await early.subscribe('exp/t', { qos: 1 })
    const m = await early.publishOn('exp/t')
    assert.equal(m.properties?.messageExpiryInterval, 40, 'the interval counts the time across the restart')
    life.crash()
    const b3 = await life.start(t0 + 61_000)
    await sweepBarrier(b3.broker, b3.clock)
    const { c: late } = await b3.connect(5, { clientId: 'late' })
    await late.subscribe('exp/t', { qos: 1 })
    await late.expectNothing(PacketType.Publish, 'the retained message expired while the broker was down')
  })
})
