/**
 * Issue #12 item 8: the topic aliases Midge uses towards an MQTT 5 client kept every topic they stood for
 * for the life of the connection: a client with Topic Alias Maximum 65535 receiving 24,000 unique 60 KB
 * topics made the broker hold 940 MB. Now the aliases of a connection stand for at most
 * max_outgoing_topic_alias_bytes of topics, and the least recently assigned alias is re-mapped.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PacketType } from '../../src/protocol/constants.js'
import { Decoder } from '../../src/protocol/decoder.js'
import { encode } from '../../src/protocol/encoder.js'
import type { Packet } from '../../src/protocol/packets.js'
import { AttackTarget } from './harness.js'
import { MB, withinRss } from './rss-bound.js'

test('attack: 6,000 unique 60 KB topics to a client with Topic Alias Maximum 65535: RSS bounded, every topic decodes right', async () => {
  const t = await AttackTarget.start('alias-memory')
  try {
    // The subscriber: a raw socket and a decoder, keeping only its alias table (the test's memory stays small too).
    const s = await t.socket()
    const aliases = new Map<number, string>()
    let received = 0
    let remapped = 0
    let wrong = ''
    let onCount: (() => void) | undefined
    let target = 0
    const decoder = new Decoder((p: Packet) => {
      if (p.type === PacketType.Connack || p.type === PacketType.Suback) { onCount?.(); return }
      if (p.type !== PacketType.Publish) return
      const alias = p.properties?.topicAlias
      let topic = p.topic
      if (alias !== undefined) {
        if (topic === '') topic = aliases.get(alias) ?? '<unknown alias>'
        else {
          if (aliases.has(alias)) remapped++
          aliases.set(alias, topic)
        }
      }
      const i = Number(p.payload.toString())
      if (topic !== topicOf(i) && wrong === '') wrong = `message ${i} resolved to '${topic.slice(0, 40)}…' (alias ${String(alias)})`
      received++
      if (received >= target) onCount?.()
    }, { protocolVersion: 5 })
    s.on('data', (chunk: Buffer) => { decoder.push(chunk) })
    const until = (n: number, what: string): Promise<void> => t.midge.guard(new Promise<void>((resolve) => {
      target = n
      onCount = () => { if (received >= target) resolve() }
      onCount()
    }), what, 15_000)
    const acked = (): Promise<void> => t.midge.guard(new Promise<void>((resolve) => { onCount = resolve }), 'CONNACK/SUBACK', 15_000)
    let wait = acked()
    s.write(encode({ type: PacketType.Connect, protocolName: 'MQTT', protocolVersion: 5, bridge: false, cleanStart: true, keepAlive: 0, clientId: 'alias-sub', properties: { topicAliasMaximum: 65535 } }, 5))
    await wait
    wait = acked()
    s.write(encode({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'big/#', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] }, 5))
    await wait

    const pub = await t.client(4)
    await pub.connect({ clientId: 'alias-pub' })
    const before = t.rss()
    const total = 6000
    const batch = 100
    const run = async (): Promise<void> => {
      for (let i = 0; i < total; i += batch) {
        for (let j = i; j < i + batch; j++) pub.send({ type: PacketType.Publish, topic: topicOf(j), payload: Buffer.from(String(j)), qos: 0, retain: false, dup: false, packetId: 0 })
        await until(i + batch, `messages up to ${i + batch}`)
      }
    }
    // Kept, the topics are 6,000 x 60 KB = 360 MB.
    await withinRss(t, before, 200 * MB, run())
    assert.equal(wrong, '')
    assert.equal(received, total)
    assert.ok(remapped > 0, 'aliases were re-mapped, each time with the topic')
    await t.assertServes(5000)
  } finally {
    await t.stop()
  }
})

const filler = 'x'.repeat(60_000)
function topicOf(i: number): string {
  return `big/${i}/${filler}`
}
