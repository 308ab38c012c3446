/**
 * Sessions across the nodes of a cluster (issue #17): a second connection with the same client id on another
 * node takes the session over and the old connection is closed with v5 reason 0x8E (Session taken over); a
 * persistent client that moves from A to B gets what was queued for it while it was away.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { Peer, settle, TestCluster } from '../helpers/cluster-nodes.js'

let cluster: TestCluster

before(async () => { cluster = await TestCluster.start(3) })
after(async () => { await cluster?.close() })

test('[MQTT-3.1.4-3] a connection on B takes over the client connected on A: the old one gets 0x8E', async () => {
  const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]]
  const old = await Peer.connect(a.url, { clientId: 'taken', protocolVersion: 5 })
  const closed = new Promise<void>((resolve) => old.client.on('close', () => resolve()))
  const fresh = await Peer.connect(b.url, { clientId: 'taken', protocolVersion: 5 })
  try {
    await a.process.guard(closed, 'the old connection closed')
    assert.equal(old.disconnectReason, 0x8e, cluster.logs())
    assert.ok(fresh.client.connected)
    await a.process.waitFor(/Client taken connected on another node of the cluster/)
  } finally {
    await Promise.all([old.end(), fresh.end()])
  }
  // The session (no expiry) ended with its connection: Redis keeps no record of the client id (a stranger
  // cycling through client ids must not grow it).
  const redis = new Redis(cluster.redis.url)
  try {
    const deadline = Date.now() + 10_000
    while (await redis.exists('midge:cluster:owner:taken') === 1) {
      assert.ok(Date.now() < deadline, 'the owner record of an ended session is removed')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  } finally {
    redis.disconnect()
  }
})

for (const version of [4, 5] as const) {
  test(`a persistent client (MQTT ${version === 4 ? '3.1.1' : '5'}) moves from A to B and gets what was queued while it was away`, async () => {
    const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]]
    const id = `mover-${version}`
    const topic = `mv${version}`
    const persistent = version === 5 ? { protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 300 } } : { protocolVersion: 4 as const, clean: false }
    const first = await Peer.connect(a.url, { clientId: id, ...persistent })
    const pub = await Peer.connect(c.url, { clientId: `mv-pub-${version}` })
    await first.client.subscribeAsync(`${topic}/#`, { qos: 1 })
    await settle(pub, [first], `${topic}/probe`)
    await first.end()
    for (let i = 0; i < 5; i++) await pub.client.publishAsync(`${topic}/x`, String(i), { qos: 1 })
    const moved = await Peer.connect(b.url, { clientId: id, ...persistent })
    try {
      await moved.until((i) => i.filter((g) => g.payload !== 'probe').length >= 5, `queued messages at B\n${cluster.logs()}`)
      assert.deepEqual(moved.inbox.map((g) => g.payload).filter((p) => p !== 'probe'), ['0', '1', '2', '3', '4'])
      // The subscription moved too: once its interest has reached C, what is published there reaches the client at B.
      await settle(pub, [moved], `${topic}/probe`)
      await pub.client.publishAsync(`${topic}/x`, 'after', { qos: 1 })
      await moved.until((i) => i.some((g) => g.payload === 'after'), 'a new message at B')
    } finally {
      await Promise.all([moved.end(), pub.end()])
    }
  })
}
