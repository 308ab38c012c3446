/**
 * A broker on the Redis store, restarted: a retained message and a QoS 1 message queued for an offline
 * persistent session come back from Redis alone. The first broker is abandoned as after a kill -9 (its
 * connection to Redis cut, nothing closed cleanly), so only what its commits made durable counts; the
 * second run also survives Redis itself being killed with SIGKILL and restarted before it starts.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { Broker } from '../../src/broker/broker.js'
import { silentLogger } from '../../src/observability/logger.js'
import { PacketType } from '../../src/protocol/constants.js'
import { RedisStore } from '../../src/persistence/redis-store.js'
import { attach, type TestClient } from '../helpers/broker-harness.js'
import { redisForFile } from '../helpers/redis-server.js'

const testRedis = redisForFile()

interface Node {
  broker: Broker
  redis: Redis
  clients: TestClient[]
  connect(clientId: string, expiry: number): Promise<{ c: TestClient; present: boolean }>
}

async function startNode(prefix: string): Promise<Node> {
  const redis = new Redis(testRedis.server.url, { retryStrategy: () => 50 })
  redis.on('error', () => {})
  testRedis.track(redis)
  const broker = new Broker({ logger: silentLogger(), sysInterval: 0, store: new RedisStore({ redis, prefix, nodeId: 'node-1' }) })
  broker.storeFailed = (err) => { throw err }
  await broker.restore()
  const node: Node = {
    broker,
    redis,
    clients: [],
    connect: async (clientId, expiry) => {
      const c = attach(broker, 5)
      node.clients.push(c)
      const ack = await c.connect({ clientId, cleanStart: false, properties: expiry > 0 ? { sessionExpiryInterval: expiry } : undefined })
      assert.equal(ack.reasonCode, 0)
      return { c, present: ack.sessionPresent }
    },
  }
  return node
}

/** kill -9 of the broker: its Redis connection goes first, so nothing it does afterwards is stored. */
async function crash(node: Node): Promise<void> {
  node.redis.disconnect()
  node.broker.storeFailed = () => {}
  for (const c of node.clients) c.destroy()
  await node.broker.close().catch(() => {})
}

test('a broker restarted on the Redis store gets back its retained message and the QoS 1 message queued for an offline persistent session', async () => {
  const prefix = 'broker1:'
  const n1 = await startNode(prefix)
  const { c: sub } = await n1.connect('sub', 3600)
  await sub.subscribe('q/#', { qos: 1 })
  await sub.disconnect()
  const { c: pub } = await n1.connect('pub', 0)
  // PUBACK leaves only once the commit holding the message has been answered by Redis.
  await pub.publishAcked('r/1', 'kept', { qos: 1, retain: true })
  await pub.publishAcked('q/a', 'queued while away', { qos: 1 })
  await crash(n1)

  const n2 = await startNode(prefix)
  const { c: sub2, present } = await n2.connect('sub', 3600)
  assert.equal(present, true, 'the session came back from Redis')
  const m = await sub2.waitFor(PacketType.Publish)
  assert.deepEqual([m.topic, m.payload.toString(), m.qos], ['q/a', 'queued while away', 1])
  await sub2.ack(m)
  await sub2.expectNothing(PacketType.Publish)
  const { c: reader } = await n2.connect('reader', 0)
  await reader.subscribe('r/#', { qos: 1 })
  const r = await reader.waitFor(PacketType.Publish)
  assert.deepEqual([r.topic, r.payload.toString(), r.retain], ['r/1', 'kept', true])
  await sub2.disconnect()
  // A barrier: this PUBACK waits for a commit, which holds everything buffered before it (the PUBACK above).
  await reader.publishAcked('sync/1', 'barrier', { qos: 1, retain: true })

  // Redis itself killed with SIGKILL and restarted: its append-only file has every acknowledged commit.
  await crash(n2)
  await testRedis.server.restart(true)
  const n3 = await startNode(prefix)
  const { c: sub3, present: again } = await n3.connect('sub', 3600)
  assert.equal(again, true)
  await sub3.expectNothing(PacketType.Publish, 'the message acknowledged on the second run is not delivered again')
  const { c: reader3 } = await n3.connect('reader3', 0)
  await reader3.subscribe('r/#', { qos: 1 })
  assert.equal((await reader3.waitFor(PacketType.Publish)).payload.toString(), 'kept')
  await crash(n3)
})
