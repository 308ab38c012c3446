/**
 * One Midge node of a cluster: several brokers sharing one MQTT namespace through Redis (docs/cluster.md).
 *
 *   nodes      `P node:<id>` (PX, refreshed every second) says a node is alive; `P nodes` lists them. A node
 *              whose key expired is lost: one survivor (SET NX `P adopt:<id>`) adopts its sessions.
 *   interest   `P interest:<id>` holds the filters of a node's sessions (interest.ts); changes are announced
 *              on channel `P interest` (`+id key`, `-id key`, `=id` reload that node's hash, `!id` it left).
 *   messages   a local PUBLISH goes only to the nodes with a match, one Redis Stream entry per target node per
 *              commit (`P stream:<id>`, wire.ts). The target reads it (XREADGROUP), delivers it into its local
 *              sessions, commits its store, XACKs and deletes it (with the shared store, in the MULTI/EXEC of
 *              that commit: a kill between the two cannot make the adopter deliver it again): a QoS 1/2 message
 *              acknowledged to its publisher is in Redis, and stays there until the node it was for has taken it. A node never
 *              forwards what it received, and the origin sends each node one copy: exactly once per subscriber.
 *   retained   `P retained` (topic → message) and channel `P retained`: every node's retained index is the same.
 *   sessions   `P owner:<clientId>` (or the shared store's claim) names the node holding a session. A CONNECT
 *              elsewhere asks that node (channel `P ctl:<id>`) to close its connection (v5 0x8E) and hand the
 *              session over through the store, waits for its answer (or 3 s), then loads it before CONNACK.
 *
 * Commits: everything above that a turn produced goes to Redis in one pipeline. The broker's commit barrier
 * (a commit participant) holds that turn's acknowledgements until it is answered; without one, the node
 * flushes on setImmediate.
 *
 * Redis down: the node keeps serving its local clients, logs it once, shows it in $SYS and /metrics; what
 * would have crossed to other nodes is dropped and counted (docs/cluster.md says why), and on reconnection the
 * node announces its interest again and reloads the others' and the retained messages.
 *
 * Just past 800 lines: the node's parts share its three Redis connections, its commit and its view of the
 * live nodes; the pure parts are apart (interest.ts, wire.ts, handover.ts, redis-url.ts, cluster-store.ts).
 */
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Redis, RedisOptions } from 'ioredis'
import type { Broker } from '../broker/broker.js'
import type { ClusterLink } from '../broker/cluster-link.js'
import { Message } from '../broker/message.js'
import type { SharedGroup } from '../broker/topic-trie.js'
import type { Logger } from '../observability/logger.js'
import type { StoredMessage, StoredSession } from '../persistence/store.js'
import { LocalInterest, RemoteInterest, interestKey } from './interest.js'
import { redisOptions, type RedisTarget } from './redis-url.js'
import { decodeBatch, encodeBatch, Forward, type Received, type WireMessage } from './wire.js'
import { decodeSession, encodeSession, fromJson, toJson } from './handover.js'
import type { WillMessage } from '../protocol/packets.js'
import { Arrivals, KeepMs, Moves, type Moved } from './moves.js'

/** What the shared store (persistence/redis-store.ts) offers a cluster for moving sessions between nodes. */
export interface SessionDirectory {
  claimSession(clientId: string): Promise<string | undefined>
  loadSession(clientId: string, allocateId: () => number): Promise<{ session: StoredSession; messages: Map<number, StoredMessage> } | undefined>
  sessionsOwnedBy(nodeId: string): Promise<string[]>
  /** After the commit holding a handed-over session's last changes: nothing more of it is written from here. */
  releaseSession(clientId: string): void
  /**
   * Commands sent in the store's next commit, in its MULTI/EXEC (RedisStore.withNextCommit): resolves once a
   * commit holding them is confirmed. The store is on the cluster's Redis (index.ts opens both from one URL).
   */
  withNextCommit?(commands: Array<Array<string | number | Buffer>>): Promise<void>
}

export interface ClusterOptions {
  redis: RedisTarget
  /** cluster_node_id; default hostname-pid-random. */
  nodeId?: string | undefined
  /** Key prefix, default 'midge:'. */
  prefix?: string
  logger: Logger
  /** The shared store, when persistence is in Redis: sessions move between nodes through it. */
  sessions?: SessionDirectory | undefined
  /** ms between heartbeats (1000); a node is lost after `nodeTimeoutMs` (5000) without one. */
  heartbeatMs?: number
  nodeTimeoutMs?: number
  /** How long a takeover waits for the previous owner's answer (3000 ms). */
  handOverTimeoutMs?: number
  /** How long the start waits for Redis before serving locally and joining later (5000 ms). */
  connectTimeoutMs?: number
  /**
   * How long a command may go unanswered before Redis counts as unreachable (nodeTimeoutMs: by then the other
   * nodes count this one as lost anyway). A frozen Redis keeps its connections open, so no close event says so.
   */
  commandTimeoutMs?: number
}

/** `s`: without a shared store, the session itself (handover.ts). */
type Ctl = { t: 'takeover'; c: string; from: string; id: number } | { t: 'done'; id: number; s?: string }

/** What a commit participant looks like to the broker (h14's barrier); checked at run time. */
interface CommitParticipant { readonly dirty: boolean; commit(): void | Promise<void> }

const Group = 'midge'
const ReadCount = 256
const DeleteIfOwner = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`
const MaxSettling = 4

export class Cluster implements ClusterLink {
  readonly nodeId: string
  readonly prefix: string
  /** Whether Redis answers now. */
  up = false
  /** Messages that could not be handed to Redis for other nodes (Redis down): counted, shown in /metrics. */
  dropped = 0
  /** Messages sent to and received from other nodes. */
  forwarded = 0
  received = 0
  private readonly broker: Broker
  private readonly log: Logger
  private readonly opts: ClusterOptions
  private readonly cmd: Redis
  private readonly sub: Redis
  private readonly reader: Redis
  private readonly local = new LocalInterest()
  readonly remote = new RemoteInterest()
  /** Per target node: this commit's messages. */
  private outbox = new Map<string, Forward[]>()
  private retainedOut: WireMessage[] = []
  /** Per message being forwarded: its Forward per node (scratch). */
  private readonly perNode = new Map<string, Forward>()
  private readonly sharedChosen: Array<[string, string, string]> = []
  private readonly sharedSeen = new Set<string>()
  private readonly sharedTurn = new Map<string, number>()
  private readonly visitNode = (node: string): void => { this.forwardTo(node).normal = true }
  private readonly visitGroup = (g: SharedGroup<string>): void => this.chooseRemote(g)
  private current: WireMessage | undefined
  private currentSeq = 0
  private flushing: Promise<void> = Promise.resolve()
  private flushScheduled = false
  private readonly participant: boolean
  private heartbeat: NodeJS.Timeout | undefined
  private closed = false
  private reading: Promise<void> = Promise.resolve()
  private nextCtl = 1
  private readonly waiting = new Map<number, (session: string | undefined) => void>()
  private joined = false
  private joining: Promise<void> = Promise.resolve()
  private downLogged = false
  private readonly liveNodes = new Set<string>()
  /** Stream entries delivered here and not yet acknowledged. */
  private readonly delivered = new Set<string>()
  /** Sessions ended here since the last commit, whose ownership records go (without a shared store). */
  private endedOut: string[] = []
  /** Will changes since the last commit (null: none any more). */
  private willsOut = new Map<string, string | null>()
  /** Wills of a lost node's clients, waiting out their delay here; cancelled if the client comes back first. */
  private readonly adoptedWills = new Map<string, NodeJS.Timeout>()
  /** Sessions handed over from here lately: what still arrives for them follows them (moves.ts). */
  private readonly moves = new Moves()
  /** Per target node, per client: messages for that client only, since the last commit. */
  private redirectOut = new Map<string, Map<string, Forward[]>>()
  /** Sessions being claimed here: what is redirected to them waits until the session is loaded. */
  private readonly claiming = new Map<string, { held: Received[]; loaded: Promise<void> }>()
  /** Sessions moved here lately: the messages they had directly, so a redirected copy is not delivered twice. */
  private readonly arrived = new Arrivals()
  /** This node's number for each message it forwards (with its id, the message's name cluster-wide). */
  private seq = 0
  /** Interest kept for sessions handed over from here, released when their move record expires. */
  private readonly heldInterest = new Set<NodeJS.Timeout>()
  private readonly commandTimeoutMs: number

  constructor (broker: Broker, opts: ClusterOptions, RedisCtor: new (o: RedisOptions) => Redis) {
    this.broker = broker
    this.opts = opts
    this.log = opts.logger
    this.nodeId = opts.nodeId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
    this.prefix = opts.prefix ?? 'midge:'
    const base = redisOptions(opts.redis)
    this.commandTimeoutMs = opts.commandTimeoutMs ?? opts.nodeTimeoutMs ?? 5000
    // Commands fail at once while Redis is away (the node serves locally and resyncs), instead of queueing;
    // and fail when unanswered (unanswered()), instead of holding every commit behind them.
    this.cmd = new RedisCtor({ ...base, enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, commandTimeout: this.commandTimeoutMs })
    this.sub = new RedisCtor({ ...base, lazyConnect: true, enableReadyCheck: false })
    this.reader = new RedisCtor({ ...base, enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true })
    for (const r of [this.cmd, this.sub, this.reader]) r.on('error', () => { /* reported once by the state below */ })
    this.cmd.on('ready', () => { this.onReady() })
    this.cmd.on('close', () => this.becameDown())
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onChannel(channel.toString(), message))
    // The broker's commit barrier, when it has one: a turn's acknowledgements wait for this node's pipeline too.
    const b = broker as unknown as { addCommitParticipant?: (p: CommitParticipant) => void }
    this.participant = typeof b.addCommitParticipant === 'function'
    if (this.participant) b.addCommitParticipant!(this)
  }

  /** The cluster's keys, beside the shared store's under the same prefix (persistence/redis-store.ts). */
  private key (...parts: string[]): string {
    return `${this.prefix}cluster:${parts.join(':')}`
  }

  get state (): 'up' | 'down' {
    return this.up ? 'up' : 'down'
  }

  /** Live nodes known now, this one included. */
  get nodes (): string[] {
    return [this.nodeId, ...[...this.liveNodes].filter((n) => n !== this.nodeId)]
  }

  /**
   * Joins: connects, announces this node and its interest, loads the others' and the retained messages. With
   * Redis unreachable the node starts anyway, serving its own clients, and joins when Redis answers.
   */
  async start (): Promise<void> {
    for (const s of this.broker.sessions.values()) for (const e of s.subscriptions.values()) this.local.add(interestKey(e.filter, e.group))
    this.broker.cluster = this
    this.broker.sysValues.set('cluster/state', () => this.state)
    this.broker.sysValues.set('cluster/nodes', () => String(this.up ? this.nodes.length : 1))
    this.broker.sysValues.set('cluster/node_id', () => this.nodeId)
    const ready = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.opts.connectTimeoutMs ?? 5000)
      this.cmd.once('ready', () => { clearTimeout(timer); resolve(true) })
    })
    for (const r of [this.cmd, this.sub, this.reader]) r.connect().catch(() => undefined)
    if (await ready) await this.joining
    else this.becameDown()
  }

  /** The first time Redis answers: subscribe, make this node's stream, announce, read, start beating and reading. */
  private async join (): Promise<void> {
    await this.sub.subscribe(this.key('interest'), this.key('retained'), this.key('ctl', this.nodeId))
    await this.cmd.call('XGROUP', 'CREATE', this.key('stream', this.nodeId), Group, '$', 'MKSTREAM').catch((err: Error) => {
      if (!err.message.includes('BUSYGROUP')) throw err
    })
    await this.resync()
    this.heartbeat = setInterval(() => { void this.beat() }, this.opts.heartbeatMs ?? 1000)
    this.heartbeat.unref()
    this.reading = this.readLoop()
    const n = this.liveNodes.size
    this.log.notice(`Cluster: node ${this.nodeId} joined through ${this.opts.redis.display} (${n} other node${n === 1 ? '' : 's'}).`)
  }

  /** After a (re)connection: this node's interest written and announced, everyone else's and the retained index read. */
  private async resync (): Promise<void> {
    const me = this.nodeId
    const ikey = this.key('interest', me)
    const p = this.cmd.multi()
    p.set(this.key('node', me), String(Date.now()), 'PX', this.opts.nodeTimeoutMs ?? 5000)
    p.sadd(this.key('nodes'), me)
    p.del(ikey)
    const counts = [...this.local.counts.keys()]
    for (let i = 0; i < counts.length; i += 1000) p.hset(ikey, ...counts.slice(i, i + 1000).flatMap((k) => [k, '1']))
    p.publish(this.key('interest'), `=${me}`)
    this.local.changes.clear()
    await p.exec()
    await this.loadNodes()
    const all = await this.cmd.hgetallBuffer(this.key('retained'))
    const retained = this.broker.retained
    const seen = new Set<string>()
    for (const [topic, enc] of Object.entries(all)) {
      seen.add(topic)
      this.applyRetained(enc)
    }
    for (const m of [...retained.messages()]) if (!m.topic.startsWith('$SYS/') && !seen.has(m.topic)) retained.delete(m.topic)
    this.up = true
  }

  /** Reads the node list and each live node's interest. */
  private async loadNodes (): Promise<void> {
    const nodes = (await this.cmd.smembers(this.key('nodes'))).filter((n) => n !== this.nodeId)
    const p = this.cmd.pipeline()
    for (const n of nodes) {
      p.exists(this.key('node', n))
      p.hkeys(this.key('interest', n))
    }
    const res = (await p.exec()) ?? []
    this.liveNodes.clear()
    for (const n of [...this.remote.nodes]) if (!nodes.includes(n)) this.remote.drop(n)
    nodes.forEach((n, i) => {
      const alive = res[2 * i]?.[1] === 1
      if (alive) {
        this.liveNodes.add(n)
        this.remote.reset(n, (res[2 * i + 1]?.[1] as string[] | undefined) ?? [])
      } else {
        this.remote.drop(n)
        void this.nodeLost(n)
      }
    })
  }

  // ---- ClusterLink: called by the broker -------------------------------------------------------------------

  interestAdded (filter: string, group: string): void {
    this.local.add(interestKey(filter, group))
    if (this.local.changes.size > 0) this.touch()
  }

  interestRemoved (filter: string, group: string): void {
    this.local.remove(interestKey(filter, group))
    if (this.local.changes.size > 0) this.touch()
  }

  sharedHere (group: string, filter: string): boolean {
    const g = this.remote.shared.group(group, filter)
    if (g === undefined || !this.up) return true
    const key = `${group}\0${filter}`
    this.sharedSeen.add(key)
    // Round robin over the nodes holding the group, this one being the last slot.
    const n = g.members.length + 1
    const turn = ((this.sharedTurn.get(key) ?? -1) + 1) % n
    this.sharedTurn.set(key, turn)
    if (turn === n - 1) return true
    this.sharedChosen.push([(g.members[turn] as { value: string }).value, group, filter])
    return false
  }

  forward (msg: Message): void {
    const chosen = this.sharedChosen
    const seen = this.sharedSeen
    try {
      if (!this.up || msg.topic.startsWith('$SYS/')) return
      if (msg.retain) {
        this.retainedOut.push(msg)
        this.touch()
      }
      this.current = msg
      this.currentSeq = ++this.seq
      this.remote.plain.match(msg.topic, this.visitNode)
      for (const [node, group, filter] of chosen) this.addGroup(node, group, filter)
      if (this.remote.shared.groupCount > 0) this.remote.shared.match(msg.topic, this.visitGroup)
      if (this.moves.size > 0) this.followMoved(msg, this.nodeId, this.currentSeq)
      if (this.perNode.size === 0) return
      for (const [node, f] of this.perNode) {
        let list = this.outbox.get(node)
        if (list === undefined) this.outbox.set(node, list = [])
        list.push(f)
      }
      this.forwarded += this.perNode.size
      this.touch()
    } finally {
      this.perNode.clear()
      this.current = undefined
      chosen.length = 0
      seen.clear()
    }
  }

  /** A message that matches a session handed over from here lately goes to its new node, for that client only. */
  private followMoved (msg: WireMessage, from: string, seq: number): void {
    for (const m of this.moves.matching(msg.topic, Date.now())) {
      if (this.broker.sessions.has(m.clientId)) continue
      this.redirect(m, msg, from, seq)
    }
  }

  private redirect (m: Moved, msg: WireMessage, from: string, seq: number): void {
    let byClient = this.redirectOut.get(m.to)
    if (byClient === undefined) this.redirectOut.set(m.to, byClient = new Map())
    let list = byClient.get(m.clientId)
    if (list === undefined) byClient.set(m.clientId, list = [])
    const f = new Forward(msg, seq, from)
    f.normal = true
    list.push(f)
    this.forwarded++
    this.touch()
  }

  private forwardTo (node: string): Forward {
    let f = this.perNode.get(node)
    if (f === undefined) this.perNode.set(node, f = new Forward(this.current!, this.currentSeq))
    return f
  }

  private addGroup (node: string, group: string, filter: string): void {
    const f = this.forwardTo(node)
    ;(f.groups ??= []).push([group, filter])
  }

  /** A share group held only by other nodes: one of them, round robin. */
  private chooseRemote (g: SharedGroup<string>): void {
    if (this.sharedSeen.has(`${g.name}\0${g.filter}`)) return
    const m = g.next()
    if (m !== undefined) this.addGroup(m.value, g.name, g.filter)
  }

  claim (clientId: string, cleanStart: boolean): Promise<void> | undefined {
    // The client is back before the will its lost node left was due: no will [MQTT-3.1.3-9].
    const pendingWill = this.adoptedWills.get(clientId)
    if (pendingWill !== undefined) {
      clearTimeout(pendingWill)
      this.adoptedWills.delete(clientId)
    }
    if (!this.up) return undefined
    return this.claimSession(clientId, cleanStart)
  }

  private async claimSession (clientId: string, _cleanStart: boolean): Promise<void> {
    const dir = this.opts.sessions
    let previous: string | undefined
    try {
      previous = dir !== undefined
        ? await dir.claimSession(clientId)
        : (await this.cmd.set(this.key('owner', clientId), this.nodeId, 'GET')) ?? undefined
    } catch (err) {
      // Redis went away meanwhile: the client is served here, as any client while Redis is down.
      this.log.debug(`Cluster: claim of ${clientId} failed: ${(err as Error).message}`)
      this.unanswered(err)
      return
    }
    this.log.debug(`Cluster: session of ${clientId} claimed; previous owner ${previous ?? 'none'}.`)
    if (previous === undefined || previous === this.nodeId) return
    // What the previous owner receives for the session after letting it go is redirected here (moves.ts).
    let loadedHere = (): void => undefined
    const held: Received[] = []
    this.claiming.set(clientId, { held, loaded: new Promise<void>((resolve) => { loadedHere = resolve }) })
    try {
      const handed = this.liveNodes.has(previous) ? await this.askHandOver(previous, clientId) : undefined
      // Clean Start too: a stored session must be read to be ended (attachSession ends what it finds).
      const loaded = dir !== undefined
        ? await dir.loadSession(clientId, () => this.broker.allocateMessageId())
        : handed === undefined ? undefined : decodeSession(handed, () => this.broker.allocateMessageId())
      if (loaded === undefined) return
      const adopted = this.broker.adoptSession(loaded.session, loaded.messages)
      this.moves.delete(clientId)
      this.arrived.add(clientId, [...adopted.subscriptions.values()].filter((e) => e.group === '').map((e) => e.filter), Date.now())
      const only = new Set([clientId])
      for (const m of held) if (this.arrived.firstCopy(clientId, m)) this.broker.deliverAdopted(m.topic, m.payload, m.qos, m.retain, m.properties, m.expiresAt, m.origin, true, undefined, only)
      this.log.debug(`Cluster: session of ${clientId} adopted from node ${previous} (${adopted.queueLength + adopted.inflight.size} messages, ${held.length} redirected meanwhile).`)
    } finally {
      this.claiming.delete(clientId)
      loadedHere()
    }
  }

  /** Resolves when `node` has let the session go: with the session itself when there is no shared store. */
  private askHandOver (node: string, clientId: string): Promise<string | undefined> {
    const id = this.nextCtl++
    return new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id)
        this.log.warning(`Cluster: node ${node} did not hand over the session of ${clientId} within ${this.opts.handOverTimeoutMs ?? 3000} ms; going on with what Redis holds.`)
        resolve(undefined)
      }, this.opts.handOverTimeoutMs ?? 3000)
      this.waiting.set(id, (session) => { clearTimeout(timer); resolve(session) })
      const ctl: Ctl = { t: 'takeover', c: clientId, from: this.nodeId, id }
      this.cmd.publish(this.key('ctl', node), JSON.stringify(ctl)).catch(() => undefined)
    })
  }

  /** Another node took a client over: close it here, commit what its session holds, answer. */
  private async handOver (clientId: string, to: string, id: number): Promise<void> {
    // What other nodes forwarded here before the takeover belongs to the session being handed over.
    await this.drainStream()
    const s = this.broker.sessions.get(clientId)
    const filters = s === undefined ? [] : [...s.subscriptions.values()].filter((e) => e.group === '').map((e) => e.filter)
    const live = s === undefined ? undefined : this.broker.dropSession(s)
    // From now on, what arrives here for the session follows it; what arrived before is in what is handed over.
    if (live !== undefined && filters.length > 0) {
      this.moves.add(clientId, to, filters, Date.now())
      // The interest stays until the new node's has surely reached every node: no node sees neither.
      for (const f of filters) this.local.add(interestKey(f, ''))
      const t = setTimeout(() => {
        this.heldInterest.delete(t)
        for (const f of filters) this.local.remove(interestKey(f, ''))
        if (this.local.changes.size > 0) this.touch()
      }, KeepMs)
      t.unref()
      this.heldInterest.add(t)
    }
    await this.commitBroker()
    if (live !== undefined) this.opts.sessions?.releaseSession(clientId)
    const done: Ctl = { t: 'done', id }
    if (live !== undefined && this.opts.sessions === undefined) done.s = encodeSession(live)
    this.log.debug(`Cluster: session of ${clientId} handed over to node ${to}${live === undefined ? ' (none here)' : ` (${live.session.outgoing.length} messages, ${live.session.subscriptions.length} subscriptions)`}.`)
    await this.cmd.publish(this.key('ctl', to), JSON.stringify(done)).catch(() => undefined)
  }

  /** The broker's store commit (and this node's own outbox) made durable: before an XACK or a hand-over answer. */
  private async commitBroker (): Promise<void> {
    await this.broker.commitStore()
    if (this.dirty) await this.commit()
  }

  // ---- commits --------------------------------------------------------------------------------------------

  get dirty (): boolean {
    return this.outbox.size > 0 || this.redirectOut.size > 0 || this.retainedOut.length > 0 || this.local.changes.size > 0 || this.willsOut.size > 0 || this.endedOut.length > 0
  }

  sessionEnded (clientId: string): void {
    // With the shared store, its own records (owner hash) follow the session.
    if (this.opts.sessions !== undefined || !this.up) return
    this.endedOut.push(clientId)
    this.touch()
  }

  willChanged (clientId: string, will: WillMessage | undefined, dueAt: number): void {
    this.willsOut.set(clientId, will === undefined ? null : toJson({ will, dueAt }))
    this.touch()
  }

  /**
   * Something waits for the next commit. The broker's barrier commits it with the turn's acknowledgements; this
   * covers a change no connection's flush follows (an application's publish, a will from a timer).
   */
  private touch (): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      if (this.participant) void this.broker.commitStore().catch(() => undefined)
      else void this.commit()
    })
  }

  /**
   * One pipeline with everything since the last commit, in order after it. Never rejects (a rejection would
   * stop the broker as a store failure): with Redis down the batch is dropped and counted.
   */
  commit (): Promise<void> {
    if (!this.dirty) return this.flushing
    const outbox = this.outbox
    const redirects = this.redirectOut
    this.redirectOut = new Map()
    const retained = this.retainedOut
    const changes = [...this.local.changes]
    const wills = this.willsOut
    this.willsOut = new Map()
    const ended = this.endedOut
    this.endedOut = []
    this.outbox = new Map()
    this.retainedOut = []
    this.local.changes.clear()
    const run = async (): Promise<void> => {
      if (!this.up) {
        for (const list of outbox.values()) this.dropped += list.length
        for (const byClient of redirects.values()) for (const list of byClient.values()) this.dropped += list.length
        return
      }
      const p = this.cmd.multi()
      const me = this.nodeId
      const ikey = this.key('interest', me)
      for (const [k, present] of changes) {
        if (present) p.hset(ikey, k, '1')
        else p.hdel(ikey, k)
        p.publish(this.key('interest'), `${present ? '+' : '-'}${me} ${k}`)
      }
      for (const m of retained) {
        if (m.payload.length === 0) p.hdel(this.key('retained'), m.topic)
        else p.hset(this.key('retained'), m.topic, encodeBatch(me, [new Forward(m)]))
        p.publish(this.key('retained'), encodeBatch(me, [new Forward(m)]))
      }
      const wkey = this.key('wills', me)
      for (const [clientId, w] of wills) {
        if (w === null) p.hdel(wkey, clientId)
        else p.hset(wkey, clientId, w)
      }
      // Only if still ours: a node that took the client over meanwhile has written its own id.
      for (const clientId of ended) p.eval(DeleteIfOwner, 1, this.key('owner', clientId), me)
      for (const [node, list] of outbox) p.xadd(this.key('stream', node), '*', 'b', encodeBatch(me, list))
      for (const [node, byClient] of redirects) {
        for (const [clientId, list] of byClient) p.xadd(this.key('stream', node), '*', 'c', clientId, 'r', encodeBatch(me, list))
      }
      try {
        await p.exec()
      } catch (err) {
        for (const list of outbox.values()) this.dropped += list.length
        for (const byClient of redirects.values()) for (const list of byClient.values()) this.dropped += list.length
        this.log.debug(`Cluster: commit failed: ${(err as Error).message}`)
        this.unanswered(err)
      }
    }
    this.flushing = this.flushing.then(run, run)
    return this.flushing
  }

  // ---- receiving ------------------------------------------------------------------------------------------

  /** Reads this node's stream: first what a previous run of this node id left unacknowledged, then new entries. */
  private async readLoop (): Promise<void> {
    const stream = this.key('stream', this.nodeId)
    let from = '0'
    // The next read goes out while the last ones' commits and acknowledgements are under way (a few at most).
    const settling: Array<Promise<void>> = []
    while (!this.closed) {
      let res: unknown
      try {
        res = await this.reader.callBuffer('XREADGROUP', 'GROUP', Group, this.nodeId, 'COUNT', ReadCount, 'BLOCK', 1000, 'STREAMS', stream, from)
      } catch (err) {
        if (this.closed) return
        if ((err as Error).message.includes('NOGROUP')) {
          await this.reader.call('XGROUP', 'CREATE', stream, Group, '0', 'MKSTREAM').catch(() => undefined)
        } else {
          await sleep(500)
        }
        from = '0'
        continue
      }
      const entries = streamEntries(res)
      // Pending entries are read once after a (re)start or an error; those already delivered are skipped.
      if (entries.length < ReadCount) from = '>'
      if (entries.length === 0) continue
      settling.push(this.take(stream, entries))
      if (settling.length >= MaxSettling) await settling.shift()
    }
    await Promise.all(settling)
  }

  /**
   * Delivers stream entries not delivered yet (the read loop and a hand-over's drain may both be given the same
   * pending entry), commits what that put into persistent sessions, then acknowledges and deletes them.
   */
  private async take (stream: string, entries: Array<[string, Buffer[]]>): Promise<void> {
    const claims: Array<Promise<void>> = []
    // With the shared store: the entries whose messages went into sessions now, and those held for a claim.
    const now: string[] = []
    const held: string[] = []
    for (const [id, fields] of entries) {
      if (this.delivered.has(id)) {
        now.push(id)
        continue
      }
      this.delivered.add(id)
      const n = claims.length
      this.deliver(fields, claims)
      ;(claims.length > n ? held : now).push(id)
    }
    const store = this.opts.sessions
    if (store?.withNextCommit !== undefined) {
      // In the MULTI/EXEC of the store's commit holding what they delivered (the same turn's): a node killed
      // between the two would leave them to the adopter, which loads the sessions already holding them.
      this.ackWithCommit(store, stream, now)
      if (claims.length > 0) {
        await Promise.all(claims)
        this.ackWithCommit(store, stream, held)
      }
      await this.commitBroker().catch(() => undefined)
      return
    }
    // A message held for a session being claimed is acknowledged once it is in that session.
    if (claims.length > 0) await Promise.all(claims)
    await this.commitBroker().catch(() => undefined)
    const ids = entries.map(([id]) => id)
    const acked = await this.cmd.multi().xack(stream, Group, ...ids).xdel(stream, ...ids).exec().then(() => true, () => false)
    // Unacknowledged (Redis away): they stay marked, so the re-read after reconnection does not deliver them twice.
    if (acked) for (const id of ids) this.delivered.delete(id)
  }

  /** XACK and XDEL in the store's next commit; the entries stay marked delivered until it is confirmed. */
  private ackWithCommit (store: SessionDirectory, stream: string, ids: string[]): void {
    if (ids.length === 0) return
    void store.withNextCommit!([['xack', stream, Group, ...ids], ['xdel', stream, ...ids]]).then(() => {
      for (const id of ids) this.delivered.delete(id)
    })
  }

  /**
   * Delivers what waits in this node's stream now, without blocking: the entries already given to the read loop
   * whose answer is still on its way (pending: '0'), then the new ones ('>').
   */
  private async drainStream (): Promise<void> {
    const stream = this.key('stream', this.nodeId)
    for (const from of ['0', '>']) {
      const res = await this.cmd.callBuffer('XREADGROUP', 'GROUP', Group, this.nodeId, 'COUNT', 10_000, 'STREAMS', stream, from).catch(() => undefined)
      const entries = streamEntries(res)
      if (entries.length > 0) await this.take(stream, entries)
    }
  }

  /** One stream entry: a batch for this node's subscriptions ('b'), or one for one client's session ('c', 'r'). */
  private deliver (fields: Buffer[], claims: Array<Promise<void>>): void {
    let clientId: string | undefined
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i]!.toString()
      if (name === 'c') clientId = fields[i + 1]!.toString()
      if (name !== 'b' && name !== 'r') continue
      try {
        const { messages } = decodeBatch(fields[i + 1]!)
        for (const m of messages) {
          this.received++
          if (name === 'r') {
            if (clientId !== undefined) this.deliverRedirected(clientId, m, claims)
            continue
          }
          this.broker.deliverForwarded(m.topic, m.payload, m.qos, m.retain, m.properties, m.expiresAt, m.origin, m.normal, m.groups)
          if (m.normal && this.arrived.size > 0) this.arrived.delivered(m, Date.now())
          if (m.normal && this.moves.size > 0) this.followMoved(m, m.from, m.seq)
        }
      } catch (err) {
        this.log.error(`Cluster: a batch from another node could not be read and was skipped: ${(err as Error).message}`)
      }
    }
  }

  /**
   * A message another node received for a session after handing it over here: into the session if it is here,
   * held while it is being claimed here, on to the next node if it moved on again meanwhile.
   */
  private deliverRedirected (clientId: string, m: Received, claims: Array<Promise<void>>): void {
    if (this.broker.sessions.has(clientId)) {
      // The copy the origin sent here directly came first (the same commit there, read in order here).
      if (!this.arrived.firstCopy(clientId, m)) return
      this.broker.deliverAdopted(m.topic, m.payload, m.qos, m.retain, m.properties, m.expiresAt, m.origin, true, undefined, new Set([clientId]))
      return
    }
    const claim = this.claiming.get(clientId)
    if (claim !== undefined) {
      claim.held.push(m)
      claims.push(claim.loaded)
      return
    }
    const moved = this.moves.get(clientId, Date.now())
    if (moved !== undefined) this.redirect(moved, m, m.from, m.seq)
    else this.log.debug(`Cluster: a message redirected to ${clientId} found no session here; dropped.`)
  }

  private onChannel (channel: string, message: Buffer): void {
    try {
      if (channel === this.key('interest')) this.onInterest(message.toString())
      else if (channel === this.key('retained')) this.applyRetained(message)
      else if (channel === this.key('ctl', this.nodeId)) this.onCtl(JSON.parse(message.toString()) as Ctl)
    } catch (err) {
      this.log.error(`Cluster: bad message on ${channel}: ${(err as Error).message}`)
    }
  }

  private onInterest (text: string): void {
    const op = text[0]
    const space = text.indexOf(' ')
    const node = space === -1 ? text.slice(1) : text.slice(1, space)
    if (node === this.nodeId) return
    if (op === '+') {
      this.liveNodes.add(node)
      this.remote.add(node, text.slice(space + 1))
    } else if (op === '-') {
      this.remote.remove(node, text.slice(space + 1))
    } else if (op === '=') {
      this.liveNodes.add(node)
      void this.cmd.hkeys(this.key('interest', node)).then((keys) => this.remote.reset(node, keys), () => undefined)
    } else if (op === '!') {
      this.liveNodes.delete(node)
      this.remote.drop(node)
    }
  }

  private applyRetained (enc: Buffer): void {
    const { node, messages } = decodeBatch(enc)
    const m = messages[0]
    if (m === undefined) return
    const r = this.broker.retained
    if (m.payload.length === 0) {
      r.delete(m.topic)
      return
    }
    // The origin already has it (and stored it); a reload after a resync replaces ours with Redis's.
    if (node === this.nodeId && r.get(m.topic) !== undefined) return
    r.set(m.topic, new Message(this.broker.allocateMessageId(), m.topic, m.payload, m.qos, true, m.properties, m.expiresAt, m.origin))
  }

  private onCtl (c: Ctl): void {
    if (c.t === 'done') {
      this.waiting.get(c.id)?.(c.s)
      this.waiting.delete(c.id)
      return
    }
    this.handOver(c.c, c.from, c.id).catch((err: unknown) => this.log.error(`Cluster: hand-over of ${c.c} failed: ${(err as Error).message}`))
  }

  // ---- nodes ----------------------------------------------------------------------------------------------

  private async beat (): Promise<void> {
    if (!this.up) return
    try {
      const me = this.nodeId
      const [, , members] = ((await this.cmd.multi()
        .set(this.key('node', me), String(Date.now()), 'PX', this.opts.nodeTimeoutMs ?? 5000)
        .sadd(this.key('nodes'), me)
        .smembers(this.key('nodes'))
        .exec()) ?? []).map((r) => r[1]) as [unknown, unknown, string[]]
      const others = members.filter((n) => n !== me)
      if (others.length === 0) return
      const alive = ((await this.cmd.pipeline(others.map((n) => ['exists', this.key('node', n)])).exec()) ?? []).map((r) => r[1] === 1)
      others.forEach((n, i) => {
        if (alive[i] === true) {
          if (!this.liveNodes.has(n)) {
            this.liveNodes.add(n)
            void this.cmd.hkeys(this.key('interest', n)).then((keys) => this.remote.reset(n, keys), () => undefined)
          }
        } else {
          void this.nodeLost(n)
        }
      })
    } catch (err) {
      // Redis went away between two beats: the connection's close event reports it; or it does not answer.
      this.unanswered(err)
    }
  }

  /** A node without heartbeat: its interest goes; one survivor adopts its persistent sessions. */
  private async nodeLost (node: string): Promise<void> {
    const wasKnown = this.liveNodes.delete(node)
    this.remote.drop(node)
    let mine: string | null
    try {
      mine = await this.cmd.set(this.key('adopt', node), this.nodeId, 'PX', 60_000, 'NX')
    } catch {
      return
    }
    if (mine !== 'OK') return
    if (wasKnown) this.log.notice(`Cluster: node ${node} is lost (no heartbeat for ${this.opts.nodeTimeoutMs ?? 5000} ms); adopting its sessions.`)
    try {
      let adopted = 0
      const dir = this.opts.sessions
      const viaStore = new Set<string>()
      if (dir !== undefined) {
        for (const clientId of await dir.sessionsOwnedBy(node)) {
          const previous = await dir.claimSession(clientId)
          if (previous !== node) continue // claimed meanwhile by a connecting client elsewhere
          const loaded = await dir.loadSession(clientId, () => this.broker.allocateMessageId())
          if (loaded === undefined) continue
          this.broker.adoptSession(loaded.session, loaded.messages)
          viaStore.add(clientId)
          adopted++
        }
        await this.commitBroker()
      }
      // What was forwarded to the lost node and not taken there (not acknowledged), for the sessions adopted here.
      if (viaStore.size > 0) await this.takeOrphans(node, viaStore)
      // The wills of its other clients (a session adopted through the store brought its own).
      const wills = await this.cmd.hgetall(this.key('wills', node))
      for (const [clientId, text] of Object.entries(wills)) if (!viaStore.has(clientId)) this.adoptWill(clientId, text)
      await this.cmd.multi()
        .del(this.key('interest', node), this.key('wills', node))
        .srem(this.key('nodes'), node)
        .del(this.key('stream', node))
        .publish(this.key('interest'), `!${node}`)
        .exec()
      if (wasKnown || adopted > 0) this.log.notice(`Cluster: node ${node} removed; ${adopted} persistent session${adopted === 1 ? '' : 's'} adopted here.`)
    } catch (err) {
      this.log.error(`Cluster: adopting the sessions of lost node ${node} failed: ${(err as Error).message}`)
    }
  }

  /**
   * The entries left in a lost node's stream: forwarded to it, acknowledged to their publishers, maybe not
   * delivered into its sessions (committed) before it died. With the shared store an entry was acknowledged in
   * the commit that delivered it, so what is left was not delivered there: exactly once.
   */
  private async takeOrphans (node: string, adopted: ReadonlySet<string>): Promise<void> {
    const stream = this.key('stream', node)
    let from = '-'
    for (;;) {
      const res = await this.cmd.callBuffer('XRANGE', stream, from, '+', 'COUNT', 1000)
      const entries = Array.isArray(res) ? (res as Array<[Buffer, Buffer[]]>).map(([id, f]) => [id.toString(), f] as [string, Buffer[]]) : []
      for (const [, fields] of entries) {
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (fields[i]!.toString() !== 'b') continue
          try {
            for (const m of decodeBatch(fields[i + 1]!).messages) this.broker.deliverAdopted(m.topic, m.payload, m.qos, m.retain, m.properties, m.expiresAt, m.origin, m.normal, m.groups, adopted)
          } catch (err) {
            this.log.error(`Cluster: a batch left for lost node ${node} could not be read and was skipped: ${(err as Error).message}`)
          }
        }
      }
      if (entries.length < 1000) break
      from = `(${entries[entries.length - 1]![0]}`
    }
    await this.commitBroker()
  }

  /** Publishes a lost node's client's will here, when due: at once, or after its Will Delay Interval. */
  private adoptWill (clientId: string, text: string): void {
    let w: { will: WillMessage; dueAt: number }
    try {
      w = fromJson(text)
    } catch {
      return
    }
    const delayMs = w.dueAt !== 0 ? w.dueAt - Date.now() : (w.will.properties?.willDelayInterval ?? 0) * 1000
    const publish = (): void => {
      this.adoptedWills.delete(clientId)
      let props = w.will.properties
      if (props?.willDelayInterval !== undefined) {
        props = { ...props }
        delete props.willDelayInterval
      }
      try {
        this.broker.publish(w.will.topic, w.will.payload, w.will.qos, w.will.retain, props, clientId)
        void this.broker.commitStore().catch(() => undefined)
      } catch (err) {
        this.log.error(`Cluster: the will of ${clientId} (lost node) was not published: ${(err as Error).message}`)
      }
    }
    if (delayMs <= 0) {
      publish()
      return
    }
    const t = setTimeout(publish, delayMs)
    t.unref()
    this.adoptedWills.set(clientId, t)
  }

  // ---- Redis up and down -----------------------------------------------------------------------------------

  private becameDown (why = 'unreachable'): void {
    if (!this.up && this.downLogged) return
    this.up = false
    if (this.closed || this.downLogged) return
    this.downLogged = true
    this.log.warning(`cluster: Redis ${why} at ${this.opts.redis.display}, serving local clients only`)
  }

  /**
   * A command Redis did not answer within commandTimeoutMs: it is frozen (a stalled disk under `appendfsync
   * always`, SIGSTOP) or the path to it drops packets without a reset, and no close event will come. The node
   * goes down as if Redis had gone: local clients only, cross-node messages dropped and counted, so no commit
   * waits on Redis, holding every acknowledgement behind it. It reconnects, and is up again once Redis answers
   * the reconnection's ready check.
   */
  private unanswered (err: unknown): void {
    if (this.closed || !this.up || !(err instanceof Error) || err.message !== 'Command timed out') return
    this.becameDown(`not answering (no reply within ${this.commandTimeoutMs} ms)`)
    this.cmd.disconnect(true)
  }

  private onReady (): void {
    if (this.closed) return
    if (!this.joined) {
      this.joined = true
      this.joining = this.join().catch((err: unknown) => {
        this.joined = false
        this.log.warning(`cluster: joining through ${this.opts.redis.display} failed (${(err as Error).message}); retrying on the next connection.`)
      })
      return
    }
    void this.becameUp()
  }

  private async becameUp (): Promise<void> {
    try {
      await this.resync()
      // What the store kept while Redis was away goes out now, not at the next client's packet.
      void this.broker.commitStore().catch(() => undefined)
      this.downLogged = false
      this.log.notice(`cluster: Redis reachable again at ${this.opts.redis.display}; interest and retained messages resynchronised.`)
    } catch (err) {
      this.log.warning(`cluster: resynchronising with Redis failed (${(err as Error).message}); retrying on the next connection.`)
    }
  }

  /** Leaves the cluster: this node's records go (a clean stop is not a lost node), the connections close. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat)
    for (const t of this.adoptedWills.values()) clearTimeout(t)
    for (const t of this.heldInterest) clearTimeout(t)
    if (this.broker.cluster === this) this.broker.cluster = undefined
    for (const k of ['cluster/state', 'cluster/nodes', 'cluster/node_id']) this.broker.sysValues.delete(k)
    await this.commit()
    if (this.up) {
      const me = this.nodeId
      await this.cmd.multi()
        .del(this.key('node', me), this.key('interest', me), this.key('wills', me))
        .srem(this.key('nodes'), me)
        .publish(this.key('interest'), `!${me}`)
        .exec()
        .catch(() => undefined)
    }
    this.reader.disconnect()
    await this.reading
    this.sub.disconnect()
    this.cmd.disconnect()
  }
}

/** [id, fields] of an XREADGROUP answer (Buffers), [] for none. */
function streamEntries (res: unknown): Array<[string, Buffer[]]> {
  if (!Array.isArray(res)) return []
  const out: Array<[string, Buffer[]]> = []
  for (const stream of res as Array<[Buffer, Array<[Buffer, Buffer[] | null]>]>) {
    for (const [id, fields] of stream[1]) if (fields !== null) out.push([id.toString(), fields])
  }
  return out
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
