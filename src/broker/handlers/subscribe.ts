/**
 * SUBSCRIBE: validate and authorize each filter, store it (replacing an identical one [MQTT-3.8.4-3]),
 * answer SUBACK, then send matching retained messages per Retain Handling [MQTT-3.3.1-9..11].
 */
import type { SubscribePacket, Subscription } from '../../protocol/packets.js'
import { PacketType, ReasonCode, SubackFailure, type QoS } from '../../protocol/constants.js'
import { isValidTopicFilter, parseSharedFilter, withinByteLimit } from '../../protocol/topic.js'
import type { ClientLink } from '../client-link.js'
import { protocolViolation } from '../errors.js'
import { SubEntry } from '../session.js'
import { mountFilter } from './unsubscribe.js'

export function handleSubscribe(conn: ClientLink, p: SubscribePacket): void {
  const broker = conn.broker
  const opts = broker.options
  const session = conn.session!
  const v5 = conn.version === 5
  const mount = conn.listener.mountPoint
  const subId = p.properties?.subscriptionIdentifiers?.[0] ?? 0
  const authorizer = broker.authorizer(conn.listener)
  const list = p.subscriptions
  const codes: number[] = []
  // Key -> index of its last occurrence: a filter repeated in one SUBSCRIBE is one subscription, the later
  // replacing the earlier [MQTT-3.8.4-3], and gets its retained messages once; every occurrence still gets
  // its own reason code [MQTT-3.8.4-6].
  const chosen = new Map<string, number>()
  const filters: string[] = []
  const limit = opts.maxSubscriptionsPerClient
  let added = 0
  let overQuota = 0
  for (let i = 0; i < list.length; i++) {
    const s = list[i]!
    const raw = s.topicFilter
    filters.push('')
    if (!isValidTopicFilter(raw)) {
      codes.push(v5 ? ReasonCode.TopicFilterInvalid : SubackFailure)
      opts.logger.notice(`Client ${conn.label} subscribed to invalid topic filter '${raw}'; refused.`)
      continue
    }
    const shared = parseSharedFilter(raw)
    if (shared !== null && s.noLocal) {
      // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
      throw protocolViolation(`No Local set on shared subscription '${raw}'`)
    }
    const key = mount === '' ? raw : mountFilter(mount, raw)
    if (mount !== '' && !withinByteLimit(key)) {
      // Stored and bridged as one MQTT string: the mounted filter must still fit 65,535 bytes.
      codes.push(v5 ? ReasonCode.TopicFilterInvalid : SubackFailure)
      opts.logger.notice(`Client ${conn.label} subscribed to a topic filter that is too long under mount point '${mount}' (${Buffer.byteLength(raw)} bytes); refused.`)
      continue
    }
    const filter = shared === null ? key : (mount === '' ? shared.filter : mount + shared.filter)
    if (!authorizer.canSubscribe(session.identity, filter)) {
      codes.push(v5 ? ReasonCode.NotAuthorized : SubackFailure)
      opts.logger.notice(`Denied SUBSCRIBE from client ${conn.label} (u'${session.identity.username ?? ''}') to '${filter}': not authorised by the ACL.`)
      continue
    }
    if (!chosen.has(key) && !session.subscriptions.has(key)) {
      if (limit > 0 && session.subscriptions.size + added >= limit) {
        codes.push(v5 ? ReasonCode.QuotaExceeded : SubackFailure)
        overQuota++
        continue
      }
      added++
    }
    chosen.set(key, i)
    filters[i] = filter
    codes.push(s.qos > opts.maxQos ? opts.maxQos : s.qos)
  }
  if (overQuota > 0) {
    opts.logger.notice(`Refused ${overQuota} of ${list.length} filters SUBSCRIBEd by client ${conn.label} from ${conn.meta.remoteAddress} (u'${session.identity.username ?? ''}'): it holds the most subscriptions allowed (max_subscriptions_per_client ${limit}).`)
  }
  const retainedFor: SubEntry[] = []
  for (const [key, i] of chosen) {
    const s = list[i]!
    const entry = subscribeOne(conn, key, filters[i]!, s, subId, codes[i] as QoS)
    if (entry !== undefined) retainedFor.push(entry)
  }
  broker.work += list.length
  conn.sendPacket({ type: PacketType.Suback, packetId: p.packetId, reasonCodes: codes })
  for (const entry of retainedFor) broker.sendRetained(session, entry)
}

/** Stores one subscription. Returns it when its retained messages are due (Retain Handling). */
function subscribeOne(conn: ClientLink, key: string, filter: string, s: Subscription, subId: number, qos: QoS): SubEntry | undefined {
  const broker = conn.broker
  const session = conn.session!
  const shared = parseSharedFilter(s.topicFilter)
  const bridge = conn.privateBridge && shared === null
  const entry = new SubEntry(session, filter, shared === null ? '' : shared.group, qos, s.noLocal || bridge, s.retainAsPublished || bridge, s.retainHandling, subId)
  const existed = broker.subscribe(session, key, entry)
  const logger = broker.options.logger
  if (logger.enabled('subscribe')) logger.log('subscribe', `${session.clientId} ${qos} ${s.topicFilter}`)
  // Shared subscriptions get no retained messages on subscribe (MQTT 5 section 4.8.2).
  if (shared === null && (s.retainHandling === 0 || (s.retainHandling === 1 && !existed))) return entry
  return undefined
}
