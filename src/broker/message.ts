/**
 * A routed application message. One instance is shared by every subscriber it reaches (and by the
 * retained store), so it is immutable after creation; per-subscriber facts (granted QoS, packet id,
 * retain flag, subscription identifiers) live in the Outgoing record, not here.
 */
import type { Properties, PublishPacket } from '../protocol/packets.js'
import type { ProtocolVersion, QoS } from '../protocol/constants.js'
import { encodePublish } from '../protocol/encoder.js'

export class Message {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: QoS
  /** The RETAIN flag as published (used for Retain As Published and for the retained store). */
  readonly retain: boolean
  /** v5 properties to forward: never topicAlias or subscriptionIdentifiers (per-hop values). */
  readonly properties: Properties | undefined
  /** Absolute expiry in ms since the epoch; 0 = never (v5 Message Expiry Interval). */
  readonly expiresAt: number
  /** Client id of the publisher, for v5 No Local; '' for broker-originated messages. */
  readonly origin: string
  /** Monotonic id used by persistence and for stable ordering. */
  readonly id: number
  /**
   * Encoded QoS 0 PUBLISH bytes cached per (protocol family, retain flag): index = (v5 ? 2 : 0) + (retain ? 1 : 0).
   * Fan-out to N subscribers then encodes once instead of N times (only for deliveries without
   * subscription identifiers and without a changed expiry).
   */
  private qos0Cache: Array<Buffer | undefined> | undefined
  /** Written to the store already (messages are stored once, however many sessions queue them). */
  persisted = false

  constructor(id: number, topic: string, payload: Buffer, qos: QoS, retain: boolean, properties: Properties | undefined, expiresAt: number, origin: string) {
    this.id = id
    this.topic = topic
    this.payload = payload
    this.qos = qos
    this.retain = retain
    this.properties = properties
    this.expiresAt = expiresAt
    this.origin = origin
    this.qos0Cache = undefined
  }

  isExpired(now: number): boolean {
    return this.expiresAt !== 0 && now >= this.expiresAt
  }

  /** The properties to send now: Message Expiry Interval counted down [MQTT-3.3.2-6], subscription ids added. */
  outgoingProperties(now: number, subscriptionIds: number[] | undefined): Properties | undefined {
    if (this.expiresAt === 0 && subscriptionIds === undefined) return this.properties
    const props: Properties = { ...this.properties }
    if (this.expiresAt !== 0) props.messageExpiryInterval = Math.max(0, Math.ceil((this.expiresAt - now) / 1000))
    if (subscriptionIds !== undefined) props.subscriptionIdentifiers = subscriptionIds
    return props
  }

  /**
   * Encodes this message as a PUBLISH for one delivery. topicAlias (v5, 0 = none) goes out as the
   * property; with `aliasOnly` the topic name is left empty because the client already knows the alias.
   */
  encode(version: ProtocolVersion, qos: QoS, retain: boolean, dup: boolean, packetId: number, subscriptionIds: number[] | undefined, topic: string, now: number, topicAlias = 0, aliasOnly = false): Buffer {
    const cacheable = qos === 0 && subscriptionIds === undefined && this.expiresAt === 0 && topic === this.topic && topicAlias === 0
    const slot = (version === 5 ? 2 : 0) + (retain ? 1 : 0)
    if (cacheable && this.qos0Cache !== undefined) {
      const hit = this.qos0Cache[slot]
      if (hit !== undefined) return hit
    }
    let properties = version === 5 ? this.outgoingProperties(now, subscriptionIds) : undefined
    if (topicAlias !== 0) properties = { ...properties, topicAlias }
    const packet: PublishPacket = {
      type: 3,
      topic: aliasOnly ? '' : topic,
      payload: this.payload,
      qos,
      retain,
      dup,
      packetId,
      properties,
    }
    const bytes = encodePublish(packet, version)
    if (cacheable) {
      if (this.qos0Cache === undefined) this.qos0Cache = [undefined, undefined, undefined, undefined]
      this.qos0Cache[slot] = bytes
    }
    return bytes
  }
}
