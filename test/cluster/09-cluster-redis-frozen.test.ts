/**
 * Redis (`cluster_redis`) frozen mid-run (SIGSTOP): its connections stay open and nothing answers, as with a
 * stalled disk under `appendfsync always` or a network path that drops packets without a reset. No close
 * event comes, so a node must not wait on it without end: a commit that crossed nodes held every QoS 1
 * acknowledgement behind it, PINGRESPs included, until clients timed out. Now a command unanswered for
 * commandTimeoutMs (the node timeout, 5 s) counts as Redis unreachable: local clients are served and the
 * node says so once, and a client connecting meanwhile is served here once its session claim has waited that
 * long (10 s with `persistence true`: the store's own timeout); when Redis answers again the nodes
 * resynchronise and messages cross as before.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { Peer, settle, TestCluster } from '../helpers/cluster-nodes.js'

for (const persistence of [false, true]) {
  let cluster: TestCluster | undefined
  after(async () => {
    cluster?.redis.freeze(false)
    await cluster?.close()
  })

  test(`Redis frozen: QoS 1 publishes that had to cross are acknowledged, local delivery goes on, said once; thawed: messages cross again (persistence ${persistence})`, async () => {
    cluster = await TestCluster.start(2, () => persistence ? ['persistence true'] : [])
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]]
    const local = await Peer.connect(a.url, { clientId: 'local-sub', clean: !persistence })
    const pubA = await Peer.connect(a.url, { clientId: 'pub-a' })
    const subB = await Peer.connect(b.url, { clientId: 'sub-b' })
    let frozen = false
    const peers: Peer[] = []
    try {
      await subB.client.subscribeAsync('x/#', { qos: 1 })
      await local.client.subscribeAsync('x/#', { qos: 1 })
      await settle(pubA, [subB, local], 'x/probe')
      const mark = a.process.lines.length
      cluster.redis.freeze(true)
      frozen = true
      // A client connecting now: its session claim asks Redis, which does not answer.
      const late = Peer.connect(a.url, { clientId: 'late', clean: false, connectTimeout: 30_000 })
      // The first crosses to B: its commit is the one Redis never answers.
      for (let n = 0; n < 5; n++) await pubA.client.publishAsync('x/during', String(n), { qos: 1 })
      await local.until((i) => i.filter((g) => g.topic === 'x/during').length === 5, 'local delivery while Redis is frozen')
      await a.process.waitFor(/cluster: Redis not answering \(no reply within 5000 ms\) at redis:\/\/127\.0\.0\.1:\d+, serving local clients only/, mark)
      // The connection is alive: a round trip that needs no commit.
      await pubA.client.publishAsync('x/q0', 'q0', { qos: 0 })
      await local.until((i) => i.some((g) => g.topic === 'x/q0'), 'a QoS 0 message while Redis is frozen')
      // Served here once the claim's command has timed out (the cluster's 5 s, or the store's 10 s).
      peers.push(await late)

      cluster.redis.freeze(false)
      frozen = false
      await a.process.waitFor(/cluster: Redis reachable again/, mark)
      // B, with nothing to commit, may not have waited long enough on Redis to count it gone: either is right.
      await settle(pubA, [subB], 'x/probe')
      await pubA.client.publishAsync('x/after', 'after', { qos: 1 })
      await subB.until((i) => i.some((g) => g.payload === 'after'), 'a message crossing after the thaw')
      assert.equal(a.process.lines.slice(mark).filter((l) => l.includes('Redis not answering')).length, 1, a.process.lines.slice(mark).join('\n'))
    } finally {
      if (frozen) cluster.redis.freeze(false)
      await Promise.all([local.end(), pubA.end(), subB.end(), ...peers.map((p) => p.end())])
    }
  })
}
