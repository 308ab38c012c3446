/**
 * A cluster of real Midge processes for a test: one TestRedis and N nodes on free loopback ports, each with its
 * own config file (`cluster_redis`, `cluster_node_id`, extra lines per test), plus MQTT.js clients that queue
 * what they receive so a test waits on messages, never on time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt'
import { MidgeProcess } from './midge-process.js'
import { TestRedis } from './redis-server.js'

export class ClusterNode {
  process: MidgeProcess
  port = 0
  constructor (readonly name: string, readonly conf: string, readonly dir: string) {
    this.process = new MidgeProcess(['-c', conf], { cwd: dir })
  }

  /** Starts the process (again, on the same config) and waits for its listener and its joining the cluster. */
  async ready (): Promise<void> {
    const [opened] = await this.process.opened(1)
    this.port = opened!.port
    await this.process.waitFor(/Cluster: node \S+ joined/)
  }

  restart (): ClusterNode {
    this.process = new MidgeProcess(['-c', this.conf], { cwd: this.dir })
    return this
  }

  get url (): string {
    return `mqtt://127.0.0.1:${this.port}`
  }
}

export class TestCluster {
  private constructor (readonly redis: TestRedis, readonly nodes: ClusterNode[], readonly dir: string) {}

  /** `extra(i)`: more config lines for node i. Node i is named A, B, C… */
  static async start (count: number, extra: (i: number) => string[] = () => []): Promise<TestCluster> {
    const redis = await TestRedis.start()
    const dir = mkdtempSync(join(tmpdir(), 'midge-cluster-'))
    const nodes: ClusterNode[] = []
    for (let i = 0; i < count; i++) nodes.push(TestCluster.node(redis, dir, String.fromCharCode(65 + i), extra(i)))
    const c = new TestCluster(redis, nodes, dir)
    try {
      await Promise.all(nodes.map((n) => n.ready()))
    } catch (err) {
      await c.close()
      throw err
    }
    return c
  }

  private static node (redis: TestRedis, dir: string, name: string, extra: string[]): ClusterNode {
    const conf = join(dir, `${name}.conf`)
    writeFileSync(conf, ['user root', 'listener 0 127.0.0.1', 'allow_anonymous true', `cluster_redis ${redis.url}`, `cluster_node_id ${name}`, ...extra, ''].join('\n'))
    return new ClusterNode(name, conf, dir)
  }

  /** Every node's log, for a failure message. */
  logs (): string {
    return this.nodes.map((n) => `--- ${n.name}\n${n.process.lines.join('\n')}`).join('\n')
  }

  async close (): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.process.stop()))
    await this.redis.close()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

export interface Got { topic: string; payload: string; packet: IPublishPacket }

/** An MQTT.js client whose messages wait in a queue. */
export class Peer {
  readonly inbox: Got[] = []
  private wake: (() => void) | undefined
  disconnectReason: number | undefined
  private constructor (readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.inbox.push({ topic, payload: payload.toString(), packet })
      this.wake?.()
    })
    client.on('disconnect', (p) => { this.disconnectReason = p.reasonCode; this.wake?.() })
  }

  /** Listening before the CONNACK: a resumed session's messages may come in the same read. */
  static async connect (url: string, opts: IClientOptions = {}): Promise<Peer> {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts })
    const peer = new Peer(client)
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve())
      client.once('error', reject)
      client.once('close', () => reject(new Error(`connection to ${url} closed before CONNACK`)))
    })
    return peer
  }

  /** Resolves once `pred` holds over the inbox (checked at each message); rejects after timeoutMs with `what`. */
  async until (pred: (inbox: Got[]) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!pred(this.inbox)) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${what}: not within ${timeoutMs} ms; inbox: ${this.inbox.map((g) => `${g.topic}=${g.payload}`).join(', ').slice(0, 2000)}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.wake = () => { clearTimeout(t); resolve() }
      })
    }
  }

  async end (): Promise<void> {
    await this.client.endAsync(true)
  }
}

/**
 * Waits until messages on `topic` published through `pub` reach every peer of `subs` — the subscriptions made on
 * other nodes have reached pub's node — publishing a QoS 0 probe every 100 ms, then empties their inboxes.
 */
export async function settle (pub: Peer, subs: Peer[], topic: string): Promise<void> {
  let stop = false
  const probing = (async () => {
    while (!stop) {
      await pub.client.publishAsync(topic, 'probe', { qos: 0 })
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  try {
    await Promise.all(subs.map((s) => s.until((i) => i.some((g) => g.payload === 'probe'), `probe on ${topic}`)))
  } finally {
    stop = true
    await probing
  }
  // A probe still travelling arrives before anything published after this, and is dropped by the caller's filter.
  for (const s of subs) s.inbox.length = 0
}
