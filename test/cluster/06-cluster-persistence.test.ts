/**
 * `persistence true` in a cluster (issue #17): the nodes keep retained messages and persistent sessions in the
 * cluster's Redis (the Redis store). A persistent client moves from A to B through the store; when A is killed
 * (-9), a survivor adopts its sessions (with what was forwarded to A and not yet taken there) and their client
 * resumes on it with what was queued.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { Peer, settle, TestCluster } from '../helpers/cluster-nodes.js'

let cluster: TestCluster

before(async () => { cluster = await TestCluster.start(3, () => ['persistence true']) })
after(async () => { await cluster?.close() })

test('persistence true: a persistent client moves from A to B through the Redis store with what was queued', async () => {
  const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]]
  await a.process.waitFor(/Persistence: loaded \d+ persistent sessions \(node A\)/)
  const persistent = { protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 600 } }
  const first = await Peer.connect(a.url, { clientId: 'stored-mover', ...persistent })
  const pub = await Peer.connect(c.url, { clientId: 'stored-pub' })
  await first.client.subscribeAsync('st/#', { qos: 1 })
  await settle(pub, [first], 'st/probe')
  await first.end()
  for (let i = 0; i < 5; i++) await pub.client.publishAsync('st/x', String(i), { qos: 1 })
  const moved = await Peer.connect(b.url, { clientId: 'stored-mover', ...persistent })
  try {
    await moved.until((i) => i.filter((g) => g.payload !== 'probe').length >= 5, `queued messages at B\n${cluster.logs()}`)
    assert.deepEqual(moved.inbox.map((g) => g.payload).filter((p) => p !== 'probe'), ['0', '1', '2', '3', '4'])
  } finally {
    await Promise.all([moved.end(), pub.end()])
  }
})

test('persistence true: the sessions of a node killed (-9) are adopted by a survivor; the client resumes there with what was queued', async () => {
  const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]]
  const persistent = { protocolVersion: 4 as const, clean: false }
  const sub = await Peer.connect(a.url, { clientId: 'orphan', ...persistent })
  const pub = await Peer.connect(c.url, { clientId: 'orphan-pub' })
  try {
    await sub.client.subscribeAsync('orph/#', { qos: 1 })
    await settle(pub, [sub], 'orph/probe')
    await sub.end()
    for (let i = 0; i < 3; i++) await pub.client.publishAsync('orph/x', String(i), { qos: 1 })
    a.process.child.kill('SIGKILL')
    await a.process.exited
    // A survivor notices (heartbeat expired), adopts A's sessions from the store.
    const adopter = await Promise.race([b, c].map(async (n) => { await n.process.waitFor(/Cluster: node A removed; [1-9]\d* persistent sessions? adopted here/, 0, 20_000); return n }))
    const back = await Peer.connect(adopter.url, { clientId: 'orphan', ...persistent })
    try {
      const got = (): string[] => back.inbox.map((g) => g.payload).filter((p) => p !== 'probe').sort()
      await back.until(() => got().length >= 3, `queued messages after adoption\n${cluster.logs()}`)
      // Once each: A acknowledged a stream entry in the store commit that queued its message, so the adopter
      // finds each message either in the adopted session or in A's stream, never in both.
      assert.deepEqual(got(), ['0', '1', '2'])
    } finally {
      await back.end()
    }
  } finally {
    await pub.end()
  }
})

test('persistence true: a node acknowledges its stream entries in the store commit that delivered them (QoS 2)', async () => {
  const [, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]]
  const sub = await Peer.connect(b.url, { clientId: 'acked-sub', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 600 } })
  const pub = await Peer.connect(c.url, { clientId: 'acked-pub' })
  const redis = new Redis({ host: '127.0.0.1', port: cluster.redis.port })
  try {
    await sub.client.subscribeAsync('ack/#', { qos: 2 })
    await settle(pub, [sub], 'ack/probe')
    for (let i = 0; i < 20; i++) await pub.client.publishAsync('ack/x', String(i), { qos: 2 })
    await sub.until((i) => i.filter((g) => g.payload !== 'probe').length >= 20, `QoS 2 messages at B\n${cluster.logs()}`)
    // B sent each message after the commit that stored it in the session, and that commit held the entry's
    // XACK and XDEL: nothing B delivered is left pending in its stream.
    const stream = 'midge:cluster:stream:B'
    assert.equal(Number(((await redis.xpending(stream, 'midge')) as [number])[0]), 0)
    assert.equal(await redis.xlen(stream), 0)
  } finally {
    redis.disconnect()
    await Promise.all([sub.end(), pub.end()])
  }
})
