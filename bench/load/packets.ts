/**
 * The MQTT 3.1.1 packets the load generator sends, encoded by hand from the specification
 * (OASIS MQTT 3.1.1, section 3). The generator deliberately shares no code with src/protocol:
 * a codec bug in the broker under test must not be mirrored by the tool that measures it.
 *
 * PUBLISH payload layout (little endian, payload size >= 16), the same as mqload's:
 *   [0,8) send time: process.hrtime.bigint() ns (CLOCK_MONOTONIC)   [8,12) publisher index
 *   [12,16) per-publisher sequence number                             [16,size) filler 'x'
 */

/** Control packet types (MQTT 3.1.1 table 2.1), local on purpose: see the header. */
export const Type = {
  Connect: 1,
  Connack: 2,
  Publish: 3,
  Puback: 4,
  Subscribe: 8,
  Suback: 9,
  Pingreq: 12,
  Pingresp: 13,
  Disconnect: 14,
} as const

export const PAYLOAD_HEADER = 16

export const PINGREQ = Buffer.from([0xc0, 0x00])
export const DISCONNECT = Buffer.from([0xe0, 0x00])

/** Bytes of the Remaining Length varint for `n` (section 2.2.3). */
function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4
}

function putVarint(buf: Buffer, off: number, n: number): number {
  do {
    let d = n % 128
    n = Math.floor(n / 128)
    if (n > 0) d |= 0x80
    buf[off++] = d
  } while (n > 0)
  return off
}

function putString(buf: Buffer, off: number, s: Buffer): number {
  buf.writeUInt16BE(s.length, off)
  s.copy(buf, off + 2)
  return off + 2 + s.length
}

function packet(first: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(1 + varintSize(body.length) + body.length)
  out[0] = first
  body.copy(out, putVarint(out, 1, body.length))
  return out
}

/** CONNECT, protocol level 4, clean session, no will, no credentials (section 3.1). */
export function encodeConnect(clientId: string, keepalive: number): Buffer {
  const id = Buffer.from(clientId, 'utf8')
  const body = Buffer.allocUnsafe(10 + 2 + id.length)
  let off = putString(body, 0, Buffer.from('MQTT'))
  body[off++] = 4 // protocol level 3.1.1
  body[off++] = 0x02 // clean session
  off = body.writeUInt16BE(keepalive, off)
  putString(body, off, id)
  return packet(0x10, body)
}

/** SUBSCRIBE with one topic filter (section 3.8); fixed header flags must be 0b0010. */
export function encodeSubscribe(packetId: number, filter: string, qos: number): Buffer {
  const f = Buffer.from(filter, 'utf8')
  const body = Buffer.allocUnsafe(2 + 2 + f.length + 1)
  body.writeUInt16BE(packetId, 0)
  const off = putString(body, 2, f)
  body[off] = qos
  return packet(0x82, body)
}

/** A PUBLISH encoded once and then copied and patched per message (packet id, stamp). */
export interface PublishTemplate {
  bytes: Buffer
  /** Offset of the 2-byte packet identifier, -1 at QoS 0. */
  packetIdOffset: number
  payloadOffset: number
}

export function publishTemplate(topic: string, qos: number, payloadSize: number): PublishTemplate {
  if (payloadSize < PAYLOAD_HEADER) throw new RangeError(`payload size must be >= ${PAYLOAD_HEADER}`)
  const t = Buffer.from(topic, 'utf8')
  const remaining = 2 + t.length + (qos > 0 ? 2 : 0) + payloadSize
  const bytes = Buffer.alloc(1 + varintSize(remaining) + remaining)
  bytes[0] = 0x30 | (qos << 1)
  let off = putString(bytes, putVarint(bytes, 1, remaining), t)
  const packetIdOffset = qos > 0 ? off : -1
  if (qos > 0) off += 2
  bytes.fill(0x78, off) // 'x'
  return { bytes, packetIdOffset, payloadOffset: off }
}

/**
 * Concatenate `count` copies of a template: a batch is then one memcpy plus field patches
 * instead of `count` small copies.
 */
export function repeatTemplate(t: PublishTemplate, count: number): Buffer {
  const len = t.bytes.length
  const out = Buffer.allocUnsafe(len * count)
  for (let i = 0; i < count; i++) t.bytes.copy(out, i * len)
  return out
}

/** PUBACK for `packetId` written at `off` of `buf` (section 3.4). */
export function putPuback(buf: Buffer, off: number, hi: number, lo: number): void {
  buf[off] = 0x40
  buf[off + 1] = 2
  buf[off + 2] = hi
  buf[off + 3] = lo
}
