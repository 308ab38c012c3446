/**
 * Nothing is lost while a session moves between nodes (issue #17): a persistent QoS 1 subscriber is taken over
 * A→B→A→B… while publishers on C (a third node, forwarding through Redis) and on A (the node the session keeps
 * leaving) publish without pause. Messages that reach the old node after it let the session go follow the
 * session to its new node (src/cluster/moves.ts); every message acknowledged to a publisher reaches the
 * subscriber (duplicates are allowed at QoS 1, none lost). With and without `persistence true` (the session
 * moves through the Redis store, or in the hand-over's answer).
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { Peer, settle, TestCluster } from '../helpers/cluster-nodes.js'

const Moves = 6

for (const persistence of [false, true]) {
  let cluster: TestCluster | undefined
  after(async () => { await cluster?.close() })

  test(`a QoS 1 subscriber taken over ${Moves} times between A and B under continuous publishing loses nothing (persistence ${persistence})`, async (t) => {
    cluster = await TestCluster.start(3, () => persistence ? ['persistence true'] : [])
    const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]]
    const logs = (): string => cluster!.logs()
    const id = `hopper-${persistence}`
    const persistent = { clientId: id, protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 300 } }
    const received = new Set<string>()
    let deliveries = 0
    const peers: Peer[] = []
    const join = async (url: string): Promise<Peer> => {
      const p = await Peer.connect(url, persistent)
      p.client.on('message', (_topic, payload) => { deliveries++; received.add(payload.toString()) })
      for (const g of p.inbox) { deliveries++; received.add(g.payload) }
      peers.push(p)
      return p
    }
    let sub = await join(a.url)
    await sub.client.subscribeAsync('hop/#', { qos: 1 })
    const pubC = await Peer.connect(c.url, { clientId: `hop-pub-c-${persistence}` })
    const pubA = await Peer.connect(a.url, { clientId: `hop-pub-a-${persistence}` })
    await settle(pubC, [sub], 'hop/probe')
    await settle(pubA, [sub], 'hop/probe')
    received.clear()

    const acked: string[] = []
    let publishing = true
    const publisher = async (pub: Peer, name: string): Promise<void> => {
      for (let i = 0; publishing; i++) {
        await pub.client.publishAsync(`hop/${name}`, `${name}${i}`, { qos: 1 })
        acked.push(`${name}${i}`)
      }
    }
    const loops = [publisher(pubC, 'c'), publisher(pubA, 'a')]
    try {
      for (let move = 0; move < Moves; move++) {
        const old = sub
        const closed = new Promise<void>((resolve) => old.client.on('close', () => resolve()))
        const before = acked.length
        sub = await join((move % 2 === 0 ? b : a).url)
        await a.process.guard(closed, `the connection before move ${move + 1} closed`)
        assert.equal(old.disconnectReason, 0x8e, logs())
        // Messages flow to the new connection before the next move (publishing goes on meanwhile).
        await sub.until((i) => i.some((g) => g.payload !== 'probe'), `messages after move ${move + 1}\n${logs()}`)
        assert.ok(acked.length > before, 'the publishers went on during the move')
      }
    } finally {
      publishing = false
      await Promise.all(loops)
    }
    const missing = (): string[] => acked.filter((m) => !received.has(m))
    await sub.until(() => missing().length === 0, `${missing().length} of ${acked.length} acknowledged messages never arrived: ${missing().slice(0, 20).join(' ')}\n${logs()}`, 20_000)
    assert.ok(acked.length > Moves * 2, `messages were published across the moves (${acked.length})`)
    // Duplicates are allowed at QoS 1 (a message in flight to a closed connection is sent again); shown, not judged.
    t.diagnostic(`${acked.length} messages acknowledged, ${deliveries} deliveries (${deliveries - received.size} duplicates)`)
    await Promise.all([...peers.map((p) => p.end()), pubA.end(), pubC.end()])
  })
}
