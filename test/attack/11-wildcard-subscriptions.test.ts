/**
 * Issue #12 item 9: one client with 65,536 wildcard filters (`{a,+}^16/x`) made every PUBLISH to a matching
 * topic walk 131,071 trie nodes; a pipelined flood of such PUBLISHes held the event loop for seconds and a
 * bystander's PINGREQ waited 14.9 s. Now a client holds at most max_subscriptions_per_client filters (SUBACK
 * 0x80 for the rest) and a connection whose packets have cost a turn's work budget yields the event loop.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { encode } from '../../src/protocol/encoder.js'
import { PacketType } from '../../src/protocol/constants.js'
import { AttackTarget } from './harness.js'

const levels = 16
/** `{a,+}^16/x`: 65,536 filters, every one matching `a/a/…/a/x`. */
function wildcardFilters(): string[] {
  const filters: string[] = []
  for (let m = 0; m < 1 << levels; m++) {
    const parts: string[] = []
    for (let i = 0; i < levels; i++) parts.push((m >> i) & 1 ? '+' : 'a')
    filters.push(`${parts.join('/')}/x`)
  }
  return filters
}
const topic = `${new Array<string>(levels).fill('a').join('/')}/x`

/** `count` PUBLISHes to `topic` and a PINGREQ, as one write. */
function flood(count: number): Buffer {
  const one = encode({ type: PacketType.Publish, topic, payload: Buffer.from('p'), qos: 0, retain: false, dup: false, packetId: 0 }, 4)
  return Buffer.concat([...new Array<Buffer>(count).fill(one), encode({ type: PacketType.Pingreq }, 4)])
}

test('attack: 65,536 wildcard filters and a flood of PUBLISHes matching them: filters past max_subscriptions_per_client are refused (0x80), a bystander is served within 3 s', async () => {
  const t = await AttackTarget.start('wildcards')
  try {
    const filters = wildcardFilters()
    const c = await t.client(4)
    await c.connect({ clientId: 'attacker-wild' })
    c.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: filters.map((topicFilter) => ({ topicFilter, qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 })) })
    const ack = await t.midge.guard(c.waitFor(PacketType.Suback, (s) => s.packetId === 1, 15_000), 'SUBACK', 15_000)
    assert.equal(ack.reasonCodes.length, filters.length)
    assert.equal(ack.reasonCodes.filter((code) => code === 0).length, 10_000, 'the default max_subscriptions_per_client')
    assert.equal(ack.reasonCodes.filter((code) => code === 0x80).length, filters.length - 10_000)
    await t.midge.waitFor(/Refused 55536 of 65536 filters SUBSCRIBEd by client attacker-wild from 127\.0\.0\.1:\d+ \(u''\): it holds the most subscriptions allowed \(max_subscriptions_per_client 10000\)/)
    // Every one of these PUBLISHes matches all the attacker's filters; they arrive in one burst.
    c.sendRaw(flood(1000))
    await t.assertServes(3000, 'a bystander during the flood')
    await t.midge.guard(c.waitFor(PacketType.Pingresp, () => true, 30_000), 'the attacker\'s PINGRESP after its flood', 30_000)
    assert.equal(c.history.filter((f) => f.type === PacketType.Publish && f.packet?.type === PacketType.Publish && f.packet.topic === topic).length, 1000, 'each PUBLISH delivered once to the attacker')
    assert.ok(t.alive)
  } finally {
    await t.stop()
  }
})

test('attack: with max_subscriptions_per_client 0 (unlimited), a flood of PUBLISHes each matching 65,536 filters does not hold the event loop: a bystander is served within 3 s', async () => {
  const t = await AttackTarget.start('wildcards-unlimited', 'allow_anonymous true\nmax_subscriptions_per_client 0\n')
  try {
    const filters = wildcardFilters()
    const c = await t.client(4)
    await c.connect({ clientId: 'attacker-wild' })
    c.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: filters.map((topicFilter) => ({ topicFilter, qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 })) })
    const ack = await t.midge.guard(c.waitFor(PacketType.Suback, (s) => s.packetId === 1, 15_000), 'SUBACK', 15_000)
    assert.ok(ack.reasonCodes.every((code) => code === 0))
    // ~20 ms of matching each: held in one turn, 300 of them were 6 s without an answer to anyone.
    c.sendRaw(flood(300))
    await t.assertServes(3000, 'a bystander during the flood')
    await t.midge.guard(c.waitFor(PacketType.Pingresp, () => true, 30_000), 'the attacker\'s PINGRESP after its flood', 30_000)
    assert.equal(c.history.filter((f) => f.type === PacketType.Publish).length, 300, 'each PUBLISH delivered once to the attacker')
  } finally {
    await t.stop()
  }
})
