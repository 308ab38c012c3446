/**
 * Switching from Mosquitto keeps the data (issue #15): the installed Debian mosquitto builds its
 * mosquitto.db (mosquitto-scenario.ts: retained messages including an empty topic level, UTF-8 topics, a
 * 1 MiB payload and v5 properties; persistent v3.1.1 and v5 subscribers with queued QoS 1/2 messages;
 * in-flight QoS 1/2 in every state; a half-received QoS 2 message; a will; a session that expires), is
 * stopped with SIGTERM, and a real Midge process starts on the same config. Every retained message,
 * subscription and queued message must arrive as Mosquitto would have delivered it.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { PacketType } from '../../src/protocol/constants.js'
import { MIDGE, MidgeProcess } from '../helpers/midge-process.js'
import type { TestClient } from '../helpers/broker-harness.js'
import { ackAll, assertQueued, publishes } from './mosquitto-expect.js'
import { Half, LongExpiry, QueuedForHome, rawClient, Retained, runMosquittoScenario } from './mosquitto-scenario.js'
import { tempDir } from './tmp-dir.js'

test('a mosquitto.db written by the installed mosquitto is imported by Midge on start: retained, sessions, subscriptions, queued and in-flight messages arrive as Mosquitto would have delivered them', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t, 'midge-mosq-import-')
  const sc = await runMosquittoScenario(dir)
  const original = fs.readFileSync(sc.db)

  // The dry run says what it would import and changes nothing.
  const dry = spawnSync(process.execPath, [MIDGE, 'import-mosquitto', sc.db, '--dry-run'], { encoding: 'utf8' })
  assert.equal(dry.status, 0, dry.stderr)
  // ('brief' may or may not have expired yet: its second can end while this runs.)
  assert.match(dry.stdout, /would import from Mosquitto store .* \(format 6\): 6 retained messages, /)
  assert.match(dry.stdout, /session 'sub311': never expires\n {4}subscription 'home\/#' QoS 2\n/)
  assert.match(dry.stdout, new RegExp(`session 'sub5': expires ${LongExpiry} s after disconnect\n {4}subscription 'home/#' QoS 2, no local, retain as published, identifier 42`))
  assert.match(dry.stdout, /message 'flight\/c' QoS 2: in flight, PUBREL to re-send/)
  assert.ok(fs.readFileSync(sc.db).equals(original), 'a dry run leaves the file alone')

  // 'brief' expires one second after its disconnect: wait until that second is over, as a user would.
  await new Promise((r) => setTimeout(r, 2100))

  const midge = new MidgeProcess(['-c', sc.conf], { cwd: dir })
  t.after(() => midge.stop())
  const line = await midge.waitFor(/Persistence: imported Mosquitto store .*/)
  assert.match(line[0], /: 6 retained messages, 4 persistent sessions with 3 subscriptions, 14 queued and 3 in-flight messages, 1 half-received QoS 2 messages; 1 parts skipped; original kept as .*mosquitto\.db\.imported-\S+\.$/)
  await midge.waitFor(/Mosquitto import: session 'brief': expired at .*, not imported/)
  await midge.opened(1)
  const kept = fs.readdirSync(dir).filter((f) => f.startsWith('mosquitto.db.imported-'))
  assert.equal(kept.length, 1)
  assert.ok(fs.readFileSync(path.join(dir, kept[0]!)).equals(original), 'the original is kept byte for byte')
  assert.equal(fs.readFileSync(sc.db).subarray(0, 8).toString('latin1'), 'MIDGEDB\0', 'the store is now Midge\'s')

  const clients: TestClient[] = []
  t.after(() => { for (const c of clients) c.destroy() })
  const open = async (v: 4 | 5): Promise<TestClient> => {
    const c = await rawClient(sc.port, v)
    clients.push(c)
    return c
  }

  // The v3.1.1 persistent subscriber: session present, its queue in order, then nothing more.
  const s3 = await open(4)
  assert.equal((await s3.connect({ clientId: 'sub311', cleanStart: false })).sessionPresent, true)
  const got3 = await publishes(s3, QueuedForHome.length + 1)
  // The half-received QoS 2 message is published once its PUBREL is due: after what Mosquitto had queued.
  assertQueued(got3, [...QueuedForHome, { topic: Half.topic, payload: Half.payload, qos: 2, retain: false }], false, 'sub311')
  await ackAll(s3, got3)
  await s3.expectNothing(PacketType.Publish, 'sub311 got everything once')

  // The v5 one: identifiers, Retain As Published and the v5 properties of each message.
  const s5 = await open(5)
  assert.equal((await s5.connect({ clientId: 'sub5', cleanStart: false, properties: { sessionExpiryInterval: LongExpiry } })).sessionPresent, true)
  const got5 = await publishes(s5, QueuedForHome.length + 1)
  assertQueued(got5, [...QueuedForHome, { topic: Half.topic, payload: Half.payload, qos: 2, retain: false }], true, 'sub5')
  await ackAll(s5, got5)
  await s5.expectNothing(PacketType.Publish, 'sub5 got everything once')

  // The subscriptions themselves carried over: a new message reaches both, with No Local kept for sub5.
  await s5.publishAcked('home/after', 'from sub5', { qos: 1 })
  const live = await s3.publishOn('home/after', 10_000)
  assert.equal(live.payload.toString(), 'from sub5')
  await s3.ack(live)
  await s5.expectNothing(PacketType.Publish, 'No Local: sub5 does not get its own message')

  // [MQTT-4.4.0-1] In flight: the unacknowledged PUBLISHes again with DUP and their packet ids, PUBREL for the PUBREC'd one.
  const f5 = await open(5)
  assert.equal((await f5.connect({ clientId: 'flight5', cleanStart: false, properties: { sessionExpiryInterval: LongExpiry } })).sessionPresent, true)
  const a = await f5.waitFor(PacketType.Publish, (p) => p.topic === 'flight/a', 10_000)
  const b = await f5.waitFor(PacketType.Publish, (p) => p.topic === 'flight/b', 10_000)
  const rel = await f5.waitFor(PacketType.Pubrel, () => true, 10_000)
  assert.deepEqual([a.packetId, a.dup, a.qos, a.payload.toString(), a.properties?.subscriptionIdentifiers], [sc.flight.a, true, 1, 'flight a', [9]])
  assert.deepEqual([b.packetId, b.dup, b.qos, b.payload.toString()], [sc.flight.b, true, 2, 'flight b'])
  assert.equal(rel.packetId, sc.flight.c)
  f5.send({ type: PacketType.Puback, packetId: a.packetId, reasonCode: 0 })
  await f5.ack(b)
  f5.send({ type: PacketType.Pubcomp, packetId: rel.packetId, reasonCode: 0 })
  await f5.expectNothing(undefined, 'flight/c completes once: it is not published again')

  // The publisher of the half-received QoS 2 message: a DUP re-send gets PUBREC without a second delivery, PUBREL gets PUBCOMP.
  const h = await open(4)
  assert.equal((await h.connect({ clientId: Half.clientId, cleanStart: false })).sessionPresent, true)
  h.publish(Half.topic, Half.payload, { qos: 2, dup: true, packetId: Half.packetId })
  await h.waitFor(PacketType.Pubrec, (p) => p.packetId === Half.packetId)
  h.send({ type: PacketType.Pubrel, packetId: Half.packetId, reasonCode: 0 })
  await h.waitFor(PacketType.Pubcomp, (p) => p.packetId === Half.packetId)
  await s3.expectNothing(PacketType.Publish, 'home/half is delivered once')
  await s5.expectNothing(PacketType.Publish, 'home/half is delivered once')

  // The expired session is gone.
  const br = await open(5)
  assert.equal((await br.connect({ clientId: 'brief', cleanStart: false, properties: { sessionExpiryInterval: 60 } })).sessionPresent, false)

  // Every retained message, to a new subscriber, with its properties and its 1 MiB payload intact.
  const r = await open(5)
  await r.connect({ clientId: 'checker' })
  await r.subscribe('#', { qos: 2 })
  const got = await publishes(r, Retained.length)
  await r.expectNothing(PacketType.Publish, 'no other retained message ($SYS is never imported)')
  const byTopic = new Map(got.map((p) => [p.topic, p]))
  for (const want of Retained) {
    const p = byTopic.get(want.topic)
    assert.ok(p !== undefined, `retained ${want.topic} arrives`)
    assert.ok(p.payload.equals(want.payload), `retained ${want.topic}: payload (${p.payload.length} bytes)`)
    assert.equal(p.retain, true)
    assert.equal(p.qos, want.qos, `retained ${want.topic}: QoS`)
    if (want.properties !== undefined) {
      assert.deepEqual(p.properties?.userProperties, want.properties.userProperties)
      assert.equal(p.properties?.contentType, want.properties.contentType)
      assert.equal(p.properties?.responseTopic, want.properties.responseTopic)
      assert.deepEqual(p.properties?.correlationData, want.properties.correlationData)
      assert.equal(p.properties?.payloadFormatIndicator, 1)
      const left = p.properties?.messageExpiryInterval ?? 0
      assert.ok(left > LongExpiry - 600 && left <= LongExpiry, `retained ${want.topic}: message expiry counts down from Mosquitto's (${left})`)
    }
  }
  await ackAll(r, got)

  // A restart reads Midge's own store: nothing is imported twice.
  const mark = midge.lines.length
  assert.equal(await midge.stop(), 0)
  const again = new MidgeProcess(['-c', sc.conf], { cwd: dir })
  t.after(() => again.stop())
  await again.waitFor(/Persistence: loaded 5 persistent sessions and 6 retained messages/) // the four imported and 'brief' anew
  await again.opened(1)
  assert.equal(again.lines.some((l) => /imported Mosquitto store/.test(l)), false)
  assert.equal(midge.lines.slice(mark).some((l) => /Error/.test(l)), false)
})
