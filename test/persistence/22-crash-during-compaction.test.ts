/**
 * kill -9 in the middle of a background compaction. A large store (20,000 retained messages, 2,000
 * persistent sessions with 2 queued messages each) is written first; a child broker restores it and,
 * with autosave_on_changes, compacts it in the background again and again while a publisher sends QoS 1
 * messages (every tenth retained) to a persistent subscriber. The broker is killed with SIGKILL while
 * `<file>.new` exists (a compaction is under way), at a random moment of it, six times. Afterwards the
 * subscriber has every acknowledged message, and the store, read back, holds every session of the
 * large store with its queue, every retained topic, and for each updated retained topic the last
 * acknowledged value or a later one. The seed is printed; MIDGE_CRASH_SEED=<n> replays the moments.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { LogStore } from '../../src/persistence/log-store.js'
import { waitUntil } from '../helpers/broker-harness.js'
import { tempDir } from './tmp-dir.js'
import { ChildBroker, prng } from './crash-child.js'

const ROUNDS = 6
const WINDOW = 64
const RETAINED = 20_000
const SESSIONS = 2000
const QUEUED = 2
const File = 'midge.db'

function buildStore(dir: string): void {
  const store = new LogStore({ dir, file: File, fsync: false })
  store.load()
  let id = 1
  for (let i = 0; i < RETAINED; i++) {
    store.messageSaved({ id, topic: `big/${i}`, payload: Buffer.from(`retained ${i}`), qos: 1, retain: true, properties: undefined, expiresAt: 0, origin: 'builder' })
    store.retainedSet(`big/${i}`, id++)
  }
  let oid = 1
  for (let s = 0; s < SESSIONS; s++) {
    const clientId = `big-${s}`
    store.sessionSaved(clientId, 0xffffffff, undefined, Date.now())
    store.subscriptionAdded(clientId, { key: `cmd/${s}`, filter: `cmd/${s}`, group: '', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 })
    for (let q = 0; q < QUEUED; q++) {
      store.messageSaved({ id, topic: `cmd/${s}`, payload: Buffer.from(`queued ${s}.${q}`), qos: 1, retain: false, properties: undefined, expiresAt: 0, origin: 'builder' })
      store.outgoingQueued(clientId, { oid: oid++, messageId: id++, qos: 1, retain: false, subscriptionIds: undefined, packetId: 0, released: false })
    }
  }
  store.close()
}

function client(t: TestContext, port: number, clientId: string): MqttClient {
  const c = mqtt.connect({ host: '127.0.0.1', port, clientId, clean: false, protocolVersion: 4, reconnectPeriod: 50, connectTimeout: 5000, keepalive: 0, resubscribe: false })
  c.on('error', () => { /* ECONNREFUSED while the broker restarts */ })
  t.after(() => c.end(true))
  return c
}

const connected = (c: MqttClient): Promise<void> => new Promise((resolve) => c.once('connect', () => resolve()))

test('kill -9 at random moments of background compactions of a large store, 6 times: nothing acknowledged is lost, the large store is intact', { timeout: 180_000 }, async (t) => {
  const seed = Number(process.env.MIDGE_CRASH_SEED ?? Date.now() % 1_000_000)
  t.diagnostic(`seed ${seed} (MIDGE_CRASH_SEED=${seed} replays these kill moments)`)
  const random = prng(seed)
  const dir = tempDir(t)
  buildStore(dir)
  const tmp = path.join(dir, `${File}.new`)
  // A compaction in the background after every 3,000 records.
  const args = ['3000']
  let broker = await ChildBroker.start(dir, 0, args)
  const port = broker.port
  t.after(() => broker.kill9())
  const failWithLog = (what: string) => `${what}; seed ${seed}; last broker log:\n${broker.log.slice(-20).join('\n')}`

  const sub = client(t, port, 'compact-sub')
  const got = new Set<number>()
  sub.on('message', (_topic, payload) => { got.add(Number(payload.toString())) })
  await connected(sub)
  await sub.subscribeAsync('load/q1', { qos: 1 })

  const pub = client(t, port, 'compact-pub')
  await connected(pub)
  const acked = new Set<number>()
  const lastRetained = new Map<string, number>()
  let next = 0
  let inflight = 0
  let stopping = false
  const pump = (): void => {
    while (!stopping && pub.connected && inflight < WINDOW) {
      const n = next++
      inflight++
      const retained = n % 10 === 0
      const topic = retained ? `ret/${(n / 10) % 50}` : 'load/q1'
      pub.publish(topic, String(n), { qos: 1, retain: retained }, (err) => {
        inflight--
        if (err === undefined || err === null) {
          if (retained) lastRetained.set(topic, Math.max(lastRetained.get(topic) ?? -1, n))
          else acked.add(n)
        }
        pump()
      })
    }
  }
  pub.on('connect', pump)
  pump()

  // A <file>.new the kill left stays until the restarted broker's first compaction replaces it: it is
  // not one under way (its ctime is older than the kill).
  let killedAt = 0
  for (let round = 0; round < ROUNDS; round++) {
    // Once the publisher is back at work, wait for a compaction to begin, then kill at a random moment
    // while it is still under way.
    let delay = Math.floor(random() * 400)
    const armAt = acked.size + 300
    await new Promise<void>((resolve, reject) => {
      const guard = setTimeout(() => { clearInterval(poll); reject(new Error(failWithLog(`round ${round}: no compaction under way within 60 s (${acked.size - armAt + 300} acknowledged since the restart)`))) }, 60_000)
      let seenAt = 0
      const poll = setInterval(() => {
        const file = acked.size < armAt ? undefined : fs.statSync(tmp, { throwIfNoEntry: false })
        if (file === undefined || file.ctimeMs <= killedAt) {
          // A compaction shorter than the delay (a quick machine, a small log) would never be caught and
          // the round would wait in vain: the next kill falls within the length of the one just missed.
          if (seenAt !== 0) delay = Math.floor(random() * Math.min(delay, Date.now() - seenAt))
          seenAt = 0
          return
        }
        if (seenAt === 0) seenAt = Date.now()
        if (Date.now() - seenAt < delay) return
        broker.child.kill('SIGKILL')
        clearInterval(poll)
        clearTimeout(guard)
        resolve()
      }, 1)
    })
    await broker.exited
    killedAt = Date.now()
    t.diagnostic(`round ${round}: killed ${delay} ms into a compaction, ${acked.size} acknowledged so far`)
    broker = await ChildBroker.start(dir, port, args)
  }

  stopping = true
  await waitUntil(() => inflight === 0, 'the publisher\'s in-flight messages to complete', 30_000).catch((e: Error) => { throw new Error(failWithLog(`${e.message} (${inflight} left)`)) })
  const missing = (): number[] => [...acked].filter((n) => !got.has(n))
  await waitUntil(() => missing().length === 0, 'every acknowledged message at the subscriber', 30_000).catch(() => {
    const lost = missing()
    throw new Error(failWithLog(`${lost.length} acknowledged messages never arrived, e.g. ${lost.slice(0, 10).join(', ')}`))
  })
  assert.ok(acked.size > 0)
  t.diagnostic(`${next} published, ${acked.size} acknowledged to load/q1, all delivered`)

  // The store as the next start would read it.
  sub.end(true)
  pub.end(true)
  await broker.kill9()
  const store = new LogStore({ dir, file: File, fsync: false })
  t.after(() => store.close())
  const state = store.load()
  const retained = new Map(state.retained.map((m) => [m.topic, m.payload.toString()]))
  for (let i = 0; i < RETAINED; i++) assert.equal(retained.get(`big/${i}`), `retained ${i}`, `retained big/${i}`)
  for (const [topic, n] of lastRetained) {
    const stored = Number(retained.get(topic))
    assert.ok(stored >= n, failWithLog(`${topic}: stored ${stored}, last acknowledged ${n}`))
  }
  const sessions = new Map(state.sessions.map((s) => [s.clientId, s]))
  for (let s = 0; s < SESSIONS; s++) {
    const session = sessions.get(`big-${s}`)
    assert.ok(session !== undefined, `session big-${s}`)
    assert.deepEqual(session.subscriptions.map((x) => x.key), [`cmd/${s}`])
    assert.deepEqual(session.outgoing.map((o) => state.messages.get(o.messageId)!.payload.toString()), [0, 1].map((q) => `queued ${s}.${q}`), `the queue of big-${s}`)
  }
  assert.ok(sessions.has('compact-sub') && sessions.has('compact-pub'))
})
