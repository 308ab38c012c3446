/**
 * PUBLISH from a client: topic alias resolution (v5), validation, authorization, routing, and the
 * acknowledgement of QoS 1 (PUBACK) and QoS 2 (PUBREC, exactly-once via incomingQos2).
 */
import type { PublishPacket } from '../../protocol/packets.js'
import { PacketType, ReasonCode } from '../../protocol/constants.js'
import { isValidTopicName, withinByteLimit } from '../../protocol/topic.js'
import type { ClientLink } from '../client-link.js'
import { BrokerProtocolError, protocolViolation } from '../errors.js'
import { askHook, refusalCode, type AuthorizePublishHook } from '../hooks.js'

export function handlePublish(conn: ClientLink, p: PublishPacket): void {
  const broker = conn.broker
  const opts = broker.options
  const session = conn.session!
  let topic = p.topic
  const props = p.properties
  if (props !== undefined) {
    const alias = props.topicAlias
    if (alias !== undefined) {
      // [MQTT-3.3.2-8, MQTT-3.3.2-9] alias 0 or above the Topic Alias Maximum we sent.
      if (alias === 0 || alias > opts.topicAliasMaximum) {
        throw new BrokerProtocolError('BRK_ERR_TOPIC_ALIAS', ReasonCode.TopicAliasInvalid, `topic alias ${alias} is outside 1..${opts.topicAliasMaximum}`)
      }
      if (topic === '') {
        const known = conn.aliasedTopic(alias)
        if (known === undefined) throw protocolViolation(`topic alias ${alias} was never set`)
        topic = known
      } else {
        conn.setTopicAlias(alias, topic)
      }
    }
    if (props.subscriptionIdentifiers !== undefined) {
      // [MQTT-3.3.4-6] a client must not send a Subscription Identifier in PUBLISH.
      throw protocolViolation('PUBLISH carried a Subscription Identifier')
    }
  }
  if (topic === '') {
    throw new BrokerProtocolError('BRK_ERR_TOPIC_NAME', conn.version === 5 ? ReasonCode.ProtocolError : ReasonCode.MalformedPacket, 'PUBLISH with an empty topic name and no topic alias')
  }
  if (!isValidTopicName(topic)) {
    // [MQTT-3.3.2-2] no wildcards in a topic name.
    throw new BrokerProtocolError('BRK_ERR_TOPIC_NAME', ReasonCode.TopicNameInvalid, `invalid topic name '${topic}'`)
  }
  if (p.qos > opts.maxQos) {
    // [MQTT-3.2.2-12] a QoS above the Maximum QoS we announced.
    throw new BrokerProtocolError('BRK_ERR_QOS_NOT_SUPPORTED', ReasonCode.QoSNotSupported, `QoS ${p.qos} is above max_qos ${opts.maxQos}`)
  }
  if (p.retain && !opts.retainAvailable) {
    // [MQTT-3.2.2-15]
    throw new BrokerProtocolError('BRK_ERR_RETAIN_NOT_SUPPORTED', ReasonCode.RetainNotSupported, 'retained messages are not available on this server')
  }
  broker.stats.publishReceived[p.qos]++
  broker.stats.publishBytesReceived += p.payload.length
  if (p.qos === 2 && session.incomingQos2.has(p.packetId)) {
    // A resent QoS 2 PUBLISH whose PUBREL hasn't arrived: acknowledge again, deliver nothing [MQTT-4.3.3-9].
    conn.sendPacket({ type: PacketType.Pubrec, packetId: p.packetId, reasonCode: 0 })
    return
  }
  if (p.qos === 2 && conn.version === 5 && session.incomingQos2.size >= conn.receiveMaximum) {
    // [MQTT-3.3.4-9] more unacknowledged QoS 2 PUBLISHes than our Receive Maximum. QoS 1 never counts: its
    // PUBACK is queued before the next packet is read.
    throw new BrokerProtocolError('BRK_ERR_RECEIVE_MAXIMUM', ReasonCode.ReceiveMaximumExceeded, `more than ${conn.receiveMaximum} QoS 2 messages awaiting PUBREL (Receive Maximum ${conn.receiveMaximum}, max_inflight_messages)`)
  }
  const mount = conn.listener.mountPoint
  const fullTopic = mount === '' ? topic : mount + topic
  if (mount !== '' && !withinByteLimit(fullTopic)) {
    // Routed or retained, a topic no PUBLISH can carry would fail every subscriber that sees it whole.
    throw new BrokerProtocolError('BRK_ERR_TOPIC_NAME', ReasonCode.TopicNameInvalid, `topic too long: with mount point '${mount}' it exceeds 65535 bytes`)
  }
  let rc: number = ReasonCode.Success
  if (opts.messageSizeLimit > 0 && p.payload.length > opts.messageSizeLimit) {
    rc = ReasonCode.QuotaExceeded
    opts.logger.notice(`Dropped PUBLISH from client ${conn.label} on '${fullTopic}': payload of ${p.payload.length} bytes exceeds message_size_limit ${opts.messageSizeLimit}.`)
  } else if (fullTopic.startsWith('$SYS')) {
    rc = ReasonCode.NotAuthorized
  } else if (!broker.authorizer(conn.listener).canPublish(session.identity, fullTopic)) {
    rc = ReasonCode.NotAuthorized
    if (opts.logger.enabled('notice')) opts.logger.notice(`Denied PUBLISH from client ${conn.label} (u'${session.identity.username ?? ''}') on '${fullTopic}': not authorised by the ACL.`)
  } else if (opts.hooks.authorizePublish !== undefined) {
    askPublishHook(conn, p, fullTopic, opts.hooks.authorizePublish)
    return
  } else {
    rc = route(conn, p, fullTopic)
  }
  acknowledge(conn, p, rc)
}

function route(conn: ClientLink, p: PublishPacket, fullTopic: string): number {
  const matched = conn.broker.publishFromClient(conn.session!, fullTopic, p)
  return !matched && conn.version === 5 ? ReasonCode.NoMatchingSubscribers : ReasonCode.Success
}

/** The application's authorizePublish hook, after the ACL allowed: an async answer holds the client's next packets. */
function askPublishHook(conn: ClientLink, p: PublishPacket, fullTopic: string, hook: AuthorizePublishHook): void {
  const opts = conn.broker.options
  const client = conn.session!.identity
  let held = false
  const decide = (answer: unknown, error: string | undefined): void => {
    let rc: number
    if (error !== undefined) {
      opts.logger.error(`The authorizePublish hook ${error} for client ${conn.label} on '${fullTopic.slice(0, 200)}': refused.`)
      rc = ReasonCode.NotAuthorized
    } else if (answer === true) {
      rc = route(conn, p, fullTopic)
    } else {
      rc = refusalCode(answer, ReasonCode.NotAuthorized)
      if (opts.logger.enabled('notice')) opts.logger.notice(`Denied PUBLISH from client ${conn.label} (u'${client.username ?? ''}') on '${fullTopic.slice(0, 200)}': refused by the authorizePublish hook.`)
    }
    acknowledge(conn, p, rc)
  }
  const answered = askHook(() => hook(client, { topic: fullTopic, payload: p.payload, qos: p.qos, retain: p.retain }), opts.hookTimeoutMs, (answer, error) => {
    if (held) conn.finishHeld(PacketType.Publish, () => decide(answer, error))
    else decide(answer, error)
  })
  if (!answered) {
    held = true
    conn.holdRead()
  }
}

function acknowledge(conn: ClientLink, p: PublishPacket, rc: number): void {
  const session = conn.session!
  const broker = conn.broker
  if (p.qos === 0) return
  // 3.x acknowledgements carry no reason; a refused 3.x publish is acknowledged and dropped, as mosquitto does.
  // The ack is only queued here: Broker.flushAll commits the store before any of this turn's bytes leave.
  const ackCode = conn.version === 5 ? rc : 0
  if (p.qos === 1) {
    conn.sendPacket({ type: PacketType.Puback, packetId: p.packetId, reasonCode: ackCode })
  } else {
    if (rc < 0x80) {
      session.addIncomingQos2(p.packetId)
      broker.persistIncomingQos2(session, p.packetId)
    }
    conn.sendPacket({ type: PacketType.Pubrec, packetId: p.packetId, reasonCode: ackCode })
  }
}
