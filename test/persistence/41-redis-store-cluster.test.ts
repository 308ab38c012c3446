/**
 * The Redis store beyond the Store contract: sessions moving between nodes (claimSession, loadSession,
 * sessionsOwnedBy), and Redis itself failing — killed with SIGKILL between commits (what EXEC answered is
 * in the append-only file), down during a commit (it rejects, and the next commit sends its changes), and
 * a reply lost after Redis applied a commit (sending it again must not bring back what later commits removed).
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { RedisStore, RedisStoreError } from '../../src/persistence/redis-store.js'
import type { StoredMessage, StoredOutgoing, StoredSession } from '../../src/persistence/store.js'
import { redisForFile } from '../helpers/redis-server.js'

const testRedis = redisForFile()
let places = 0

/** A connection of its own (as another process would have); errors while Redis is down are expected here. */
function connect(port = testRedis.server.port, autoResendUnfulfilledCommands = true): Redis {
  const redis = new Redis({ host: '127.0.0.1', port, retryStrategy: () => 50, autoResendUnfulfilledCommands })
  redis.on('error', () => {})
  testRedis.track(redis)
  return redis
}

async function ready(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') await once(redis, 'ready')
}

const msg = (id: number, topic: string, over: Partial<StoredMessage> = {}): StoredMessage => ({
  id, topic, payload: Buffer.from(`payload-${id}`), qos: 1, retain: false, properties: undefined, expiresAt: 0, origin: 'pub', ...over,
})

const out = (oid: number, messageId: number, over: Partial<StoredOutgoing> = {}): StoredOutgoing => ({
  oid, messageId, qos: 1, retain: false, subscriptionIds: undefined, packetId: 0, released: false, ...over,
})

/** Node a's sessions as a fresh instance reads them. */
function a2Load(prefix: string): Promise<{ sessions: StoredSession[] }> {
  return new RedisStore({ redis: connect(), prefix, nodeId: 'a' }).load()
}

function find(sessions: StoredSession[], clientId: string): StoredSession {
  const s = sessions.find((x) => x.clientId === clientId)
  assert.ok(s !== undefined, `session ${clientId} not found among ${sessions.map((x) => x.clientId).join(', ') || 'none'}`)
  return s
}

test('a session moves from node a to node b: claim names the previous owner, loadSession renumbers ids, the index follows, a stale end from a leaves it alone', async () => {
  const prefix = `move${++places}:`
  const a = new RedisStore({ redis: connect(), prefix, nodeId: 'a' })
  const b = new RedisStore({ redis: connect(), prefix, nodeId: 'b' })
  await a.load()
  await b.load()
  a.sessionSaved('x', 600, 'xavier', 0)
  a.subscriptionAdded('x', { key: 'q/#', filter: 'q/#', group: '', qos: 2, noLocal: true, retainAsPublished: false, retainHandling: 1, subscriptionId: 4 })
  for (let id = 1; id <= 3; id++) a.messageSaved(msg(id, `q/${id}`, { qos: 2 }))
  a.outgoingQueued('x', out(11, 1, { qos: 2 }))
  a.outgoingQueued('x', out(12, 2, { subscriptionIds: [4] }))
  a.outgoingQueued('x', out(13, 3))
  a.outgoingQueued('x', out(14, 3, { qos: 2 }))
  a.outgoingSent('x', 12, 700)
  a.outgoingSent('x', 11, 701)
  a.outgoingReleased('x', 11)
  a.incomingQos2Added('x', 9)
  a.willSaved('x', { will: { topic: 'w/x', payload: Buffer.from('gone'), qos: 1, retain: false, properties: { willDelayInterval: 20 } }, dueAt: 0 })
  a.sessionSaved('y', 60, undefined, 0)
  await a.commit()

  assert.deepEqual((await a.sessionsOwnedBy('a')).sort(), ['x', 'y'])
  assert.deepEqual(await b.sessionsOwnedBy('b'), [])
  assert.equal(await b.claimSession('nobody'), undefined)
  assert.equal(await b.loadSession('nobody', () => 1), undefined)

  assert.equal(await b.claimSession('x'), 'a')
  assert.equal(await b.claimSession('x'), 'b', 'a second claim by the same node names that node')
  assert.deepEqual(await a.sessionsOwnedBy('a'), ['y'])
  assert.deepEqual((await b.sessionsOwnedBy('b')).sort(), ['nobody', 'x'])

  let next = 1000
  const moved = await b.loadSession('x', () => next++)
  assert.ok(moved !== undefined)
  const { session, messages } = moved
  assert.deepEqual([session.expiryInterval, session.username, session.disconnectedAt, session.incomingQos2], [600, 'xavier', 0, [9]])
  assert.deepEqual(session.subscriptions.map((s) => [s.key, s.qos, s.noLocal, s.retainHandling, s.subscriptionId]), [['q/#', 2, true, 1, 4]])
  assert.equal(session.will?.will.topic, 'w/x')
  assert.equal(session.will?.will.properties?.willDelayInterval, 20)
  // In flight in send order (12 then 11), then queued (13, 14); messages renumbered from 1000, deliveries negative.
  const topics = session.outgoing.map((o) => messages.get(o.messageId)?.topic)
  assert.deepEqual(topics, ['q/2', 'q/1', 'q/3', 'q/3'])
  assert.deepEqual(session.outgoing.map((o) => [o.packetId, o.released, o.qos, o.subscriptionIds]), [[700, false, 1, [4]], [701, true, 2, undefined], [0, false, 1, undefined], [0, false, 2, undefined]])
  for (const o of session.outgoing) assert.ok(o.oid < 0, `delivery id ${o.oid} is outside every broker's own (positive) range`)
  assert.equal(new Set(session.outgoing.map((o) => o.oid)).size, 4)
  assert.deepEqual([...messages.keys()].sort(), [1000, 1001, 1002])
  assert.equal(session.outgoing[2]!.messageId, session.outgoing[3]!.messageId, 'one message queued twice is one message')
  assert.equal(messages.get(session.outgoing[0]!.messageId)?.payload.toString(), 'payload-2')

  // b goes on with the session in its own ids. a has released it: what a's broker still does with its
  // old copy, up to ending it and a shutdown compaction, is not written.
  b.outgoingDone('x', session.outgoing[0]!.oid)
  b.messageSaved(msg(1003, 'q/new'))
  b.outgoingQueued('x', out(1, 1003))
  await b.commit()
  a.sessionSaved('x', 600, 'xavier', 0)
  a.releaseSession('x')
  a.sessionSaved('x', 1, 'stale', 5)
  a.messageSaved(msg(4, 'q/stale'))
  a.outgoingQueued('x', out(15, 4))
  a.outgoingDone('x', 13)
  a.subscriptionRemoved('x', 'q/#')
  a.willSaved('x', undefined)
  a.compact({ sessions: [{ clientId: 'x', expiryInterval: 1, username: 'stale', disconnectedAt: 5, subscriptions: [], outgoing: [], incomingQos2: [], will: undefined }, find((await a2Load(prefix)).sessions, 'y')], retained: [], messages: new Map(), nextMessageId: 5, nextOutgoingId: 16, report: [] })
  a.sessionEnded('x')
  await a.commit()
  // A node that never heard of the move (no release), ending the session: the owner check keeps b's.
  const lateRedis = connect()
  await ready(lateRedis)
  const late = new RedisStore({ redis: lateRedis, prefix, nodeId: 'a' })
  late.sessionEnded('x')
  await late.commit()

  const b2 = new RedisStore({ redis: connect(), prefix, nodeId: 'b' })
  const state = await b2.load()
  assert.deepEqual(state.sessions.map((s) => s.clientId), ['x'])
  const x = find(state.sessions, 'x')
  assert.deepEqual(x.outgoing.map((o) => state.messages.get(o.messageId)?.topic), ['q/1', 'q/3', 'q/3', 'q/new'])
  assert.deepEqual([x.expiryInterval, x.username, x.subscriptions.length, x.will?.will.topic], [600, 'xavier', 1, 'w/x'])
  assert.ok(state.nextMessageId > 1003)
  const a2 = new RedisStore({ redis: connect(), prefix, nodeId: 'a' })
  assert.deepEqual((await a2.load()).sessions.map((s) => s.clientId), ['y'])
  assert.equal(a.missingMessages + b.missingMessages, 0)
})

test('retained messages are shared: set on a, read on b; last write wins; ids of another node are renumbered above the loader\'s own', async () => {
  const prefix = `retained${++places}:`
  const a = new RedisStore({ redis: connect(), prefix, nodeId: 'a' })
  const b = new RedisStore({ redis: connect(), prefix, nodeId: 'b' })
  await a.load()
  await b.load()
  a.messageSaved(msg(1, 'r/1', { retain: true }))
  a.retainedSet('r/1', 1)
  a.messageSaved(msg(2, 'r/2', { retain: true }))
  a.retainedSet('r/2', 2)
  await a.commit()
  b.messageSaved(msg(1, 'r/2', { retain: true, payload: Buffer.from('from b') }))
  b.retainedSet('r/2', 1)
  b.sessionSaved('s', 60, undefined, 0)
  b.messageSaved(msg(5, 'q'))
  b.outgoingQueued('s', out(1, 5))
  await b.commit()
  const state = await new RedisStore({ redis: connect(), prefix, nodeId: 'b' }).load()
  const byTopic = new Map(state.retained.map((m) => [m.topic, m]))
  assert.equal(byTopic.get('r/2')?.payload.toString(), 'from b')
  assert.equal(byTopic.get('r/2')?.id, 1, 'b wrote r/2: its id is b\'s')
  assert.equal(byTopic.get('r/1')?.payload.toString(), 'payload-1')
  assert.ok((byTopic.get('r/1')?.id ?? 0) > 5, 'a\'s id is renumbered above every id of b\'s')
  assert.ok(state.nextMessageId > (byTopic.get('r/1')?.id ?? 0))
})

test('Redis killed with SIGKILL between commits: everything a commit resolved for is there after the restart', async () => {
  const prefix = `crash${++places}:`
  const redis = connect()
  const store = new RedisStore({ redis, prefix, nodeId: 'n' })
  await store.load()
  store.sessionSaved('c', 3600, undefined, 0)
  for (let i = 1; i <= 50; i++) {
    store.messageSaved(msg(i, `t/${i}`, { payload: Buffer.alloc(100, i) }))
    store.outgoingQueued('c', out(i, i))
  }
  store.messageSaved(msg(99, 'keep', { retain: true }))
  store.retainedSet('keep', 99)
  await store.commit()
  for (let i = 1; i <= 10; i++) store.outgoingDone('c', i)
  await store.commit()

  const closed = once(redis, 'close')
  await testRedis.server.restart(true)
  await closed
  await ready(redis)

  const state = await new RedisStore({ redis: connect(), prefix, nodeId: 'n' }).load()
  const c = find(state.sessions, 'c')
  assert.deepEqual(c.outgoing.map((o) => o.oid), Array.from({ length: 40 }, (_, i) => i + 11))
  assert.equal(state.messages.get(50)?.payload.length, 100)
  assert.deepEqual(state.retained.map((m) => m.topic), ['keep'])
  // The store that lived through the crash goes on committing on its reconnected client.
  store.outgoingDone('c', 11)
  await store.commit()
  const again = await new RedisStore({ redis: connect(), prefix, nodeId: 'n' }).load()
  assert.equal(find(again.sessions, 'c').outgoing[0]?.oid, 12)
})

test('a commit while Redis is down rejects at once and keeps its changes; the next commit after Redis returns stores them all', async () => {
  const prefix = `down${++places}:`
  const redis = connect()
  const store = new RedisStore({ redis, prefix, nodeId: 'n' })
  await store.load()
  store.sessionSaved('c', 3600, undefined, 0)
  store.messageSaved(msg(1, 't/1'))
  store.outgoingQueued('c', out(1, 1))
  await store.commit()

  const closed = once(redis, 'close')
  await testRedis.server.stop(true)
  await closed
  store.outgoingSent('c', 1, 5)
  store.messageSaved(msg(2, 't/2'))
  store.outgoingQueued('c', out(2, 2))
  await assert.rejects(store.commit(), (err: unknown) => err instanceof RedisStoreError && err.code === 'STORE_ERR_REDIS')
  assert.equal(store.dirty, true, 'the rejected changes are still to be committed')
  // More turns while Redis is away: a delivery queued and acknowledged meanwhile never needs to reach Redis.
  for (let i = 3; i <= 200; i++) {
    store.messageSaved(msg(i, `t/${i}`))
    store.outgoingQueued('c', out(i, i))
    store.outgoingSent('c', i, i)
    store.outgoingDone('c', i)
    await assert.rejects(store.commit(), RedisStoreError)
  }
  store.outgoingDone('c', 1)
  store.sessionSaved('c', 3600, undefined, 1_700_000_000_000)
  await assert.rejects(store.commit(), RedisStoreError)

  await testRedis.server.run()
  await ready(redis)
  await store.commit()
  assert.equal(store.dirty, false)
  const fields = await connect().hkeys(`${prefix}store:session:c`)
  assert.deepEqual(fields.sort(), ['b:2', 'm', 'o:2'], 'nothing but the live state is in the session hash')
  const state = await new RedisStore({ redis: connect(), prefix, nodeId: 'n' }).load()
  const c = find(state.sessions, 'c')
  assert.equal(c.disconnectedAt, 1_700_000_000_000)
  assert.deepEqual(c.outgoing, [out(2, 2)])
})

/**
 * A TCP relay to Redis that can hold back Redis's answers (hold) and then cut the connection (cut): an
 * answer lost in transit, at a moment the test chooses once it has seen Redis apply the command.
 */
async function relay(port: number): Promise<{ port: number; hold: () => void; cut: () => void; close: () => void }> {
  let holding = false
  const pairs = new Set<[net.Socket, net.Socket]>()
  const srv = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port })
    const pair: [net.Socket, net.Socket] = [client, upstream]
    pairs.add(pair)
    client.on('error', () => {}).on('close', () => { upstream.destroy(); pairs.delete(pair) })
    upstream.on('error', () => {}).on('close', () => client.destroy())
    client.on('data', (d) => upstream.write(d))
    upstream.on('data', (d) => { if (!holding) client.write(d) })
  })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const destroyAll = (): void => {
    for (const [a, b] of pairs) { a.destroy(); b.destroy() }
  }
  return {
    port: (srv.address() as net.AddressInfo).port,
    hold: () => { holding = true },
    cut: () => {
      destroyAll()
      holding = false
    },
    close: () => {
      destroyAll()
      srv.close()
    },
  }
}

for (const resend of [false, true]) {
  const how = resend ? 'ioredis sends it again by itself after reconnecting' : 'the commit rejects, and the next one sends it again'
  test(`a commit Redis applied but whose answer was lost (${how}): what a later commit removes stays removed`, async (t) => {
    const prefix = `lost${++places}:`
    const r = await relay(testRedis.server.port)
    t.after(() => r.close())
    const redis = connect(r.port, resend)
    const direct = connect()
    // Without resending, ioredis never settles the cut-off EXEC: the store's own time limit rejects it.
    const store = new RedisStore({ redis, prefix, nodeId: 'n', commitTimeoutMs: 1000 })
    await store.load()
    store.sessionSaved('c', 3600, undefined, 0)
    await store.commit()

    store.messageSaved(msg(1, 't/1'))
    store.outgoingQueued('c', out(1, 1))
    store.messageSaved(msg(2, 't/2'))
    store.outgoingQueued('c', out(2, 2))
    r.hold()
    const committing = store.commit()
    // Redis applies it; its answer is held back, then the connection is cut: the answer is lost.
    const applied = ['b:1', 'b:2', 'm', 'o:1', 'o:2']
    while ((await direct.hkeys(`${prefix}store:session:c`)).sort().join() !== applied.join()) await new Promise((resolve) => setTimeout(resolve, 10))
    r.cut()
    if (resend) await committing
    else await assert.rejects(committing, RedisStoreError)

    store.outgoingDone('c', 1)
    await ready(redis)
    await store.commit()
    assert.deepEqual((await direct.hkeys(`${prefix}store:session:c`)).sort(), ['b:2', 'm', 'o:2'])
    const state = await new RedisStore({ redis: direct, prefix, nodeId: 'n' }).load()
    assert.deepEqual(find(state.sessions, 'c').outgoing, [out(2, 2)])
  })
}

test('load() reports Redis settings that break the guarantee: no append-only file, an eviction policy', async () => {
  const prefix = `settings${++places}:`
  const redis = connect()
  const report = async (): Promise<string> => (await new RedisStore({ redis, prefix, nodeId: 'n' }).load()).report.join('\n')
  assert.doesNotMatch(await report(), /appendonly|maxmemory-policy/)
  await redis.config('SET', 'maxmemory-policy', 'allkeys-lru')
  await redis.config('SET', 'appendonly', 'no')
  try {
    const r = await report()
    assert.match(r, /maxmemory-policy allkeys-lru/)
    assert.match(r, /appendonly no/)
  } finally {
    await redis.config('SET', 'maxmemory-policy', 'noeviction')
    await redis.config('SET', 'appendonly', 'yes')
    // Turning the file back on starts a rewrite in a forked child: let it finish before Redis is killed.
    while (/aof_rewrite_in_progress:1|aof_rewrite_scheduled:1/.test(await redis.info('persistence'))) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.doesNotMatch(await report(), /appendonly|maxmemory-policy/)
})

test('a retained hash larger than one scan page loads whole: 2,500 topics', async () => {
  const prefix = `many${++places}:`
  const store = new RedisStore({ redis: connect(), prefix, nodeId: 'n' })
  await store.load()
  for (let i = 1; i <= 2500; i++) {
    store.messageSaved(msg(i, `dev/${i}`, { retain: true }))
    store.retainedSet(`dev/${i}`, i)
  }
  await store.commit()
  const state = await new RedisStore({ redis: connect(), prefix, nodeId: 'n' }).load()
  assert.equal(state.retained.length, 2500)
  assert.equal(new Set(state.retained.map((m) => m.topic)).size, 2500)
  assert.equal(state.retained.find((m) => m.topic === 'dev/1234')?.payload.toString(), 'payload-1234')
})

test('damaged values in Redis are skipped and reported, the rest of the session and the other sessions load', async () => {
  const prefix = `damaged${++places}:`
  const redis = connect()
  const store = new RedisStore({ redis, prefix, nodeId: 'n' })
  await store.load()
  for (const c of ['good', 'hurt', 'headless']) {
    store.sessionSaved(c, 60, undefined, 0)
    store.subscriptionAdded(c, { key: 'a', filter: 'a', group: '', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 })
    store.messageSaved(msg(c.length, `t/${c}`))
    store.outgoingQueued(c, out(c.length, c.length))
  }
  store.messageSaved(msg(50, 'r/ok', { retain: true }))
  store.retainedSet('r/ok', 50)
  store.messageSaved(msg(51, 'r/bad', { retain: true }))
  store.retainedSet('r/bad', 51)
  await store.commit()
  await redis.hset(`${prefix}store:session:hurt`, 's:a', Buffer.from([1, 0, 0]), 'b:4', Buffer.from([9, 9]), 'zz', 'x')
  await redis.hdel(`${prefix}store:session:headless`, 'm')
  await redis.hset(`${prefix}store:retained`, 'r/bad', Buffer.from([1, 2, 3]))
  const state = await new RedisStore({ redis: connect(), prefix, nodeId: 'n' }).load()
  assert.deepEqual(state.sessions.map((s) => s.clientId).sort(), ['good', 'hurt'])
  const hurt = find(state.sessions, 'hurt')
  assert.deepEqual([hurt.subscriptions, hurt.outgoing], [[], []], 'the unreadable subscription and the delivery whose message is unreadable are skipped')
  assert.equal(find(state.sessions, 'good').outgoing.length, 1)
  assert.deepEqual(state.retained.map((m) => m.topic), ['r/ok'])
  const report = state.report.join('\n')
  assert.match(report, /session hurt in Redis: 4 unreadable fields or deliveries/)
  assert.match(report, /session headless in Redis has no session record; skipped/)
  assert.match(report, /retained message on 'r\/bad' in Redis could not be read/)
})
