/**
 * Packet encoder. Every packet is sized exactly first, then written into one Buffer.allocUnsafe: no chunks,
 * no concat, no intermediate arrays. Properties not allowed in a packet type are not written (see properties.ts).
 * Callers pass the negotiated version; packet.protocolName/protocolVersion of a CONNECT are not consulted.
 */
import { MaxVarint, PacketType } from './constants.js'
import type { ProtocolVersion } from './constants.js'
import { MqttEncodeError } from './errors.js'
import type {
  AckPacket, AuthPacket, ConnackPacket, ConnectPacket, DisconnectPacket, Packet, PublishPacket, SubackPacket,
  SubscribePacket, UnsubackPacket, UnsubscribePacket,
} from './packets.js'
import { propertiesLength, WillSlot, writeProperties } from './properties.js'
import { varintLength, writeVarint } from './varint.js'
import { binaryLength, stringLength, writeBinary, writeString, writeU16 } from './write.js'

function alloc (first: number, remaining: number): Buffer {
  if (remaining > MaxVarint) throw new MqttEncodeError(`remaining length ${remaining} exceeds ${MaxVarint}`)
  const buf = Buffer.allocUnsafe(1 + varintLength(remaining) + remaining)
  buf[0] = first
  return buf
}

/** Property block size: varint prefix + properties. */
function block (propLen: number): number {
  return varintLength(propLen) + propLen
}

function checkPacketId (id: number): void {
  if (!(id >= 1 && id <= 65_535)) throw new MqttEncodeError(`packet identifier ${id} out of range 1..65535`)
}

// ---- PUBLISH: the hot path ----

/** Fixed-header flags byte of a PUBLISH. */
function publishFirst (p: PublishPacket): number {
  return 0x30 | (p.dup ? 8 : 0) | (p.qos << 1) | (p.retain ? 1 : 0)
}

function publishRemaining (p: PublishPacket, version: ProtocolVersion, topicLen: number, propLen: number): number {
  let n = 2 + topicLen + p.payload.length
  if (p.qos > 0) n += 2
  if (version === 5) n += block(propLen)
  return n
}

export function encodePublish (p: PublishPacket, version: ProtocolVersion): Buffer {
  const topicLen = stringLength(p.topic)
  const propLen = version === 5 ? propertiesLength(p.properties, PacketType.Publish) : 0
  const remaining = publishRemaining(p, version, topicLen, propLen)
  const buf = alloc(publishFirst(p), remaining)
  writePublishBody(buf, 1, p, version, topicLen, propLen, remaining)
  return buf
}

/** The bytes p takes encoded, for writing it into a buffer of the caller's (writePublish). */
export function publishSize (p: PublishPacket, version: ProtocolVersion): number {
  const topicLen = stringLength(p.topic)
  const propLen = version === 5 ? propertiesLength(p.properties, PacketType.Publish) : 0
  const remaining = publishRemaining(p, version, topicLen, propLen)
  if (remaining > MaxVarint) throw new MqttEncodeError(`remaining length ${remaining} exceeds ${MaxVarint}`)
  return 1 + varintLength(remaining) + remaining
}

/**
 * Writes p at buf[off], where publishSize(p, version) bytes must be free: the log store's message records
 * hold the packet without an intermediate Buffer. Returns the offset after it.
 */
export function writePublish (buf: Buffer, off: number, p: PublishPacket, version: ProtocolVersion): number {
  const topicLen = stringLength(p.topic)
  const propLen = version === 5 ? propertiesLength(p.properties, PacketType.Publish) : 0
  const remaining = publishRemaining(p, version, topicLen, propLen)
  buf[off] = publishFirst(p)
  return writePublishBody(buf, off + 1, p, version, topicLen, propLen, remaining)
}

/** Everything after the first byte: remaining length, topic, packet id, properties, payload. */
function writePublishBody (buf: Buffer, off: number, p: PublishPacket, version: ProtocolVersion, topicLen: number, propLen: number, remaining: number): number {
  off = writeVarint(buf, off, remaining)
  off = writeString(buf, off, p.topic, topicLen)
  if (p.qos > 0) {
    checkPacketId(p.packetId)
    off = writeU16(buf, off, p.packetId)
  }
  if (version === 5) off = writeProperties(buf, off, p.properties, PacketType.Publish, propLen)
  buf.set(p.payload, off)
  return off + p.payload.length
}

// ---- CONNECT / CONNACK ----

function connectRemaining (p: ConnectPacket, version: ProtocolVersion): number {
  const v5 = version === 5
  let n = (version === 3 ? 8 : 6) + 1 + 1 + 2 // protocol name, level, flags, keep alive
  if (v5) n += block(propertiesLength(p.properties, PacketType.Connect))
  n += 2 + stringLength(p.clientId)
  const w = p.will
  if (w !== undefined) {
    if (v5) n += block(propertiesLength(w.properties, WillSlot))
    n += 2 + stringLength(w.topic) + 2 + binaryLength(w.payload)
  }
  if (p.username !== undefined) n += 2 + stringLength(p.username)
  if (p.password !== undefined) n += 2 + binaryLength(p.password)
  return n
}

export function encodeConnect (p: ConnectPacket, version: ProtocolVersion): Buffer {
  if (version < 5 && p.password !== undefined && p.username === undefined) {
    throw new MqttEncodeError('MQTT 3.x forbids a password without a username') // [MQTT-3.1.2-22]
  }
  const remaining = connectRemaining(p, version)
  const buf = alloc(0x10, remaining)
  let off = writeVarint(buf, 1, remaining)
  off = version === 3 ? writeString(buf, off, 'MQIsdp', 6) : writeString(buf, off, 'MQTT', 4)
  buf[off++] = version | (p.bridge ? 0x80 : 0)
  const w = p.will
  let flags = p.cleanStart ? 0x02 : 0
  if (w !== undefined) flags |= 0x04 | (w.qos << 3) | (w.retain ? 0x20 : 0)
  if (p.password !== undefined) flags |= 0x40
  if (p.username !== undefined) flags |= 0x80
  buf[off++] = flags
  off = writeU16(buf, off, p.keepAlive)
  if (version === 5) off = writeProperties(buf, off, p.properties, PacketType.Connect, propertiesLength(p.properties, PacketType.Connect))
  off = writeString(buf, off, p.clientId, stringLength(p.clientId))
  if (w !== undefined) {
    if (version === 5) off = writeProperties(buf, off, w.properties, WillSlot, propertiesLength(w.properties, WillSlot))
    off = writeString(buf, off, w.topic, stringLength(w.topic))
    off = writeBinary(buf, off, w.payload)
  }
  if (p.username !== undefined) off = writeString(buf, off, p.username, stringLength(p.username))
  if (p.password !== undefined) writeBinary(buf, off, p.password)
  return buf
}

export function encodeConnack (p: ConnackPacket, version: ProtocolVersion): Buffer {
  const propLen = version === 5 ? propertiesLength(p.properties, PacketType.Connack) : 0
  const remaining = 2 + (version === 5 ? block(propLen) : 0)
  const buf = alloc(0x20, remaining)
  let off = writeVarint(buf, 1, remaining)
  buf[off++] = p.sessionPresent ? 1 : 0
  buf[off++] = p.reasonCode
  if (version === 5) writeProperties(buf, off, p.properties, PacketType.Connack, propLen)
  return buf
}

// ---- PUBACK / PUBREC / PUBREL / PUBCOMP, DISCONNECT, AUTH: optional reason code + properties ----

/** Bytes after the packet id (acks) or the fixed header: v5 drops the reason and properties when possible. */
function reasonTailLength (reasonCode: number, propLen: number): number {
  if (propLen > 0) return 1 + block(propLen)
  return reasonCode !== 0 ? 1 : 0
}

function writeReasonTail (buf: Buffer, off: number, reasonCode: number, props: AckPacket['properties'], slot: number, propLen: number): number {
  if (propLen > 0) {
    buf[off++] = reasonCode
    return writeProperties(buf, off, props, slot, propLen)
  }
  if (reasonCode !== 0) buf[off++] = reasonCode
  return off
}

const AckFirst = [0, 0, 0, 0, 0x40, 0x50, 0x62, 0x70]

export function encodeAck (p: AckPacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId)
  const propLen = version === 5 ? propertiesLength(p.properties, p.type) : 0
  const rc = version === 5 ? p.reasonCode ?? 0 : 0
  const remaining = 2 + (version === 5 ? reasonTailLength(rc, propLen) : 0)
  const buf = alloc(AckFirst[p.type]!, remaining)
  let off = writeVarint(buf, 1, remaining)
  off = writeU16(buf, off, p.packetId)
  if (version === 5) writeReasonTail(buf, off, rc, p.properties, p.type, propLen)
  return buf
}

export function encodeDisconnect (p: DisconnectPacket, version: ProtocolVersion): Buffer {
  const propLen = version === 5 ? propertiesLength(p.properties, PacketType.Disconnect) : 0
  const rc = version === 5 ? p.reasonCode ?? 0 : 0
  const remaining = version === 5 ? reasonTailLength(rc, propLen) : 0
  const buf = alloc(0xe0, remaining)
  const off = writeVarint(buf, 1, remaining)
  if (version === 5) writeReasonTail(buf, off, rc, p.properties, PacketType.Disconnect, propLen)
  return buf
}

export function encodeAuth (p: AuthPacket, version: ProtocolVersion): Buffer {
  if (version !== 5) throw new MqttEncodeError('AUTH exists only in MQTT 5.0')
  const propLen = propertiesLength(p.properties, PacketType.Auth)
  const rc = p.reasonCode ?? 0
  const remaining = reasonTailLength(rc, propLen)
  const buf = alloc(0xf0, remaining)
  const off = writeVarint(buf, 1, remaining)
  writeReasonTail(buf, off, rc, p.properties, PacketType.Auth, propLen)
  return buf
}

// ---- SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK ----

export function encodeSubscribe (p: SubscribePacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId)
  const propLen = version === 5 ? propertiesLength(p.properties, PacketType.Subscribe) : 0
  let remaining = 2 + (version === 5 ? block(propLen) : 0)
  const subs = p.subscriptions
  for (let i = 0; i < subs.length; i++) remaining += 3 + stringLength(subs[i]!.topicFilter)
  const buf = alloc(0x82, remaining)
  let off = writeVarint(buf, 1, remaining)
  off = writeU16(buf, off, p.packetId)
  if (version === 5) off = writeProperties(buf, off, p.properties, PacketType.Subscribe, propLen)
  for (let i = 0; i < subs.length; i++) {
    const s = subs[i]!
    off = writeString(buf, off, s.topicFilter, stringLength(s.topicFilter))
    let opts: number = s.qos
    if (version === 5) {
      opts |= (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0) | ((s.retainHandling ?? 0) << 4)
    }
    buf[off++] = opts
  }
  return buf
}

export function encodeSuback (p: SubackPacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId)
  const propLen = version === 5 ? propertiesLength(p.properties, PacketType.Suback) : 0
  const codes = p.reasonCodes
  const remaining = 2 + (version === 5 ? block(propLen) : 0) + codes.length
  const buf = alloc(0x90, remaining)
  let off = writeVarint(buf, 1, remaining)
  off = writeU16(buf, off, p.packetId)
  if (version === 5) off = writeProperties(buf, off, p.properties, PacketType.Suback, propLen)
  for (let i = 0; i < codes.length; i++) buf[off++] = codes[i]!
  return buf
}

export function encodeUnsubscribe (p: UnsubscribePacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId)
  const propLen = version === 5 ? propertiesLength(p.properties, PacketType.Unsubscribe) : 0
  let remaining = 2 + (version === 5 ? block(propLen) : 0)
  const filters = p.topicFilters
  for (let i = 0; i < filters.length; i++) remaining += 2 + stringLength(filters[i]!)
  const buf = alloc(0xa2, remaining)
  let off = writeVarint(buf, 1, remaining)
  off = writeU16(buf, off, p.packetId)
  if (version === 5) off = writeProperties(buf, off, p.properties, PacketType.Unsubscribe, propLen)
  for (let i = 0; i < filters.length; i++) off = writeString(buf, off, filters[i]!, stringLength(filters[i]!))
  return buf
}

export function encodeUnsuback (p: UnsubackPacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId)
  const v5 = version === 5
  const propLen = v5 ? propertiesLength(p.properties, PacketType.Unsuback) : 0
  const codes = p.reasonCodes
  const remaining = 2 + (v5 ? block(propLen) + codes.length : 0)
  const buf = alloc(0xb0, remaining)
  let off = writeVarint(buf, 1, remaining)
  off = writeU16(buf, off, p.packetId)
  if (v5) {
    off = writeProperties(buf, off, p.properties, PacketType.Unsuback, propLen)
    for (let i = 0; i < codes.length; i++) buf[off++] = codes[i]!
  }
  return buf
}

// ---- dispatch ----

const PingreqBytes = Buffer.from([0xc0, 0x00])
const PingrespBytes = Buffer.from([0xd0, 0x00])

export function encode (packet: Packet, version: ProtocolVersion): Buffer {
  switch (packet.type) {
    case PacketType.Publish: return encodePublish(packet, version)
    case PacketType.Puback:
    case PacketType.Pubrec:
    case PacketType.Pubrel:
    case PacketType.Pubcomp: return encodeAck(packet, version)
    case PacketType.Connect: return encodeConnect(packet, version)
    case PacketType.Connack: return encodeConnack(packet, version)
    case PacketType.Subscribe: return encodeSubscribe(packet, version)
    case PacketType.Suback: return encodeSuback(packet, version)
    case PacketType.Unsubscribe: return encodeUnsubscribe(packet, version)
    case PacketType.Unsuback: return encodeUnsuback(packet, version)
    // A fresh copy each time: callers may hand the buffer to a stream that keeps it.
    case PacketType.Pingreq: return Buffer.from(PingreqBytes)
    case PacketType.Pingresp: return Buffer.from(PingrespBytes)
    case PacketType.Disconnect: return encodeDisconnect(packet, version)
    case PacketType.Auth: return encodeAuth(packet, version)
    default: throw new MqttEncodeError(`unknown packet type ${(packet as { type: unknown }).type as string}`)
  }
}

/** Remaining length of a packet, computed exactly as the encoder does. */
function remainingLength (packet: Packet, version: ProtocolVersion): number {
  const v5 = version === 5
  switch (packet.type) {
    case PacketType.Publish: {
      const propLen = v5 ? propertiesLength(packet.properties, PacketType.Publish) : 0
      return publishRemaining(packet, version, stringLength(packet.topic), propLen)
    }
    case PacketType.Puback:
    case PacketType.Pubrec:
    case PacketType.Pubrel:
    case PacketType.Pubcomp:
      return 2 + (v5 ? reasonTailLength(packet.reasonCode ?? 0, propertiesLength(packet.properties, packet.type)) : 0)
    case PacketType.Connect: return connectRemaining(packet, version)
    case PacketType.Connack: return 2 + (v5 ? block(propertiesLength(packet.properties, PacketType.Connack)) : 0)
    case PacketType.Subscribe: {
      let n = 2 + (v5 ? block(propertiesLength(packet.properties, PacketType.Subscribe)) : 0)
      for (const s of packet.subscriptions) n += 3 + stringLength(s.topicFilter)
      return n
    }
    case PacketType.Suback:
      return 2 + (v5 ? block(propertiesLength(packet.properties, PacketType.Suback)) : 0) + packet.reasonCodes.length
    case PacketType.Unsubscribe: {
      let n = 2 + (v5 ? block(propertiesLength(packet.properties, PacketType.Unsubscribe)) : 0)
      for (const f of packet.topicFilters) n += 2 + stringLength(f)
      return n
    }
    case PacketType.Unsuback:
      return 2 + (v5 ? block(propertiesLength(packet.properties, PacketType.Unsuback)) + packet.reasonCodes.length : 0)
    case PacketType.Pingreq:
    case PacketType.Pingresp: return 0
    case PacketType.Disconnect:
      return v5 ? reasonTailLength(packet.reasonCode ?? 0, propertiesLength(packet.properties, PacketType.Disconnect)) : 0
    case PacketType.Auth:
      return reasonTailLength(packet.reasonCode ?? 0, propertiesLength(packet.properties, PacketType.Auth))
    default: throw new MqttEncodeError(`unknown packet type ${(packet as { type: unknown }).type as string}`)
  }
}

/** Total bytes encode(packet, version) produces, without encoding (e.g. to check the peer's Maximum Packet Size). */
export function encodedSize (packet: Packet, version: ProtocolVersion): number {
  const n = remainingLength(packet, version)
  return 1 + varintLength(n) + n
}
