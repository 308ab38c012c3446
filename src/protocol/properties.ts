/**
 * MQTT 5.0 properties (section 2.2.2): one table row per identifier gives its data type, the packets that may
 * carry it and the value rule. Decoding enforces: unknown identifier -> malformed; not allowed in this packet,
 * duplicated single-use property, or out-of-range value -> protocol error. Encoding writes, in identifier order,
 * only the properties the packet type allows (anything else in the object is ignored).
 */
import { PacketType, PropertyId } from './constants.js'
import { MqttEncodeError, malformed, protocolError } from './errors.js'
import type { Properties } from './packets.js'
import type { Reader } from './reader.js'
import { varintLength, writeVarint } from './varint.js'
import { binaryLength, stringLength, writeBinary, writeString, writeU16, writeU32 } from './write.js'

export const PropType = { Byte: 0, TwoByte: 1, FourByte: 2, Varint: 3, String: 4, Binary: 5, Pair: 6 } as const
type PropTypeValue = (typeof PropType)[keyof typeof PropType]

const Rule = { None: 0, ZeroOrOne: 1, NonZero: 2 } as const
type RuleValue = (typeof Rule)[keyof typeof Rule]

/** Packet type 0 does not exist, so its bit and slot stand for the Will Properties inside CONNECT. */
export const WillSlot = 0

const bit = (t: number): number => 1 << t
const W = bit(WillSlot)
const CONNECT = bit(PacketType.Connect)
const CONNACK = bit(PacketType.Connack)
const PUBLISH = bit(PacketType.Publish)
const ACKS = bit(PacketType.Puback) | bit(PacketType.Pubrec) | bit(PacketType.Pubrel) | bit(PacketType.Pubcomp)
const SUBSCRIBE = bit(PacketType.Subscribe)
const SUBACK = bit(PacketType.Suback)
const UNSUBSCRIBE = bit(PacketType.Unsubscribe)
const UNSUBACK = bit(PacketType.Unsuback)
const DISCONNECT = bit(PacketType.Disconnect)
const AUTH = bit(PacketType.Auth)

export interface PropertyDef {
  readonly id: number
  readonly name: keyof Properties
  readonly type: PropTypeValue
  /** Bit set of packet types (bit 0: will) that may carry it. */
  readonly allowed: number
  readonly rule: RuleValue
}

const def = (id: number, name: keyof Properties, type: PropTypeValue, allowed: number, rule: RuleValue = Rule.None): PropertyDef =>
  ({ id, name, type, allowed, rule })

/** Table 2-4 of MQTT 5.0 (section 2.2.2.2), in identifier order. */
export const PropertyDefs: readonly PropertyDef[] = [
  def(PropertyId.PayloadFormatIndicator, 'payloadFormatIndicator', PropType.Byte, PUBLISH | W, Rule.ZeroOrOne),
  def(PropertyId.MessageExpiryInterval, 'messageExpiryInterval', PropType.FourByte, PUBLISH | W),
  def(PropertyId.ContentType, 'contentType', PropType.String, PUBLISH | W),
  def(PropertyId.ResponseTopic, 'responseTopic', PropType.String, PUBLISH | W),
  def(PropertyId.CorrelationData, 'correlationData', PropType.Binary, PUBLISH | W),
  // [MQTT-3.8.2.1.2] / 3.3.2.3.8: 1..268,435,455; several in PUBLISH (one per matching subscription), one in SUBSCRIBE.
  def(PropertyId.SubscriptionIdentifier, 'subscriptionIdentifiers', PropType.Varint, PUBLISH | SUBSCRIBE, Rule.NonZero),
  def(PropertyId.SessionExpiryInterval, 'sessionExpiryInterval', PropType.FourByte, CONNECT | CONNACK | DISCONNECT),
  def(PropertyId.AssignedClientIdentifier, 'assignedClientIdentifier', PropType.String, CONNACK),
  def(PropertyId.ServerKeepAlive, 'serverKeepAlive', PropType.TwoByte, CONNACK),
  def(PropertyId.AuthenticationMethod, 'authenticationMethod', PropType.String, CONNECT | CONNACK | AUTH),
  def(PropertyId.AuthenticationData, 'authenticationData', PropType.Binary, CONNECT | CONNACK | AUTH),
  def(PropertyId.RequestProblemInformation, 'requestProblemInformation', PropType.Byte, CONNECT, Rule.ZeroOrOne),
  def(PropertyId.WillDelayInterval, 'willDelayInterval', PropType.FourByte, W),
  def(PropertyId.RequestResponseInformation, 'requestResponseInformation', PropType.Byte, CONNECT, Rule.ZeroOrOne),
  def(PropertyId.ResponseInformation, 'responseInformation', PropType.String, CONNACK),
  def(PropertyId.ServerReference, 'serverReference', PropType.String, CONNACK | DISCONNECT),
  def(PropertyId.ReasonString, 'reasonString', PropType.String, CONNACK | ACKS | SUBACK | UNSUBACK | DISCONNECT | AUTH),
  def(PropertyId.ReceiveMaximum, 'receiveMaximum', PropType.TwoByte, CONNECT | CONNACK, Rule.NonZero),
  def(PropertyId.TopicAliasMaximum, 'topicAliasMaximum', PropType.TwoByte, CONNECT | CONNACK),
  // Topic Alias 0 is a protocol error too [MQTT-3.3.2-8], but the broker checks it with the alias maximum.
  def(PropertyId.TopicAlias, 'topicAlias', PropType.TwoByte, PUBLISH),
  def(PropertyId.MaximumQoS, 'maximumQoS', PropType.Byte, CONNACK, Rule.ZeroOrOne),
  def(PropertyId.RetainAvailable, 'retainAvailable', PropType.Byte, CONNACK, Rule.ZeroOrOne),
  def(PropertyId.UserProperty, 'userProperties', PropType.Pair,
    CONNECT | CONNACK | PUBLISH | W | ACKS | SUBSCRIBE | SUBACK | UNSUBSCRIBE | UNSUBACK | DISCONNECT | AUTH),
  def(PropertyId.MaximumPacketSize, 'maximumPacketSize', PropType.FourByte, CONNECT | CONNACK, Rule.NonZero),
  def(PropertyId.WildcardSubscriptionAvailable, 'wildcardSubscriptionAvailable', PropType.Byte, CONNACK, Rule.ZeroOrOne),
  def(PropertyId.SubscriptionIdentifiersAvailable, 'subscriptionIdentifiersAvailable', PropType.Byte, CONNACK, Rule.ZeroOrOne),
  def(PropertyId.SharedSubscriptionAvailable, 'sharedSubscriptionAvailable', PropType.Byte, CONNACK, Rule.ZeroOrOne),
]

/** Identifier -> definition (sparse). */
const ById: Array<PropertyDef | undefined> = []
for (const d of PropertyDefs) ById[d.id] = d

/** Packet type (0 = will) -> the definitions it may carry, so encoding visits only those. */
const BySlot: PropertyDef[][] = []
for (let t = 0; t < 16; t++) BySlot[t] = PropertyDefs.filter(d => (d.allowed & bit(t)) !== 0)

const SlotNames = ['will', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE',
  'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH']

/**
 * Reads a property block (varint length + properties) for packet type `slot` (WillSlot for will properties).
 * Returns undefined for an empty block so property-less packets allocate nothing.
 */
export function decodeProperties (r: Reader, slot: number): Properties | undefined {
  const len = r.varint()
  if (len === 0) return undefined
  const end = r.pos + len
  if (end > r.end) throw malformed('property length overruns the packet')
  const outerEnd = r.end
  r.end = end
  const props: Properties = {}
  const p = props as Record<string, unknown>
  const mask = bit(slot)
  while (r.pos < end) {
    const id = r.varint()
    const d = ById[id]
    if (d === undefined) throw malformed(`unknown property identifier 0x${id.toString(16)}`)
    if ((d.allowed & mask) === 0) throw protocolError(`property ${d.name} is not allowed in ${SlotNames[slot]}`)
    switch (d.type) {
      case PropType.Pair: {
        const k = r.string()
        const v = r.string()
        if (props.userProperties === undefined) props.userProperties = [[k, v]]
        else props.userProperties.push([k, v])
        continue
      }
      case PropType.Varint: {
        // Only the Subscription Identifier has this type.
        const v = r.varint()
        if (v === 0) throw protocolError('subscription identifier 0')
        if (props.subscriptionIdentifiers === undefined) props.subscriptionIdentifiers = [v]
        else if (slot === PacketType.Publish) props.subscriptionIdentifiers.push(v)
        else throw protocolError('subscription identifier appears more than once')
        continue
      }
    }
    if (p[d.name] !== undefined) throw protocolError(`property ${d.name} appears more than once`)
    let v: number | string | Buffer
    switch (d.type) {
      case PropType.Byte: v = r.u8(); break
      case PropType.TwoByte: v = r.u16(); break
      case PropType.FourByte: v = r.u32(); break
      case PropType.String: v = r.string(); break
      default: v = r.binary()
    }
    if (d.rule === Rule.ZeroOrOne) {
      if (v !== 0 && v !== 1) throw protocolError(`property ${d.name} must be 0 or 1, got ${String(v)}`)
    } else if (d.rule === Rule.NonZero && v === 0) {
      throw protocolError(`property ${d.name} must not be 0`)
    }
    p[d.name] = v
  }
  r.end = outerEnd
  // Sections 3.1.2.11.10 and 3.2.2.3.18: Authentication Data without an Authentication Method is a protocol error.
  if (props.authenticationData !== undefined && props.authenticationMethod === undefined) {
    throw protocolError('authentication data without authentication method')
  }
  return props
}

/** Byte length of the properties themselves (without the varint length prefix). */
export function propertiesLength (props: Properties | undefined, slot: number): number {
  if (props === undefined) return 0
  const defs = BySlot[slot]!
  const p = props as Record<string, unknown>
  let n = 0
  for (let i = 0; i < defs.length; i++) {
    const d = defs[i]!
    const v = p[d.name]
    if (v === undefined || v === null) continue
    switch (d.type) {
      case PropType.Byte: n += 2; break
      case PropType.TwoByte: n += 3; break
      case PropType.FourByte: n += 5; break
      case PropType.String: n += 3 + stringLength(v as string); break
      case PropType.Binary: n += 3 + binaryLength(v as Uint8Array); break
      case PropType.Varint: {
        const ids = v as number[]
        for (let j = 0; j < ids.length; j++) n += 1 + varintLength(ids[j]!)
        break
      }
      case PropType.Pair: {
        const pairs = v as Array<[string, string]>
        for (let j = 0; j < pairs.length; j++) {
          const pair = pairs[j]!
          n += 5 + stringLength(pair[0]) + stringLength(pair[1])
        }
        break
      }
    }
  }
  return n
}

/** Writes the varint length `len` (from propertiesLength) and the properties; returns the next offset. */
export function writeProperties (buf: Buffer, off: number, props: Properties | undefined, slot: number, len: number): number {
  off = writeVarint(buf, off, len)
  if (len === 0 || props === undefined) return off
  const defs = BySlot[slot]!
  const p = props as Record<string, unknown>
  for (let i = 0; i < defs.length; i++) {
    const d = defs[i]!
    const v = p[d.name]
    if (v === undefined || v === null) continue
    switch (d.type) {
      case PropType.Byte:
        buf[off] = d.id
        buf[off + 1] = v as number
        off += 2
        break
      case PropType.TwoByte:
        buf[off] = d.id
        off = writeU16(buf, off + 1, v as number)
        break
      case PropType.FourByte:
        buf[off] = d.id
        off = writeU32(buf, off + 1, v as number)
        break
      case PropType.String: {
        const s = v as string
        buf[off] = d.id
        off = writeString(buf, off + 1, s, stringLength(s))
        break
      }
      case PropType.Binary:
        buf[off] = d.id
        off = writeBinary(buf, off + 1, v as Uint8Array)
        break
      case PropType.Varint: {
        const ids = v as number[]
        for (let j = 0; j < ids.length; j++) {
          const id = ids[j]!
          if (!(id >= 1 && id <= 268_435_455)) throw new MqttEncodeError(`subscription identifier ${id} out of range`)
          buf[off] = d.id
          off = writeVarint(buf, off + 1, id)
        }
        break
      }
      case PropType.Pair: {
        const pairs = v as Array<[string, string]>
        for (let j = 0; j < pairs.length; j++) {
          const pair = pairs[j]!
          buf[off] = d.id
          off = writeString(buf, off + 1, pair[0], stringLength(pair[0]))
          off = writeString(buf, off, pair[1], stringLength(pair[1]))
        }
        break
      }
    }
  }
  return off
}
