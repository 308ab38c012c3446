/**
 * SUBSCRIBE: validate and authorize each filter, store it (replacing an identical one [MQTT-3.8.4-3]),
 * answer SUBACK, then send matching retained messages per Retain Handling [MQTT-3.3.1-9..11].
 */
import type { SubscribePacket } from '../../protocol/packets.js'
import { PacketType, ReasonCode, SubackFailure, type QoS } from '../../protocol/constants.js'
import { isValidTopicFilter, parseSharedFilter } from '../../protocol/topic.js'
import type { Connection } from '../connection.js'
import { BrokerProtocolError } from '../errors.js'
import { SubEntry } from '../session.js'
import { mountFilter } from './unsubscribe.js'

export function handleSubscribe(conn: Connection, p: SubscribePacket): void {
  const broker = conn.broker
  const opts = broker.options
  const session = conn.session!
  const v5 = conn.version === 5
  const mount = conn.listener.mountPoint
  const subId = p.properties?.subscriptionIdentifiers?.[0] ?? 0
  const authorizer = broker.authorizer(conn.listener)
  const codes: number[] = []
  const retainedFor: SubEntry[] = []
  for (const s of p.subscriptions) {
    const raw = s.topicFilter
    if (!isValidTopicFilter(raw)) {
      codes.push(v5 ? ReasonCode.TopicFilterInvalid : SubackFailure)
      opts.logger.notice(`Client ${conn.label} subscribed to invalid topic filter '${raw}'; refused.`)
      continue
    }
    const shared = parseSharedFilter(raw)
    if (shared !== null && s.noLocal) {
      // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
      throw new BrokerProtocolError('BRK_ERR_PROTOCOL', ReasonCode.ProtocolError, `No Local set on shared subscription '${raw}'`)
    }
    const key = mount === '' ? raw : mountFilter(mount, raw)
    const filter = shared === null ? key : (mount === '' ? shared.filter : mount + shared.filter)
    if (!authorizer.canSubscribe(session.identity, filter)) {
      codes.push(v5 ? ReasonCode.NotAuthorized : SubackFailure)
      opts.logger.notice(`Denied SUBSCRIBE from client ${conn.label} (u'${session.identity.username ?? ''}') to '${filter}': not authorised by the ACL.`)
      continue
    }
    const qos = (s.qos > opts.maxQos ? opts.maxQos : s.qos) as QoS
    const bridge = conn.privateBridge && shared === null
    const entry = new SubEntry(session, filter, shared === null ? '' : shared.group, qos, s.noLocal || bridge, s.retainAsPublished || bridge, s.retainHandling, subId)
    const existed = broker.subscribe(session, key, entry)
    codes.push(qos)
    if (opts.logger.enabled('subscribe')) opts.logger.log('subscribe', `${session.clientId} ${qos} ${raw}`)
    // Shared subscriptions get no retained messages on subscribe (MQTT 5 section 4.8.2).
    if (shared === null && (s.retainHandling === 0 || (s.retainHandling === 1 && !existed))) retainedFor.push(entry)
  }
  conn.sendPacket({ type: PacketType.Suback, packetId: p.packetId, reasonCodes: codes })
  for (const entry of retainedFor) broker.sendRetained(session, entry)
}
