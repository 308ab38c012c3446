/**
 * Turns the records of a mosquitto.db (reader.ts) into Midge's RecoveredState, deciding what each of
 * Mosquitto's facts becomes:
 * - RETAIN -> a retained message (not $SYS: those are the broker's own and Mosquitto never saves them).
 * - CLIENT -> a persistent session; its expiry counts from the disconnect Mosquitto recorded
 *   (session_expiry_time - interval), so a session that has already expired is not imported.
 * - SUB -> a subscription with QoS, No Local, Retain As Published and Subscription Identifier.
 * - CLIENT_MSG out -> a queued message, or an in-flight one keeping its packet id: PUBLISH sent and not
 *   acknowledged is re-sent with DUP; a QoS 2 message whose PUBREC came is PUBREL'd, so it completes once.
 * - CLIENT_MSG in, QoS 2 waiting for PUBREL (PUBREC already sent): Mosquitto would publish it when PUBREL
 *   arrives. Midge publishes QoS 2 at PUBLISH and keeps only the packet id, so the message is routed now to
 *   the imported sessions whose subscriptions match, and the packet id is kept so the PUBREL gets its
 *   PUBCOMP and a DUP re-send is not published twice. One that has not been PUBREC'd yet is left out: its
 *   publisher re-sends it, and Midge publishes it then.
 */
import type { QoS } from '../../protocol/constants.js'
import { isValidTopicFilter, isValidTopicName, parseSharedFilter, topicMatches } from '../../protocol/topic.js'
import type { RecoveredState, StoredMessage, StoredOutgoing, StoredSession, StoredSubscription } from '../store.js'
import { Direction, MsgState, NeverExpires, SubOption } from './format.js'
import type { MosqMsgStore, MosquittoDb } from './reader.js'

export interface ImportCounts {
  retained: number
  sessions: number
  subscriptions: number
  queued: number
  inflight: number
  /** QoS 2 messages from publishers that Mosquitto had PUBREC'd, routed at import. */
  incomingQos2: number
}

export interface Converted {
  state: RecoveredState
  counts: ImportCounts
  /** One line per thing not imported, with the reason. */
  skipped: string[]
}

interface SessionBuild {
  session: StoredSession
  inflightIds: Set<number>
  inflight: StoredOutgoing[]
  queued: StoredOutgoing[]
}

const iso = (s: number): string => new Date(s * 1000).toISOString()

/** `now` in ms since the epoch. */
export function convertMosquittoDb(db: MosquittoDb, now: number): Converted {
  const skipped = db.skipped.map((s) => `${s.what} at offset ${s.offset}: ${s.reason}`)
  const counts: ImportCounts = { retained: 0, sessions: 0, subscriptions: 0, queued: 0, inflight: 0, incomingQos2: 0 }

  const byStoreId = new Map<bigint, MosqMsgStore>()
  const expired = new Set<bigint>()
  let expiredCount = 0
  for (const m of db.messages) {
    if (!isValidTopicName(m.topic)) {
      skipped.push(`stored message ${m.storeId}: '${m.topic}' is not a valid topic name, not imported`)
      continue
    }
    if (m.expiryTime > 0 && m.expiryTime * 1000 <= now) {
      expired.add(m.storeId)
      expiredCount++
      continue
    }
    byStoreId.set(m.storeId, m)
  }
  if (expiredCount > 0) skipped.push(`${expiredCount} stored messages whose Message Expiry Interval had run out, not imported`)

  const messages = new Map<number, StoredMessage>()
  const midgeIds = new Map<bigint, number>()
  let nextMessageId = 1
  const toMidge = (m: MosqMsgStore): StoredMessage => {
    let id = midgeIds.get(m.storeId)
    if (id === undefined) {
      id = nextMessageId++
      midgeIds.set(m.storeId, id)
      messages.set(id, { id, topic: m.topic, payload: m.payload, qos: m.qos as QoS, retain: m.retain, properties: m.properties, expiresAt: m.expiryTime > 0 ? m.expiryTime * 1000 : 0, origin: m.sourceId })
    }
    return messages.get(id)!
  }
  const missing = (what: string, id: bigint): string => `${what} refers to message ${id}, which is not in the file (damaged?), not imported`

  // ---- retained -----------------------------------------------------------------------------
  const retained = new Map<string, StoredMessage>()
  for (const id of db.retains) {
    const m = byStoreId.get(id)
    if (m === undefined) {
      if (!expired.has(id)) skipped.push(missing('RETAIN', id))
      continue
    }
    if (m.topic.startsWith('$SYS')) continue
    if (m.payload.length === 0) {
      skipped.push(`retained message ${id} on '${m.topic}': empty payload, not imported`)
      continue
    }
    const sm = toMidge(m)
    retained.set(m.topic, sm.retain ? sm : { ...sm, retain: true })
  }

  // ---- sessions -----------------------------------------------------------------------------
  const sessions = new Map<string, SessionBuild>()
  const dropped = new Set<string>()
  const newSession = (clientId: string, expiryInterval: number, username: string | undefined, disconnectedAt: number): SessionBuild => {
    const b: SessionBuild = {
      session: { clientId, expiryInterval, username, disconnectedAt, subscriptions: [], outgoing: [], incomingQos2: [], will: undefined },
      inflightIds: new Set(),
      inflight: [],
      queued: [],
    }
    sessions.set(clientId, b)
    return b
  }
  for (const c of db.clients) {
    // Versions 3/4 predate MQTT 5: every stored session belonged to a v3 clean-session-0 client.
    const interval = c.sessionExpiryInterval ?? NeverExpires
    if (interval === 0) {
      dropped.add(c.clientId)
      skipped.push(`session '${c.clientId}': Session Expiry Interval 0, it ended with its connection; not imported`)
      continue
    }
    let disconnectedAt = 0
    if (interval !== NeverExpires && c.sessionExpiryTime > 0) {
      if (c.sessionExpiryTime * 1000 <= now) {
        dropped.add(c.clientId)
        skipped.push(`session '${c.clientId}': expired at ${iso(c.sessionExpiryTime)}, not imported`)
        continue
      }
      disconnectedAt = (c.sessionExpiryTime - interval) * 1000
    }
    dropped.delete(c.clientId)
    const old = sessions.get(c.clientId)
    if (old !== undefined) {
      old.session.expiryInterval = interval
      old.session.username = c.username
      old.session.disconnectedAt = disconnectedAt
    } else {
      newSession(c.clientId, interval, c.username, disconnectedAt)
    }
  }
  // Mosquitto creates a session for a message or subscription of a client it has no CLIENT chunk for.
  const sessionOf = (clientId: string): SessionBuild | undefined =>
    dropped.has(clientId) ? undefined : sessions.get(clientId) ?? newSession(clientId, NeverExpires, undefined, 0)

  for (const s of db.subs) {
    const b = sessionOf(s.clientId)
    if (b === undefined) continue
    const shared = parseSharedFilter(s.topic)
    if (shared === null ? !isValidTopicFilter(s.topic) : shared.filter === '') {
      skipped.push(`subscription of '${s.clientId}' to '${s.topic}': not a valid topic filter, not imported`)
      continue
    }
    const sub: StoredSubscription = {
      key: s.topic,
      filter: shared === null ? s.topic : shared.filter,
      group: shared === null ? '' : shared.group,
      qos: s.qos as QoS,
      noLocal: (s.options & SubOption.NoLocal) !== 0,
      retainAsPublished: (s.options & SubOption.RetainAsPublished) !== 0,
      retainHandling: 0,
      subscriptionId: s.identifier,
    }
    const subs = b.session.subscriptions
    const at = subs.findIndex((x) => x.key === sub.key)
    if (at === -1) subs.push(sub)
    else subs[at] = sub
  }

  let nextOutgoingId = 1
  const incoming: Array<{ b: SessionBuild; m: MosqMsgStore }> = []
  for (const c of db.clientMsgs) {
    const b = sessionOf(c.clientId)
    if (b === undefined) continue
    const m = byStoreId.get(c.storeId)
    const what = `${c.direction === Direction.Out ? 'message for' : 'message from'} '${c.clientId}'`
    if (m === undefined) {
      // An expired message is counted once above, not once per queue it was in.
      if (!expired.has(c.storeId)) skipped.push(missing(what, c.storeId))
      continue
    }
    if (c.direction === Direction.In) {
      if (c.qos === 2 && c.state === MsgState.WaitForPubrel) {
        if (!b.session.incomingQos2.includes(c.mid)) {
          b.session.incomingQos2.push(c.mid)
          incoming.push({ b, m })
        }
      } else if (c.state !== MsgState.Queued && c.state !== MsgState.SendPubrec) {
        skipped.push(`${what} on '${m.topic}': QoS ${c.qos} in state ${c.state} is not an incoming state Midge keeps, not imported`)
      }
      // Not yet PUBREC'd: the publisher re-sends it and Midge publishes it then.
      continue
    }
    const o: StoredOutgoing = { oid: nextOutgoingId++, messageId: toMidge(m).id, qos: c.qos as QoS, retain: c.retain, subscriptionIds: c.properties?.subscriptionIdentifiers, packetId: 0, released: false }
    switch (c.state) {
      case MsgState.WaitForPuback:
      case MsgState.WaitForPubrec:
      case MsgState.ResendPubrel:
      case MsgState.WaitForPubcomp:
        if (c.qos > 0 && c.mid !== 0 && !b.inflightIds.has(c.mid)) {
          o.packetId = c.mid
          o.released = c.state === MsgState.ResendPubrel || c.state === MsgState.WaitForPubcomp
          b.inflightIds.add(c.mid)
          b.inflight.push(o)
        } else {
          b.queued.push(o)
        }
        break
      case MsgState.Queued:
      case MsgState.PublishQos0:
      case MsgState.PublishQos1:
      case MsgState.PublishQos2:
        // Never sent: it goes out with a packet id of Midge's choosing.
        b.queued.push(o)
        break
      default:
        skipped.push(`${what} on '${m.topic}': state ${c.state} is not an outgoing state, not imported`)
    }
  }

  // What Mosquitto would have published at PUBREL, to the subscriptions it would have reached.
  for (const { b: from, m } of incoming) {
    counts.incomingQos2++
    const sm = toMidge(m)
    if (m.retain && !m.topic.startsWith('$SYS')) {
      if (m.payload.length === 0) retained.delete(m.topic)
      else retained.set(m.topic, sm)
    }
    for (const b of sessions.values()) {
      let qos = -1
      let retain = false
      const ids: number[] = []
      for (const sub of b.session.subscriptions) {
        if (sub.group !== '' || !topicMatches(sub.filter, m.topic)) continue
        if (sub.noLocal && b === from) continue
        qos = Math.max(qos, Math.min(sub.qos, m.qos))
        retain ||= sub.retainAsPublished && m.retain
        if (sub.subscriptionId !== 0) ids.push(sub.subscriptionId)
      }
      if (qos < 0) continue
      b.queued.push({ oid: nextOutgoingId++, messageId: sm.id, qos: qos as QoS, retain, subscriptionIds: ids.length > 0 ? ids : undefined, packetId: 0, released: false })
    }
  }

  const out: StoredSession[] = []
  for (const b of sessions.values()) {
    b.session.outgoing = [...b.inflight, ...b.queued]
    counts.sessions++
    counts.subscriptions += b.session.subscriptions.length
    counts.inflight += b.inflight.length
    counts.queued += b.queued.length
    out.push(b.session)
  }
  counts.retained = retained.size
  return {
    state: { sessions: out, retained: [...retained.values()], messages, nextMessageId, nextOutgoingId, report: [] },
    counts,
    skipped,
  }
}

export function describeCounts(c: ImportCounts): string {
  return `${c.retained} retained messages, ${c.sessions} persistent sessions with ${c.subscriptions} subscriptions, ` +
    `${c.queued} queued and ${c.inflight} in-flight messages, ${c.incomingQos2} half-received QoS 2 messages`
}
