/**
 * Pipelined group commit (issue #18): a store whose commit returns a Promise. The turn's acknowledgements
 * wait for the commit that holds what they depend on, the broker goes on reading and routing meanwhile,
 * commits never overlap, and the next one takes everything buffered while the last ran. The store here
 * (test/helpers/gated-store.ts) finishes a commit only when the test releases it, so every "not yet" below
 * is checked while the commit is provably still under way, after the broker has provably handled a later
 * packet (its records reached the store): no timing is assumed.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType } from '../../src/protocol/constants.js'
import { packetName, setup, waitUntil, type Harness, type TestClient } from '../helpers/broker-harness.js'
import { GatedParticipant, GatedStore } from '../helpers/gated-store.js'

/** Lets the loop run a few full turns (check phase included): what was going to be written has been. */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}

function types(c: TestClient): string[] {
  return c.history.map((f) => packetName(f.type))
}

const received = (c: TestClient, type: number): number => c.history.filter((f) => f.type === type).length

/** A broker on a gated store with a persistent QoS 1 subscriber on `t/#` and a clean publisher. */
async function persistentPair(t: TestContext, commitGapMs?: number): Promise<{ h: Harness; store: GatedStore; sub: TestClient; pub: TestClient }> {
  const store = new GatedStore()
  const h = setup(t, commitGapMs === undefined ? { store } : { store, commitGapMs })
  const report = await h.broker.restore()
  assert.deepEqual(report, ['loaded nothing (a gated test store)'])
  const sub = await h.client(4, { clientId: 'kept', cleanStart: false })
  await sub.subscribe('t/#', { qos: 1 })
  const pub = await h.client(4, { clientId: 'pub' })
  await waitUntil(() => store.pending === undefined && !store.dirty, 'the set-up to be committed')
  store.autoRelease = false
  store.commits.splice(0)
  t.after(() => assert.equal(store.violation, undefined))
  return { h, store, sub, pub }
}

/**
 * t/1's commit starts, then t/2 is routed while it runs (its three records wait for the next commit).
 * `meanwhile` runs between the two PUBLISHes.
 */
async function secondDuringFirst(store: GatedStore, pub: TestClient, meanwhile?: () => void): Promise<void> {
  pub.publish('t/1', 'one', { qos: 1, packetId: 1 })
  await waitUntil(() => store.pending !== undefined, 'the first commit to start')
  meanwhile?.()
  pub.publish('t/2', 'two', { qos: 1, packetId: 2 })
  await waitUntil(() => store.buffered.length === 3, 'the second PUBLISH to be routed while the first commit runs')
}

test('[MQTT-4.3.2-2] a PUBACK leaves only once the commit of its message resolves; the broker reads and routes the next PUBLISH meanwhile', async (t) => {
  const { store, sub, pub } = await persistentPair(t)
  pub.publish('t/1', 'one', { qos: 1, packetId: 1 })
  await waitUntil(() => store.pending !== undefined, 'the first commit to start')
  assert.deepEqual(store.pending!.records, ['message t/1', 'queued kept', 'sent kept'])

  pub.publish('t/2', 'two', { qos: 1, packetId: 2 })
  await waitUntil(() => store.buffered.length === 3, 'the second PUBLISH to be routed while the first commit runs')
  await turns()
  assert.deepEqual(store.commits.length, 1, 'no second commit while the first is under way')
  assert.equal(received(pub, PacketType.Puback), 0, `nothing acknowledged before the commit: ${types(pub).join(', ')}`)
  // A QoS 1 copy need not wait: a crash before the commit can only make it a duplicate (the publisher,
  // not acknowledged, sends again), which QoS 1 allows.
  assert.equal((await sub.publishOn('t/1')).payload.toString(), 'one')
  assert.equal((await sub.publishOn('t/2')).payload.toString(), 'two')

  store.release()
  const ack1 = await pub.next(PacketType.Puback)
  assert.equal(ack1.packetId, 1)
  // The second PUBLISH's records form the next commit, started as soon as the first resolved.
  await waitUntil(() => store.pending !== undefined, 'the second commit to start')
  assert.deepEqual(store.pending!.records, ['message t/2', 'queued kept', 'sent kept'])
  await turns()
  assert.equal(received(pub, PacketType.Puback), 1, 'the second PUBACK waits for the second commit')
  store.release()
  assert.equal((await pub.next(PacketType.Puback)).packetId, 2)
})

test('[MQTT-4.3.3] QoS 2: the PUBREC and the QoS 2 copy to a persistent subscriber both wait for the commit; a QoS 0 copy to a clean subscriber does not', async (t) => {
  const store = new GatedStore()
  const h = setup(t, { store })
  await h.broker.restore()
  const kept = await h.client(4, { clientId: 'kept2', cleanStart: false })
  await kept.subscribe('q2/#', { qos: 2 })
  const clean = await h.client(4, { clientId: 'clean0' })
  await clean.subscribe('q2/#', { qos: 0 })
  const pub = await h.client(4, { clientId: 'pub2' })
  await waitUntil(() => store.pending === undefined && !store.dirty, 'the set-up to be committed')
  store.autoRelease = false
  pub.publish('q2/x', 'exactly once', { qos: 2, packetId: 5 })
  await waitUntil(() => store.pending !== undefined, 'the commit to start')
  assert.equal((await clean.publishOn('q2/x')).qos, 0, 'the QoS 0 copy left before the commit')
  await turns()
  assert.equal(received(pub, PacketType.Pubrec), 0, 'no PUBREC before the commit')
  assert.equal(received(kept, PacketType.Publish), 0, 'no QoS 2 copy before the commit: a crash would make it a second delivery')
  store.autoRelease = true
  store.release()
  assert.equal((await pub.next(PacketType.Pubrec)).packetId, 5)
  const copy = await kept.publishOn('q2/x')
  assert.deepEqual([copy.qos, copy.payload.toString()], [2, 'exactly once'])
})

test('group commit: a burst of QoS 1 PUBLISHes sent while a commit runs goes into the next commit, and every PUBACK follows in order', async (t) => {
  const { store, sub, pub } = await persistentPair(t)
  pub.publish('t/first', 'x', { qos: 1, packetId: 1 })
  await waitUntil(() => store.pending !== undefined, 'the first commit to start')
  const N = 50
  for (let i = 2; i <= N + 1; i++) pub.publish(`t/${i}`, String(i), { qos: 1, packetId: i })
  const messages = (records: string[]): number => records.filter((r) => r.startsWith('message ')).length
  await waitUntil(() => messages(store.buffered) === N, `the ${N} PUBLISHes to be routed`)
  store.release()
  await waitUntil(() => store.pending !== undefined, 'the second commit to start')
  assert.equal(store.commits.length, 2)
  assert.equal(messages(store.pending!.records), N, 'one commit for the whole burst')
  // The subscriber's acknowledgements make records too: from here on commits finish by themselves.
  store.autoRelease = true
  store.release()
  for (let i = 1; i <= N + 1; i++) assert.equal((await pub.next(PacketType.Puback)).packetId, i)
  for (let i = 0; i <= N; i++) await sub.ack(await sub.next(PacketType.Publish))
})

test('attack: a client sending faster than the disk commits is held back by TCP: past the bound of buffered records the broker stops reading until the commit resolves', async (t) => {
  const { store, pub } = await persistentPair(t)
  pub.publish('t/first', 'x', { qos: 1, packetId: 1 })
  await waitUntil(() => store.pending !== undefined, 'the first commit to start')
  // Each record now counts 8 MiB: one PUBLISH's records pass the 16 MiB bound.
  store.recordBytes = 8 * 1024 * 1024
  const N = 50
  for (let i = 2; i <= N + 1; i++) pub.publish(`t/${i}`, String(i), { qos: 1, packetId: i })
  await waitUntil(() => store.buffered.length > 0, 'the first PUBLISH of the burst to be routed')
  await turns(10)
  const buffered = (): string[] => store.buffered.filter((r) => r.startsWith('message '))
  assert.deepEqual(buffered(), ['message t/2'], 'reading stopped after the PUBLISH that passed the bound')
  // The next commit takes that PUBLISH; reading resumes, and stops again at the bound while it runs.
  store.release()
  await waitUntil(() => buffered().length > 0, 'reading to resume after the commit')
  await turns(10)
  assert.deepEqual(buffered(), ['message t/3'], 'one PUBLISH per commit while each is over the bound')
  assert.deepEqual(store.pending?.records.filter((r) => r.startsWith('message ')), ['message t/2'])
  store.autoRelease = true
  store.recordBytes = 100
  store.release()
  for (let i = 1; i <= N + 1; i++) assert.equal((await pub.next(PacketType.Puback)).packetId, i)
})

test('[MQTT-3.2.2-2] CONNACK of a persistent session and [MQTT-3.8.4] its SUBACK wait for their commits; a clean session\'s CONNACK needs none', async (t) => {
  const store = new GatedStore()
  const h = setup(t, { store })
  await h.broker.restore()
  store.autoRelease = false
  const c = h.raw(5)
  c.send(c.connectPacket({ clientId: 'keeps', cleanStart: true, properties: { sessionExpiryInterval: 300 } }))
  await waitUntil(() => store.pending !== undefined, 'the session to be committed')
  assert.deepEqual(store.pending!.records, ['session keeps'])
  await turns()
  assert.equal(c.history.length, 0, 'no CONNACK before the session is stored')
  store.release()
  assert.equal((await c.next(PacketType.Connack)).reasonCode, 0)

  c.send({ type: PacketType.Subscribe, packetId: 7, subscriptions: [{ topicFilter: 'a/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] })
  await waitUntil(() => store.pending !== undefined, 'the subscription to be committed')
  assert.deepEqual(store.pending!.records, ['sub keeps a/#'])
  await turns()
  assert.equal(received(c, PacketType.Suback), 0, 'no SUBACK before the subscription is stored')
  store.release()
  assert.equal((await c.next(PacketType.Suback)).packetId, 7)

  // A clean session touches no record: its CONNACK leaves at once when no commit runs.
  await waitUntil(() => store.pending === undefined, 'the commits to be done')
  const clean = await h.client(4, { clientId: 'clean' })
  assert.equal(store.commits.length, 2, 'nothing to commit for a clean session')
  await clean.sync()
})

test('a rejected commit stops the broker (storeFailed) and what it covered is never sent', async (t) => {
  const { h, store, pub } = await persistentPair(t)
  const failures: Error[] = []
  h.broker.storeFailed = (err) => { failures.push(err) }
  pub.publish('t/lost', 'x', { qos: 1, packetId: 9 })
  await waitUntil(() => store.pending !== undefined, 'the commit to start')
  store.fail(new Error('the disk is gone'))
  await waitUntil(() => failures.length === 1, 'storeFailed to be called')
  assert.equal(failures[0]!.message, 'the disk is gone')
  pub.publish('t/after', 'y', { qos: 1, packetId: 10 })
  await waitUntil(() => store.buffered.length > 0, 'the next PUBLISH to be routed')
  await turns()
  assert.equal(received(pub, PacketType.Puback), 0, `no acknowledgement after a failed commit: ${types(pub).join(', ')}`)
  assert.equal(store.commits.length, 1, 'no commit after a failure')
})

test('a commit participant\'s commit joins the barrier: without any store, the PUBACK waits for it; once removed, it no longer does', async (t) => {
  const h = setup(t)
  const forwarder = new GatedParticipant()
  const remove = h.broker.addCommitParticipant(forwarder)
  const pub = await h.client(4, { clientId: 'pub' })
  forwarder.work = 1
  pub.publish('f/1', 'x', { qos: 1, packetId: 1 })
  await waitUntil(() => forwarder.pending !== undefined, 'the participant\'s commit to start')
  pub.publish('f/2', 'y', { qos: 1, packetId: 2 })
  await turns()
  assert.equal(received(pub, PacketType.Puback), 0, 'both PUBACKs wait for the participant')
  forwarder.release()
  assert.equal((await pub.next(PacketType.Puback)).packetId, 1)
  assert.equal((await pub.next(PacketType.Puback)).packetId, 2)
  assert.equal(forwarder.commits, 1, 'nothing more to commit: the second PUBACK followed without another commit')
  remove()
  forwarder.work = 1
  assert.ok((await pub.publishAcked('f/3', 'z', { qos: 1 })) !== undefined)
  assert.equal(forwarder.commits, 1, 'a removed participant is not committed')
})

test('a closing connection\'s last bytes (DISCONNECT 0x8E on takeover) leave after the commit of the close, then its stream ends; broker.close() waits for the last commit before closing the store', async (t) => {
  const store = new GatedStore()
  const h = setup(t, { store })
  await h.broker.restore()
  const old = await h.client(5, { clientId: 'same', cleanStart: false, properties: { sessionExpiryInterval: 300 } })
  await waitUntil(() => store.pending === undefined && !store.dirty, 'the set-up to be committed')
  store.autoRelease = false
  const next = h.raw(5)
  next.send(next.connectPacket({ clientId: 'same', cleanStart: false, properties: { sessionExpiryInterval: 300 } }))
  await waitUntil(() => store.pending !== undefined, 'the takeover to be committed')
  await turns()
  assert.equal(old.history.length, 1, 'the old connection has had only its CONNACK')
  assert.equal(old.closed, false, 'its stream stays open while its last bytes wait')
  assert.equal(next.history.length, 0)
  store.release()
  const d = await old.next(PacketType.Disconnect)
  assert.equal(d.reasonCode, 0x8e)
  await old.waitClosed()
  // The new connection's CONNACK depends on its own records (the session, connected again): the next commit.
  await waitUntil(() => store.pending !== undefined, 'the new connection\'s commit to start')
  assert.equal(next.history.length, 0)
  store.release()
  assert.equal((await next.next(PacketType.Connack)).sessionPresent, true)

  next.send({ type: PacketType.Subscribe, packetId: 3, subscriptions: [{ topicFilter: 'x', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] })
  await waitUntil(() => store.pending !== undefined, 'the subscription to be committed')
  let closed = false
  const closing = h.broker.close().then(() => { closed = true })
  await turns()
  assert.equal(closed, false, 'close() waits for the commit under way')
  assert.equal(store.closed, 0)
  store.autoRelease = true
  store.release()
  await closing
  assert.equal(store.closed, 1)
  assert.equal(store.violation, undefined)
})

test('back to back, the next commit waits out commitGapMs from the start of the one before; commitStore() (timers, shutdown) does not wait', async (t) => {
  // A gap no test run reaches: what happens before commitStore() can only be the broker's own doing.
  const { h, store, sub, pub } = await persistentPair(t, 60_000)
  // The first commit starts at once: no commit before it, so no gap to wait out.
  await secondDuringFirst(store, pub)
  store.release()
  assert.equal((await pub.next(PacketType.Puback)).packetId, 1)
  await turns(10)
  assert.equal(store.commits.length, 1, 'the next commit waits out the gap')
  assert.equal(received(pub, PacketType.Puback), 1, 'and so does the PUBACK that depends on it')
  // The QoS 1 copies depend on no commit: they leave meanwhile.
  assert.equal((await sub.publishOn('t/1')).payload.toString(), 'one')
  assert.equal((await sub.publishOn('t/2')).payload.toString(), 'two')
  const committed = h.broker.commitStore()
  await waitUntil(() => store.pending !== undefined, 'commitStore() to start the waiting commit at once')
  assert.equal(store.commits.length, 2)
  assert.deepEqual(store.pending!.records.filter((r) => r.startsWith('message ')), ['message t/2'])
  store.autoRelease = true
  store.release()
  await committed
  assert.equal((await pub.next(PacketType.Puback)).packetId, 2)
})

test('with the default gap (1 ms) the waiting commit starts by itself; with commitGapMs 0, at once', async (t) => {
  for (const gap of [undefined, 0]) {
    await t.test(`commitGapMs ${gap ?? 'default'}`, async (t) => {
      const { store, pub } = await persistentPair(t, gap)
      await secondDuringFirst(store, pub)
      store.autoRelease = true
      store.release()
      assert.equal((await pub.next(PacketType.Puback)).packetId, 1)
      assert.equal((await pub.next(PacketType.Puback)).packetId, 2)
      assert.equal(store.commits.length, 2)
    })
  }
})

test('with a participant beside the store (a cluster\'s hand-over), the next commit waits out the gap as well', async (t) => {
  const { h, store, pub } = await persistentPair(t, 60_000)
  const forwarder = new GatedParticipant()
  h.broker.addCommitParticipant(forwarder)
  await secondDuringFirst(store, pub, () => { forwarder.work = 1 })
  store.release()
  assert.equal((await pub.next(PacketType.Puback)).packetId, 1)
  await turns(10)
  assert.equal(store.commits.length, 1, 'the next commit waits out the gap')
  assert.equal(forwarder.commits, 0, 'and the participant\'s with it')
  const committed = h.broker.commitStore()
  await waitUntil(() => store.pending !== undefined && forwarder.pending !== undefined, 'commitStore() to start both at once')
  store.autoRelease = true
  store.release()
  forwarder.release()
  await committed
  assert.equal((await pub.next(PacketType.Puback)).packetId, 2)
})

test('commitStore() called during a commit resolves even when the participant commits itself before the gap\'s commit and nothing is left for it', async (t) => {
  // The cluster commits its own pipeline directly (before a hand-over's answer, an XACK) as well as through
  // the broker's barrier. A commitStore() waiting for the commit under way was left waiting, after such a
  // commit emptied the gap's, until some later commit ran: 10 s in test/cluster/07, long enough for a moved
  // session's redirect record to expire, and the messages it would have carried were lost.
  const h = setup(t, { commitGapMs: 60_000 })
  const forwarder = new GatedParticipant()
  h.broker.addCommitParticipant(forwarder)
  const pub = await h.client(4, { clientId: 'pub' })
  forwarder.work = 1
  pub.publish('f/1', 'x', { qos: 1, packetId: 1 })
  await waitUntil(() => forwarder.pending !== undefined, 'the participant\'s commit to start')
  let waited = false
  const waiting = h.broker.commitStore().then(() => { waited = true })
  forwarder.work = 1
  forwarder.release()
  assert.equal((await pub.next(PacketType.Puback)).packetId, 1)
  await turns(10)
  assert.equal(forwarder.commits, 1, 'the participant\'s next commit waits out the gap')
  assert.equal(waited, false, 'commitStore() waits for the work that came meanwhile')
  // The participant commits that work itself, outside the broker's barrier.
  const own = forwarder.commit()
  forwarder.release()
  await own
  await h.broker.commitStore()
  await turns()
  assert.equal(waited, true, 'the earlier commitStore() resolved with the later one')
  await waiting
  assert.equal(forwarder.commits, 2, 'nothing was left to commit')
})
