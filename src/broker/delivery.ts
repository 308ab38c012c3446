/**
 * Getting a routed message to one session: QoS 0 straight to the socket (or dropped when the client
 * is offline or hopelessly behind), QoS 1/2 into the in-flight window or the bounded queue.
 * Packet ids are assigned when a message enters the window, so queued messages hold none.
 */
import type { QoS } from '../protocol/constants.js'
import type { Message } from './message.js'
import { Outgoing, type Session } from './session.js'
import { ConnState } from './conn-state.js'
import type { ClientLink } from './client-link.js'
import type { Broker } from './broker.js'

export function deliver(broker: Broker, session: Session, msg: Message, qos: QoS, retain: boolean, subscriptionIds: number[] | undefined, now: number): void {
  const conn = session.connection
  const online = conn !== null && conn.state === ConnState.Connected
  if (qos === 0) {
    // QoS 0 is queued for an offline session only with queue_qos0_messages (off, as in mosquitto).
    if (!online) {
      if (!broker.options.queueQos0Messages || session.expiryInterval === 0) return
    } else if (session.queueLength === 0 && !conn.isCongested()) {
      sendPublish(conn, msg, 0, retain, false, 0, subscriptionIds, now)
      return
    }
  } else if (online && session.queueLength === 0 && windowOpen(conn, session) && !conn.isCongested()) {
    const o = new Outgoing(msg, qos, retain, subscriptionIds)
    broker.persistQueued(session, o)
    sendOutgoing(conn, session, o, now)
    return
  }
  const opts = broker.options
  if (opts.maxQueuedMessages > 0 && session.queueLength >= opts.maxQueuedMessages) {
    dropped(broker, session, msg, `its queue is full (max_queued_messages ${opts.maxQueuedMessages})`)
    return
  }
  if (opts.maxQueuedBytes > 0 && session.queuedBytes + msg.payload.length > opts.maxQueuedBytes) {
    dropped(broker, session, msg, `its queue is full (max_queued_bytes ${opts.maxQueuedBytes})`)
    return
  }
  const o = new Outgoing(msg, qos, retain, subscriptionIds)
  session.enqueue(o)
  if (qos > 0) broker.persistQueued(session, o)
}

function dropped(broker: Broker, session: Session, msg: Message, why: string): void {
  session.dropped++
  broker.stats.messagesDropped++
  if (broker.events.listeners.dropped !== undefined) broker.events.emit('dropped', msg, session.identity, why)
  // One line per power of two drops per session keeps a flood of drops from flooding the log.
  const n = session.dropped
  if ((n & (n - 1)) === 0) {
    const conn = session.connection
    const where = conn === null ? 'offline' : `from ${conn.meta.remoteAddress}`
    const user = session.identity.username === undefined ? '' : ` (u'${session.identity.username}')`
    broker.options.logger.warning(`Outgoing messages are being dropped for client ${session.clientId} ${where}${user}: ${why} (${n} dropped so far; latest on '${msg.topic}').`)
  }
}

/**
 * Whether one more QoS 1/2 message may go in flight to this client: fewer than its window (max_inflight_messages,
 * lowered by a v5 client's Receive Maximum) and, with max_inflight_bytes, fewer payload bytes in flight than that
 * limit. As in mosquitto (db__ready_for_flight), the bytes are compared before the message is added, so one
 * message larger than the limit still goes, alone. What waits stays in the session queue.
 */
function windowOpen(conn: ClientLink, session: Session): boolean {
  if (session.inflight.size >= conn.sendWindow) return false
  const maxBytes = conn.broker.options.maxInflightBytes
  return maxBytes === 0 || session.inflightBytes < maxBytes
}

/** Puts o in flight on conn. Returns false when the client can't take it (too large) and it was discarded. */
function sendOutgoing(conn: ClientLink, session: Session, o: Outgoing, now: number): boolean {
  if (o.packetId === 0) {
    o.packetId = session.allocatePacketId()
    conn.broker.persistSent(session, o)
  }
  session.setInflight(o)
  if (!sendPublish(conn, o.msg, o.qos, o.retain, o.sent, o.packetId, o.subscriptionIds, now)) {
    session.removeInflight(o)
    conn.broker.persistAcked(session, o)
    tooLarge(conn, session, o.msg)
    return false
  }
  o.sent = true
  return true
}

/** Writes one PUBLISH. False when it exceeds the client's Maximum Packet Size: discarded [MQTT-3.1.2-25]. */
function sendPublish(conn: ClientLink, msg: Message, qos: QoS, retain: boolean, dup: boolean, packetId: number, subscriptionIds: number[] | undefined, now: number): boolean {
  const mount = conn.listener.mountPoint
  const topic = mount === '' ? msg.topic : msg.topic.slice(mount.length)
  let alias = 0
  let aliasOnly = false
  if (conn.clientTopicAliasMaximum !== 0) {
    // Outbound topic aliases: a known topic goes as its alias and an empty topic; a new one gets an alias,
    // never above the client's Topic Alias Maximum [MQTT-3.2.2-17... section 3.3.2.3.4].
    const aliases = conn.outgoingAliases()
    const known = aliases.byTopic.get(topic)
    if (known !== undefined) {
      alias = known
      aliasOnly = true
    } else {
      const maxBytes = conn.broker.options.maxOutgoingTopicAliasBytes
      if (maxBytes > 0) alias = aliases.assign(topic, conn.clientTopicAliasMaximum, maxBytes)
    }
  }
  const bytes = msg.encode(conn.version, qos, retain, dup, packetId, conn.version === 5 ? subscriptionIds : undefined, topic, now, alias, aliasOnly)
  if (conn.clientMaxPacketSize !== 0 && bytes.length > conn.clientMaxPacketSize) {
    if (alias !== 0 && !aliasOnly) conn.outgoingAliases().unassign(alias)
    if (qos === 0 && conn.session !== null) tooLarge(conn, conn.session, msg)
    return false
  }
  // QoS 0 and 1 copies need not wait for the store's commit (Connection.write); QoS 2 ones must.
  conn.write(bytes, qos < 2)
  const broker = conn.broker
  broker.stats.messagesSent++
  broker.stats.publishBytesSent += msg.payload.length
  if (!dup && broker.events.listeners.delivered !== undefined && conn.session !== null) broker.events.emit('delivered', msg, conn.session.identity)
  return true
}

/** A message larger than the client's Maximum Packet Size is discarded for it [MQTT-3.1.2-25]: only the host application hears of it. */
function tooLarge(conn: ClientLink, session: Session, msg: Message): void {
  const broker = conn.broker
  if (broker.events.listeners.dropped !== undefined) broker.events.emit('dropped', msg, session.identity, `larger than the client's Maximum Packet Size ${conn.clientMaxPacketSize}`)
}

/** Moves queued messages into the window while it has room; expired ones are discarded [MQTT-3.3.2-5]. */
export function pump(session: Session, now: number): void {
  const conn = session.connection
  if (conn === null || conn.state !== ConnState.Connected) return
  while (!conn.isCongested()) {
    const o = session.peek()
    if (o === undefined) return
    if (o.qos > 0 && !windowOpen(conn, session)) return
    session.dequeue()
    // The read right is checked again when a queued message leaves: the ACL may have been reloaded since it
    // was queued, or the session restored from the store without its listener.
    const expired = o.msg.isExpired(now)
    if (expired || !conn.broker.authorizer(conn.listener).canRead(session.identity, o.msg.topic)) {
      if (o.qos > 0) conn.broker.persistAcked(session, o)
      if (expired && conn.broker.events.listeners.dropped !== undefined) conn.broker.events.emit('dropped', o.msg, session.identity, 'it expired while queued')
      continue
    }
    if (o.qos === 0) sendPublish(conn, o.msg, 0, o.retain, false, 0, o.subscriptionIds, now)
    else sendOutgoing(conn, session, o, now)
  }
}

/**
 * After a reconnect: resend what was in flight, in order, PUBLISH with DUP or PUBREL [MQTT-4.4.0-1].
 * A PUBLISH the client may no longer read (the ACL was reloaded, or it came back on a listener with
 * other rules) is dropped, as Mosquitto does on reconnect; a PUBREL carries no message and still goes.
 */
export function resume(conn: ClientLink, session: Session, now: number): void {
  const authorizer = conn.broker.authorizer(conn.listener)
  for (const o of session.inflight.values()) {
    if (o.released) {
      conn.sendPacket({ type: 6, packetId: o.packetId, reasonCode: 0 })
    } else if (!authorizer.canRead(session.identity, o.msg.topic) || !sendPublish(conn, o.msg, o.qos, o.retain, o.sent, o.packetId, o.subscriptionIds, now)) {
      session.removeInflight(o)
      conn.broker.persistAcked(session, o)
    } else {
      o.sent = true
    }
  }
  pump(session, now)
}
