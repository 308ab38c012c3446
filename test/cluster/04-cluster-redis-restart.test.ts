/**
 * Redis (`cluster_redis`) restarted mid-run (issue #17): while it is away every node keeps serving its local clients and says
 * so once in its log, in $SYS/broker/cluster/state and in /metrics (midge_cluster_up); when it is back the
 * nodes announce their interest again and messages cross between them as before.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { parsePrometheusText } from '../helpers/prometheus-text.js'
import { Peer, settle, TestCluster } from '../helpers/cluster-nodes.js'

let cluster: TestCluster

// Node A also serves /metrics; $SYS every second.
before(async () => { cluster = await TestCluster.start(2, (i) => (i === 0 ? ['sys_interval 1', 'listener 0 127.0.0.1', 'protocol http'] : [])) })
after(async () => { await cluster?.close() })

async function clusterUp (port: number): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  return parsePrometheusText(text).get('midge_cluster_up')?.samples[0]?.value
}

test('Redis down: local clients served, said once (log, $SYS, metrics); back: resynchronised, messages cross again', async () => {
  const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]]
  const http = Number((await a.process.waitFor(/Opening ipv4 http listen socket on \S+ port (\d+)/))[1])
  const sys = await Peer.connect(a.url, { clientId: 'sys-watch' })
  const local = await Peer.connect(a.url, { clientId: 'local-sub' })
  const pubA = await Peer.connect(a.url, { clientId: 'pub-a' })
  const subB = await Peer.connect(b.url, { clientId: 'sub-b', clean: false })
  try {
    await sys.client.subscribeAsync('$SYS/broker/cluster/state', { qos: 0 })
    await sys.until((i) => i.some((g) => g.payload === 'up'), '$SYS cluster state up')
    assert.equal(await clusterUp(http), 1)
    await subB.client.subscribeAsync('x/#', { qos: 1 })
    await local.client.subscribeAsync('x/#', { qos: 1 })
    await settle(pubA, [subB, local], 'x/probe')

    const mark = a.process.lines.length
    const markB = b.process.lines.length
    await cluster.redis.stop(true)
    await a.process.waitFor(/cluster: Redis unreachable at redis:\/\/127\.0\.0\.1:\d+, serving local clients only/, mark)
    await sys.until((i) => i.some((g) => g.payload === 'down'), '$SYS cluster state down')
    assert.equal(await clusterUp(http), 0)
    // Local traffic goes on, QoS 1 acknowledged: A's own subscriber gets it.
    for (let n = 0; n < 20; n++) await pubA.client.publishAsync('x/during', String(n), { qos: 1 })
    await local.until((i) => i.filter((g) => g.topic === 'x/during').length === 20, 'local delivery while Redis is down')

    await cluster.redis.run()
    await a.process.waitFor(/cluster: Redis reachable again/, mark)
    await b.process.waitFor(/cluster: Redis reachable again/, markB)
    await sys.until((i) => i.filter((g) => g.payload === 'up').length >= 2, '$SYS cluster state up again')
    assert.equal(await clusterUp(http), 1)
    // Interest is announced again: A's messages reach B.
    await settle(pubA, [subB], 'x/probe')
    await pubA.client.publishAsync('x/after', 'after', { qos: 1 })
    await subB.until((i) => i.some((g) => g.payload === 'after'), 'a message crossing after the restart')
    // Said once, however long the outage and however many reconnection attempts.
    assert.equal(a.process.lines.slice(mark).filter((l) => l.includes('Redis unreachable')).length, 1, a.process.lines.join('\n'))
  } finally {
    await Promise.all([sys.end(), local.end(), pubA.end(), subB.end()])
  }
})
