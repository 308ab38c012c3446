/**
 * Persistent sessions across a crash: the session itself (Session Present), its subscriptions with
 * every v5 option and identifier, and the QoS 1/2 messages queued for it while it was offline.
 * Non-persistent sessions must not come back.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, type ProtocolVersion, type QoS } from '../../src/protocol/constants.js'
import type { ConnectFields } from '../helpers/broker-harness.js'
import { BrokerLife } from './crash-harness.js'
import { tempDir } from './tmp-dir.js'

function persistent(v: ProtocolVersion, clientId: string, expiry = 3600): ConnectFields {
  return v === 5 ? { clientId, cleanStart: false, properties: { sessionExpiryInterval: expiry } } : { clientId, cleanStart: false }
}

describe('persistent sessions survive a crash', { concurrency: true }, () => {
  for (const v of [4, 5] as const) {
    test(`[MQTT-3.1.2-5] v${v}: a persistent session and its subscriptions are back after a crash (Session Present, no resubscribe)`, async (t) => {
      const life = new BrokerLife(t, tempDir(t))
      const b1 = await life.start()
      const { c: s1 } = await b1.connect(v, persistent(v, 'sub'))
      await s1.subscribe('a/+', { qos: 1 })
      await s1.subscribe('b/#', { qos: 2 })
      await s1.subscribe('gone/t', { qos: 1 })
      await s1.unsubscribe('gone/t')
      life.crash()
      const b2 = await life.start()
      const { c: s2, present } = await b2.connect(v, persistent(v, 'sub'))
      assert.equal(present, true)
      const { c: pub } = await b2.connect(v, { clientId: 'pub' })
      await pub.publishAcked('a/x', 'to a', { qos: 2 })
      await pub.publishAcked('b/y/z', 'to b', { qos: 2 })
      await pub.publishAcked('gone/t', 'to nobody', { qos: 1 })
      const a = await s2.publishOn('a/x')
      assert.equal(a.qos, 1, 'granted QoS 1 kept')
      await s2.ack(a)
      const b = await s2.publishOn('b/y/z')
      assert.equal(b.qos, 2, 'granted QoS 2 kept')
      await s2.ack(b)
      await s2.expectNothing(PacketType.Publish, 'the unsubscribed filter stays unsubscribed')
    })

    test(`[MQTT-4.6.0-6] v${v}: QoS 1 and 2 messages queued for an offline session before a crash are delivered after it, in order, DUP 0`, async (t) => {
      const life = new BrokerLife(t, tempDir(t))
      const b1 = await life.start()
      const { c: s1 } = await b1.connect(v, persistent(v, 'offline'))
      await s1.subscribe('q/#', { qos: 2 })
      await s1.disconnect()
      const { c: pub } = await b1.connect(v, { clientId: 'pub' })
      const sent: string[] = []
      for (let i = 0; i < 30; i++) {
        await pub.publishAcked(`q/${i % 3}`, `m${i}`, { qos: (1 + (i % 2)) as QoS })
        sent.push(`m${i}`)
      }
      life.crash()
      const b2 = await life.start()
      const { c: s2, present } = await b2.connect(v, persistent(v, 'offline'))
      assert.equal(present, true)
      const got: string[] = []
      for (let i = 0; i < 30; i++) {
        const m = await s2.waitFor(PacketType.Publish)
        assert.equal(m.dup, false, 'never sent before: DUP 0')
        assert.equal(m.qos, 1 + (i % 2))
        got.push(m.payload.toString())
        await s2.ack(m)
      }
      assert.deepEqual(got, sent)
      await s2.expectNothing(PacketType.Publish)
    })

    test(`v${v}: a session that is not persistent is not restored after a crash`, async (t) => {
      const life = new BrokerLife(t, tempDir(t))
      const b1 = await life.start()
      const fields: ConnectFields = v === 5 ? { clientId: 'temp', cleanStart: false } : { clientId: 'temp', cleanStart: true }
      const { c } = await b1.connect(v, fields)
      await c.subscribe('t', { qos: 1 })
      life.crash()
      const b2 = await life.start()
      const { present } = await b2.connect(v, fields)
      assert.equal(present, false)
      assert.equal(b2.broker.sessions.size, 1, 'only the new connection\'s session exists')
    })
  }

  test('[MQTT-3.8.3-3] [MQTT-3.3.1-12] [MQTT-3.3.4-3] v5: subscription options and identifiers survive a crash: No Local, Retain As Published, Subscription Identifier', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const { c: s1 } = await b1.connect(5, persistent(5, 'opts'))
    await s1.subscribe('nl/t', { qos: 1, noLocal: true, id: 11 })
    await s1.subscribe('rap/t', { qos: 1, retainAsPublished: true, id: 22 })
    await s1.subscribe('plain/t', { qos: 1, id: 268_435_455 })
    life.crash()
    const b2 = await life.start()
    const { c: s2, present } = await b2.connect(5, persistent(5, 'opts'))
    assert.equal(present, true)
    await s2.publishAcked('nl/t', 'own message', { qos: 1 })
    const { c: pub } = await b2.connect(5, { clientId: 'pub' })
    await pub.publishAcked('nl/t', 'other', { qos: 1 })
    await pub.publishAcked('rap/t', 'kept flag', { qos: 1, retain: true })
    await pub.publishAcked('plain/t', 'plain', { qos: 1 })
    const nl = await s2.publishOn('nl/t')
    assert.equal(nl.payload.toString(), 'other', 'No Local: its own message was not sent back')
    assert.deepEqual(nl.properties?.subscriptionIdentifiers, [11])
    await s2.ack(nl)
    const rap = await s2.publishOn('rap/t')
    assert.equal(rap.retain, true, 'Retain As Published kept the RETAIN flag')
    assert.deepEqual(rap.properties?.subscriptionIdentifiers, [22])
    await s2.ack(rap)
    const plain = await s2.publishOn('plain/t')
    assert.deepEqual(plain.properties?.subscriptionIdentifiers, [268_435_455])
    await s2.ack(plain)
    await s2.expectNothing(PacketType.Publish)
  })

  test('[MQTT-3.3.1-10] v5: Retain Handling 1 after a crash: resubscribing to a restored subscription sends no retained messages', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const { c: pub1 } = await b1.connect(5, { clientId: 'pub' })
    await pub1.publishAcked('rh/t', 'retained', { qos: 1, retain: true })
    const { c: s1 } = await b1.connect(5, persistent(5, 'rh'))
    await s1.subscribe('rh/t', { qos: 1, retainHandling: 1 })
    const first = await s1.publishOn('rh/t')
    await s1.ack(first)
    await s1.sync() // the PUBACK is processed (and committed) before the crash
    life.crash()
    const b2 = await life.start()
    const { c: s2 } = await b2.connect(5, persistent(5, 'rh'))
    await s2.subscribe('rh/t', { qos: 1, retainHandling: 1 })
    await s2.expectNothing(PacketType.Publish, 'the subscription already existed, restored from the store')
  })

  test('[MQTT-4.8.2-2] v5: a shared subscription survives a crash and messages queued for it are delivered', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const { c: s1 } = await b1.connect(5, persistent(5, 'member'))
    await s1.subscribe('$share/g/jobs/#', { qos: 1 })
    await s1.disconnect()
    const { c: pub } = await b1.connect(5, { clientId: 'pub' })
    await pub.publishAcked('jobs/1', 'job one', { qos: 1 })
    life.crash()
    const b2 = await life.start()
    const { c: s2 } = await b2.connect(5, persistent(5, 'member'))
    const queued = await s2.publishOn('jobs/1')
    assert.equal(queued.payload.toString(), 'job one')
    await s2.ack(queued)
    const { c: pub2 } = await b2.connect(5, { clientId: 'pub' })
    await pub2.publishAcked('jobs/2', 'job two', { qos: 1 })
    const live = await s2.publishOn('jobs/2')
    assert.equal(live.payload.toString(), 'job two')
  })

  test('[MQTT-3.3.2-5] [MQTT-3.3.2-6] v5: a queued message keeps its expiry across a restart: one that expired while the broker was down is not delivered, the other counts down', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const t0 = b1.clock.now
    const { c: s1 } = await b1.connect(5, persistent(5, 'sub'))
    await s1.subscribe('exp/#', { qos: 1 })
    await s1.disconnect()
    const { c: pub } = await b1.connect(5, { clientId: 'pub' })
    await pub.publishAcked('exp/short', 'gone by then', { qos: 1, properties: { messageExpiryInterval: 30 } })
    await pub.publishAcked('exp/long', 'still fresh', { qos: 1, properties: { messageExpiryInterval: 100 } })
    life.crash()
    const b2 = await life.start(t0 + 40_000)
    const { c: s2 } = await b2.connect(5, persistent(5, 'sub'))
    const m = await s2.waitFor(PacketType.Publish)
    assert.equal(m.topic, 'exp/long')
    assert.equal(m.properties?.messageExpiryInterval, 60)
    await s2.ack(m)
    await s2.expectNothing(PacketType.Publish)
  })

  test('[MQTT-3.1.2-4] Clean Start discards a restored session, and it stays discarded after another crash', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    const { c: s1 } = await b1.connect(4, persistent(4, 'c'))
    await s1.subscribe('t', { qos: 1 })
    life.crash()
    const b2 = await life.start()
    const { c: s2, present } = await b2.connect(4, { clientId: 'c', cleanStart: true })
    assert.equal(present, false)
    await s2.disconnect()
    life.crash()
    const b3 = await life.start()
    const { present: again } = await b3.connect(4, persistent(4, 'c'))
    assert.equal(again, false)
    const { c: pub } = await b3.connect(4, { clientId: 'pub' })
    await pub.publishAcked('t', 'x', { qos: 1 })
    assert.equal([...b3.broker.sessions.values()].find((s) => s.clientId === 'c')?.queueLength ?? 0, 0)
  })

  test('many sessions: 200 persistent sessions with a subscription and 3 queued messages each come back intact', async (t) => {
    const life = new BrokerLife(t, tempDir(t))
    const b1 = await life.start()
    for (let i = 0; i < 200; i++) {
      const { c } = await b1.connect(4, persistent(4, `dev-${i}`))
      await c.subscribe(`dev/${i}/#`, { qos: 1 })
      await c.disconnect()
    }
    const { c: pub } = await b1.connect(4, { clientId: 'pub' })
    for (let k = 0; k < 3; k++) for (let i = 0; i < 200; i++) pub.publish(`dev/${i}/cmd`, `k${k}`, { qos: 1 })
    await pub.sync()
    life.crash()
    const b2 = await life.start()
    assert.equal(b2.broker.sessions.size, 200)
    for (const i of [0, 57, 199]) {
      const { c } = await b2.connect(4, persistent(4, `dev-${i}`))
      const got: string[] = []
      for (let k = 0; k < 3; k++) {
        const m = await c.publishOn(`dev/${i}/cmd`)
        got.push(m.payload.toString())
        await c.ack(m)
      }
      assert.deepEqual(got, ['k0', 'k1', 'k2'])
    }
  })
})
