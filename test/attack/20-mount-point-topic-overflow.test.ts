/**
 * Issue #12 item 2: under `mount_point`, a topic of 65,535 bytes (the most a client can send) grows past what
 * a PUBLISH can carry. As a will it was published from the socket-close handler and the encode error killed
 * the process; as a retained PUBLISH it broke every later `#` subscriber. Both are now refused on the way in:
 * v5 with reason 0x90 Topic Name invalid, 3.1.1 by closing the connection.
 *
 * The target has the mount-point listener the attacker uses and a plain one for the watcher, whose `#`
 * sees topics with the mount point in front (which is what can't be encoded).
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import { test } from 'node:test'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import type { ProtocolVersion } from '../../src/protocol/constants.js'
import { TestClient } from '../helpers/broker-harness.js'
import { freePort } from '../helpers/ports.js'
import { AttackTarget } from './harness.js'

const LongTopic = 'w'.repeat(65_535)

async function start(name: string): Promise<{ t: AttackTarget; plainPort: number }> {
  const plainPort = await freePort()
  const t = await AttackTarget.start(name, `allow_anonymous true\nmount_point tenant1/\nlistener ${plainPort} 127.0.0.1\nallow_anonymous true\n`)
  await t.midge.opened(2)
  return { t, plainPort }
}

/** A client on the listener without mount point. */
function plainClient(port: number, version: ProtocolVersion): Promise<TestClient> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ host: '127.0.0.1', port })
    s.once('connect', () => resolve(new TestClient(s, version)))
    s.once('error', reject)
  })
}

test('[MQTT-1.5.4-1] [MQTT-3.1.2-8] mount_point + a 65,535-byte will topic is refused at CONNECT (v5 CONNACK 0x90, 3.1.1 close); the broker stays up', async () => {
  const { t, plainPort } = await start('mount-will')
  const watcher = await plainClient(plainPort, 4)
  try {
    assert.equal((await watcher.connect({ clientId: 'watcher' })).reasonCode, 0)
    await watcher.subscribe('#')

    const v4 = await t.client(4)
    v4.send(v4.connectPacket({ clientId: 'will-v4', will: { topic: LongTopic, payload: Buffer.from('x'), qos: 0, retain: true } }))
    await v4.waitClosed(5000)
    assert.equal(v4.history.filter((f) => f.type === PacketType.Connack).length, 0, 'a 3.1.1 client gets no CONNACK it could take for success')

    const v5 = await t.client(5)
    const ack = await v5.connect({ clientId: 'will-v5', will: { topic: LongTopic, payload: Buffer.from('x'), qos: 0, retain: true } })
    assert.equal(ack.reasonCode, ReasonCode.TopicNameInvalid)
    await v5.waitClosed(5000)

    await t.midge.waitFor(/will-v5.*(too long|65535|65,535)/)
    // A will that fits is still accepted and published with the mount point.
    const ok = await t.client(4)
    assert.equal((await ok.connect({ clientId: 'fits', will: { topic: 'w'.repeat(100), payload: Buffer.from('bye'), qos: 0, retain: false } })).reasonCode, 0)
    ok.destroy()
    const m = await watcher.waitFor(PacketType.Publish, (p) => p.topic.startsWith('tenant1/w'), 5000)
    assert.equal(m.payload.toString(), 'bye')

    await t.assertServes(5000)
    await watcher.sync(5000)
  } finally {
    watcher.destroy()
    await t.stop()
  }
})

test('[MQTT-1.5.4-1] [MQTT-3.3.2-1] mount_point + a 65,535-byte retained PUBLISH is refused (v5 DISCONNECT 0x90, 3.1.1 close): later # subscribers are served', async () => {
  const { t, plainPort } = await start('mount-retain')
  try {
    const v4 = await t.client(4)
    assert.equal((await v4.connect({ clientId: 'pub-v4' })).reasonCode, 0)
    v4.publish(LongTopic, 'poison', { qos: 1, retain: true })
    await v4.waitClosed(5000)
    assert.equal(v4.history.filter((f) => f.type === PacketType.Puback).length, 0)

    const v5 = await t.client(5)
    assert.equal((await v5.connect({ clientId: 'pub-v5' })).reasonCode, 0)
    v5.publish(LongTopic, 'poison', { qos: 0, retain: true })
    await v5.expectProtocolClose([ReasonCode.TopicNameInvalid], 5000)

    for (const version of [4, 5] as const) {
      const sub = await plainClient(plainPort, version)
      try {
        assert.equal((await sub.connect({ clientId: `late-${version}` })).reasonCode, 0)
        const suback = await sub.subscribe('#')
        assert.deepEqual(suback.reasonCodes, [0])
        await sub.expectNothing(PacketType.Publish, 'nothing was retained')
        assert.equal(sub.closed, false)
      } finally {
        sub.destroy()
      }
    }
    await t.assertServes(5000)
  } finally {
    await t.stop()
  }
})

test('mount_point + a 65,535-byte topic filter is refused in SUBACK (v5 0x8F, 3.1.1 0x80), not stored; the broker stays up', async () => {
  const { t } = await start('mount-filter')
  try {
    const errorsBefore = t.midge.lines.filter((l) => /internal error/i.test(l)).length
    for (const version of [4, 5] as const) {
      const c = await t.client(version)
      assert.equal((await c.connect({ clientId: `filter-v${version}`, cleanStart: true })).reasonCode, 0)
      const ack = await c.subscribe(['f'.repeat(65_535), 'ok/#'])
      assert.deepEqual(ack.reasonCodes, [version === 5 ? ReasonCode.TopicFilterInvalid : 0x80, 0])
      c.publish('ok/1', 'still here')
      assert.equal((await c.publishOn('ok/1', 5000)).payload.toString(), 'still here')
      c.destroy()
    }
    await t.midge.waitFor(/filter-v5.*too long under mount point/)
    assert.equal(t.midge.lines.filter((l) => /internal error/i.test(l)).length, errorsBefore, 'no internal error')
    await t.assertServes(5000)
  } finally {
    await t.stop()
  }
})
