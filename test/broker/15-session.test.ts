/**
 * Session state across connections (MQTT 3.1.1 section 4.1 and 4.4, MQTT 5.0 sections 3.1.2.11, 4.1
 * and 4.4): queueing for an offline persistent session and ordered delivery on reconnect, resending
 * in-flight PUBLISH (DUP=1) and PUBREL, inbound QoS 2 state kept across a reconnect, the queue limit,
 * and v5 session expiry (including the DISCONNECT rules for Session Expiry Interval).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode, type QoS } from '../../src/protocol/constants.js'
import type { ProtocolVersion } from '../../src/protocol/constants.js'
import { Logger } from '../../src/observability/logger.js'
import { setup, FakeClock, sweepBarrier, type Harness, type TestClient, type ConnectFields } from '../helpers/broker-harness.js'

/** Connect fields for a session that outlives the connection, in each version's terms. */
function persistent (v: ProtocolVersion, clientId: string, expiry = 3600): ConnectFields {
  return v === 5 ? { clientId, cleanStart: false, properties: { sessionExpiryInterval: expiry } } : { clientId, cleanStart: false }
}

async function reconnect (h: Harness, v: ProtocolVersion, fields: ConnectFields): Promise<{ c: TestClient; present: boolean }> {
  const c = h.raw(v)
  const ack = await c.connect(fields)
  assert.equal(ack.reasonCode, 0)
  return { c, present: ack.sessionPresent }
}

describe('sessions (tests run concurrently: several wait for the once-a-second sweep)', { concurrency: true }, () => {
  for (const v of [4, 5] as const) {
    test(`[MQTT-3.1.2-5] [MQTT-4.6.0-6] v${v}: QoS 1/2 messages published while a persistent session is offline are delivered on reconnect, in order`, async (t) => {
      const h = setup(t)
      const sub = await h.client(v, persistent(v, 'offline'))
      await sub.subscribe('q/#', { qos: 2 })
      await sub.disconnect()
      const pub = await h.client(v, { clientId: 'pub' })
      const sent: string[] = []
      for (let i = 0; i < 25; i++) {
        await pub.publishAcked('q/t', `m${i}`, { qos: (1 + (i % 2)) as QoS })
        sent.push(`m${i}`)
      }
      const { c, present } = await reconnect(h, v, persistent(v, 'offline'))
      assert.equal(present, true)
      const got: string[] = []
      for (let i = 0; i < 25; i++) {
        const m = await c.publishOn('q/t')
        assert.equal(m.dup, false, 'never sent before: DUP 0')
        got.push(m.payload.toString())
        await c.ack(m)
      }
      assert.deepEqual(got, sent)
    })

    test(`[MQTT-4.4.0-1] [MQTT-3.3.1-1] v${v}: an unacknowledged QoS 1 PUBLISH is resent on reconnect with DUP=1 and the same packet id, before queued ones`, async (t) => {
      const h = setup(t)
      const sub = await h.client(v, persistent(v, 'inflight'))
      await sub.subscribe('if/t', { qos: 1 })
      const pub = await h.client(v, { clientId: 'pub' })
      await pub.publishAcked('if/t', 'first', { qos: 1 })
      const first = await sub.publishOn('if/t')
      sub.destroy() // no PUBACK
      await sub.waitClosed()
      await pub.publishAcked('if/t', 'second', { qos: 1 })
      const { c } = await reconnect(h, v, persistent(v, 'inflight'))
      const again = await c.waitFor(PacketType.Publish)
      assert.equal(again.payload.toString(), 'first')
      assert.equal(again.dup, true)
      assert.equal(again.packetId, first.packetId)
      assert.equal(c.history.find((f) => f.type === PacketType.Publish)!.raw[0], 0x3a, 'fixed header: PUBLISH, DUP, QoS 1')
      await c.ack(again)
      const next = await c.waitFor(PacketType.Publish)
      assert.equal(next.payload.toString(), 'second')
      assert.equal(next.dup, false)
      await c.ack(next)
      await c.expectNothing(PacketType.Publish)
    })

    test(`[MQTT-4.4.0-1] v${v}: an outgoing QoS 2 PUBLISH that was never PUBREC'd is resent with DUP=1`, async (t) => {
      const h = setup(t)
      const sub = await h.client(v, persistent(v, 'q2pub'))
      await sub.subscribe('q2p/t', { qos: 2 })
      const pub = await h.client(v, { clientId: 'pub' })
      await pub.publishAcked('q2p/t', 'two', { qos: 2 })
      const m = await sub.publishOn('q2p/t')
      sub.destroy()
      await sub.waitClosed()
      const { c } = await reconnect(h, v, persistent(v, 'q2pub'))
      const again = await c.publishOn('q2p/t')
      assert.deepEqual([again.dup, again.qos, again.packetId], [true, 2, m.packetId])
      await c.ack(again)
    })

    test(`[MQTT-4.4.0-1] v${v}: after PUBREC the broker resends PUBREL (not the PUBLISH) on reconnect`, async (t) => {
      const h = setup(t)
      const sub = await h.client(v, persistent(v, 'q2rel'))
      await sub.subscribe('q2r/t', { qos: 2 })
      const pub = await h.client(v, { clientId: 'pub' })
      await pub.publishAcked('q2r/t', 'two', { qos: 2 })
      const m = await sub.publishOn('q2r/t')
      sub.send({ type: PacketType.Pubrec, packetId: m.packetId, reasonCode: 0 })
      await sub.waitFor(PacketType.Pubrel)
      sub.destroy() // no PUBCOMP
      await sub.waitClosed()
      const { c } = await reconnect(h, v, persistent(v, 'q2rel'))
      const f = await c.nextFrame()
      assert.equal(f.raw[0], 0x62, 'PUBREL')
      assert.deepEqual([...f.raw.subarray(2, 4)], [m.packetId >> 8, m.packetId & 0xff])
      c.send({ type: PacketType.Pubcomp, packetId: m.packetId, reasonCode: 0 })
      await c.expectNothing(PacketType.Publish, 'the message is not sent again')
    })

    test(`[MQTT-4.3.3-10] v${v}: inbound QoS 2 state survives a reconnect: the resent PUBLISH is not delivered twice`, async (t) => {
      const h = setup(t)
      const sub = await h.client(v, { clientId: 'sub' })
      await sub.subscribe('in2/t', { qos: 2 })
      const pub = await h.client(v, persistent(v, 'pub2'))
      pub.publish('in2/t', 'once', { qos: 2, packetId: 42 })
      await pub.waitFor(PacketType.Pubrec)
      pub.destroy()
      await pub.waitClosed()
      const { c } = await reconnect(h, v, persistent(v, 'pub2'))
      c.publish('in2/t', 'once', { qos: 2, packetId: 42, dup: true })
      const rec = await c.waitFor(PacketType.Pubrec)
      assert.equal(rec.packetId, 42)
      c.send({ type: PacketType.Pubrel, packetId: 42, reasonCode: 0 })
      const comp = await c.waitFor(PacketType.Pubcomp)
      assert.equal(comp.reasonCode, 0, 'the id was known')
      await sub.sync()
      const got = sub.pending(PacketType.Publish)
      assert.equal(got.length, 1)
      await sub.ack(got[0]!)
    })

    test(`v${v}: max_queued_messages bounds the offline queue; the oldest messages are kept`, async (t) => {
      const h = setup(t, { maxQueuedMessages: 3 })
      const sub = await h.client(v, persistent(v, 'bounded'))
      await sub.subscribe('b/t', { qos: 1 })
      await sub.disconnect()
      const pub = await h.client(v, { clientId: 'pub' })
      for (let i = 0; i < 8; i++) await pub.publishAcked('b/t', `m${i}`, { qos: 1 })
      const { c } = await reconnect(h, v, persistent(v, 'bounded'))
      const got: string[] = []
      for (let i = 0; i < 3; i++) {
        const m = await c.publishOn('b/t')
        got.push(m.payload.toString())
        await c.ack(m)
      }
      await c.expectNothing(PacketType.Publish)
      assert.deepEqual(got, ['m0', 'm1', 'm2'])
    })

    test(`v${v}: a full queue is logged with the client id, where it is (offline) and its user`, async (t) => {
      const lines: string[] = []
      const h = setup(t, { maxQueuedMessages: 1, logger: new Logger({ types: ['warning'], sinks: [{ write: (_line, _type, m) => { lines.push(m) } }] }) })
      const sub = await h.client(v, { ...persistent(v, 'full'), username: 'alice' })
      await sub.subscribe('f/t', { qos: 1 })
      await sub.disconnect()
      const pub = await h.client(v, { clientId: 'pub' })
      for (let i = 0; i < 2; i++) await pub.publishAcked('f/t', `m${i}`, { qos: 1 })
      assert.deepEqual(lines, ["Outgoing messages are being dropped for client full offline (u'alice'): its queue is full (max_queued_messages 1) (1 dropped so far; latest on 'f/t')."])
    })

    test(`[MQTT-3.1.2-4] v${v}: Clean Start discards queued messages`, async (t) => {
      const h = setup(t)
      const sub = await h.client(v, persistent(v, 'wipe'))
      await sub.subscribe('w/t', { qos: 1 })
      await sub.disconnect()
      const pub = await h.client(v, { clientId: 'pub' })
      await pub.publishAcked('w/t', 'old', { qos: 1 })
      const c = h.raw(v)
      const ack = await c.connect({ clientId: 'wipe', cleanStart: true })
      assert.equal(ack.sessionPresent, false)
      await c.subscribe('w/t', { qos: 1 })
      await c.expectNothing(PacketType.Publish)
    })
  }

  test('v3.1.1: QoS 0 messages are not queued for an offline session (mosquitto queue_qos0_messages false)', async (t) => {
    const h = setup(t)
    const sub = await h.client(4, persistent(4, 'q0'))
    await sub.subscribe('z/t', { qos: 1 })
    await sub.disconnect()
    const pub = await h.client(4, { clientId: 'pub' })
    await pub.publishAcked('z/t', 'zero', { qos: 0 })
    await pub.publishAcked('z/t', 'one', { qos: 1 })
    const { c } = await reconnect(h, 4, persistent(4, 'q0'))
    const m = await c.publishOn('z/t')
    assert.equal(m.payload.toString(), 'one')
    await c.ack(m)
    await c.expectNothing(PacketType.Publish)
  })

  test('v3.1.1: with queue_qos0_messages, QoS 0 messages are queued for an offline session, in order with QoS 1', async (t) => {
    const h = setup(t, { queueQos0Messages: true })
    const sub = await h.client(4, persistent(4, 'q0q'))
    await sub.subscribe('z/t', { qos: 1 })
    await sub.disconnect()
    const pub = await h.client(4, { clientId: 'pub' })
    await pub.publishAcked('z/t', 'zero', { qos: 0 })
    await pub.publishAcked('z/t', 'one', { qos: 1 })
    const { c } = await reconnect(h, 4, persistent(4, 'q0q'))
    const m0 = await c.publishOn('z/t')
    assert.deepEqual([m0.payload.toString(), m0.qos], ['zero', 0])
    const m1 = await c.publishOn('z/t')
    assert.deepEqual([m1.payload.toString(), m1.qos], ['one', 1])
    await c.ack(m1)
  })

  test('use_username_as_clientid: two devices of one user share one session, the second takes it over', async (t) => {
    const h = setup(t, { useUsernameAsClientId: true })
    const a = await h.client(5, { clientId: 'device-a', username: 'alice' })
    const b = await h.client(5, { clientId: 'device-b', username: 'alice' })
    const d = await a.expectProtocolClose([ReasonCode.SessionTakenOver])
    assert.equal(d?.reasonCode, ReasonCode.SessionTakenOver)
    assert.deepEqual([...h.broker.sessions.keys()], ['alice'])
    await b.disconnect()
  })

  test('[MQTT-3.1.2-23] v5: a session with Session Expiry Interval 5 s is kept for 5 s and then discarded', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const a = await h.client(5, persistent(5, 'exp', 5))
    await a.subscribe('e/t', { qos: 1 })
    await a.disconnect()
    clock.advance(4_000)
    await sweepBarrier(h.broker, clock)
    const b = await reconnect(h, 5, persistent(5, 'exp', 5))
    assert.equal(b.present, true, 'still there after 4 s')
    await b.c.disconnect()
    clock.advance(6_000)
    await sweepBarrier(h.broker, clock)
    const c = await reconnect(h, 5, persistent(5, 'exp', 5))
    assert.equal(c.present, false, 'gone after 6 s')
    const pub = await h.client(5, { clientId: 'pub' })
    assert.equal((await pub.publishAcked('e/t', 'x', { qos: 1 }))?.reasonCode, ReasonCode.NoMatchingSubscribers, 'its subscriptions went with it')
  })

  test('[MQTT-3.1.2-23] v5: the session expiry timer also runs with real timers (interval 1 s)', async (t) => {
    const h = setup(t)
    const a = await h.client(5, persistent(5, 'real', 1))
    await a.disconnect()
    assert.equal(h.broker.sessions.has('real'), true)
    const deadline = Date.now() + 4000
    while (h.broker.sessions.has('real')) {
      assert.ok(Date.now() < deadline, 'session still present 4 s after a 1 s expiry')
      await new Promise((r) => setTimeout(r, 50))
    }
    const b = await reconnect(h, 5, persistent(5, 'real', 1))
    assert.equal(b.present, false)
  })

  test('MQTT 5.0 §3.1.2.11.2 v5: Session Expiry Interval 0 (or absent) ends the session with the connection', async (t) => {
    const h = setup(t)
    const a = await h.client(5, { clientId: 'zero', cleanStart: false })
    await a.subscribe('zz/t', { qos: 1 })
    await a.disconnect()
    const b = await reconnect(h, 5, { clientId: 'zero', cleanStart: false })
    assert.equal(b.present, false)
  })

  test('MQTT 5.0 §3.1.2.11.2 v5: Session Expiry Interval 0xFFFFFFFF never expires', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const a = await h.client(5, persistent(5, 'forever', 0xffffffff))
    await a.disconnect()
    clock.advance(400 * 24 * 3600 * 1000)
    await sweepBarrier(h.broker, clock)
    const b = await reconnect(h, 5, persistent(5, 'forever', 0xffffffff))
    assert.equal(b.present, true)
  })

  test('[MQTT-3.14.2-2] v5: DISCONNECT may not set a non-zero Session Expiry Interval after CONNECT set 0 (DISCONNECT 0x82, will published)', async (t) => {
    const h = setup(t)
    const watch = await h.client(5, { clientId: 'watch' })
    await watch.subscribe('w/raise')
    const c = await h.client(5, { clientId: 'raise', will: { topic: 'w/raise', payload: Buffer.from('w'), qos: 0, retain: false } })
    c.send({ type: PacketType.Disconnect, reasonCode: 0, properties: { sessionExpiryInterval: 60 } })
    await c.expectProtocolClose([ReasonCode.ProtocolError])
    assert.equal((await watch.publishOn('w/raise')).payload.toString(), 'w', 'not a valid DISCONNECT: the will is published')
    const b = await reconnect(h, 5, { clientId: 'raise', cleanStart: false })
    assert.equal(b.present, false, 'the session was not made persistent')
  })

  test('MQTT 5.0 §3.14.2.2.2 v5: DISCONNECT can shorten the Session Expiry Interval to 0 (session ends) or change a non-zero one', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10 })
    const clock = new FakeClock(h.broker)
    const a = await h.client(5, persistent(5, 'shorten', 600))
    await a.disconnect(0, { sessionExpiryInterval: 0 })
    assert.equal((await reconnect(h, 5, persistent(5, 'shorten', 600))).present, false)

    const b = await h.client(5, persistent(5, 'lengthen', 5))
    await b.disconnect(0, { sessionExpiryInterval: 100 })
    clock.advance(50_000)
    await sweepBarrier(h.broker, clock)
    assert.equal((await reconnect(h, 5, persistent(5, 'lengthen', 5))).present, true)
  })

  test('v5: messages queued while offline that expire are not delivered; live ones have the interval counted down [MQTT-3.3.2-5] [MQTT-3.3.2-6]', async (t) => {
    const h = setup(t)
    const clock = new FakeClock(h.broker)
    const sub = await h.client(5, persistent(5, 'mexp'))
    await sub.subscribe('mx/t', { qos: 1 })
    await sub.disconnect()
    const pub = await h.client(5, { clientId: 'pub' })
    await pub.publishAcked('mx/t', 'short', { qos: 1, properties: { messageExpiryInterval: 2 } })
    await pub.publishAcked('mx/t', 'long', { qos: 1, properties: { messageExpiryInterval: 60 } })
    await pub.publishAcked('mx/t', 'none', { qos: 1 })
    clock.advance(10_000)
    const { c } = await reconnect(h, 5, persistent(5, 'mexp'))
    const long = await c.publishOn('mx/t')
    assert.equal(long.payload.toString(), 'long')
    assert.equal(long.properties?.messageExpiryInterval, 50)
    await c.ack(long)
    const none = await c.publishOn('mx/t')
    assert.equal(none.payload.toString(), 'none')
    assert.equal(none.properties?.messageExpiryInterval, undefined)
    await c.ack(none)
    await c.expectNothing(PacketType.Publish)
  })

  test('v3.1.1 and v5 share sessions by client id: a v5 reconnect resumes a 3.1.1 session', async (t) => {
    const h = setup(t)
    const a = await h.client(4, persistent(4, 'cross'))
    await a.subscribe('x/t', { qos: 1 })
    await a.disconnect()
    const pub = await h.client(4, { clientId: 'pub' })
    await pub.publishAcked('x/t', 'queued', { qos: 1 })
    const { c, present } = await reconnect(h, 5, persistent(5, 'cross'))
    assert.equal(present, true)
    const m = await c.publishOn('x/t')
    assert.equal(m.payload.toString(), 'queued')
    await c.ack(m)
  })

  test('[MQTT-3.1.4-3] [MQTT-4.4.0-1] v5: a takeover with Clean Start 0 resends the old connection\'s unacknowledged messages with DUP=1', async (t) => {
    const h = setup(t)
    const old = await h.client(5, persistent(5, 'taken'))
    await old.subscribe('tk/t', { qos: 1 })
    const pub = await h.client(5, { clientId: 'pub' })
    await pub.publishAcked('tk/t', 'unacked', { qos: 1 })
    const first = await old.publishOn('tk/t')
    const { c, present } = await reconnect(h, 5, persistent(5, 'taken'))
    assert.equal(present, true)
    await old.waitClosed()
    const again = await c.publishOn('tk/t')
    assert.deepEqual([again.payload.toString(), again.dup, again.packetId], ['unacked', true, first.packetId])
    await c.ack(again)
  })

  test('v3.1.1: persistentClientExpiration drops a disconnected persistent session after that many seconds (mosquitto persistent_client_expiration)', async (t) => {
    const h = setup(t, { connectTimeoutMs: 10, persistentClientExpiration: 10 })
    const clock = new FakeClock(h.broker)
    const a = await h.client(4, persistent(4, 'old3'))
    await a.subscribe('o/t', { qos: 1 })
    await a.disconnect()
    clock.advance(8_000)
    await sweepBarrier(h.broker, clock)
    const b = await reconnect(h, 4, persistent(4, 'old3'))
    assert.equal(b.present, true)
    await b.c.disconnect()
    clock.advance(11_000)
    await sweepBarrier(h.broker, clock)
    assert.equal((await reconnect(h, 4, persistent(4, 'old3'))).present, false)
  })

  test('v3.1.1: max_queued_bytes bounds the offline queue by payload bytes', async (t) => {
    const h = setup(t, { maxQueuedBytes: 10 })
    const sub = await h.client(4, persistent(4, 'bytes'))
    await sub.subscribe('qb/t', { qos: 1 })
    await sub.disconnect()
    const pub = await h.client(4, { clientId: 'pub' })
    for (const p of ['1234', '5678', '9abc', 'de']) await pub.publishAcked('qb/t', p, { qos: 1 })
    const { c } = await reconnect(h, 4, persistent(4, 'bytes'))
    const got: string[] = []
    for (let i = 0; i < 2; i++) {
      const m = await c.publishOn('qb/t')
      got.push(m.payload.toString())
      await c.ack(m)
    }
    await c.sync()
    for (const m of c.pending(PacketType.Publish)) {
      got.push(m.payload.toString())
      await c.ack(m)
    }
    assert.deepEqual(got.slice(0, 2), ['1234', '5678'])
    assert.ok(!got.includes('9abc'), `the 12th byte did not fit: ${JSON.stringify(got)}`)
  })
})
