/**
 * One decode function per packet type. Each reads the variable header and payload of a single complete packet
 * from the Reader (already bounded to that packet) and returns a fixed-shape packet object; every rule breach
 * throws an MqttProtocolError. The Decoder (decoder.ts) does the framing and the fixed-header flag checks.
 */
import { PacketType } from './constants.js'
import type { ProtocolVersion, QoS } from './constants.js'
import { malformed, protocolError, unsupportedVersion } from './errors.js'
import type {
  AckPacket, AuthPacket, ConnackPacket, ConnectPacket, DisconnectPacket, Properties, PublishPacket,
  SubackPacket, SubscribePacket, Subscription, UnsubackPacket, UnsubscribePacket, WillMessage,
} from './packets.js'
import { decodeProperties, WillSlot } from './properties.js'
import type { Reader } from './reader.js'

/** Receives the protocol version as soon as CONNECT names it, before the rest of CONNECT is read. */
export interface VersionSink {
  protocolVersion: ProtocolVersion
  /** Set once a CONNECT's properties are read: its Maximum Packet Size, 0 = none (always 0 for 3.x). */
  peerMaxPacketSize: number
}

function done (r: Reader): void {
  if (r.pos !== r.end) throw malformed('unexpected bytes after the end of the packet')
}

function packetId (r: Reader): number {
  const id = r.u16()
  if (id === 0) throw protocolError('packet identifier 0') // [MQTT-2.3.1-1]
  return id
}

export function decodeConnect (r: Reader, sink: VersionSink): ConnectPacket {
  const protocolName = r.string()
  const levelByte = r.u8()
  // Mosquitto bridges set the top bit of the level ("try_private").
  const bridge = (levelByte & 0x80) !== 0
  const level = levelByte & 0x7f
  let version: ProtocolVersion
  if (protocolName === 'MQTT' && (level === 4 || level === 5)) version = level
  else if (protocolName === 'MQIsdp' && level === 3) version = 3
  else if (protocolName === 'MQTT' || protocolName === 'MQIsdp') {
    // [MQTT-3.1.2-2]: answer with CONNACK 0x01 (3.x) or 0x84 (5.0) in the dialect the client used.
    throw unsupportedVersion(`unsupported protocol level ${level} for ${protocolName}`, level === 5 ? 5 : protocolName === 'MQTT' ? 4 : 3)
  } else {
    // [MQTT-3.1.2-1]: unknown protocol name; the server may just close the connection.
    throw unsupportedVersion(`unknown protocol name ${JSON.stringify(protocolName)}`)
  }
  sink.protocolVersion = version

  const flags = r.u8()
  if ((flags & 0x01) !== 0) throw malformed('CONNECT reserved flag is set') // [MQTT-3.1.2-3]
  const willFlag = (flags & 0x04) !== 0
  const willQos = (flags >> 3) & 3
  const willRetain = (flags & 0x20) !== 0
  const passwordFlag = (flags & 0x40) !== 0
  const usernameFlag = (flags & 0x80) !== 0
  if (willQos === 3) throw malformed('will QoS 3') // [MQTT-3.1.2-14]
  if (!willFlag && (willQos !== 0 || willRetain)) {
    throw malformed('will QoS or will retain set without the will flag') // [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]
  }
  if (passwordFlag && !usernameFlag && version < 5) throw malformed('password flag without username flag') // [MQTT-3.1.2-22]
  const keepAlive = r.u16()
  const properties = version === 5 ? decodeProperties(r, PacketType.Connect) : undefined
  // Lets a server answer a CONNECT that fails further on within the client's limit [MQTT-3.2.2-19].
  sink.peerMaxPacketSize = properties?.maximumPacketSize ?? 0
  const clientId = r.string()
  let will: WillMessage | undefined
  if (willFlag) {
    const willProps = version === 5 ? decodeProperties(r, WillSlot) : undefined
    const topic = r.string()
    const payload = r.binary()
    will = { topic, payload, qos: willQos as QoS, retain: willRetain, properties: willProps }
  }
  const username = usernameFlag ? r.string() : undefined
  const password = passwordFlag ? r.binary() : undefined
  done(r)
  return {
    type: PacketType.Connect,
    protocolName,
    protocolVersion: version,
    bridge,
    cleanStart: (flags & 0x02) !== 0,
    keepAlive,
    clientId,
    username,
    password,
    will,
    properties,
  }
}

export function decodeConnack (r: Reader, version: ProtocolVersion): ConnackPacket {
  const flags = r.u8()
  if ((flags & 0xfe) !== 0) throw malformed('CONNACK reserved flags are set') // [MQTT-3.2.2-1]
  const reasonCode = r.u8()
  // A 3.1.1-only server refuses a v5 CONNECT with a 2-byte 3.x CONNACK (return code 1): read it, do not choke.
  const properties = version === 5 && r.remaining > 0 ? decodeProperties(r, PacketType.Connack) : undefined
  done(r)
  return { type: PacketType.Connack, sessionPresent: flags === 1, reasonCode, properties }
}

export function decodePublish (r: Reader, flags: number, version: ProtocolVersion): PublishPacket {
  const qos = (flags >> 1) & 3
  const topic = r.string()
  const id = qos === 0 ? 0 : packetId(r)
  const properties = version === 5 ? decodeProperties(r, PacketType.Publish) : undefined
  return {
    type: PacketType.Publish,
    topic,
    payload: r.rest(),
    qos: qos as QoS,
    retain: (flags & 1) !== 0,
    dup: (flags & 8) !== 0,
    packetId: id,
    properties,
  }
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP. v5 may cut the packet after the id (reason 0) or after the reason code. */
export function decodeAck (r: Reader, type: 4 | 5 | 6 | 7, version: ProtocolVersion): AckPacket {
  const id = packetId(r)
  let reasonCode = 0
  let properties: Properties | undefined
  if (version === 5 && r.remaining > 0) {
    reasonCode = r.u8()
    if (r.remaining > 0) properties = decodeProperties(r, type)
  }
  done(r)
  return { type, packetId: id, reasonCode, properties }
}

export function decodeSubscribe (r: Reader, version: ProtocolVersion): SubscribePacket {
  const id = packetId(r)
  const properties = version === 5 ? decodeProperties(r, PacketType.Subscribe) : undefined
  const subscriptions: Subscription[] = []
  while (r.remaining > 0) {
    const topicFilter = r.string()
    const opts = r.u8()
    const qos = opts & 3
    if (qos === 3) throw malformed('requested QoS 3') // [MQTT-3.8.3-4] (3.1.1) / 3.8.3.1 (5.0)
    let noLocal = false
    let retainAsPublished = false
    let retainHandling = 0
    if (version === 5) {
      if ((opts & 0xc0) !== 0) throw malformed('subscription options reserved bits are set') // [MQTT-3.8.3-5]
      noLocal = (opts & 0x04) !== 0
      retainAsPublished = (opts & 0x08) !== 0
      retainHandling = (opts >> 4) & 3
      if (retainHandling === 3) throw protocolError('retain handling 3') // 3.8.3.1
    } else if ((opts & 0xfc) !== 0) {
      throw malformed('subscription options reserved bits are set') // [MQTT-3-8.3-4] (3.1.1)
    }
    subscriptions.push({ topicFilter, qos: qos as QoS, noLocal, retainAsPublished, retainHandling: retainHandling as 0 | 1 | 2 })
  }
  if (subscriptions.length === 0) throw protocolError('SUBSCRIBE without topic filters') // [MQTT-3.8.3-3]
  return { type: PacketType.Subscribe, packetId: id, subscriptions, properties }
}

export function decodeSuback (r: Reader, version: ProtocolVersion): SubackPacket {
  const id = packetId(r)
  const properties = version === 5 ? decodeProperties(r, PacketType.Suback) : undefined
  const reasonCodes: number[] = []
  while (r.remaining > 0) reasonCodes.push(r.u8())
  if (reasonCodes.length === 0) throw protocolError('SUBACK without reason codes') // [MQTT-3.9.3-1]
  return { type: PacketType.Suback, packetId: id, reasonCodes, properties }
}

export function decodeUnsubscribe (r: Reader, version: ProtocolVersion): UnsubscribePacket {
  const id = packetId(r)
  const properties = version === 5 ? decodeProperties(r, PacketType.Unsubscribe) : undefined
  const topicFilters: string[] = []
  while (r.remaining > 0) topicFilters.push(r.string())
  if (topicFilters.length === 0) throw protocolError('UNSUBSCRIBE without topic filters') // [MQTT-3.10.3-2]
  return { type: PacketType.Unsubscribe, packetId: id, topicFilters, properties }
}

export function decodeUnsuback (r: Reader, version: ProtocolVersion): UnsubackPacket {
  const id = packetId(r)
  const reasonCodes: number[] = []
  let properties: Properties | undefined
  if (version === 5) {
    properties = decodeProperties(r, PacketType.Unsuback)
    while (r.remaining > 0) reasonCodes.push(r.u8())
    if (reasonCodes.length === 0) throw protocolError('UNSUBACK without reason codes') // [MQTT-3.11.3-1]
  }
  done(r)
  return { type: PacketType.Unsuback, packetId: id, reasonCodes, properties }
}

export function decodeDisconnect (r: Reader, version: ProtocolVersion): DisconnectPacket {
  let reasonCode = 0
  let properties: Properties | undefined
  if (version === 5 && r.remaining > 0) {
    reasonCode = r.u8()
    if (r.remaining > 0) properties = decodeProperties(r, PacketType.Disconnect)
  }
  done(r)
  return { type: PacketType.Disconnect, reasonCode, properties }
}

/** AUTH (5.0 only). Reason codes: 0x00 Success, 0x18 Continue authentication, 0x19 Re-authenticate. */
export function decodeAuth (r: Reader): AuthPacket {
  let reasonCode = 0
  let properties: Properties | undefined
  if (r.remaining > 0) {
    reasonCode = r.u8()
    if (reasonCode !== 0x00 && reasonCode !== 0x18 && reasonCode !== 0x19) {
      throw protocolError(`AUTH reason code 0x${reasonCode.toString(16)}`) // [MQTT-3.15.2-1]
    }
    if (r.remaining > 0) properties = decodeProperties(r, PacketType.Auth)
  }
  done(r)
  return { type: PacketType.Auth, reasonCode, properties }
}
