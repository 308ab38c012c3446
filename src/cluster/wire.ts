/**
 * The bytes one node sends another: a batch of messages (one Redis Stream entry per target node per event-loop
 * turn, or one retained message on the retained channel). MQTT's own field encodings (2-byte-length strings,
 * the PUBLISH property block) so the codec's writers and bounds-checked Reader do the work; a malformed batch
 * (another version of Midge, a foreign writer) throws MQTT_ERR_MALFORMED and is skipped by the receiver.
 *
 *   batch   = version(1) origin-node(string) count(u32) message*
 *   message = flags(1: qos | retain<<2 | normal<<3 | props<<4) topic(string) client(string) expiresAt(f64)
 *             from(string: the node it was first forwarded by, '' = the batch's) seq(f64: its number there)
 *             [properties(varint length + PUBLISH properties)] payload(u32 length + bytes) groups(u16) (name filter)*
 * `normal`: deliver to the node's ordinary subscriptions; `groups`: the share groups the origin chose that node for.
 * (from, seq) names one published message cluster-wide: a node receiving a copy redirected to a session that
 * moved to it (moves.ts) recognises the copy it already had directly.
 */
import { PacketType, type QoS } from '../protocol/constants.js'
import type { Properties } from '../protocol/packets.js'
import { decodeProperties, propertiesLength, writeProperties } from '../protocol/properties.js'
import { Reader } from '../protocol/reader.js'
import { varintLength } from '../protocol/varint.js'
import { stringLength, writeString, writeU16, writeU32 } from '../protocol/write.js'
import { malformed } from '../protocol/errors.js'

const Version = 2

/** One message as it travels: the broker's Message has these fields (structural, so no import of broker/). */
export interface WireMessage {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: QoS
  readonly retain: boolean
  readonly properties: Properties | undefined
  readonly expiresAt: number
  readonly origin: string
}

/** One message for one node: whether its ordinary subscriptions match, and the share groups it was chosen for. */
export class Forward {
  normal = false
  groups: Array<readonly [string, string]> | undefined = undefined
  /** `from` undefined: the node sending the batch. */
  constructor (readonly msg: WireMessage, readonly seq = 0, readonly from: string | undefined = undefined) {}
}

/** A message as decodeBatch gives it: the message, and how it was forwarded (Forward's fields, `from` filled in). */
export interface Received extends WireMessage {
  readonly normal: boolean
  readonly groups: Array<readonly [string, string]> | undefined
  readonly from: string
  readonly seq: number
}

export function encodeBatch (node: string, list: readonly Forward[]): Buffer {
  let size = 1 + 2 + stringLength(node) + 4
  const propLens: number[] = []
  for (const f of list) {
    const m = f.msg
    const pl = m.properties === undefined ? 0 : propertiesLength(m.properties, PacketType.Publish)
    propLens.push(pl)
    size += 1 + 2 + stringLength(m.topic) + 2 + stringLength(m.origin) + 8 + 2 + stringLength(f.from ?? '') + 8 + (pl > 0 ? varintLength(pl) + pl : 0) + 4 + m.payload.length + 2
    if (f.groups !== undefined) for (const [g, flt] of f.groups) size += 4 + stringLength(g) + stringLength(flt)
  }
  const buf = Buffer.allocUnsafe(size)
  buf[0] = Version
  let off = writeString(buf, 1, node, stringLength(node))
  off = writeU32(buf, off, list.length)
  for (let i = 0; i < list.length; i++) {
    const f = list[i]!
    const m = f.msg
    const pl = propLens[i]!
    buf[off++] = m.qos | (m.retain ? 4 : 0) | (f.normal ? 8 : 0) | (pl > 0 ? 16 : 0)
    off = writeString(buf, off, m.topic, stringLength(m.topic))
    off = writeString(buf, off, m.origin, stringLength(m.origin))
    off = buf.writeDoubleBE(m.expiresAt, off)
    off = writeString(buf, off, f.from ?? '', stringLength(f.from ?? ''))
    off = buf.writeDoubleBE(f.seq, off)
    if (pl > 0) off = writeProperties(buf, off, m.properties, PacketType.Publish, pl)
    off = writeU32(buf, off, m.payload.length)
    off += m.payload.copy(buf, off)
    const groups = f.groups
    off = writeU16(buf, off, groups === undefined ? 0 : groups.length)
    if (groups !== undefined) {
      for (const [g, flt] of groups) {
        off = writeString(buf, off, g, stringLength(g))
        off = writeString(buf, off, flt, stringLength(flt))
      }
    }
  }
  return buf
}

/** The origin node and the messages of a batch; payloads are copies (the batch buffer is not kept alive by them). */
export function decodeBatch (buf: Buffer): { node: string; messages: Received[] } {
  const r = new Reader()
  r.reset(buf, 0, buf.length)
  if (r.u8() !== Version) throw malformed('cluster batch of an unknown version')
  const node = r.string()
  const count = r.u32()
  const messages: Received[] = []
  for (let i = 0; i < count; i++) {
    const flags = r.u8()
    const qos = (flags & 3) as QoS
    if (qos > 2) throw malformed('cluster batch: QoS 3')
    const topic = r.string()
    const origin = r.string()
    if (r.pos + 8 > r.end) throw malformed('cluster batch ends inside a timestamp')
    const expiresAt = buf.readDoubleBE(r.pos)
    r.pos += 8
    const from = r.string() || node
    if (r.pos + 8 > r.end) throw malformed('cluster batch ends inside a sequence number')
    const seq = buf.readDoubleBE(r.pos)
    r.pos += 8
    const properties = (flags & 16) !== 0 ? decodeProperties(r, PacketType.Publish) : undefined
    const len = r.u32()
    if (r.pos + len > r.end) throw malformed('cluster batch: payload overruns the batch')
    const payload = Buffer.from(buf.subarray(r.pos, r.pos + len))
    r.pos += len
    const n = r.u16()
    let groups: Array<readonly [string, string]> | undefined
    if (n > 0) {
      groups = []
      for (let j = 0; j < n; j++) groups.push([r.string(), r.string()])
    }
    messages.push({ topic, payload, qos, retain: (flags & 4) !== 0, properties, expiresAt, origin, normal: (flags & 8) !== 0, groups, from, seq })
  }
  return { node, messages }
}
