/**
 * `cluster_workers N` / `midge --workers N` (issue #17): N broker processes on the same port, joined as a
 * cluster through cluster_redis; clients spread over them and still reach one another. Without cluster_redis
 * the start is refused, naming the option.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MidgeProcess } from '../helpers/midge-process.js'
import { TestRedis } from '../helpers/redis-server.js'
import { Peer, settle } from '../helpers/cluster-nodes.js'

let redis: TestRedis
let dir: string

before(async () => {
  redis = await TestRedis.start()
  dir = mkdtempSync(join(tmpdir(), 'midge-workers-'))
})
after(async () => {
  await redis?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** The worker a client landed on: its node id, from its own $SYS (not shared between nodes). */
async function nodeOf (p: Peer): Promise<string> {
  await p.client.subscribeAsync('$SYS/broker/cluster/node_id', { qos: 0 })
  await p.until((i) => i.some((g) => g.topic === '$SYS/broker/cluster/node_id'), 'node id in $SYS')
  return p.inbox.find((g) => g.topic === '$SYS/broker/cluster/node_id')!.payload
}

test('cluster_workers 2: two processes share one port; clients on different workers reach one another', async () => {
  const conf = join(dir, 'workers.conf')
  writeFileSync(conf, ['user root', 'listener 0 127.0.0.1', 'allow_anonymous true', `cluster_redis ${redis.url}`, 'cluster_node_id box', 'cluster_workers 2', 'sys_interval 1', ''].join('\n'))
  const midge = new MidgeProcess(['-c', conf], { cwd: dir })
  const peers: Peer[] = []
  try {
    await midge.waitFor(/Cluster: node box-w0 joined/)
    await midge.waitFor(/Cluster: node box-w1 joined/)
    const [opened] = await midge.opened(1)
    const url = `mqtt://127.0.0.1:${opened!.port}`
    // Round robin: among a few connections, both workers get some.
    const byNode = new Map<string, Peer>()
    for (let i = 0; i < 8 && byNode.size < 2; i++) {
      const p = await Peer.connect(url, { clientId: `w-${i}` })
      peers.push(p)
      const node = await nodeOf(p)
      if (!byNode.has(node)) byNode.set(node, p)
    }
    assert.deepEqual([...byNode.keys()].sort(), ['box-w0', 'box-w1'], midge.lines.join('\n'))
    const sub = byNode.get('box-w0')!
    const pub = byNode.get('box-w1')!
    await sub.client.subscribeAsync('w/#', { qos: 1 })
    await settle(pub, [sub], 'w/probe')
    await pub.client.publishAsync('w/x', 'across workers', { qos: 1 })
    await sub.until((i) => i.some((g) => g.payload === 'across workers'), 'a message from the other worker')
  } finally {
    await Promise.all(peers.map((p) => p.end()))
    assert.equal(await midge.stop(), 0, midge.lines.join('\n'))
  }
})

test('--workers without cluster_redis is refused, naming the option', async () => {
  const conf = join(dir, 'alone.conf')
  writeFileSync(conf, ['user root', 'listener 0 127.0.0.1', 'allow_anonymous true', ''].join('\n'))
  const r = await MidgeProcess.run(['-c', conf, '--workers', '2'], { cwd: dir })
  assert.equal(r.code, 1, r.out)
  assert.match(r.out, /cluster_workers 2 \(or --workers\) needs cluster_redis/)
})
