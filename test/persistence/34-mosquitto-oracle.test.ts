/**
 * The expectations of 30-mosquitto-import-e2e are Mosquitto's own behaviour: mosquitto, restarted on the
 * mosquitto.db it wrote, delivers the same queues, the same in-flight continuations and the same retained
 * messages that Midge must deliver after importing that file. (One difference is by design: Mosquitto
 * publishes the half-received QoS 2 message at its PUBREL, Midge at the import; both deliver it once.)
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { PacketType } from '../../src/protocol/constants.js'
import { freePort } from '../helpers/ports.js'
import type { TestClient } from '../helpers/broker-harness.js'
import { ackAll, assertQueued, publishes } from './mosquitto-expect.js'
import { Half, LongExpiry, MosquittoProcess, QueuedForHome, rawClient, Retained, runMosquittoScenario, writeConf } from './mosquitto-scenario.js'
import { tempDir } from './tmp-dir.js'

test('mosquitto restarted on its own mosquitto.db delivers what the import tests expect from Midge', { timeout: 120_000 }, async (t) => {
  const sc = await runMosquittoScenario(tempDir(t, 'midge-mosq-oracle-'))
  const dir = tempDir(t, 'midge-mosq-oracle2-')
  fs.copyFileSync(sc.db, path.join(dir, 'mosquitto.db'))
  const port = await freePort()
  const m = await MosquittoProcess.start(writeConf(dir, port))
  t.after(() => m.stop())
  const clients: TestClient[] = []
  t.after(() => { for (const c of clients) c.destroy() })
  const open = async (v: 4 | 5): Promise<TestClient> => {
    const c = await rawClient(port, v)
    clients.push(c)
    return c
  }

  const s3 = await open(4)
  assert.equal((await s3.connect({ clientId: 'sub311', cleanStart: false })).sessionPresent, true)
  const got3 = await publishes(s3, QueuedForHome.length)
  assertQueued(got3, QueuedForHome, false, 'sub311')
  await ackAll(s3, got3)
  const s5 = await open(5)
  assert.equal((await s5.connect({ clientId: 'sub5', cleanStart: false, properties: { sessionExpiryInterval: LongExpiry } })).sessionPresent, true)
  const got5 = await publishes(s5, QueuedForHome.length)
  assertQueued(got5, QueuedForHome, true, 'sub5')
  await ackAll(s5, got5)

  // The half-received message: Mosquitto publishes it at PUBREL, once.
  const h = await open(4)
  assert.equal((await h.connect({ clientId: Half.clientId, cleanStart: false })).sessionPresent, true)
  h.send({ type: PacketType.Pubrel, packetId: Half.packetId, reasonCode: 0 })
  await h.waitFor(PacketType.Pubcomp, (p) => p.packetId === Half.packetId)
  for (const [c, v5] of [[s3, false], [s5, true]] as const) {
    const [p] = await publishes(c, 1)
    assertQueued([p!], [{ topic: Half.topic, payload: Half.payload, qos: 2, retain: false }], v5, v5 ? 'sub5' : 'sub311')
    await c.ack(p!)
    await c.expectNothing(PacketType.Publish)
  }

  const f5 = await open(5)
  assert.equal((await f5.connect({ clientId: 'flight5', cleanStart: false, properties: { sessionExpiryInterval: LongExpiry } })).sessionPresent, true)
  const a = await f5.waitFor(PacketType.Publish, (p) => p.topic === 'flight/a', 10_000)
  const b = await f5.waitFor(PacketType.Publish, (p) => p.topic === 'flight/b', 10_000)
  const rel = await f5.waitFor(PacketType.Pubrel, () => true, 10_000)
  assert.deepEqual([a.packetId, a.dup, a.qos, a.payload.toString(), a.properties?.subscriptionIdentifiers], [sc.flight.a, true, 1, 'flight a', [9]])
  assert.deepEqual([b.packetId, b.dup, b.qos, b.payload.toString()], [sc.flight.b, true, 2, 'flight b'])
  assert.equal(rel.packetId, sc.flight.c)

  const r = await open(5)
  await r.connect({ clientId: 'checker' })
  await r.subscribe('#', { qos: 2 })
  const got = await publishes(r, Retained.length)
  assert.deepEqual(got.map((p) => p.topic).sort(), Retained.map((x) => x.topic).sort())
  for (const want of Retained) {
    const p = got.find((x) => x.topic === want.topic)!
    assert.ok(p.payload.equals(want.payload), want.topic)
    assert.equal(p.qos, want.qos, want.topic)
  }
})
