/**
 * The broker: sessions, the subscription index, retained messages, routing and the timers that
 * enforce keep alive, connect timeouts, will delays and session expiry. Transports hand it Duplex
 * streams through handle(); it never opens a socket itself (STYLE habit 5).
 *
 * Past 800 lines on purpose: routing, sessions, the commit barrier and a cluster's hand-overs share private
 * state (the routing scratch, the offline set, the dirty and sealed connections) that a split would expose.
 */
import type { QoS } from '../protocol/constants.js'
import type { PublishPacket, WillMessage } from '../protocol/packets.js'
import type { ClientIdentity, Authenticator, Authorizer } from '../auth/types.js'
import { allowAllAuthorizer, anonymousAuthenticator } from '../auth/types.js'
import { BrokerEvents } from './events.js'
import { describe, withAuthenticateHook } from './hooks.js'
import { defaultBrokerOptions, type BrokerOptions, type ListenerInfo } from './options.js'
import type { ClientStream } from './client-stream.js'
import { Connection, type ConnectionMeta } from './connection.js'
import { ConnState } from './conn-state.js'
import type { ClientLink } from './client-link.js'
import { Session, SubEntry, NeverExpires, Outgoing } from './session.js'
import type { CommitParticipant, LiveSession, LiveSnapshot, RecoveredState, StoredMessage, StoredOutgoing, StoredSession, StoredSubscription, StoredWill } from '../persistence/store.js'
import { Message } from './message.js'
import { TopicTrie, SharedTrie, type SharedGroup } from './topic-trie.js'
import { RetainedIndex } from './retained-index.js'
import { deliver, resume } from './delivery.js'
import { ReasonCode } from '../protocol/constants.js'
import { topicMatches } from '../protocol/topic.js'
import { VERSION } from '../version.js'
import { SysPublisher } from './sys.js'
import { CommitPipeline } from './commit-pipeline.js'
import type { ClusterLink } from './cluster-link.js'

/**
 * Counters read by $SYS (sys.ts) and /metrics (observability/metrics.ts) when they publish or are scraped:
 * the message path only increments plain numbers here.
 */
export class BrokerStats {
  /** PUBLISH packets received, by QoS. */
  readonly publishReceived: [number, number, number] = [0, 0, 0]
  /** PUBLISH packets sent. */
  messagesSent = 0
  messagesDropped = 0
  /** CONNECTs accepted (Mosquitto's load/connections). */
  connectionsAccepted = 0
  /** Streams handed to the broker, before any CONNECT (Mosquitto's load/sockets). */
  socketsAccepted = 0
  protocolErrors = 0
  /** Packets of any type, as Mosquitto's $SYS/broker/messages/{received,sent}. */
  packetsReceived = 0
  packetsSent = 0
  /** Payload bytes of the PUBLISH packets received and sent. */
  publishBytesReceived = 0
  publishBytesSent = 0
  /** Sessions ended by their expiry interval while disconnected. */
  clientsExpired = 0
  /** Bytes read from clients' streams, counted per chunk read (Connection.onData). */
  bytesReceived = 0
  /** Bytes handed to clients' streams, counted per flush (Connection.flush). */
  bytesSent = 0

  /** PUBLISH packets received, all QoS. */
  get messagesReceived(): number {
    return this.publishReceived[0] + this.publishReceived[1] + this.publishReceived[2]
  }
}

export class Broker {
  readonly options: BrokerOptions
  readonly sessions = new Map<string, Session>()
  readonly connections = new Set<Connection>()
  readonly subscriptions = new TopicTrie<SubEntry>()
  readonly shared = new SharedTrie<SubEntry>()
  readonly retained = new RetainedIndex<Message>()
  readonly stats = new BrokerStats()
  /** Values other parts add under $SYS/broker/ (e.g. a TLS listener's certificate), read at each $SYS publish. */
  readonly sysValues = new Map<string, () => string>()
  readonly startedAt = Date.now()
  /** What the host application may listen to (events.ts). */
  readonly events: BrokerEvents
  /**
   * The Receive Maximum announced to v5 clients now: max_inflight_messages, as in mosquitto, so one number
   * bounds what is in flight each way. 65535 is the protocol's maximum and is not sent.
   */
  get receiveMaximum(): number {
    const n = this.options.maxInflightMessages
    return n > 0 && n < 65535 ? n : 65535
  }
  /**
   * Running count of routing work (trie nodes walked, sessions delivered to, retained messages matched):
   * a connection whose packets have cost too much of it in one turn yields the event loop.
   */
  work = 0
  /** Set by a cluster (src/cluster/) when this broker joins one: interest, forwarding, shared groups, takeovers. */
  cluster: ClusterLink | undefined = undefined
  private readonly offline = new Set<Session>()
  private readonly sweepTimer: NodeJS.Timeout
  private nextMessageId = 1
  private nextOutgoingId = 1
  private autosaveTimer: NodeJS.Timeout | undefined
  private closed = false
  private sys: SysPublisher | undefined
  // Routing scratch, reused across publishes so matching allocates nothing per message.
  private epoch = 0
  private routing: Message | undefined = undefined
  private routingNow = 0
  /** Set by deliverShared when a share group took the message being routed. */
  private sharedMatched = false
  /** Routing a message another node forwarded: its share groups were chosen there. */
  private forwarded = false
  private readonly targets: Session[] = []
  /** allow_duplicate_messages: the further matching subscriptions of MQTT 3 sessions, one copy each. */
  private readonly duplicates: SubEntry[] = []
  private readonly visitSubscription = (entry: SubEntry): void => this.collect(entry)
  private readonly visitGroup = (group: SharedGroup<SubEntry>): void => this.deliverShared(group)
  /** The group commit and the flush of every connection's bytes (commit-pipeline.ts). */
  private readonly commits: CommitPipeline
  /** A background compaction's beginning or next step, waiting for the commit under way: the two never interleave. */
  private compactionDue: 'begin' | 'step' | undefined = undefined
  /** Each authenticator with the authenticate hook after it, built once per authenticator. */
  private readonly hooked = new WeakMap<Authenticator, Authenticator>()

  constructor(options: Partial<BrokerOptions> = {}) {
    this.options = { ...defaultBrokerOptions(), ...stripUndefined(options) }
    this.events = new BrokerEvents(this.options.logger)
    this.sweepTimer = setInterval(() => this.sweep(), 1000)
    this.sweepTimer.unref()
    if (this.options.sysInterval > 0) this.sys = new SysPublisher(this, this.options.sysInterval)
    this.commits = new CommitPipeline(this)
    if (this.options.store !== undefined && this.options.autosaveInterval > 0) {
      this.autosaveTimer = setInterval(() => this.autosave(), this.options.autosaveInterval * 1000)
      this.autosaveTimer.unref()
    }
  }

  /** Ms clock used for keep alive and expiry. */
  now(): number {
    return Date.now()
  }

  get version(): string {
    return VERSION
  }

  /** Takes a connected byte stream (TCP, TLS, WebSocket, in-memory) and speaks MQTT on it. */
  handle(stream: ClientStream, listener: ListenerInfo, meta: ConnectionMeta): Connection {
    const conn = new Connection(this, stream, listener, meta)
    this.stats.socketsAccepted++
    if (this.closed) {
      conn.close('the broker is shutting down')
      return conn
    }
    this.connections.add(conn)
    return conn
  }

  /** Who lets a CONNECT on this listener in: its password file (or the anonymous rule), then the authenticate hook. */
  authenticator(listener: ListenerInfo): Authenticator {
    const base = listener.authenticator ?? this.options.authenticator ?? anonymousAuthenticator
    const hook = this.options.hooks.authenticate
    if (hook === undefined) return base
    let a = this.hooked.get(base)
    if (a === undefined) {
      a = withAuthenticateHook(base, hook, this.options.hookTimeoutMs, this.options.logger, this.options.authThrottle)
      this.hooked.set(base, a)
    }
    return a
  }

  /** Whether a message is being routed now: a publish() from inside routing (an authorizeDeliver hook) would corrupt it. */
  get routingBusy(): boolean {
    return this.routing !== undefined
  }

  /** Whether s may receive msg: its read ACL (when its listener is known), then the authorizeDeliver hook. */
  private mayReceive(s: Session, msg: Message): boolean {
    const authorizer = this.readAuthorizer(s)
    if (authorizer !== undefined && !authorizer.canRead(s.identity, msg.topic)) return false
    return this.options.hooks.authorizeDeliver === undefined || this.deliverAllowed(s, msg)
  }

  /** The QoS of a routed copy: the lower of the message's and the subscription's; with upgrade_outgoing_qos always the subscription's (mosquitto.conf(5)). */
  private outgoingQos(msg: Message, subscriptionQos: QoS): QoS {
    if (this.options.upgradeOutgoingQos) return subscriptionQos
    return msg.qos < subscriptionQos ? msg.qos : subscriptionQos
  }

  /** The authorizeDeliver hook's verdict for one subscriber; a hook that throws drops the message and is logged. */
  private deliverAllowed(s: Session, msg: Message): boolean {
    try {
      return this.options.hooks.authorizeDeliver!(s.identity, msg) === true
    } catch (err) {
      this.options.logger.error(`The authorizeDeliver hook threw for client ${s.clientId} on '${msg.topic.slice(0, 200)}': ${describe(err)}; not delivered.`)
      return false
    }
  }

  authorizer(listener: ListenerInfo): Authorizer {
    return listener.authorizer ?? this.options.authorizer ?? allowAllAuthorizer
  }

  /**
   * The authorizer for what a session may read: its listener's (per_listener_settings) or the broker's.
   * undefined for a session restored from the store whose listener is not known until it reconnects:
   * its deliveries are queued and checked when they are sent (delivery.ts pump and resume).
   */
  readAuthorizer(s: Session): Authorizer | undefined {
    if (s.listener !== undefined) return this.authorizer(s.listener)
    return this.options.authorizer
  }

  scheduleFlush(conn: Connection): void {
    this.commits.schedule(conn)
  }

  /**
   * Adds work that must be durable before the acknowledgements of the same turn leave (a cluster's
   * hand-over of messages to other nodes): its commit joins the store's, and the turn's bytes wait for
   * both. Returns the function that removes it.
   */
  addCommitParticipant(p: CommitParticipant): () => void {
    return this.commits.addParticipant(p)
  }

  /**
   * Makes what changed outside a read (timers: wills, expiries; the dashboard's actions) durable, pipelined
   * like a turn's; resolves once everything changed so far is committed and its bytes have left (or the
   * commit failed: storeFailed). At once with a synchronous store.
   */
  commitStore(): Promise<void> {
    return this.commits.commit()
  }

  /** A connection closed: its last bytes leave after the commit that covers them, then its stream ends. */
  closeAfterCommit(conn: Connection): void {
    this.commits.closeAfterCommit(conn)
  }

  /** Whether reading should stop until the commit under way resolves (too many records wait for the next). */
  get commitBacklogged(): boolean {
    return this.commits.backlogged
  }

  /** A connection that stopped reading reads on once the commit under way resolves. */
  resumeAfterCommit(conn: Connection): void {
    this.commits.resumeAfter(conn)
  }

  /** Between two commits (CommitHost): a compaction's beginning or step that waited, the autosave check. */
  betweenCommits(): void {
    const due = this.compactionDue
    this.compactionDue = undefined
    if (due === 'begin') this.compactInBackground()
    else if (due === 'step') this.compactionTick()
    const autosave = this.options.autosaveOnChanges
    if (autosave > 0 && this.options.store !== undefined && this.options.store.changesSinceCompaction >= autosave) this.compactInBackground()
  }

  // ---- sessions -------------------------------------------------------------------------------

  /**
   * Binds conn to the session of clientId: takes over a connected one [MQTT-3.1.4-3], discards it on
   * Clean Start [MQTT-3.1.2-4], or resumes it [MQTT-3.1.2-5].
   */
  attachSession(conn: Connection, clientId: string, cleanStart: boolean, expiryInterval: number, identity: ClientIdentity): { session: Session; present: boolean } {
    let session = this.sessions.get(clientId)
    if (session !== undefined && session.connection !== null && session.connection !== conn) {
      const old = session.connection
      old.sendDisconnect(ReasonCode.SessionTakenOver)
      this.options.logger.notice(`Client ${clientId} already connected from ${old.meta.remoteAddress}; closing the old connection (session taken over from ${conn.meta.remoteAddress}).`)
      old.close('session taken over')
      session = this.sessions.get(clientId)
    }
    if (session !== undefined && session.pendingWill !== undefined) {
      // A will still waiting out its delay is cancelled by any new connection of its client, Clean Start or
      // not: endSession below must not publish it [MQTT-3.1.2-8] [MQTT-3.1.3-9].
      this.persistWill(session, undefined)
      session.pendingWill = undefined
      session.pendingWillAt = 0
    }
    if (session !== undefined && !cleanStart && session.identity.username !== identity.username) {
      // A session belongs to the user who made it: another user taking the client id over gets a fresh one,
      // never the subscriptions and messages that were granted to the first (docs/security.md, section 5).
      const was = session.identity.username
      this.options.logger.notice(`Client ${clientId} from ${conn.meta.remoteAddress} (${identity.username === undefined ? 'no username' : `u'${identity.username}'`}) does not resume the session of ${userTag(was)}: discarded.`)
      this.endSession(session)
      session = undefined
    }
    if (session !== undefined && cleanStart) {
      this.endSession(session)
      session = undefined
    }
    const present = session !== undefined
    if (session === undefined) {
      session = new Session(clientId, identity)
      this.sessions.set(clientId, session)
    } else {
      session.identity = identity
      this.offline.delete(session)
    }
    session.connection = conn
    session.listener = conn.listener
    session.protocolVersion = conn.version
    session.disconnectedAt = 0
    session.expiryInterval = expiryInterval
    session.connectExpiryInterval = expiryInterval
    session.expiresAt = 0
    this.persistSession(session)
    return { session, present }
  }

  resumeSession(conn: ClientLink, session: Session): void {
    resume(conn, session, this.now())
  }

  /** Called once per connection when it closes, whatever the cause. */
  connectionClosed(conn: Connection, wasConnected: boolean): void {
    this.connections.delete(conn)
    const logger = this.options.logger
    if (wasConnected && this.options.connectionMessages && logger.enabled('notice')) {
      logger.notice(`Client ${conn.label} from ${conn.meta.remoteAddress} ${conn.closeReason === 'disconnected' ? 'disconnected' : `disconnected: ${conn.closeReason}`}.`)
    } else if (!wasConnected && logger.enabled('information') && conn.closeReason !== '') {
      logger.info(`Connection from ${conn.meta.remoteAddress}${conn.clientId !== '' ? ` (${conn.clientId})` : ''} closed: ${conn.closeReason}.`)
    }
    const session = conn.session
    if (wasConnected && session !== null && this.events.listeners.disconnected !== undefined) this.events.emit('disconnected', session.identity, conn.closeReason)
    if (session === null || session.connection !== conn) return
    session.connection = null
    if (conn.will !== undefined) {
      if (!conn.cleanDisconnect) this.handleWill(session, conn.will)
      else this.persistWill(session, undefined)
    }
    if (session.expiryInterval === 0) {
      this.endSession(session)
    } else {
      session.disconnectedAt = this.now()
      session.expiresAt = session.expiryInterval === NeverExpires ? 0 : session.disconnectedAt + session.expiryInterval * 1000
      this.offline.add(session)
      this.persistSession(session)
    }
  }

  /** Publishes the will now, or after its v5 Will Delay Interval if the session outlives the connection. */
  private handleWill(session: Session, will: WillMessage): void {
    const delay = will.properties?.willDelayInterval ?? 0
    if (delay > 0 && session.expiryInterval > 0) {
      const wait = Math.min(delay, session.expiryInterval)
      session.pendingWill = will
      session.pendingWillAt = this.now() + wait * 1000
      this.offline.add(session)
      this.persistWill(session, will, session.pendingWillAt)
      return
    }
    this.persistWill(session, undefined)
    this.publishWill(will, session)
  }

  private publishWill(will: WillMessage, session: Session): void {
    try {
      const authorizer = session.listener !== undefined ? this.authorizer(session.listener) : this.options.authorizer ?? allowAllAuthorizer
      if (!authorizer.canPublish(session.identity, will.topic)) return
      const props = will.properties
      let forward = props
      if (props !== undefined && props.willDelayInterval !== undefined) {
        forward = { ...props }
        delete forward.willDelayInterval
      }
      this.publish(will.topic, will.payload, will.qos, will.retain, forward, session.clientId)
    } catch (err) {
      // Wills go out from close handlers and the sweep timer, where nothing may throw; the session's own
      // bookkeeping after this call must still run.
      this.options.logger.error(`Will of client ${session.clientId} (u'${session.identity.username ?? ''}') on '${will.topic.slice(0, 200)}' not published: internal error: ${(err as Error).stack ?? String(err)}`)
    }
  }

  /** Ends a session: its subscriptions go, and a will still pending is published [MQTT-3.1.2-8]. */
  endSession(session: Session): void {
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId)
    this.offline.delete(session)
    session.subscriptions.forEach((entry) => { this.removeEntry(entry) })
    session.subscriptions.clear()
    session.clearMessages()
    const will = session.pendingWill
    session.pendingWill = undefined
    if (will !== undefined) this.publishWill(will, session)
    this.persistSessionEnded(session)
    this.cluster?.sessionEnded(session.clientId)
  }

  // ---- subscriptions --------------------------------------------------------------------------

  /** Adds or replaces a subscription. Returns whether one with the same filter existed. */
  subscribe(session: Session, key: string, entry: SubEntry): boolean {
    const old = session.subscriptions.get(key)
    if (old !== undefined) this.removeEntry(old)
    session.subscriptions.set(key, entry)
    this.addEntry(entry)
    this.persistSubscription(session, key, entry)
    return old !== undefined
  }

  unsubscribe(session: Session, key: string): boolean {
    const entry = session.subscriptions.get(key)
    if (entry === undefined) return false
    session.subscriptions.delete(key)
    this.removeEntry(entry)
    this.persistUnsubscription(session, key)
    return true
  }

  private addEntry(entry: SubEntry): void {
    if (entry.group === '') this.subscriptions.add(entry.filter, entry.session.clientId, entry)
    else this.shared.add(entry.group, entry.filter, entry.session.clientId, entry)
    this.cluster?.interestAdded(entry.filter, entry.group)
  }

  private removeEntry(entry: SubEntry): void {
    if (entry.group === '') this.subscriptions.remove(entry.filter, entry.session.clientId)
    else this.shared.remove(entry.group, entry.filter, entry.session.clientId)
    this.cluster?.interestRemoved(entry.filter, entry.group)
  }

  /** Sends the retained messages matching a new subscription, RETAIN set [MQTT-3.3.1-8]. */
  sendRetained(session: Session, entry: SubEntry): void {
    if (!this.retained.mayMatch(entry.filter)) return
    const now = this.now()
    const subIds = entry.subscriptionId !== 0 ? [entry.subscriptionId] : undefined
    this.retained.match(entry.filter, (msg, topic) => {
      this.work++
      if (msg.isExpired(now)) {
        this.retained.delete(topic)
        this.persistRetained(topic, undefined)
        return
      }
      if (!this.mayReceive(session, msg)) return
      const qos = (msg.qos < entry.qos ? msg.qos : entry.qos) as QoS
      deliver(this, session, msg, qos, true, subIds, now)
    })
  }

  // ---- routing --------------------------------------------------------------------------------

  /** Routes a client's PUBLISH. Returns whether any subscriber matched. */
  publishFromClient(session: Session, topic: string, p: PublishPacket): boolean {
    let props = p.properties
    if (props !== undefined && props.topicAlias !== undefined) {
      props = { ...props }
      delete props.topicAlias
    }
    return this.publish(topic, p.payload, p.qos, p.retain, props, session.clientId)
  }

  /** Publishes an application message as the broker would a client's. Returns whether anyone matched. */
  publish(topic: string, payload: Buffer, qos: QoS, retain: boolean, properties: PublishPacket['properties'], origin = ''): boolean {
    const now = this.now()
    const expiry = properties?.messageExpiryInterval
    const msg = new Message(this.nextMessageId++, topic, payload, qos, retain, properties, expiry !== undefined ? now + expiry * 1000 : 0, origin)
    if (retain) {
      // [MQTT-3.3.1-6/7] an empty payload clears the retained message; anything else replaces it.
      if (payload.length === 0) {
        if (this.retained.delete(topic) !== undefined) this.persistRetained(topic, undefined)
      } else {
        this.retained.set(topic, msg)
        this.persistRetained(topic, msg)
      }
    }
    if (this.events.listeners.published !== undefined) this.events.emit('published', msg, origin === '' ? undefined : this.sessions.get(origin)?.identity)
    const matched = this.route(msg, now)
    if (this.cluster !== undefined) this.cluster.forward(msg)
    return matched
  }

  /**
   * A message forwarded to a lost node and never taken there, for the sessions adopted from it (`only`): each
   * matching one gets one copy at the highest QoS of its matching subscriptions (a share group's copy only if
   * the origin chose that node for the group, and to one adopted member). Not routed to anyone else here.
   */
  deliverAdopted(topic: string, payload: Buffer, qos: QoS, retain: boolean, properties: PublishPacket['properties'], expiresAt: number, origin: string, normal: boolean, groups: ReadonlyArray<readonly [string, string]> | undefined, only: ReadonlySet<string>): void {
    const now = this.now()
    const msg = new Message(this.nextMessageId++, topic, payload, qos, retain, properties, expiresAt, origin)
    if (msg.isExpired(now)) return
    const groupsTaken = new Set<string>()
    for (const clientId of only) {
      const s = this.sessions.get(clientId)
      if (s === undefined) continue
      let best: SubEntry | undefined
      for (const e of s.subscriptions.values()) {
        if (!topicMatches(e.filter, topic)) continue
        if (e.group !== '') {
          const key = `${e.group}\0${e.filter}`
          if (groups === undefined || groupsTaken.has(key) || !groups.some(([g, f]) => g === e.group && f === e.filter)) continue
          groupsTaken.add(key)
        } else if (!normal || (e.noLocal && clientId === origin)) {
          continue
        }
        if (best === undefined || e.qos > best.qos) best = e
      }
      if (best === undefined || !this.mayReceive(s, msg)) continue
      deliver(this, s, msg, this.outgoingQos(msg, best.qos), best.retainAsPublished && retain, best.subscriptionId !== 0 ? [best.subscriptionId] : undefined, now)
    }
  }

  /** A new message id in this broker's space (a session handed over from another node gets its messages renumbered). */
  allocateMessageId(): number {
    return this.nextMessageId++
  }

  /**
   * Routes a message another node forwarded (src/cluster/): to the subscriptions here (`normal`) and to the
   * share groups that node chose for this one; never forwarded again.
   */
  deliverForwarded(topic: string, payload: Buffer, qos: QoS, retain: boolean, properties: PublishPacket['properties'], expiresAt: number, origin: string, normal: boolean, groups: ReadonlyArray<readonly [string, string]> | undefined): void {
    const now = this.now()
    const msg = new Message(this.nextMessageId++, topic, payload, qos, retain, properties, expiresAt, origin)
    if (msg.isExpired(now)) return
    try {
      this.forwarded = true
      if (normal) this.routeNow(msg, now, false)
      if (groups === undefined) return
      this.routing = msg
      this.routingNow = now
      for (const [name, filter] of groups) {
        const g = this.shared.group(name, filter)
        if (g !== undefined) this.deliverShared(g)
      }
    } finally {
      this.routing = undefined
      this.forwarded = false
    }
  }

  private route(msg: Message, now: number): boolean {
    // Reset however routing ends: a routing left set would refuse every later publish() of the application.
    try {
      return this.routeNow(msg, now)
    } finally {
      this.routing = undefined
    }
  }

  private routeNow(msg: Message, now: number, withShared = true): boolean {
    const epoch = ++this.epoch
    this.routing = msg
    this.routingNow = now
    const targets = this.targets
    targets.length = 0
    let work = this.subscriptions.match(msg.topic, this.visitSubscription)
    let matched = targets.length > 0
    for (let i = 0; i < targets.length; i++) {
      const s = targets[i]!
      if (s.matchEpoch !== epoch || !this.mayReceive(s, msg)) continue
      const qos = this.outgoingQos(msg, s.matchQos)
      // [MQTT-3.3.1-12/13] RETAIN is cleared on normal delivery unless Retain As Published.
      deliver(this, s, msg, qos, s.matchRetainAsPublished && msg.retain, s.matchSubIds, now)
    }
    work += targets.length
    targets.length = 0
    if (this.duplicates.length > 0) work += this.deliverDuplicates(msg, now)
    if (withShared && this.shared.groupCount > 0) {
      this.sharedMatched = false
      work += this.shared.match(msg.topic, this.visitGroup)
      if (this.sharedMatched) matched = true
    }
    this.work += work
    return matched
  }

  /**
   * Merges overlapping subscriptions of one session into one delivery at the highest QoS with every
   * subscription identifier (MQTT 5 section 3.3.4), using a per-publish epoch instead of a Map.
   */
  private collect(entry: SubEntry): void {
    const msg = this.routing!
    const s = entry.session
    // [MQTT-3.8.3-3] No Local: not back to the publisher.
    if (entry.noLocal && s.clientId === msg.origin) return
    if (s.matchEpoch !== this.epoch) {
      s.matchEpoch = this.epoch
      s.matchQos = entry.qos
      s.matchRetainAsPublished = entry.retainAsPublished
      s.matchSubIds = entry.subscriptionId !== 0 ? [entry.subscriptionId] : undefined
      this.targets.push(s)
      return
    }
    if (this.options.allowDuplicateMessages && s.protocolVersion !== 5 && s.protocolVersion !== 0) {
      // Mosquitto's allow_duplicate_messages: an MQTT 3 client gets a copy per matching subscription, each at
      // that subscription's QoS (MQTT 3.1.1 section 3.3.5 allows the further copies). MQTT 5 clients keep one
      // copy carrying every Subscription Identifier.
      this.duplicates.push(entry)
      return
    }
    if (entry.qos > s.matchQos) s.matchQos = entry.qos
    if (entry.retainAsPublished) s.matchRetainAsPublished = true
    if (entry.subscriptionId !== 0) {
      if (s.matchSubIds === undefined) s.matchSubIds = [entry.subscriptionId]
      else s.matchSubIds.push(entry.subscriptionId)
    }
  }

  /** The extra copies collected for allow_duplicate_messages; returns the work done. */
  private deliverDuplicates(msg: Message, now: number): number {
    const list = this.duplicates
    const n = list.length
    for (let i = 0; i < n; i++) {
      const e = list[i]!
      const s = e.session
      // Each copy is a delivery: the application's refusal holds for the duplicates as for the first.
      if (!this.mayReceive(s, msg)) continue
      deliver(this, s, msg, this.outgoingQos(msg, e.qos), e.retainAsPublished && msg.retain, undefined, now)
    }
    list.length = 0
    return n
  }

  /** One member of a share group gets the message: round robin, preferring connected members. */
  private deliverShared(group: SharedGroup<SubEntry>): void {
    const msg = this.routing!
    if (this.cluster !== undefined && !this.forwarded && !this.cluster.sharedHere(group.name, group.filter)) {
      this.sharedMatched = true
      return
    }
    const n = group.members.length
    let chosen: SubEntry | undefined
    for (let i = 0; i < n; i++) {
      const m = group.next()!
      const c = m.value.session.connection
      if (c !== null && c.state === ConnState.Connected && !(c.isCongested() && msg.qos === 0)) {
        chosen = m.value
        break
      }
    }
    // Nobody online: a QoS 1/2 message waits in one member's session queue; QoS 0 is dropped.
    if (chosen === undefined) {
      if (msg.qos === 0 || n === 0) return
      chosen = group.next()!.value
    }
    this.sharedMatched = true
    if (!this.mayReceive(chosen.session, msg)) return
    deliver(this, chosen.session, msg, this.outgoingQos(msg, chosen.qos), chosen.retainAsPublished && msg.retain, chosen.subscriptionId !== 0 ? [chosen.subscriptionId] : undefined, this.routingNow)
  }

  // ---- persistence (see src/persistence/store.ts) ----------------------------------------------

  /** Hook for the server: what to do when the store fails (default: exit non-zero). */
  storeFailed: (err: Error) => void = () => { process.exit(3) }

  persistSession(s: Session): void {
    const store = this.options.store
    if (store === undefined) return
    if (s.expiryInterval > 0) {
      store.sessionSaved(s.clientId, s.expiryInterval, s.identity.username, s.connection === null ? s.disconnectedAt : 0)
      s.stored = true
    } else if (s.stored) {
      store.sessionEnded(s.clientId)
      s.stored = false
    }
  }

  persistSessionEnded(s: Session): void {
    if (s.stored) this.options.store!.sessionEnded(s.clientId)
    s.stored = false
  }

  persistSubscription(s: Session, key: string, e: SubEntry): void {
    if (!s.stored) return
    this.options.store!.subscriptionAdded(s.clientId, { key, filter: e.filter, group: e.group, qos: e.qos, noLocal: e.noLocal, retainAsPublished: e.retainAsPublished, retainHandling: e.retainHandling, subscriptionId: e.subscriptionId })
  }

  persistUnsubscription(s: Session, key: string): void {
    if (s.stored) this.options.store!.subscriptionRemoved(s.clientId, key)
  }

  private persistMessage(m: Message): void {
    // During a background compaction a record may refer to a message whose earlier copy the new file lacks.
    if (m.persisted && this.options.store!.compacting !== true) return
    m.persisted = true
    this.options.store!.messageSaved(m)
  }

  persistRetained(topic: string, msg: Message | undefined): void {
    const store = this.options.store
    // $SYS values are the broker's own, republished every sys_interval: never stored.
    if (store === undefined || topic.startsWith('$SYS/')) return
    if (msg === undefined) {
      store.retainedCleared(topic)
      return
    }
    this.persistMessage(msg)
    store.retainedSet(topic, msg.id)
  }

  persistQueued(s: Session, o: Outgoing): void {
    o.oid = this.nextOutgoingId++
    if (!s.stored) return
    this.persistMessage(o.msg)
    this.options.store!.outgoingQueued(s.clientId, { oid: o.oid, messageId: o.msg.id, qos: o.qos, retain: o.retain, subscriptionIds: o.subscriptionIds, packetId: 0, released: false })
  }

  persistSent(s: Session, o: Outgoing): void {
    if (s.stored) this.options.store!.outgoingSent(s.clientId, o.oid, o.packetId)
  }

  persistAcked(s: Session, o: Outgoing): void {
    if (s.stored) this.options.store!.outgoingDone(s.clientId, o.oid)
  }

  persistReleased(s: Session, o: Outgoing): void {
    if (s.stored) this.options.store!.outgoingReleased(s.clientId, o.oid)
  }

  persistIncomingQos2(s: Session, packetId: number): void {
    if (s.stored) this.options.store!.incomingQos2Added(s.clientId, packetId)
  }

  persistIncomingReleased(s: Session, packetId: number): void {
    if (s.stored) this.options.store!.incomingQos2Released(s.clientId, packetId)
  }

  persistWill(s: Session, will: WillMessage | undefined, dueAt = 0): void {
    if (s.stored) this.options.store!.willSaved(s.clientId, will === undefined ? undefined : { will, dueAt })
    // Every will, stored session or not: another node publishes it if this one is lost.
    this.cluster?.willChanged(s.clientId, will, dueAt)
  }

  /** Rebuilds sessions, subscriptions, queues and retained messages from the store. Call before listening. */
  async restore(): Promise<string[]> {
    const store = this.options.store
    if (store === undefined) return []
    const state = await store.load()
    const now = this.now()
    const toMessage = storedMessages()
    for (const m of state.retained) this.retained.set(m.topic, toMessage(m))
    const dueWills: Array<[Session, WillMessage]> = []
    for (const st of state.sessions) {
      const s = this.restoreSession(st, state.messages, toMessage, now)
      if (st.will !== undefined && st.will.dueAt === 0) dueWills.push([s, st.will.will])
    }
    this.nextMessageId = Math.max(this.nextMessageId, state.nextMessageId)
    this.nextOutgoingId = Math.max(this.nextOutgoingId, state.nextOutgoingId)
    // The connections of these clients ended with the broker: their wills go out now [MQTT-3.1.2-8].
    for (const [s, will] of dueWills) {
      this.persistWill(s, undefined)
      this.handleWill(s, will)
    }
    await this.commitStore()
    return state.report
  }

  /**
   * One stored session back into the broker, offline: its subscriptions, queue, in-flight messages and a
   * delayed will. A will with dueAt 0 (its connection ended with the broker) is the caller's to publish.
   */
  private restoreSession(st: StoredSession, stored: Map<number, StoredMessage>, toMessage: (m: StoredMessage) => Message, now: number): Session {
    const s = new Session(st.clientId, { clientId: st.clientId, username: st.username, remoteAddress: '', listener: '' })
    // A session handed over by another node of a cluster comes without a store when this broker has none.
    s.stored = this.options.store !== undefined
    s.expiryInterval = st.expiryInterval
    s.connectExpiryInterval = st.expiryInterval
    // A session whose client was connected when the broker stopped starts its expiry now.
    const since = st.disconnectedAt === 0 ? now : st.disconnectedAt
    s.disconnectedAt = since
    s.expiresAt = st.expiryInterval === NeverExpires ? 0 : since + st.expiryInterval * 1000
    this.sessions.set(s.clientId, s)
    for (const sub of st.subscriptions) {
      const e = new SubEntry(s, sub.filter, sub.group, sub.qos, sub.noLocal, sub.retainAsPublished, sub.retainHandling, sub.subscriptionId)
      s.subscriptions.set(sub.key, e)
      this.addEntry(e)
    }
    for (const so of st.outgoing) {
      const m = stored.get(so.messageId)
      if (m === undefined) continue
      const o = new Outgoing(toMessage(m), so.qos, so.retain, so.subscriptionIds)
      o.oid = so.oid
      if (so.packetId !== 0) {
        o.packetId = so.packetId
        o.released = so.released
        o.sent = true
        s.setInflight(o)
      } else {
        s.enqueue(o)
      }
    }
    for (const id of st.incomingQos2) s.addIncomingQos2(id)
    if (st.will !== undefined && st.will.dueAt !== 0) {
      s.pendingWill = st.will.will
      s.pendingWillAt = st.will.dueAt
    }
    this.offline.add(s)
    return s
  }

  /**
   * A session handed over by another node of a cluster (read from the shared store, its message ids already
   * in this broker's space: allocateMessageId; its deliveries' oids are the store's to keep apart). Call it
   * before the client's CONNECT attaches.
   */
  adoptSession(st: StoredSession, messages: Map<number, StoredMessage>): Session {
    const old = this.sessions.get(st.clientId)
    if (old !== undefined) this.dropSession(old)
    const s = this.restoreSession(st, messages, storedMessages(), this.now())
    if (st.will !== undefined && st.will.dueAt === 0) {
      this.persistWill(s, undefined)
      this.handleWill(s, st.will.will)
    }
    return s
  }

  /**
   * Lets go of a session another node of the cluster takes over: its connection closes (v5 0x8E), what it
   * holds is committed to the shared store, then it leaves this broker without being ended in the store.
   * Returns what a persistent session held (after the close), for a cluster without a shared store.
   */
  dropSession(s: Session): LiveSession | undefined {
    const conn = s.connection
    if (conn !== null) {
      conn.sendDisconnect(ReasonCode.SessionTakenOver)
      this.options.logger.notice(`Client ${s.clientId} connected on another node of the cluster; closing its connection here (session taken over).`)
      conn.close('session taken over by another node')
    }
    // A session without expiry ended with its connection: nothing is handed over.
    const live = this.sessions.get(s.clientId) === s ? this.storedSession(s, true) : undefined
    if (this.sessions.get(s.clientId) === s) this.sessions.delete(s.clientId)
    this.offline.delete(s)
    for (const entry of s.subscriptions.values()) this.removeEntry(entry)
    s.subscriptions.clear()
    s.pendingWill = undefined
    s.stored = false
    return live
  }

  /** The live persistent state, for compaction. */
  snapshot(): RecoveredState {
    const messages = new Map<number, StoredMessage>()
    const sessions: StoredSession[] = []
    for (const s of this.sessions.values()) {
      const live = this.storedSession(s)
      if (live === undefined) continue
      sessions.push(live.session)
      for (const m of live.messages) messages.set(m.id, m)
    }
    const retained: StoredMessage[] = []
    for (const m of this.retained.messages()) if (!m.topic.startsWith('$SYS/')) retained.push(m)
    return { sessions, retained, messages, nextMessageId: this.nextMessageId, nextOutgoingId: this.nextOutgoingId, report: [] }
  }

  /** The same state as snapshot(), read item by item while the broker runs on (a background compaction). */
  liveSnapshot(): LiveSnapshot {
    const broker = this
    const retained = function * (): Generator<StoredMessage, void, undefined> {
      for (const m of broker.retained.messages()) if (!m.topic.startsWith('$SYS/')) yield m
    }
    const sessions = function * (): Generator<LiveSession, void, undefined> {
      // A Map iterator survives deletions and additions between two reads.
      for (const s of broker.sessions.values()) {
        const live = broker.storedSession(s)
        if (live !== undefined) yield live
      }
    }
    return { retained: retained(), sessions: sessions() }
  }

  /**
   * A stored session as the store keeps it, with the message of each queued entry; undefined for one not stored
   * (`anyway`: any session, stored or not — a cluster without a store hands sessions over in this form).
   */
  storedSession(s: Session, anyway = false): LiveSession | undefined {
    if (!s.stored && !anyway) return undefined
    const outgoing: StoredOutgoing[] = []
    const messages: StoredMessage[] = []
    const add = (o: Outgoing): void => {
      if (o.qos === 0) return // QoS 0 waiting on a slow socket is not kept across restarts
      messages.push(o.msg)
      outgoing.push({ oid: o.oid, messageId: o.msg.id, qos: o.qos, retain: o.retain, subscriptionIds: o.subscriptionIds, packetId: o.packetId, released: o.released })
    }
    for (const o of s.inflight.values()) add(o)
    for (let i = s.queueHead; i < s.queue.length; i++) add(s.queue[i]!)
    const subscriptions: StoredSubscription[] = []
    for (const [key, e] of s.subscriptions) subscriptions.push({ key, filter: e.filter, group: e.group, qos: e.qos, noLocal: e.noLocal, retainAsPublished: e.retainAsPublished, retainHandling: e.retainHandling, subscriptionId: e.subscriptionId })
    let will: StoredWill | undefined
    if (s.pendingWill !== undefined) will = { will: s.pendingWill, dueAt: s.pendingWillAt }
    else if (s.connection !== null && s.connection.will !== undefined) will = { will: s.connection.will, dueAt: 0 }
    const session = { clientId: s.clientId, expiryInterval: s.expiryInterval, username: s.identity.username, disconnectedAt: s.connection === null ? s.disconnectedAt : 0, subscriptions, outgoing, incomingQos2: [...s.incomingQos2], will }
    return { session, messages }
  }

  /**
   * autosave_interval: compact once the log since the last compaction is as large as the live state
   * (at least 1000 records). Every change is already on disk; compaction only bounds the file.
   */
  private autosave(): void {
    const store = this.options.store
    if (store === undefined) return
    if (store.changesSinceCompaction >= Math.max(1000, store.recordsAtCompaction)) this.compactInBackground()
  }

  /**
   * Autosave: a store that can compacts in the background, a few milliseconds per turn (the event
   * loop is never held long, however large the state); one that cannot compacts at once.
   */
  private compactInBackground(): void {
    const store = this.options.store
    if (store === undefined || store.compacting === true || this.closed) return
    if (this.commits.busy) {
      // It begins between two commits, never while one writes.
      this.compactionDue = 'begin'
      return
    }
    if (store.beginCompaction === undefined) {
      this.compactStore()
      return
    }
    if (store.beginCompaction(this.liveSnapshot())) setImmediate(this.compactionTick)
  }

  /**
   * One step of a background compaction, between two commits: it never interleaves with a pipelined
   * write to the same file. Records buffered for the next commit are the store's to write first
   * (Store.compactStep): waiting for a moment with none would starve the compaction under load.
   */
  private readonly compactionTick = (): void => {
    const store = this.options.store
    if (store === undefined || this.closed) return
    if (this.commits.busy) this.compactionDue = 'step'
    else if (store.compactStep?.() === true) setImmediate(this.compactionTick)
  }

  /** Rewrites the store as a snapshot, at once (shutdown). Cheap to call when nothing changed. */
  compactStore(): void {
    const store = this.options.store
    if (store === undefined || (store.changesSinceCompaction === 0 && store.compacting !== true)) return
    const started = Date.now()
    store.compact(this.snapshot())
    this.options.logger.debug(`Store compacted in ${Date.now() - started} ms.`)
  }

  // ---- timers ---------------------------------------------------------------------------------

  /** Once a second: keep alive [MQTT-3.1.2-24], CONNECT timeout, will delays, session expiry. */
  private sweep(): void {
    const now = this.now()
    const connectTimeout = this.options.connectTimeoutMs
    for (const conn of this.connections) {
      if (conn.state === ConnState.Connected) {
        if (conn.keepAliveLimitMs !== 0 && now - conn.lastPacketAt > conn.keepAliveLimitMs) {
          conn.sendDisconnect(ReasonCode.KeepAliveTimeout)
          conn.close('exceeded its keep alive timeout')
        }
      } else if (conn.state === ConnState.AwaitConnect && now - conn.connectedAt > connectTimeout) {
        conn.close(`sent no CONNECT within ${Math.round(connectTimeout / 1000)} s`)
      }
    }
    for (const s of this.offline) {
      if (s.pendingWill !== undefined && now >= s.pendingWillAt) {
        const will = s.pendingWill
        s.pendingWill = undefined
        this.persistWill(s, undefined)
        this.publishWill(will, s)
      }
      if (s.connection === null && s.expiresAt !== 0 && now >= s.expiresAt) {
        this.options.logger.info(`Session of client ${s.clientId} expired.`)
        this.stats.clientsExpired++
        this.endSession(s)
      } else if (s.expiresAt === 0 && s.pendingWill === undefined) {
        this.offline.delete(s)
      }
    }
    // Wills and expiries above changed the store outside a read: make them durable now.
    void this.commitStore()
  }

  /**
   * Closes every connection (v5 clients are told 0x8B Server shutting down) and stops timers; resolves once
   * the last commit is done and the store closed (at once with a synchronous store).
   */
  close(): Promise<void> {
    if (this.closed) return this.closedPromise ?? Promise.resolve()
    this.closed = true
    clearInterval(this.sweepTimer)
    if (this.autosaveTimer !== undefined) clearInterval(this.autosaveTimer)
    this.sys?.stop()
    for (const conn of [...this.connections]) {
      conn.sendDisconnect(ReasonCode.ServerShuttingDown)
      conn.close('the broker is shutting down')
    }
    this.commits.flushAll()
    // A synchronous store is closed before this returns, as callers that do not wait expect.
    this.closedPromise = this.commits.busy ? this.commitStore().then(() => this.closeStore()) : this.closeStore()
    return this.closedPromise
  }

  private closedPromise: Promise<void> | undefined = undefined

  /** The last compaction and the store's close, once no commit is under way. */
  private closeStore(): Promise<void> {
    const store = this.options.store
    if (store === undefined || this.commits.hasFailed) return Promise.resolve()
    this.compactStore()
    return Promise.resolve(store.close())
  }
}

function userTag(username: string | undefined): string {
  return username === undefined ? 'an anonymous client' : `user '${username}'`
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {}
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] !== undefined) out[k] = o[k]
  return out
}

/**
 * Turns stored messages into the broker's, one Message per stored id however many sessions (and the retained
 * index) refer to it, so a message shared at restore stays shared in memory.
 */
function storedMessages(): (m: StoredMessage) => Message {
  const made = new Map<number, Message>()
  return (m) => {
    let msg = made.get(m.id)
    if (msg === undefined) {
      msg = new Message(m.id, m.topic, m.payload, m.qos, m.retain, m.properties, m.expiresAt, m.origin)
      msg.persisted = true
      made.set(m.id, msg)
    }
    return msg
  }
}
