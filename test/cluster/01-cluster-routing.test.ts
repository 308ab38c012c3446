/**
 * Three Midge processes on loopback sharing one Redis, each joined with `cluster_redis` (issue #17): a message
 * published on A reaches the subscribers on B and C exactly once at QoS 1 and 2; a retained message set on A is
 * read on C; a share group spread over the nodes gets each message once.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Peer, settle, TestCluster } from '../helpers/cluster-nodes.js'

let cluster: TestCluster

before(async () => { cluster = await TestCluster.start(3) })
after(async () => { await cluster?.close() })

const data = (inbox: Array<{ payload: string }>): string[] => inbox.map((g) => g.payload).filter((p) => p !== 'probe')

for (const qos of [1, 2] as const) {
  test(`QoS ${qos}: a publish on A reaches the subscribers on B and C exactly once`, async () => {
    const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]]
    const subB = await Peer.connect(b.url, { clientId: `sub-b-${qos}`, protocolVersion: 5 })
    const subC = await Peer.connect(c.url, { clientId: `sub-c-${qos}`, protocolVersion: 4 })
    const pub = await Peer.connect(a.url, { clientId: `pub-a-${qos}`, protocolVersion: 5 })
    try {
      await subB.client.subscribeAsync(`q${qos}/#`, { qos })
      await subC.client.subscribeAsync(`q${qos}/+/x`, { qos })
      await settle(pub, [subB, subC], `q${qos}/probe/x`)
      const n = 200
      for (let i = 0; i < n; i++) await pub.client.publishAsync(`q${qos}/m/x`, String(i), { qos })
      await pub.client.publishAsync(`q${qos}/end/x`, 'end', { qos })
      // The end marker travels the same stream after every message: anything duplicated would be in before it.
      for (const s of [subB, subC]) await s.until((i) => i.some((g) => g.payload === 'end'), `end marker at QoS ${qos}\n${cluster.logs()}`)
      const want = [...Array.from({ length: n }, (_, i) => String(i)), 'end']
      assert.deepEqual(data(subB.inbox), want)
      assert.deepEqual(data(subC.inbox), want)
      assert.ok(subB.inbox.every((g) => g.packet.qos === qos))
    } finally {
      await Promise.all([subB.end(), subC.end(), pub.end()])
    }
  })
}

test('a retained message set on A is read by a new subscriber on C, and its clearing too', async () => {
  const [a, , c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]]
  const pub = await Peer.connect(a.url, { clientId: 'ret-pub' })
  try {
    await pub.client.publishAsync('ret/one', 'kept', { qos: 1, retain: true })
    // Each node's retained index follows the channel: ask C until it has it (no fixed wait).
    let got: string | undefined
    for (let i = 0; i < 100 && got === undefined; i++) {
      const sub = await Peer.connect(c.url, { clientId: `ret-sub-${i}` })
      await sub.client.subscribeAsync('ret/#', { qos: 1 })
      await sub.client.publishAsync('ret/ping', 'ping', { qos: 1 })
      await sub.until((inbox) => inbox.some((g) => g.payload === 'ping'), 'own ping')
      got = sub.inbox.find((g) => g.topic === 'ret/one')?.payload
      assert.ok(got === undefined || sub.inbox.find((g) => g.topic === 'ret/one')!.packet.retain)
      await sub.end()
    }
    assert.equal(got, 'kept', cluster.logs())
    await pub.client.publishAsync('ret/one', '', { qos: 1, retain: true })
    let cleared = false
    for (let i = 0; i < 100 && !cleared; i++) {
      const sub = await Peer.connect(c.url, { clientId: `ret-clr-${i}` })
      await sub.client.subscribeAsync('ret/#', { qos: 1 })
      await sub.client.publishAsync('ret/ping', 'ping', { qos: 1 })
      await sub.until((inbox) => inbox.some((g) => g.payload === 'ping'), 'own ping')
      cleared = !sub.inbox.some((g) => g.topic === 'ret/one')
      await sub.end()
    }
    assert.ok(cleared, 'the retained message was cleared on C')
  } finally {
    await pub.end()
  }
})

test('a share group with members on B and C gets each message published on A once', async () => {
  const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]]
  const mb = await Peer.connect(b.url, { clientId: 'share-b', protocolVersion: 5 })
  const mc = await Peer.connect(c.url, { clientId: 'share-c', protocolVersion: 5 })
  const watch = await Peer.connect(b.url, { clientId: 'share-watch', protocolVersion: 5 })
  const pub = await Peer.connect(a.url, { clientId: 'share-pub', protocolVersion: 5 })
  try {
    await mb.client.subscribeAsync('$share/g/sh/#', { qos: 1 })
    await mc.client.subscribeAsync('$share/g/sh/#', { qos: 1 })
    await watch.client.subscribeAsync('sh/#', { qos: 1 })
    // Settled when both members have been reached once (round robin alternates between them).
    await settle(pub, [mb, mc, watch], 'sh/probe')
    const n = 100
    for (let i = 0; i < n; i++) await pub.client.publishAsync('sh/m', String(i), { qos: 1 })
    await pub.client.publishAsync('sh/end', 'end', { qos: 1 })
    await watch.until((i) => i.some((g) => g.payload === 'end'), 'end at the plain subscriber')
    // Every message went to exactly one member; both nodes took a share.
    const all = [...data(mb.inbox), ...data(mc.inbox)]
    const both = (): boolean => data(mb.inbox).length + data(mc.inbox).length >= n + 1
    // Whichever member's message completes the count wakes its wait; the other's is then ended.
    await Promise.race([mb.until(both, `all ${n + 1} messages at the group\n${cluster.logs()}`), mc.until(both, 'all messages at the group')].map((p) => p.catch((err: Error) => { if (!both()) throw err })))
    const final = [...data(mb.inbox), ...data(mc.inbox)].sort()
    assert.equal(final.length, n + 1, `each once (had ${all.length} at the end marker)`)
    assert.deepEqual(final, [...Array.from({ length: n }, (_, i) => String(i)), 'end'].sort())
    assert.ok(data(mb.inbox).length > 0 && data(mc.inbox).length > 0, 'both nodes took some')
  } finally {
    await Promise.all([mb.end(), mc.end(), watch.end(), pub.end()])
  }
})
