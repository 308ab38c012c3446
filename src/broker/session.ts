/**
 * Session state (MQTT 5 section 4.1): what outlives a network connection when the session is
 * persistent — subscriptions, QoS 1/2 messages in flight or queued, QoS 2 packet ids received but
 * not yet released — and when it expires. A Session is bound to at most one Connection at a time.
 *
 *   queue (FIFO, bounded)  --window has room-->  inflight (packetId -> Outgoing)  --PUBACK/PUBCOMP-->  gone
 */
import type { ProtocolVersion, QoS } from '../protocol/constants.js'
import type { WillMessage } from '../protocol/packets.js'
import type { ClientIdentity } from '../auth/types.js'
import type { Message } from './message.js'
import type { Connection } from './connection.js'
import type { ListenerInfo } from './options.js'
import { SessionSubscriptions } from './session-subscriptions.js'

export { NeverExpires } from '../protocol/constants.js'

export class SubEntry {
  readonly session: Session
  /** The filter matched against topics (without any $share/group/ prefix). */
  readonly filter: string
  /** The share group name, or '' for a normal subscription. */
  readonly group: string
  /**
   * QoS, No Local, Retain As Published and Retain Handling in one small integer, laid out as the SUBSCRIBE
   * options byte [MQTT-3.8.3.1]: an idle subscription is 24 bytes smaller than with four fields.
   */
  private options: number
  /** v5 Subscription Identifier, 0 when none. */
  subscriptionId: number

  constructor(session: Session, filter: string, group: string, qos: QoS, noLocal: boolean, rap: boolean, rh: 0 | 1 | 2, subscriptionId: number) {
    this.session = session
    this.filter = filter
    this.group = group
    this.options = qos | (noLocal ? 4 : 0) | (rap ? 8 : 0) | (rh << 4)
    this.subscriptionId = subscriptionId
  }

  get qos(): QoS { return (this.options & 3) as QoS }
  set qos(v: QoS) { this.options = (this.options & ~3) | v }
  get noLocal(): boolean { return (this.options & 4) !== 0 }
  set noLocal(v: boolean) { this.options = v ? this.options | 4 : this.options & ~4 }
  get retainAsPublished(): boolean { return (this.options & 8) !== 0 }
  set retainAsPublished(v: boolean) { this.options = v ? this.options | 8 : this.options & ~8 }
  get retainHandling(): 0 | 1 | 2 { return ((this.options >> 4) & 3) as 0 | 1 | 2 }
  set retainHandling(v: 0 | 1 | 2) { this.options = (this.options & ~0x30) | (v << 4) }
}

/** One QoS 1/2 delivery to one session. */
export class Outgoing {
  /** Store key of this delivery (unique per broker run and across restarts). */
  oid = 0
  readonly msg: Message
  readonly qos: QoS
  readonly retain: boolean
  readonly subscriptionIds: number[] | undefined
  packetId: number
  /** false: PUBLISH sent, awaiting PUBACK/PUBREC. true: PUBREL sent, awaiting PUBCOMP. */
  released: boolean
  /** Sent at least once on some connection: a resend carries DUP [MQTT-3.3.1-1]. */
  sent: boolean

  constructor(msg: Message, qos: QoS, retain: boolean, subscriptionIds: number[] | undefined) {
    this.msg = msg
    this.qos = qos
    this.retain = retain
    this.subscriptionIds = subscriptionIds
    this.packetId = 0
    this.released = false
    this.sent = false
  }
}

/** Shared empty collections: never written to (see setInflight / addIncomingQos2). */
const EmptyInflight: Map<number, Outgoing> = new Map()
const EmptyIncoming: Set<number> = new Set()
const EmptyQueue: Outgoing[] = []

export class Session {
  readonly clientId: string
  connection: Connection | null = null
  identity: ClientIdentity
  /** The listener of the session's latest connection (per-listener ACLs); unknown after a restore. */
  listener: ListenerInfo | undefined = undefined
  /** Key: the filter exactly as subscribed, $share prefix included. */
  readonly subscriptions = new SessionSubscriptions()
  /**
   * Reads work on a shared empty Map until the first message goes in flight; writes go through
   * setInflight(). delete/clear on the shared Map are harmless no-ops. Saves ~300 bytes per idle client.
   */
  inflight: Map<number, Outgoing> = EmptyInflight
  /** Payload bytes of the messages in `inflight`, which max_inflight_bytes bounds. */
  inflightBytes = 0
  /** FIFO of deliveries waiting for the window or for the client to come back. */
  queue: Outgoing[] = EmptyQueue
  queueHead = 0
  queuedBytes = 0
  /** QoS 2 packet ids received and PUBREC'd, awaiting PUBREL (exactly-once, [MQTT-4.3.3-9]). */
  incomingQos2: Set<number> = EmptyIncoming
  /** Seconds the session outlives its connection: 0 = ends with it, NeverExpires = forever. */
  expiryInterval = 0
  /** The interval the current connection's CONNECT asked for (DISCONNECT may not raise it from 0). */
  connectExpiryInterval = 0
  /** ms timestamp when an offline session expires; 0 while connected or when it never expires. */
  expiresAt = 0
  /** ms timestamp of the last disconnect (0 while connected): expiry counts from here, across restarts. */
  disconnectedAt = 0
  /** A will whose v5 Will Delay Interval is running, published when the delay or the session ends. */
  pendingWill: WillMessage | undefined = undefined
  pendingWillAt = 0
  private nextPacketId = 1
  /** Scratch for routing: the publish epoch in which this session was last collected, and what was merged. */
  matchEpoch = 0
  matchQos: QoS = 0
  matchRetainAsPublished = false
  matchSubIds: number[] | undefined = undefined
  /** Whether this session is in the store (persistent: expiry > 0). */
  stored = false
  /** Messages dropped because a queue was full (for logs and $SYS). */
  dropped = 0
  /** Protocol level of the latest connection; 0 while unknown (restored from the store, not back yet). */
  protocolVersion: ProtocolVersion | 0 = 0

  constructor(clientId: string, identity: ClientIdentity) {
    this.clientId = clientId
    this.identity = identity
  }

  setInflight(o: Outgoing): void {
    if (this.inflight === EmptyInflight) this.inflight = new Map()
    const before = this.inflight.size
    this.inflight.set(o.packetId, o)
    if (this.inflight.size > before) this.inflightBytes += o.msg.payload.length
  }

  /** Takes o out of flight: acknowledged, refused by the client, or dropped. */
  removeInflight(o: Outgoing): void {
    if (this.inflight.delete(o.packetId)) this.inflightBytes -= o.msg.payload.length
  }

  addIncomingQos2(packetId: number): void {
    if (this.incomingQos2 === EmptyIncoming) this.incomingQos2 = new Set()
    this.incomingQos2.add(packetId)
  }

  get queueLength(): number {
    return this.queue.length - this.queueHead
  }

  /** The next free packet id for an outgoing QoS 1/2 PUBLISH [MQTT-2.2.1-3]. */
  allocatePacketId(): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.nextPacketId
      this.nextPacketId = id === 65535 ? 1 : id + 1
      if (!this.inflight.has(id)) return id
    }
    return 0
  }

  enqueue(o: Outgoing): void {
    if (this.queue === EmptyQueue) this.queue = []
    this.queue.push(o)
    this.queuedBytes += o.msg.payload.length
  }

  peek(): Outgoing | undefined {
    return this.queueHead < this.queue.length ? this.queue[this.queueHead] : undefined
  }

  dequeue(): Outgoing | undefined {
    if (this.queueHead >= this.queue.length) return undefined
    const o = this.queue[this.queueHead]!
    this.queue[this.queueHead] = undefined as unknown as Outgoing
    this.queueHead++
    // Compact once the consumed prefix dominates, so shift() stays O(1) amortised.
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead)
      this.queueHead = 0
    } else if (this.queueHead === this.queue.length) {
      this.queue.length = 0
      this.queueHead = 0
    }
    this.queuedBytes -= o.msg.payload.length
    return o
  }

  /** Drops every queued and in-flight message (clean start, or the session ending). */
  clearMessages(): void {
    this.queue = EmptyQueue
    this.queueHead = 0
    this.queuedBytes = 0
    this.inflight = EmptyInflight
    this.inflightBytes = 0
    this.incomingQos2 = EmptyIncoming
  }
}
