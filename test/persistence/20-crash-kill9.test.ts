/**
 * The real thing: Midge runs as a child process (crash-broker.ts) under QoS 1 and QoS 2 load and is
 * killed with SIGKILL at random moments, several times, then restarted on the same store and port.
 * MQTT.js clients with fixed ids and clean = false reconnect by themselves. The publisher records what
 * the broker acknowledged (PUBACK / PUBCOMP); after the last restart the subscriber must have every
 * acknowledged message: QoS 2 exactly once, QoS 1 at least once. Retained messages and the
 * subscriber's subscriptions (never renewed: resubscribe is off) must be intact.
 *
 * The kill moments are random but reproducible: the seed is printed; MIDGE_CRASH_SEED=<n> replays it.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import mqtt, { type MqttClient } from 'mqtt'
import { waitUntil } from '../helpers/broker-harness.js'
import { tempDir } from './tmp-dir.js'
import { ChildBroker, prng } from './crash-child.js'

const ROUNDS = 8
const WINDOW = 64

function client(t: TestContext, port: number, clientId: string, clean: boolean): MqttClient {
  const c = mqtt.connect({
    host: '127.0.0.1', port, clientId, clean, protocolVersion: 4, reconnectPeriod: 50, connectTimeout: 5000,
    keepalive: 0, resubscribe: false,
  })
  c.on('error', () => { /* ECONNREFUSED while the broker restarts */ })
  t.after(() => c.end(true))
  return c
}

const connected = (c: MqttClient): Promise<void> => new Promise((resolve) => c.once('connect', () => resolve()))

test('kill -9 under QoS 1 and 2 load, 8 times: every acknowledged message is delivered after the restarts (QoS 2 exactly once, QoS 1 at least once); retained messages and subscriptions survive', { timeout: 90_000 }, async (t) => {
  const seed = Number(process.env.MIDGE_CRASH_SEED ?? Date.now() % 1_000_000)
  t.diagnostic(`seed ${seed} (MIDGE_CRASH_SEED=${seed} replays these kill moments)`)
  const random = prng(seed)
  const dir = tempDir(t)
  let broker = await ChildBroker.start(dir, 0)
  const port = broker.port
  t.after(() => broker.kill9())
  const failWithLog = (what: string) => `${what}; seed ${seed}; last broker log:\n${broker.log.slice(-20).join('\n')}`

  // The persistent subscriber: subscribes once, never again.
  const sub = client(t, port, 'crash-sub', false)
  const got = { 1: new Map<number, number>(), 2: new Map<number, number>() }
  const sessionPresent: boolean[] = []
  sub.on('connect', (ack) => { sessionPresent.push(ack.sessionPresent) })
  sub.on('message', (topic, payload) => {
    const m = topic === 'load/q2' ? got[2] : topic === 'load/q1' ? got[1] : undefined
    if (m === undefined) return
    const n = Number(payload.toString())
    m.set(n, (m.get(n) ?? 0) + 1)
  })
  await connected(sub)
  const granted = await sub.subscribeAsync({ 'load/q1': { qos: 1 }, 'load/q2': { qos: 2 } })
  assert.deepEqual(granted.map((g) => g.qos).sort(), [1, 2])

  // The publisher: retained messages first, then a window of 64 QoS 1 / QoS 2 messages in flight.
  const pub = client(t, port, 'crash-pub', false)
  await connected(pub)
  for (let i = 0; i < 5; i++) await pub.publishAsync(`ret/${i}`, `retained ${i}`, { qos: 1, retain: true })
  const acked = { 1: new Set<number>(), 2: new Set<number>() }
  let next = 0
  let inflight = 0
  let stopping = false
  let killAt = -1
  let onKillPoint: (() => void) | undefined
  const ackedCount = (): number => acked[1].size + acked[2].size
  const pump = (): void => {
    while (!stopping && pub.connected && inflight < WINDOW) {
      const n = next++
      const qos = n % 2 === 0 ? 1 : 2
      inflight++
      pub.publish(`load/q${qos}`, String(n), { qos }, (err) => {
        inflight--
        if (err === undefined || err === null) acked[qos].add(n)
        if (killAt >= 0 && ackedCount() >= killAt) {
          killAt = -1
          // SIGKILL right here, with the rest of the window still being processed by the broker.
          onKillPoint?.()
        }
        pump()
      })
    }
  }
  pub.on('connect', pump)
  pump()

  for (let round = 0; round < ROUNDS; round++) {
    const target = ackedCount() + 50 + Math.floor(random() * 400)
    await new Promise<void>((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(failWithLog(`round ${round}: only ${ackedCount()} of ${target} acknowledgements within 20 s`))), 20_000)
      onKillPoint = () => {
        broker.child.kill('SIGKILL')
        clearTimeout(guard)
        resolve()
      }
      killAt = target
    })
    await broker.exited
    broker = await ChildBroker.start(dir, port)
  }

  // Drain: stop publishing, let every in-flight publish finish, then wait for the subscriber.
  stopping = true
  await waitUntil(() => inflight === 0, 'the publisher\'s in-flight messages to complete', 20_000).catch((e: Error) => { throw new Error(failWithLog(`${e.message} (${inflight} left)`)) })
  const missing = (): number[] => [...[...acked[1]].filter((n) => !got[1].has(n)), ...[...acked[2]].filter((n) => !got[2].has(n))]
  await waitUntil(() => missing().length === 0, 'every acknowledged message at the subscriber', 20_000).catch(() => {
    const lost = missing()
    throw new Error(failWithLog(`${lost.length} acknowledged messages never arrived, e.g. ${lost.slice(0, 10).join(', ')}`))
  })

  const dupQ2 = [...got[2]].filter(([, count]) => count > 1).map(([n]) => n)
  assert.deepEqual(dupQ2, [], failWithLog('QoS 2 messages delivered more than once'))
  const dupQ1 = [...got[1].values()].filter((count) => count > 1).length
  t.diagnostic(`${next} published, ${acked[1].size} QoS 1 + ${acked[2].size} QoS 2 acknowledged, ${got[1].size + got[2].size} distinct delivered, ${dupQ1} QoS 1 duplicates (allowed)`)
  assert.ok(acked[1].size > 0 && acked[2].size > 0)
  assert.equal(sessionPresent[0], false, 'a fresh session at first')
  assert.ok(sessionPresent.length >= 2, 'the subscriber reconnected after the kills')
  assert.deepEqual(sessionPresent.slice(1).filter((p) => !p), [], 'every reconnect resumed the stored session')

  const reader = client(t, port, 'ret-reader', true)
  await connected(reader)
  const retained: string[] = []
  reader.on('message', (topic, payload, packet) => { if (packet.retain) retained.push(`${topic}=${payload.toString()}`) })
  await reader.subscribeAsync('ret/#', { qos: 1 })
  await waitUntil(() => retained.length >= 5, 'the retained messages', 5000).catch(() => { throw new Error(failWithLog(`retained after the kills: ${retained.join(', ')}`)) })
  assert.deepEqual(retained.sort(), [0, 1, 2, 3, 4].map((i) => `ret/${i}=retained ${i}`))

  sub.end(true)
  pub.end(true)
  reader.end(true)
  await broker.stop()
})
