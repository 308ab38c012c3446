/**
 * The values the Redis store (redis-store.ts) keeps in its hashes, as bytes. Each starts with a u8 format
 * version (1), then fields with record-buffer.ts's encoding (big-endian integers, f64 ids and times,
 * u32-length strings and bytes). Message and will bodies are MQTT v5 PUBLISH packets (publish-bytes.ts).
 * FROZEN for version 1: a change is a new version and a reader for the old one.
 *
 * Fields of a session hash (one Redis hash per persistent session):
 *   'm'         meta: u32 expiry interval, u8 has-username, [str username], f64 disconnectedAt
 *   'w'         will: f64 dueAt, u32 Will Delay Interval, bytes PUBLISH
 *   's:<key>'   subscription: str filter, str group, u8 qos, u8 flags (1 noLocal, 2 RAP, 4*RH), u32 sub id
 *   'o:<oid>'   delivery: f64 messageId, u8 qos, u8 retain, u8 n, n x u32 sub ids, u16 packet id, u8 released, f64 seq
 *   'b:<id>'    message body: f64 expiresAt, str origin, bytes PUBLISH
 *   'i:<pid>'   QoS 2 packet id received and not yet released: empty value
 * The retained hash holds topic -> str writer node id, f64 message id (in the writer's id space), f64
 * expiresAt, str origin, bytes PUBLISH.
 */
import type { QoS } from '../protocol/constants.js'
import { PublishBytesReader, StoredVersion, storedPublish, willBytes } from './publish-bytes.js'
import { RecordReader, RecordWriter } from './record-buffer.js'
import type { StoredMessage, StoredOutgoing, StoredSubscription, StoredWill } from './store.js'

const Version = 1

/** A delivery as the session hash keeps it: StoredOutgoing without its oid (the field name) plus its order. */
export interface DeliveryRecord extends Omit<StoredOutgoing, 'oid'> {
  /** Order within the session: queue order while queued, send order once sent (re-stamped at send). */
  seq: number
}

export interface SessionMeta {
  expiryInterval: number
  username: string | undefined
  disconnectedAt: number
}

/** Writes and reads the values; one instance per store (it reuses its buffers). */
export class RedisRecords {
  private readonly w = new RecordWriter(1024)
  private readonly publish = new PublishBytesReader()

  private start(): RecordWriter {
    this.w.reset()
    return this.w.u8(Version)
  }

  /** A copy of what was written: the writer's buffer is reused by the next value. */
  private done(): Buffer {
    return Buffer.from(this.w.take())
  }

  private reader(b: Buffer): RecordReader {
    const r = new RecordReader(b, 0, b.length)
    const v = r.u8()
    if (v !== Version) throw new RangeError(`value format version ${v} is not readable (this Midge reads ${Version})`)
    return r
  }

  meta(m: SessionMeta): Buffer {
    const w = this.start().u32(m.expiryInterval)
    if (m.username === undefined) w.u8(0)
    else w.u8(1).str(m.username)
    w.f64(m.disconnectedAt)
    return this.done()
  }

  readMeta(b: Buffer): SessionMeta {
    const r = this.reader(b)
    const expiryInterval = r.u32()
    const username = r.u8() === 1 ? r.str() : undefined
    return { expiryInterval, username, disconnectedAt: r.f64() }
  }

  will(will: StoredWill): Buffer {
    const { delay, bytes } = willBytes(will.will)
    this.start().f64(will.dueAt).u32(delay).bytes(bytes)
    return this.done()
  }

  readWill(b: Buffer): StoredWill {
    const r = this.reader(b)
    const dueAt = r.f64()
    const delay = r.u32()
    return { will: this.publish.readWill(delay, r.bytes()), dueAt }
  }

  subscription(s: StoredSubscription): Buffer {
    const flags = (s.noLocal ? 1 : 0) | (s.retainAsPublished ? 2 : 0) | (s.retainHandling << 2)
    this.start().str(s.filter).str(s.group).u8(s.qos).u8(flags).u32(s.subscriptionId)
    return this.done()
  }

  readSubscription(key: string, b: Buffer): StoredSubscription {
    const r = this.reader(b)
    const filter = r.str()
    const group = r.str()
    const qos = r.u8() as QoS
    const flags = r.u8()
    const subscriptionId = r.u32()
    return { key, filter, group, qos, noLocal: (flags & 1) !== 0, retainAsPublished: (flags & 2) !== 0, retainHandling: ((flags >> 2) & 3) as 0 | 1 | 2, subscriptionId }
  }

  delivery(d: DeliveryRecord): Buffer {
    const w = this.start().f64(d.messageId).u8(d.qos).u8(d.retain ? 1 : 0).ids(d.subscriptionIds)
    w.u16(d.packetId).u8(d.released ? 1 : 0).f64(d.seq)
    return this.done()
  }

  readDelivery(b: Buffer): DeliveryRecord {
    const r = this.reader(b)
    const messageId = r.f64()
    const qos = r.u8() as QoS
    const retain = r.u8() === 1
    const subscriptionIds = r.ids()
    return { messageId, qos, retain, subscriptionIds, packetId: r.u16(), released: r.u8() === 1, seq: r.f64() }
  }

  /** A message body inside a session hash (its id is the field name). */
  body(m: StoredMessage): Buffer {
    this.start().f64(m.expiresAt).str(m.origin).publish(storedPublish(m.topic, m.payload, m.qos, m.retain, m.properties), StoredVersion)
    return this.done()
  }

  readBody(id: number, b: Buffer): StoredMessage {
    const r = this.reader(b)
    const expiresAt = r.f64()
    const origin = r.str()
    const p = this.publish.read(r.bytes())
    return { id, topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, properties: p.properties, expiresAt, origin }
  }

  /** A retained message (its topic is the field name), with the node that wrote it. */
  retained(node: string, m: StoredMessage): Buffer {
    this.start().str(node).f64(m.id).f64(m.expiresAt).str(m.origin).publish(storedPublish(m.topic, m.payload, m.qos, m.retain, m.properties), StoredVersion)
    return this.done()
  }

  readRetained(b: Buffer): { node: string; msg: StoredMessage } {
    const r = this.reader(b)
    const node = r.str()
    const id = r.f64()
    const expiresAt = r.f64()
    const origin = r.str()
    const p = this.publish.read(r.bytes())
    return { node, msg: { id, topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, properties: p.properties, expiresAt, origin } }
  }
}
