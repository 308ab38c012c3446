/**
 * Reads Mosquitto's persistence file (mosquitto.db, format versions 3-6) into typed records. Pure: bytes in,
 * records out, plus a list of what was skipped and why. It never throws on damaged input: a chunk that
 * does not parse is skipped and the reader goes on with the next one; a chunk header whose length runs
 * past the end (a truncated file or a damaged length field) makes it search forward for the next chunk
 * that parses, so one bad byte does not lose everything after it.
 *
 * File layout (written by Mosquitto's persist__backup): 15-byte magic, 4-byte CRC (always 0), format
 * version as a big-endian u32, then chunks. Version 5/6 chunk header: u32 type, u32 body length; version
 * 3/4: u16 type, u32 length. All integers are big-endian EXCEPT the 64-bit ones (message store ids, expiry
 * times, last_db_id), which Mosquitto writes as they sit in memory: little-endian on x86 and ARM, big-endian
 * on s390x; byteOrder64() tells which from the CFG chunk.
 *
 * Version 5/6 bodies are C structs written as-is, so they carry the compiler's padding:
 *   CFG        u64 last_db_id, u8 shutdown, u8 dbid_size, 6 padding                          = 16
 *   MSG_STORE  u64 store_id, i64 expiry_time, u32 payloadlen, u16 source_mid, u16 source_id_len,
 *              u16 source_username_len, u16 topic_len, u16 source_port, u8 qos, u8 retain    = 32
 *              then source id, source username, topic, payload, MQTT 5 properties (rest of the chunk)
 *   CLIENT_MSG u64 store_id, u16 mid, u16 id_len, u8 qos, u8 state, u8 retain<<4|dup, u8 direction = 16
 *              then client id, MQTT 5 properties (rest of the chunk)
 *   RETAIN     u64 store_id                                                                 = 8
 *   SUB        u32 identifier, u16 id_len, u16 topic_len, u8 qos, u8 options, 2 padding      = 12
 *              then client id, topic filter
 *   CLIENT     i64 session_expiry_time, u32 session_expiry_interval, u16 last_mid, u16 id_len = 16 (v5)
 *              v6 adds u16 listener_port, u16 username_len, 4 padding                        = 24
 *              then client id, username
 * Version 3/4 bodies are field by field with u16-length-prefixed strings (see the read functions below).
 */
import { PacketType } from '../../protocol/constants.js'
import type { Properties } from '../../protocol/packets.js'
import { decodeProperties } from '../../protocol/properties.js'
import { Reader } from '../../protocol/reader.js'
import { ChunkNames, ChunkType, HeaderSize, isMosquittoDb, MosquittoMagic, SupportedVersions } from './format.js'

export interface MosqCfg {
  lastDbId: bigint
  /** The file was written at a clean shutdown (not an autosave). */
  shutdown: boolean
  dbidSize: number
}

export interface MosqMsgStore {
  storeId: bigint
  /** Seconds since the epoch at which the message expires; 0 = never. */
  expiryTime: number
  sourceMid: number
  /** Client id of the publisher ('' for messages the broker made). */
  sourceId: string
  sourceUsername: string | undefined
  sourcePort: number
  topic: string
  payload: Buffer
  qos: number
  retain: boolean
  properties: Properties | undefined
}

export interface MosqClient {
  clientId: string
  username: string | undefined
  /** Seconds since the epoch at which the session expires, set when the client disconnected; 0 = not set. */
  sessionExpiryTime: number
  /** undefined in versions 3/4, which predate MQTT 5 (every stored session was a v3 persistent one). */
  sessionExpiryInterval: number | undefined
  lastMid: number
  listenerPort: number
}

export interface MosqClientMsg {
  clientId: string
  storeId: bigint
  mid: number
  qos: number
  state: number
  retain: boolean
  dup: boolean
  direction: number
  properties: Properties | undefined
}

export interface MosqSub {
  clientId: string
  topic: string
  qos: number
  /** MQTT 5 Subscription Identifier; 0 = none. */
  identifier: number
  options: number
}

export interface Skipped {
  /** Byte offset of the chunk (or of the damage) in the file. */
  offset: number
  what: string
  reason: string
}

export interface MosquittoDb {
  /** Format version from the header; undefined when the header itself is unreadable. */
  version: number | undefined
  cfg: MosqCfg | undefined
  messages: MosqMsgStore[]
  clients: MosqClient[]
  clientMsgs: MosqClientMsg[]
  retains: bigint[]
  subs: MosqSub[]
  skipped: Skipped[]
  /** Chunks read successfully. */
  chunks: number
}

/** A chunk body that does not hold together: the chunk is skipped. */
class ChunkError extends Error {}

/** The fields parsed but end before the chunk does: the length field may be the damaged part. */
class LengthMismatch extends ChunkError {
  /** Where the fields may end: after the property block, or (no block written) before it. */
  constructor(message: string, readonly fieldsEnds: number[]) {
    super(message)
  }
}

/** Bounded cursor over one chunk body. */
class Body {
  pos: number
  /** bigEndian64: the file came from a big-endian machine (see byteOrder64). */
  constructor(readonly buf: Buffer, start: number, readonly end: number, readonly bigEndian64: boolean) {
    this.pos = start
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.end) throw new ChunkError(`${what} runs past the end of the chunk`)
  }

  u8(what: string): number { this.need(1, what); return this.buf[this.pos++]! }
  u16(what: string): number { this.need(2, what); const v = this.buf.readUInt16BE(this.pos); this.pos += 2; return v }
  u32(what: string): number { this.need(4, what); const v = this.buf.readUInt32BE(this.pos); this.pos += 4; return v }
  /** The 64-bit fields are in the byte order of the machine that wrote the file. */
  u64(what: string): bigint {
    this.need(8, what)
    const v = this.bigEndian64 ? this.buf.readBigUInt64BE(this.pos) : this.buf.readBigUInt64LE(this.pos)
    this.pos += 8
    return v
  }

  i64(what: string): number {
    this.need(8, what)
    const v = this.bigEndian64 ? this.buf.readBigInt64BE(this.pos) : this.buf.readBigInt64LE(this.pos)
    this.pos += 8
    return Number(v)
  }
  skip(n: number, what: string): void { this.need(n, what); this.pos += n }
  bytes(n: number, what: string): Buffer { this.need(n, what); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b }
  str(n: number, what: string): string { return utf8(this.bytes(n, what), what) }
  /** v3/v4 string: u16 length + bytes. */
  lstr(what: string): string { return this.str(this.u16(`${what} length`), what) }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

function utf8(b: Buffer, what: string): string {
  try {
    const s = strictUtf8.decode(b)
    if (s.includes('\u0000')) throw new ChunkError(`${what} contains U+0000`)
    return s
  } catch (err) {
    if (err instanceof ChunkError) throw err
    throw new ChunkError(`${what} is not valid UTF-8`)
  }
}

const propReader = new Reader()

/** The rest of a v5/v6 chunk: a property block as in a PUBLISH (varint length, then properties). */
function properties(b: Body, what: string): Properties | undefined {
  if (b.pos >= b.end) return undefined
  const start = b.pos
  propReader.reset(b.buf, b.pos, b.end)
  let props: Properties | undefined
  try {
    props = decodeProperties(propReader, PacketType.Publish)
  } catch (err) {
    throw new ChunkError(`${what} properties do not decode: ${(err as Error).message}`)
  }
  b.pos = propReader.pos
  if (b.pos !== b.end) throw new LengthMismatch(`${b.end - b.pos} bytes after the ${what} properties`, [start, b.pos])
  return props
}

function done(b: Body, what: string): void {
  if (b.pos !== b.end) throw new LengthMismatch(`${what} is ${b.end - b.pos} bytes longer than its fields`, [b.pos])
}

type Sink = Pick<MosquittoDb, 'messages' | 'clients' | 'clientMsgs' | 'retains' | 'subs'> & { cfg: MosqCfg | undefined }

function readChunk(type: number, b: Body, version: number, out: Sink): void {
  const v56 = version >= 5
  switch (type) {
    case ChunkType.Cfg: {
      let cfg: MosqCfg
      if (v56) {
        const lastDbId = b.u64('last_db_id')
        const shutdown = b.u8('shutdown') !== 0
        const dbidSize = b.u8('dbid_size')
        b.skip(6, 'padding')
        cfg = { lastDbId, shutdown, dbidSize }
      } else {
        const shutdown = b.u8('shutdown') !== 0
        const dbidSize = b.u8('dbid_size')
        cfg = { shutdown, dbidSize, lastDbId: b.u64('last_db_id') }
      }
      done(b, 'CFG')
      // Message store ids are 8 bytes in every Mosquitto release; another size means we cannot read the ids.
      if (cfg.dbidSize !== 8) throw new ChunkError(`dbid_size ${cfg.dbidSize}, expected 8`)
      out.cfg = cfg
      return
    }
    case ChunkType.MsgStore: {
      let m: MosqMsgStore
      if (v56) {
        const storeId = b.u64('store_id')
        const expiryTime = b.i64('expiry_time')
        const payloadLen = b.u32('payloadlen')
        const sourceMid = b.u16('source_mid')
        const idLen = b.u16('source_id_len')
        const userLen = b.u16('source_username_len')
        const topicLen = b.u16('topic_len')
        const sourcePort = b.u16('source_port')
        const qos = b.u8('qos')
        const retain = b.u8('retain') !== 0
        const sourceId = idLen > 0 ? b.str(idLen, 'source client id') : ''
        const sourceUsername = userLen > 0 ? b.str(userLen, 'source username') : undefined
        const topic = b.str(topicLen, 'topic')
        const payload = Buffer.from(b.bytes(payloadLen, 'payload'))
        m = { storeId, expiryTime, sourceMid, sourceId, sourceUsername, sourcePort, topic, payload, qos, retain, properties: properties(b, 'message') }
      } else {
        const storeId = b.u64('store_id')
        const sourceId = b.lstr('source client id')
        let sourceUsername: string | undefined
        let sourcePort = 0
        if (version === 4) {
          const u = b.lstr('source username')
          sourceUsername = u === '' ? undefined : u
          sourcePort = b.u16('source_port')
        }
        const sourceMid = b.u16('source_mid')
        b.u16('mid')
        const topic = b.lstr('topic')
        const qos = b.u8('qos')
        const retain = b.u8('retain') !== 0
        const payload = Buffer.from(b.bytes(b.u32('payloadlen'), 'payload'))
        done(b, 'MSG_STORE')
        m = { storeId, expiryTime: 0, sourceMid, sourceId, sourceUsername, sourcePort, topic, payload, qos, retain, properties: undefined }
      }
      if (m.qos > 2) throw new ChunkError(`QoS ${m.qos}`)
      out.messages.push(m)
      return
    }
    case ChunkType.ClientMsg: {
      let c: MosqClientMsg
      if (v56) {
        const storeId = b.u64('store_id')
        const mid = b.u16('mid')
        const idLen = b.u16('id_len')
        const qos = b.u8('qos')
        const state = b.u8('state')
        const retainDup = b.u8('retain_dup')
        const direction = b.u8('direction')
        const clientId = b.str(idLen, 'client id')
        c = { clientId, storeId, mid, qos, state, retain: (retainDup >> 4) !== 0, dup: (retainDup & 0x0f) !== 0, direction, properties: properties(b, 'client message') }
      } else {
        const clientId = b.lstr('client id')
        const storeId = b.u64('store_id')
        const mid = b.u16('mid')
        const qos = b.u8('qos')
        const retain = b.u8('retain') !== 0
        const direction = b.u8('direction')
        const state = b.u8('state')
        const dup = b.u8('dup') !== 0
        done(b, 'CLIENT_MSG')
        c = { clientId, storeId, mid, qos, state, retain, dup, direction, properties: undefined }
      }
      if (c.clientId === '') throw new ChunkError('empty client id')
      if (c.qos > 2) throw new ChunkError(`QoS ${c.qos}`)
      out.clientMsgs.push(c)
      return
    }
    case ChunkType.Retain: {
      const id = b.u64('store_id')
      done(b, 'RETAIN')
      out.retains.push(id)
      return
    }
    case ChunkType.Sub: {
      let s: MosqSub
      if (v56) {
        const identifier = b.u32('identifier')
        const idLen = b.u16('id_len')
        const topicLen = b.u16('topic_len')
        const qos = b.u8('qos')
        const options = b.u8('options')
        b.skip(2, 'padding')
        const clientId = b.str(idLen, 'client id')
        const topic = b.str(topicLen, 'topic filter')
        done(b, 'SUB')
        s = { clientId, topic, qos, identifier, options }
      } else {
        const clientId = b.lstr('client id')
        const topic = b.lstr('topic filter')
        const qos = b.u8('qos')
        done(b, 'SUB')
        s = { clientId, topic, qos, identifier: 0, options: 0 }
      }
      if (s.clientId === '') throw new ChunkError('empty client id')
      if (s.topic === '') throw new ChunkError('empty topic filter')
      if (s.qos > 2) throw new ChunkError(`QoS ${s.qos}`)
      out.subs.push(s)
      return
    }
    case ChunkType.Client: {
      let c: MosqClient
      if (v56) {
        const sessionExpiryTime = b.i64('session_expiry_time')
        const sessionExpiryInterval = b.u32('session_expiry_interval')
        const lastMid = b.u16('last_mid')
        const idLen = b.u16('id_len')
        let listenerPort = 0
        let userLen = 0
        if (version === 6) {
          listenerPort = b.u16('listener_port')
          userLen = b.u16('username_len')
          b.skip(4, 'padding')
        }
        const clientId = b.str(idLen, 'client id')
        const username = userLen > 0 ? b.str(userLen, 'username') : undefined
        done(b, 'CLIENT')
        c = { clientId, username, sessionExpiryTime, sessionExpiryInterval, lastMid, listenerPort }
      } else {
        const clientId = b.lstr('client id')
        const lastMid = b.u16('last_mid')
        // Version 3+ adds the time of the disconnect (a time_t, 8 bytes on the platforms that matter); unused.
        if (b.end - b.pos === 8) b.skip(8, 'disconnect time')
        done(b, 'CLIENT')
        c = { clientId, username: undefined, sessionExpiryTime: 0, sessionExpiryInterval: undefined, lastMid, listenerPort: 0 }
      }
      if (c.clientId === '') throw new ChunkError('empty client id')
      out.clients.push(c)
      return
    }
    default:
      throw new ChunkError(`unknown chunk type ${type}`)
  }
}

function emptyDb(version: number | undefined): MosquittoDb {
  return { version, cfg: undefined, messages: [], clients: [], clientMsgs: [], retains: [], subs: [], skipped: [], chunks: 0 }
}

const describeType = (t: number): string => ChunkNames[t] ?? `chunk type ${t}`

/**
 * Whether a chunk that parses cleanly starts at `pos`: used to find the next good chunk after damage.
 * Parsing into a throw-away sink keeps the check exact (lengths must add up to the chunk length).
 */
function chunkAt(buf: Buffer, pos: number, version: number, be: boolean): boolean {
  const hdr = version >= 5 ? 8 : 6
  if (pos + hdr > buf.length) return false
  const type = version >= 5 ? buf.readUInt32BE(pos) : buf.readUInt16BE(pos)
  if (type < ChunkType.MsgStore || type > ChunkType.Client) return false
  const len = buf.readUInt32BE(pos + hdr - 4)
  if (pos + hdr + len > buf.length) return false
  try {
    readChunk(type, new Body(buf, pos + hdr, pos + hdr + len, be), version, emptyDb(version))
    return true
  } catch {
    return false
  }
}

/** Parses a whole mosquitto.db. Never throws: everything it could not read is listed in `skipped`. */
export function readMosquittoDb(buf: Buffer): MosquittoDb {
  if (!isMosquittoDb(buf)) {
    const db = emptyDb(undefined)
    db.skipped.push({ offset: 0, what: 'file', reason: buf.length < MosquittoMagic.length ? `only ${buf.length} bytes, too short for a Mosquitto header` : 'not a Mosquitto persistence file (bad magic)' })
    return db
  }
  if (buf.length < HeaderSize) {
    const db = emptyDb(undefined)
    db.skipped.push({ offset: 0, what: 'file', reason: `truncated inside the header (${buf.length} bytes)` })
    return db
  }
  const version = buf.readUInt32BE(MosquittoMagic.length + 4)
  const db = emptyDb(version)
  if (!(SupportedVersions as readonly number[]).includes(version)) {
    db.skipped.push({ offset: MosquittoMagic.length + 4, what: 'file', reason: `format version ${version} is not one Midge reads (3 to 6)` })
    return db
  }
  const hdr = version >= 5 ? 8 : 6
  const be = byteOrder64(buf, version)
  let pos = HeaderSize
  while (pos < buf.length) {
    if (pos + hdr > buf.length) {
      db.skipped.push({ offset: pos, what: 'end of file', reason: `truncated: ${buf.length - pos} bytes, too few for a chunk header` })
      break
    }
    const type = version >= 5 ? buf.readUInt32BE(pos) : buf.readUInt16BE(pos)
    const len = buf.readUInt32BE(pos + hdr - 4)
    const end = Math.min(pos + hdr + len, buf.length)
    const overruns = pos + hdr + len > buf.length
    let tmp = emptyDb(version)
    try {
      readChunk(type, new Body(buf, pos + hdr, end, be), version, tmp)
      if (overruns) throw new ChunkError('the chunk is cut short')
      merge(db, tmp)
      pos = end
    } catch (err) {
      const message = overruns ? `chunk length ${len} runs past the end of the file (truncated, or a damaged length)` : (err as Error).message
      // A damaged length field: the chunk's own fields say where it ends, and a chunk that parses starts there.
      const at = err instanceof LengthMismatch ? err.fieldsEnds.find((e) => e === buf.length || chunkAt(buf, e, version, be)) : undefined
      if (at !== undefined) {
        tmp = emptyDb(version)
        try {
          readChunk(type, new Body(buf, pos + hdr, at, be), version, tmp)
          merge(db, tmp)
          db.skipped.push({ offset: pos, what: describeType(type), reason: `chunk length ${len} disagrees with its fields (${at - pos - hdr} bytes): read it by its fields, nothing lost` })
          pos = at
          continue
        } catch {
          // Not readable that way either: skipped below.
        }
      }
      let next = end
      if (overruns || (end < buf.length && !chunkAt(buf, end, version, be))) {
        const found = resync(buf, pos + 1, version, be)
        next = found === -1 ? buf.length : found
      }
      const lost = next === end && !overruns ? '' : `; skipped ${next - pos} bytes up to ${next === buf.length ? 'the end of the file' : `the next readable chunk at offset ${next}`}`
      db.skipped.push({ offset: pos, what: describeType(type), reason: message + lost })
      pos = next
    }
  }
  return db
}

/**
 * Whether the file's 64-bit fields are big-endian. Mosquitto writes them in the writer's byte order; the
 * CFG chunk, always first, holds last_db_id, a count of messages ever stored: read the wrong way round, a
 * small count becomes a number above 2^48.
 */
function byteOrder64(buf: Buffer, version: number): boolean {
  const hdr = version >= 5 ? 8 : 6
  const at = HeaderSize + hdr + (version >= 5 ? 0 : 2)
  if (at + 8 > buf.length) return false
  const type = version >= 5 ? buf.readUInt32BE(HeaderSize) : buf.readUInt16BE(HeaderSize)
  if (type !== ChunkType.Cfg) return false
  const limit = 2n ** 48n
  return buf.readBigUInt64LE(at) >= limit && buf.readBigUInt64BE(at) < limit
}

function merge(db: MosquittoDb, from: MosquittoDb): void {
  if (from.cfg !== undefined) db.cfg = from.cfg
  db.messages.push(...from.messages)
  db.clients.push(...from.clients)
  db.clientMsgs.push(...from.clientMsgs)
  db.retains.push(...from.retains)
  db.subs.push(...from.subs)
  db.chunks++
}

function resync(buf: Buffer, from: number, version: number, be: boolean): number {
  for (let p = from; p < buf.length; p++) if (chunkAt(buf, p, version, be)) return p
  return -1
}
