/**
 * What the broker persists, behind one interface so another backend (e.g. Redis for a cluster) can
 * replace the embedded log. The broker calls the mutation methods as state changes; they are buffered
 * until commit(). Nothing is acknowledged to a client before the commit holding what the acknowledgement
 * depends on has finished (group commit): a commit that returns a Promise is pipelined, the bytes of the
 * connections it covers wait for it while the event loop goes on reading and routing, and the next
 * commit starts once it resolves, taking everything buffered meanwhile (Broker.flushAll).
 *
 * Only state that outlives a connection is stored: retained messages and persistent sessions
 * (v3 clean session 0, v5 Session Expiry Interval > 0) with their subscriptions, queued and in-flight
 * messages, QoS 2 packet ids awaiting PUBREL and wills.
 */
import type { QoS } from '../protocol/constants.js'
import type { Properties, WillMessage } from '../protocol/packets.js'

export interface StoredMessage {
  id: number
  topic: string
  payload: Buffer
  qos: QoS
  retain: boolean
  properties: Properties | undefined
  expiresAt: number
  origin: string
}

export interface StoredSubscription {
  key: string
  filter: string
  group: string
  qos: QoS
  noLocal: boolean
  retainAsPublished: boolean
  retainHandling: 0 | 1 | 2
  subscriptionId: number
}

export interface StoredOutgoing {
  oid: number
  messageId: number
  qos: QoS
  retain: boolean
  subscriptionIds: number[] | undefined
  /** 0 while queued. */
  packetId: number
  released: boolean
}

export interface StoredWill {
  will: WillMessage
  /** ms timestamp at which a delayed will is due; 0 = the will of a connection that was open. */
  dueAt: number
}

export interface StoredSession {
  clientId: string
  expiryInterval: number
  username: string | undefined
  /** ms timestamp of the disconnect; 0 when the client was connected when the broker stopped. */
  disconnectedAt: number
  subscriptions: StoredSubscription[]
  /** In order: in-flight (by send order) then queued. */
  outgoing: StoredOutgoing[]
  incomingQos2: number[]
  will: StoredWill | undefined
}

export interface RecoveredState {
  sessions: StoredSession[]
  retained: StoredMessage[]
  /** Messages referenced by outgoing entries, by id. */
  messages: Map<number, StoredMessage>
  nextMessageId: number
  nextOutgoingId: number
  /** What was read and what, if anything, was damaged and set aside: for the start-up log. */
  report: string[]
}

/** One persistent session as the live broker holds it now, for a compaction in the background. */
export interface LiveSession {
  session: StoredSession
  /** The message of each entry of session.outgoing, same index. */
  messages: StoredMessage[]
}

/**
 * The live persistent state, read a little at a time by a compaction that runs across event-loop turns
 * while the broker keeps changing it. Each item is read as it is at that moment (retained messages
 * without the broker's own $SYS topics, stored sessions only); the iterators must survive changes made
 * between two reads (a Map's iterator does). What changed meanwhile is in the records committed since
 * the compaction began, which the store replays after the snapshot.
 */
export interface LiveSnapshot {
  retained: Iterator<StoredMessage>
  sessions: Iterator<LiveSession>
}

/**
 * Something whose buffered work must be durable before the acknowledgements of the same turn leave:
 * the store, and whatever else the broker is given (a cluster's hand-over of messages to other nodes).
 * Its commit joins the store's: the turn's bytes wait for both.
 */
export interface CommitParticipant {
  /** True when work is buffered that the next commit must make durable. */
  readonly dirty: boolean
  /**
   * Makes the buffered work durable. Synchronous (returns nothing) or pipelined (returns a Promise): the
   * broker never calls it again before that Promise has settled, and a rejection stops the broker as a
   * failed store does. Mutations made while it runs are for the next commit.
   */
  commit(): void | Promise<void>
}

export interface Store extends CommitParticipant {
  /** Reads everything back at start-up. */
  load(): RecoveredState | Promise<RecoveredState>
  sessionSaved(clientId: string, expiryInterval: number, username: string | undefined, disconnectedAt: number): void
  sessionEnded(clientId: string): void
  subscriptionAdded(clientId: string, sub: StoredSubscription): void
  subscriptionRemoved(clientId: string, key: string): void
  /** Writes a message body once; later records refer to it by id. */
  messageSaved(msg: StoredMessage): void
  retainedSet(topic: string, messageId: number): void
  retainedCleared(topic: string): void
  outgoingQueued(clientId: string, o: StoredOutgoing): void
  outgoingSent(clientId: string, oid: number, packetId: number): void
  outgoingReleased(clientId: string, oid: number): void
  outgoingDone(clientId: string, oid: number): void
  incomingQos2Added(clientId: string, packetId: number): void
  incomingQos2Released(clientId: string, packetId: number): void
  willSaved(clientId: string, will: StoredWill | undefined): void
  /** True when mutations are buffered. */
  readonly dirty: boolean
  /**
   * Makes buffered mutations durable (against a process crash; with fsync, against power loss). Never
   * called while a previous commit's Promise is pending; compaction steps run only between commits.
   */
  commit(): void | Promise<void>
  /**
   * Bytes of records buffered for the next commit, where the store can tell: while a pipelined commit
   * runs, the broker stops reading from clients once they pass a bound (Broker.commitBacklogged), so a
   * slow disk holds clients back by TCP rather than growing the buffer without end.
   */
  readonly pendingBytes?: number
  /** Number of records since the last compaction, to decide when to compact. */
  readonly changesSinceCompaction: number
  /** Size of the live state in records, as of the last compaction or load. */
  readonly recordsAtCompaction: number
  /** Rewrites the store as a snapshot of the live state (called on autosave and at shutdown). */
  compact(state: RecoveredState): void
  /**
   * Optional: compaction in the background, for autosave. beginCompaction starts one (false when it
   * cannot start, e.g. one is running or the last one failed less than a minute ago); the owner then
   * calls compactStep() between two commits (never while one is under way), on a later turn each time,
   * while it returns true. Mutations may be buffered then: the step writes them first (the live state it
   * reads must hold nothing the file lacks; the bytes that depend on them still wait for the next commit).
   * Each step blocks for a few milliseconds at most. While `compacting`, every message a record refers
   * to must be saved again with messageSaved (the snapshot may have passed the session that held it).
   */
  beginCompaction?(live: LiveSnapshot): boolean
  compactStep?(): boolean
  readonly compacting?: boolean
  /** Called once no commit is pending any more (Broker.close waits for the last one). */
  close(): void | Promise<void>
}
