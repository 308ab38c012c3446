/**
 * The Store (store.ts) in Redis, for a cluster of Midge nodes: retained messages are shared by every
 * node, each persistent session belongs to one node at a time and moves to another with claimSession +
 * loadSession. Redis is the durability: a commit resolves when EXEC has answered (with the appendonly
 * file, what EXEC acknowledged survives a crash of Redis; that is the operator's Redis configuration,
 * see docs/persistence.md, and load() reports a Redis that is not set up so).
 *
 * Keys (S = the prefix + 'store:', apart from the cluster's own keys under the same prefix):
 *   S session:<clientId>      hash: one persistent session, fields listed in redis-records.ts
 *   S retained                hash: topic -> message (with the node that wrote it); last write wins
 *   S owner                   hash: clientId -> node id owning that session (the truth)
 *   S node:<id>:sessions      set: client ids a node owns (an index; stale members are filtered by owner
 *                             and removed when read, so a claim never has to touch another node's key)
 *   S node:<id>:next          hash: the broker's next message and delivery ids as of its last compaction
 *                             (a load also goes above every id it reads)
 * With a hash tag in the prefix ('{midge}:') every key is in one slot, as Redis Cluster needs for MULTI.
 *
 * Message ids are each broker's own and collide across nodes, so a message body is stored in the hash of
 * each session that holds it ('b:<id>'), not once per node: a session is then self-contained, loads with
 * one HGETALL, moves to another node without touching any other session, and sessionEnded is one DEL.
 * The price is one copy of a message per persistent session it is queued for (the log store keeps one);
 * loadSession re-numbers the moved session's messages into the new broker's id space (allocateId) and
 * its deliveries to negative ids, which no broker allocates, so they cannot meet the new owner's own.
 *
 * Ownership is the owner hash, checked by Redis itself where it matters: a node ending a session that
 * another node has claimed meanwhile deletes nothing. Writes are not checked there (a Lua script per
 * commit would be); instead the node that hands a session over calls releaseSession, after which the
 * store writes nothing its broker still does with its old copy.
 *
 * Mutations are buffered as a diff (redis-batch.ts): per session hash and for the retained hash, the last value of each
 * field (null: delete), whether the hash was deleted first (sessionEnded) and whether ownership is to be
 * recorded. commit() sends it as one MULTI/EXEC. Because the diff holds final values, applying it twice
 * gives the same result as once. A commit that fails (Redis down or restarted, a reply lost) rejects and
 * leaves its diff behind, possibly half applied: the next commit merges it under the newer mutations and
 * sends it again, which is correct whether or not the failed EXEC ran. A field created and deleted within
 * unconfirmed diffs (a delivery queued and acknowledged while Redis is away) is dropped from the diff, so
 * a diff kept across an outage stays about as large as the state it changes, not as the traffic.
 */
import type { Redis } from 'ioredis'
import { Batch, SessionDiff } from './redis-batch.js'
import { type DeliveryRecord, RedisRecords } from './redis-records.js'
import type { RecoveredState, Store, StoredMessage, StoredOutgoing, StoredSession, StoredSubscription, StoredWill } from './store.js'

export interface RedisStoreOptions {
  redis: Redis
  /** Prefix of every key, e.g. 'midge:'. */
  prefix: string
  /** This node's id: the owner recorded for the sessions it saves or claims. */
  nodeId: string
  /**
   * A commit Redis has not answered after this long rejects (its changes are kept for the next one).
   * ioredis with autoResendUnfulfilledCommands off drops a command cut off by a lost connection without
   * ever settling it; with it on (the default) the command is sent again after the reconnection, ahead of
   * anything sent later, so a late answer cannot reorder. Default 10 s.
   */
  commitTimeoutMs?: number
}

/** RedisStoreOptions.commitTimeoutMs's default; a cluster's store connection fails any command after it too. */
export const DefaultCommitTimeoutMs = 10_000

/** A commit Redis did not confirm. Its changes are kept and sent again by the next commit. */
export class RedisStoreError extends Error {
  readonly code = 'STORE_ERR_REDIS'
}

/** Records ownership when no node owns the session yet; indexes it under this node if it is ours. */
const OwnScript = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) cur = ARGV[2] end
if cur == ARGV[2] then redis.call('SADD', KEYS[2], ARGV[1]) end
return 0`

/**
 * Ends a session: deletes its hash and its owner record, unless another node has claimed it meanwhile
 * (then the hash is the new owner's and stays).
 */
const EndScript = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (not cur) or cur == ARGV[2] then
  redis.call('DEL', KEYS[3])
  if cur then redis.call('HDEL', KEYS[1], ARGV[1]) end
end
redis.call('SREM', KEYS[2], ARGV[1])
return 0`

/** Removes members from a node's index unless the node owns them again by now. */
const PruneScript = `
for i = 1, #ARGV - 1 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[#ARGV] then redis.call('SREM', KEYS[2], ARGV[i]) end
end
return 0`

/** Makes this node the owner; returns the previous owner (false: none). */
const ClaimScript = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return old`

/** What this store knows of a session it writes: enough to rewrite one delivery and to free bodies. */
class Tracked {
  readonly out = new Map<number, DeliveryRecord>()
  /** Message id -> deliveries of this session that refer to it (its body field lives while > 0). */
  readonly bodies = new Map<number, number>()
  /** Ownership was recorded (or sent to be). */
  owned = false
}

/** A message body this store may still have to copy into a session or the retained hash. */
interface Known {
  msg: StoredMessage
  /** Deliveries (all sessions) and retained topics referring to it. */
  refs: number
  /** Encoded once however many sessions it is copied into. */
  body: Buffer | undefined
}

export class RedisStore implements Store {
  private readonly redis: Redis
  private readonly prefix: string
  private readonly nodeId: string
  private readonly records = new RedisRecords()
  private readonly ownerKey: string
  private readonly retainedKey: string
  private readonly nodeSetKey: string
  private readonly nextKey: string
  private readonly commitTimeoutMs: number
  private batch = new Batch()
  /** The diff of a commit Redis did not confirm: sent again under the next commit's. */
  private failed: Batch | undefined
  private sending: Promise<void> | undefined
  private readonly tracked = new Map<string, Tracked>()
  private readonly known = new Map<number, Known>()
  /** Ids whose refs fell to 0 (or never rose): forgotten at the next commit unless referred to again. */
  private unreferenced: number[] = []
  private readonly retainedIds = new Map<string, number>()
  /**
   * Sessions handed over to another node (releaseSession): whatever the broker still does with its old
   * copy is not written, until this node claims the session again or the broker ends its copy.
   */
  private readonly handedOver = new Set<string>()
  private seq = 1
  private changes = 0
  /**
   * Records naming a message this store was not given (Broker.persistMessage saves each before the first
   * record referring to it, so this stays 0); such a record is skipped rather than thrown from the broker.
   */
  private missingBodies = 0

  constructor(o: RedisStoreOptions) {
    this.redis = o.redis
    this.prefix = o.prefix
    this.nodeId = o.nodeId
    this.ownerKey = `${o.prefix}store:owner`
    this.retainedKey = `${o.prefix}store:retained`
    this.nodeSetKey = this.nodeSet(o.nodeId)
    this.nextKey = `${o.prefix}store:node:${o.nodeId}:next`
    this.commitTimeoutMs = o.commitTimeoutMs ?? DefaultCommitTimeoutMs
  }

  private sessionKey(clientId: string): string {
    return `${this.prefix}store:session:${clientId}`
  }

  private nodeSet(nodeId: string): string {
    return `${this.prefix}store:node:${nodeId}:sessions`
  }

  /** Records skipped because their message was never saved: nonzero is a bug, for tests and diagnostics. */
  get missingMessages(): number {
    return this.missingBodies
  }

  get dirty(): boolean {
    return !this.batch.empty || this.failed !== undefined
  }

  get changesSinceCompaction(): number {
    return this.changes
  }

  /** Each record overwrites its own key: there is no log to bound, so autosave never needs to compact. */
  get recordsAtCompaction(): number {
    return Number.POSITIVE_INFINITY
  }

  // ---- ownership ------------------------------------------------------------------------------

  async claimSession(clientId: string): Promise<string | undefined> {
    const old = await this.redis.eval(ClaimScript, 2, this.ownerKey, this.nodeSetKey, clientId, this.nodeId) as string | null
    this.handedOver.delete(clientId)
    const t = this.tracked.get(clientId)
    if (t !== undefined) t.owned = true
    return old === null ? undefined : old
  }

  async sessionsOwnedBy(nodeId: string): Promise<string[]> {
    const key = this.nodeSet(nodeId)
    const members = await this.redis.smembers(key)
    const owned: string[] = []
    const stale: string[] = []
    for (let i = 0; i < members.length; i += 1000) {
      const chunk = members.slice(i, i + 1000)
      const owners = await this.redis.hmget(this.ownerKey, ...chunk)
      for (let j = 0; j < chunk.length; j++) (owners[j] === nodeId ? owned : stale).push(chunk[j]!)
    }
    // Left behind by a claim (which only writes the claimer's keys): tidied by whoever reads the index.
    if (stale.length > 0) await this.redis.eval(PruneScript, 2, this.ownerKey, key, ...stale, nodeId)
    return owned
  }

  /**
   * Lets go of a session another node has claimed: call it once the commit holding the session's last
   * changes here has resolved. From then on nothing this node's broker does with its old copy reaches
   * Redis (changes still buffered are dropped; sessionEnded for it writes nothing and ends the fence),
   * until this node claims the session again.
   */
  releaseSession(clientId: string): void {
    this.forget(clientId)
    this.batch.sessions.delete(clientId)
    this.handedOver.add(clientId)
  }

  /** Drops what this store knows of a session's deliveries (their messages may be forgotten). */
  private forget(clientId: string): void {
    const t = this.tracked.get(clientId)
    if (t === undefined) return
    for (const rec of t.out.values()) this.unref(rec.messageId)
    this.tracked.delete(clientId)
  }

  /** True for a session handed over to another node (releaseSession): its changes are not written. */
  private gone(clientId: string): boolean {
    return this.handedOver.size !== 0 && this.handedOver.has(clientId)
  }

  async loadSession(clientId: string, allocateId: () => number): Promise<{ session: StoredSession; messages: Map<number, StoredMessage> } | undefined> {
    this.handedOver.delete(clientId)
    const raw = await this.redis.hgetallBuffer(this.sessionKey(clientId))
    if (Object.keys(raw).length === 0) return undefined
    const report: string[] = []
    const read = this.readSession(clientId, raw, report)
    if (read === undefined) return undefined
    const { session, deliveries, bodies } = read
    // Into the caller's id space: messages through allocateId, deliveries to negative ids (see the header).
    const ids = new Map<number, number>()
    const messages = new Map<number, StoredMessage>()
    for (const [oldId, m] of bodies) {
      const id = allocateId()
      ids.set(oldId, id)
      messages.set(id, { ...m, id })
    }
    const t = new Tracked()
    t.owned = true
    const fields: Array<string | Buffer> = []
    const encoded = new Map<number, Buffer>()
    let oid = 0
    session.outgoing = []
    for (const d of deliveries) {
      const messageId = ids.get(d.rec.messageId)!
      const rec: DeliveryRecord = { ...d.rec, messageId, seq: this.seq++ }
      const o: StoredOutgoing = { oid: --oid, messageId, qos: rec.qos, retain: rec.retain, subscriptionIds: rec.subscriptionIds, packetId: rec.packetId, released: rec.released }
      session.outgoing.push(o)
      t.out.set(o.oid, rec)
      t.bodies.set(messageId, (t.bodies.get(messageId) ?? 0) + 1)
      fields.push(`o:${o.oid}`, this.records.delivery(rec))
      const m = messages.get(messageId)!
      this.remember(m).refs++
      if (!encoded.has(messageId)) {
        const body = this.records.body(m)
        encoded.set(messageId, body)
        fields.push(`b:${messageId}`, body)
      }
    }
    for (const [key, raw1] of Object.entries(raw)) {
      // Everything but deliveries and bodies keeps its field name and value.
      if (!key.startsWith('o:') && !key.startsWith('b:')) fields.push(key, raw1)
    }
    const key = this.sessionKey(clientId)
    await this.exec([['del', key], ['hset', key, ...fields]])
    this.tracked.set(clientId, t)
    return { session, messages }
  }

  // ---- load -----------------------------------------------------------------------------------

  async load(): Promise<RecoveredState> {
    const report: string[] = []
    const sessions: StoredSession[] = []
    const messages = new Map<number, StoredMessage>()
    const marks = await this.redis.hmget(this.nextKey, 'm', 'o')
    let nextMessageId = Math.max(1, Number(marks[0] ?? 1) || 1)
    let nextOutgoingId = Math.max(1, Number(marks[1] ?? 1) || 1)
    const clientIds = await this.sessionsOwnedBy(this.nodeId)
    for (let i = 0; i < clientIds.length; i += 500) {
      const chunk = clientIds.slice(i, i + 500)
      const pipe = this.redis.pipeline()
      for (const c of chunk) pipe.hgetallBuffer(this.sessionKey(c))
      const replies = (await pipe.exec()) ?? []
      for (let j = 0; j < chunk.length; j++) {
        const [err, raw] = replies[j] ?? [new Error('no reply'), undefined]
        const clientId = chunk[j]!
        if (err !== null) throw new RedisStoreError(`reading session ${clientId} from Redis: ${err.message}`, { cause: err })
        const read = this.readSession(clientId, raw as Record<string, Buffer>, report)
        if (read === undefined) continue
        const t = new Tracked()
        t.owned = true
        for (const d of read.deliveries) {
          t.out.set(d.oid, d.rec)
          t.bodies.set(d.rec.messageId, (t.bodies.get(d.rec.messageId) ?? 0) + 1)
          if (d.oid >= nextOutgoingId) nextOutgoingId = d.oid + 1
          if (d.rec.seq >= this.seq) this.seq = d.rec.seq + 1
        }
        for (const [id, m] of read.bodies) {
          messages.set(id, m)
          if (id >= nextMessageId) nextMessageId = id + 1
        }
        for (const d of read.deliveries) this.remember(read.bodies.get(d.rec.messageId)!).refs++
        this.tracked.set(clientId, t)
        sessions.push(read.session)
      }
    }
    // Retained messages are everyone's. Those this node wrote keep their id (it is in this node's id
    // space, and the same message may be queued in a session above); the others' ids would collide,
    // so they are numbered after every id of this node's.
    const retained: StoredMessage[] = []
    const others: StoredMessage[] = []
    const taken = new Set<number>()
    for (const [topic, value] of await this.scanRetained()) {
      try {
        const { node, msg } = this.records.readRetained(value)
        if (node !== this.nodeId || taken.has(msg.id)) {
          others.push(msg)
          continue
        }
        taken.add(msg.id)
        retained.push(msg)
        if (msg.id >= nextMessageId) nextMessageId = msg.id + 1
      } catch (err) {
        report.push(`the retained message on '${topic}' in Redis could not be read (${(err as Error).message}); skipped`)
      }
    }
    for (const m of others) {
      m.id = nextMessageId++
      retained.push(m)
    }
    for (const m of retained) {
      this.remember(m).refs++
      this.retainedIds.set(m.topic, m.id)
    }
    report.push(...await this.checkServer())
    report.unshift(`loaded ${sessions.length} persistent sessions (node ${this.nodeId}) and ${retained.length} retained messages from Redis (keys ${this.prefix}store:*)`)
    return { sessions, retained, messages, nextMessageId, nextOutgoingId, report }
  }

  /**
   * The retained hash a thousand fields at a time: one HGETALL of a large hash would hold Redis, and
   * with it every other node, for as long as it takes to build the reply. HSCAN may repeat a field.
   */
  private async scanRetained(): Promise<Map<string, Buffer>> {
    const all = new Map<string, Buffer>()
    let cursor = '0'
    do {
      const [next, flat] = await this.redis.hscanBuffer(this.retainedKey, cursor, 'COUNT', 1000)
      for (let i = 0; i + 1 < flat.length; i += 2) all.set(flat[i]!.toString(), flat[i + 1]!)
      cursor = next.toString()
    } while (cursor !== '0')
    return all
  }

  /**
   * What in Redis's own configuration breaks the guarantee, for the start-up log: without the append-only
   * file a restart of Redis loses what it acknowledged, and an eviction policy other than noeviction lets
   * Redis drop sessions silently when it is full (with noeviction, a write is refused and the commit fails).
   */
  private async checkServer(): Promise<string[]> {
    const info = await this.redis.info('persistence').catch(() => '')
    const memory = await this.redis.info('memory').catch(() => '')
    const field = (text: string, name: string): string | undefined => new RegExp(`^${name}:(.*)$`, 'm').exec(text)?.[1]?.trim()
    const out: string[] = []
    if (field(info, 'aof_enabled') === '0') out.push('Redis runs without its append-only file (appendonly no): what it acknowledged is lost if Redis restarts; set appendonly yes')
    const policy = field(memory, 'maxmemory_policy')
    if (policy !== undefined && policy !== 'noeviction') out.push(`Redis evicts keys when full (maxmemory-policy ${policy}): sessions and retained messages could vanish; set maxmemory-policy noeviction`)
    return out
  }

  /** One session hash as the broker wants it; undefined (with a report line) when it has no meta field. */
  private readSession(clientId: string, raw: Record<string, Buffer>, report: string[]): { session: StoredSession; deliveries: Array<{ oid: number; rec: DeliveryRecord }>; bodies: Map<number, StoredMessage> } | undefined {
    const session: StoredSession = { clientId, expiryInterval: 0, username: undefined, disconnectedAt: 0, subscriptions: [], outgoing: [], incomingQos2: [], will: undefined }
    const deliveries: Array<{ oid: number; rec: DeliveryRecord }> = []
    const bodies = new Map<number, StoredMessage>()
    let meta = false
    let damaged = 0
    for (const [field, value] of Object.entries(raw)) {
      try {
        if (field === 'm') {
          Object.assign(session, this.records.readMeta(value))
          meta = true
        } else if (field === 'w') session.will = this.records.readWill(value)
        else if (field.startsWith('s:')) session.subscriptions.push(this.records.readSubscription(field.slice(2), value))
        else if (field.startsWith('o:')) deliveries.push({ oid: Number(field.slice(2)), rec: this.records.readDelivery(value) })
        else if (field.startsWith('b:')) {
          const id = Number(field.slice(2))
          bodies.set(id, this.records.readBody(id, value))
        } else if (field.startsWith('i:')) session.incomingQos2.push(Number(field.slice(2)))
        else damaged++
      } catch {
        damaged++
      }
    }
    if (!meta) {
      report.push(`session ${clientId} in Redis has no session record; skipped`)
      return undefined
    }
    const kept = deliveries.filter((d) => bodies.has(d.rec.messageId))
    if (kept.length < deliveries.length) damaged += deliveries.length - kept.length
    if (damaged > 0) report.push(`session ${clientId} in Redis: ${damaged} unreadable fields or deliveries without their message were skipped`)
    // In flight in send order, then queued in queue order (store.ts).
    kept.sort((a, b) => (a.rec.packetId === 0 ? 1 : 0) - (b.rec.packetId === 0 ? 1 : 0) || a.rec.seq - b.rec.seq)
    session.outgoing = kept.map(({ oid, rec }) => ({ oid, messageId: rec.messageId, qos: rec.qos, retain: rec.retain, subscriptionIds: rec.subscriptionIds, packetId: rec.packetId, released: rec.released }))
    const used = new Map<number, StoredMessage>()
    for (const d of kept) used.set(d.rec.messageId, bodies.get(d.rec.messageId)!)
    return { session, deliveries: kept, bodies: used }
  }

  // ---- mutations ------------------------------------------------------------------------------

  private track(clientId: string): Tracked {
    let t = this.tracked.get(clientId)
    if (t === undefined) {
      t = new Tracked()
      this.tracked.set(clientId, t)
    }
    return t
  }

  private remember(m: StoredMessage): Known {
    let k = this.known.get(m.id)
    if (k === undefined) {
      k = { msg: m, refs: 0, body: undefined }
      this.known.set(m.id, k)
    }
    return k
  }

  private unref(id: number): void {
    const k = this.known.get(id)
    if (k !== undefined && --k.refs <= 0) this.unreferenced.push(id)
  }

  sessionSaved(clientId: string, expiryInterval: number, username: string | undefined, disconnectedAt: number): void {
    this.changes++
    if (this.gone(clientId)) return
    const t = this.track(clientId)
    const d = this.batch.session(clientId)
    d.set('m', this.records.meta({ expiryInterval, username, disconnectedAt }))
    if (!t.owned) {
      t.owned = true
      d.own = true
    }
  }

  sessionEnded(clientId: string): void {
    this.changes++
    if (this.handedOver.delete(clientId)) return
    this.forget(clientId)
    const d = new SessionDiff()
    d.ended = true
    this.batch.sessions.set(clientId, d)
  }

  subscriptionAdded(clientId: string, sub: StoredSubscription): void {
    this.changes++
    if (this.gone(clientId)) return
    this.batch.session(clientId).set(`s:${sub.key}`, this.records.subscription(sub))
  }

  subscriptionRemoved(clientId: string, key: string): void {
    this.changes++
    if (this.gone(clientId)) return
    this.batch.session(clientId).delete(`s:${key}`)
  }

  messageSaved(msg: StoredMessage): void {
    this.changes++
    const k = this.known.get(msg.id)
    if (k === undefined) {
      this.known.set(msg.id, { msg, refs: 0, body: undefined })
      this.unreferenced.push(msg.id)
    } else if (k.msg !== msg) {
      k.msg = msg
      k.body = undefined
    }
  }

  retainedSet(topic: string, messageId: number): void {
    this.changes++
    const k = this.known.get(messageId)
    if (k === undefined) {
      this.missingBodies++
      return
    }
    const prev = this.retainedIds.get(topic)
    k.refs++
    if (prev !== undefined) this.unref(prev)
    this.retainedIds.set(topic, messageId)
    this.batch.retained.set(topic, this.records.retained(this.nodeId, k.msg))
  }

  retainedCleared(topic: string): void {
    this.changes++
    const prev = this.retainedIds.get(topic)
    if (prev !== undefined) this.unref(prev)
    this.retainedIds.delete(topic)
    this.batch.retained.set(topic, null)
  }

  outgoingQueued(clientId: string, o: StoredOutgoing): void {
    this.changes++
    if (this.gone(clientId)) return
    const k = this.known.get(o.messageId)
    if (k === undefined) {
      this.missingBodies++
      return
    }
    this.addDelivery(clientId, this.track(clientId), o.oid, { messageId: o.messageId, qos: o.qos, retain: o.retain, subscriptionIds: o.subscriptionIds, packetId: o.packetId, released: o.released, seq: this.seq++ }, k)
  }

  private addDelivery(clientId: string, t: Tracked, oid: number, rec: DeliveryRecord, k: Known): void {
    const d = this.batch.session(clientId)
    t.out.set(oid, rec)
    d.set(`o:${oid}`, this.records.delivery(rec), true)
    const n = t.bodies.get(rec.messageId) ?? 0
    t.bodies.set(rec.messageId, n + 1)
    k.refs++
    if (n === 0) {
      k.body ??= this.records.body(k.msg)
      d.set(`b:${rec.messageId}`, k.body, true)
    }
  }

  outgoingSent(clientId: string, oid: number, packetId: number): void {
    this.changes++
    const rec = this.tracked.get(clientId)?.out.get(oid)
    if (rec === undefined) return
    rec.packetId = packetId
    rec.seq = this.seq++
    this.batch.session(clientId).set(`o:${oid}`, this.records.delivery(rec))
  }

  outgoingReleased(clientId: string, oid: number): void {
    this.changes++
    const rec = this.tracked.get(clientId)?.out.get(oid)
    if (rec === undefined) return
    rec.released = true
    this.batch.session(clientId).set(`o:${oid}`, this.records.delivery(rec))
  }

  outgoingDone(clientId: string, oid: number): void {
    this.changes++
    const t = this.tracked.get(clientId)
    const rec = t?.out.get(oid)
    if (t === undefined || rec === undefined) return
    t.out.delete(oid)
    const d = this.batch.session(clientId)
    d.delete(`o:${oid}`)
    const n = (t.bodies.get(rec.messageId) ?? 1) - 1
    if (n > 0) t.bodies.set(rec.messageId, n)
    else {
      t.bodies.delete(rec.messageId)
      d.delete(`b:${rec.messageId}`)
    }
    this.unref(rec.messageId)
  }

  incomingQos2Added(clientId: string, packetId: number): void {
    this.changes++
    if (this.gone(clientId)) return
    this.batch.session(clientId).set(`i:${packetId}`, Buffer.alloc(0))
  }

  incomingQos2Released(clientId: string, packetId: number): void {
    this.changes++
    if (this.gone(clientId)) return
    this.batch.session(clientId).delete(`i:${packetId}`)
  }

  willSaved(clientId: string, will: StoredWill | undefined): void {
    this.changes++
    if (this.gone(clientId)) return
    if (will === undefined) this.batch.session(clientId).delete('w')
    else this.batch.session(clientId).set('w', this.records.will(will))
  }

  // ---- commit ---------------------------------------------------------------------------------

  /**
   * Sends the buffered diff (with any unconfirmed one under it) as one MULTI/EXEC; resolves when EXEC
   * answered without an error. Rejects at once, without queueing in the client, while the connection is
   * not ready. Called again while one is pending, it waits for that one first (order is kept).
   */
  commit(): Promise<void> {
    if (this.sending !== undefined) {
      const next = (): Promise<void> => this.commit()
      return this.sending.then(next, next)
    }
    let batch = this.batch
    this.batch = new Batch()
    if (this.failed !== undefined) {
      batch = this.failed.absorb(batch)
      this.failed = undefined
    }
    this.forgetUnreferenced()
    if (batch.empty) return Promise.resolve()
    if (this.redis.status !== 'ready') {
      this.failed = batch
      return Promise.reject(new RedisStoreError(`Redis is not connected (${this.redis.status}): the changes are kept and sent with the next commit`))
    }
    const sent = this.exec(this.commands(batch)).then(() => {
      this.sending = undefined
      for (const f of batch.confirmed) f()
    }, (err: unknown) => {
      this.sending = undefined
      // Sent, so perhaps applied: its new fields may be in Redis now, and deleting them needs an HDEL.
      for (const d of batch.sessions.values()) d.fresh.clear()
      this.failed = this.failed === undefined ? batch : batch.absorb(this.failed)
      throw err
    })
    this.sending = sent
    return sent
  }

  /**
   * Sends `commands` in the next commit's MULTI/EXEC, after its changes: applied together with them or not at
   * all (a cluster's XACK of the stream entries those changes delivered, so that a node killed between the two
   * leaves neither). Like the changes, they stay through a failed commit and go again with the next: they must
   * be idempotent. Resolves when a commit holding them is confirmed; never rejects.
   */
  withNextCommit(commands: Array<Array<string | number | Buffer>>): Promise<void> {
    return new Promise((resolve) => {
      for (const c of commands) this.batch.extra.push(c)
      this.batch.confirmed.push(resolve)
    })
  }

  /** One MULTI/EXEC; rejects with a RedisStoreError if it, or any command in it, failed. */
  private async exec(commands: Array<Array<string | number | Buffer>>): Promise<void> {
    let replies: Array<[Error | null, unknown]> | null
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${this.commitTimeoutMs} ms`)), this.commitTimeoutMs)
    })
    try {
      replies = await Promise.race([this.redis.multi(commands).exec(), timeout])
    } catch (err) {
      throw new RedisStoreError(`Redis did not commit: ${(err as Error).message}`, { cause: err })
    } finally {
      clearTimeout(timer)
    }
    if (replies === null) throw new RedisStoreError('Redis did not commit: the transaction was discarded')
    for (const [err] of replies) if (err !== null) throw new RedisStoreError(`Redis did not commit: ${err.message}`, { cause: err })
  }

  private commands(batch: Batch): Array<Array<string | number | Buffer>> {
    const out: Array<Array<string | number | Buffer>> = []
    for (const [clientId, d] of batch.sessions) {
      const key = this.sessionKey(clientId)
      if (d.ended) out.push(['eval', EndScript, 3, this.ownerKey, this.nodeSetKey, key, clientId, this.nodeId])
      const set: Array<string | Buffer> = []
      const del: string[] = []
      for (const [field, v] of d.fields) {
        if (v !== null) set.push(field, v)
        else if (!d.ended) del.push(field)
      }
      if (set.length > 0) out.push(['hset', key, ...set])
      if (del.length > 0) out.push(['hdel', key, ...del])
      if (d.own) out.push(['eval', OwnScript, 2, this.ownerKey, this.nodeSetKey, clientId, this.nodeId])
    }
    const set: Array<string | Buffer> = []
    const del: string[] = []
    for (const [topic, v] of batch.retained) {
      if (v !== null) set.push(topic, v)
      else del.push(topic)
    }
    if (set.length > 0) out.push(['hset', this.retainedKey, ...set])
    if (del.length > 0) out.push(['hdel', this.retainedKey, ...del])
    if (batch.nextIds !== undefined) out.push(['hset', this.nextKey, 'm', batch.nextIds.m, 'o', batch.nextIds.o])
    for (const c of batch.extra) out.push(c)
    return out
  }

  private forgetUnreferenced(): void {
    const ids = this.unreferenced
    if (ids.length === 0) return
    this.unreferenced = []
    for (const id of ids) if (this.known.get(id)?.refs === 0) this.known.delete(id)
  }

  // ---- compaction and close -------------------------------------------------------------------

  /**
   * Replaces this node's sessions and the retained messages it knows with `state` (the broker's
   * shutdown snapshot). Sessions of other nodes are not touched; retained topics this store never
   * loaded or wrote are not deleted (another node's, set since this one loaded). Sent with the next commit.
   */
  compact(state: RecoveredState): void {
    const keep = new Set(state.sessions.map((s) => s.clientId))
    for (const clientId of [...this.tracked.keys()]) if (!keep.has(clientId)) this.sessionEnded(clientId)
    const inState = new Set(state.retained.map((m) => m.topic))
    for (const topic of [...this.retainedIds.keys()]) if (!inState.has(topic)) this.retainedCleared(topic)
    for (const m of state.retained) {
      // Written already (or buffered to be): the retained hash is the cluster's, rewriting it is waste.
      if (this.retainedIds.get(m.topic) === m.id) continue
      this.remember(m)
      this.retainedSet(m.topic, m.id)
    }
    for (const s of state.sessions) {
      // The broker's copy of a session another node took: not this node's to write.
      if (this.gone(s.clientId)) continue
      this.sessionEnded(s.clientId)
      this.sessionSaved(s.clientId, s.expiryInterval, s.username, s.disconnectedAt)
      for (const sub of s.subscriptions) this.subscriptionAdded(s.clientId, sub)
      const t = this.track(s.clientId)
      for (const o of s.outgoing) {
        const m = state.messages.get(o.messageId)
        if (m === undefined) continue
        const rec: DeliveryRecord = { messageId: o.messageId, qos: o.qos, retain: o.retain, subscriptionIds: o.subscriptionIds, packetId: o.packetId, released: o.released, seq: this.seq++ }
        this.addDelivery(s.clientId, t, o.oid, rec, this.remember(m))
      }
      for (const id of s.incomingQos2) this.incomingQos2Added(s.clientId, id)
      if (s.will !== undefined) this.willSaved(s.clientId, s.will)
    }
    this.batch.nextIds = { m: state.nextMessageId, o: state.nextOutgoingId }
    this.changes = 0
  }

  /** Sends what is buffered; the Redis connection is the caller's and stays open. */
  async close(): Promise<void> {
    if (this.sending !== undefined) await this.sending.catch(() => {})
    if (this.dirty) await this.commit()
  }
}
