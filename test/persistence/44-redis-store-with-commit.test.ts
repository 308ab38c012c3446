/**
 * RedisStore.withNextCommit: a cluster node acknowledges the stream entries it delivered (XACK, XDEL) in the
 * MULTI/EXEC of the store commit holding what they delivered (#17). After a commit the stream holds no entry
 * for what the store holds; a commit Redis refuses (out of memory: the transaction is aborted whole) leaves
 * both undone, and the next commit applies both.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { RedisStore, RedisStoreError } from '../../src/persistence/redis-store.js'
import type { StoredMessage } from '../../src/persistence/store.js'
import { redisForFile } from '../helpers/redis-server.js'

const testRedis = redisForFile()

async function connect(): Promise<Redis> {
  const redis = new Redis({ host: '127.0.0.1', port: testRedis.server.port })
  redis.on('error', () => {})
  testRedis.track(redis)
  if (redis.status !== 'ready') await once(redis, 'ready')
  return redis
}

const msg = (id: number): StoredMessage => ({
  id, topic: `q/${id}`, payload: Buffer.from(`payload-${id}`), qos: 2, retain: false, properties: undefined, expiresAt: 0, origin: 'pub',
})

/** A stream with one entry read by the group's consumer and not acknowledged: its id. */
async function pendingEntry(admin: Redis, stream: string): Promise<string> {
  await admin.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM')
  const id = (await admin.xadd(stream, '*', 'b', 'x')) as string
  await admin.xreadgroup('GROUP', 'g', 'n', 'STREAMS', stream, '>')
  return id
}

const pending = async (admin: Redis, stream: string): Promise<number> => Number(((await admin.xpending(stream, 'g')) as [number])[0])

test('the acknowledgement goes in the commit of the delivery: both applied together', async () => {
  const admin = await connect()
  const store = new RedisStore({ redis: await connect(), prefix: 'one:', nodeId: 'a' })
  await store.load()
  const stream = 'one:cluster:stream:a'
  const id = await pendingEntry(admin, stream)
  store.sessionSaved('x', 600, undefined, 0)
  store.messageSaved(msg(1))
  store.outgoingQueued('x', { oid: 1, messageId: 1, qos: 2, retain: false, subscriptionIds: undefined, packetId: 0, released: false })
  let confirmed = false
  const acked = store.withNextCommit([['xack', stream, 'g', id], ['xdel', stream, id]]).then(() => { confirmed = true })
  // Nothing is sent before the commit.
  assert.equal(await pending(admin, stream), 1)
  assert.equal(confirmed, false)
  await store.commit()
  await acked
  assert.equal(await pending(admin, stream), 0)
  assert.equal(await admin.xlen(stream), 0)
  assert.ok(await admin.hexists('one:store:session:x', 'o:1'), 'the delivery is in the store')
})

test('acknowledgements alone make the store dirty and are sent by its commit', async () => {
  const admin = await connect()
  const store = new RedisStore({ redis: await connect(), prefix: 'two:', nodeId: 'a' })
  await store.load()
  const stream = 'two:cluster:stream:a'
  const id = await pendingEntry(admin, stream)
  assert.equal(store.dirty, false)
  const acked = store.withNextCommit([['xack', stream, 'g', id], ['xdel', stream, id]])
  assert.equal(store.dirty, true)
  await store.commit()
  await acked
  assert.equal(await pending(admin, stream), 0)
})

test('a commit Redis refuses leaves the delivery and the acknowledgement both undone; the next commit does both', async () => {
  const admin = await connect()
  const store = new RedisStore({ redis: await connect(), prefix: 'three:', nodeId: 'a' })
  await store.load()
  const stream = 'three:cluster:stream:a'
  const id = await pendingEntry(admin, stream)
  store.sessionSaved('y', 600, undefined, 0)
  store.messageSaved(msg(2))
  store.outgoingQueued('y', { oid: 1, messageId: 2, qos: 2, retain: false, subscriptionIds: undefined, packetId: 0, released: false })
  let confirmed = false
  const acked = store.withNextCommit([['xack', stream, 'g', id], ['xdel', stream, id]]).then(() => { confirmed = true })
  // Full, without eviction: every write in the MULTI is refused as it is queued and EXEC aborts them all.
  await admin.config('SET', 'maxmemory', '1')
  try {
    await assert.rejects(store.commit(), RedisStoreError)
  } finally {
    await admin.config('SET', 'maxmemory', '0')
  }
  assert.equal(confirmed, false)
  assert.equal(await pending(admin, stream), 1, 'the entry is still pending')
  assert.equal(await admin.exists('three:store:session:y'), 0, 'the delivery is not in the store')
  assert.equal(store.dirty, true)
  await store.commit()
  await acked
  assert.equal(confirmed, true)
  assert.equal(await pending(admin, stream), 0)
  assert.equal(await admin.xlen(stream), 0)
  assert.ok(await admin.hexists('three:store:session:y', 'o:1'))
})
