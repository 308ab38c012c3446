/**
 * Byte-level framing of the log store. A record is
 *
 *   +-------------+-------------+------+----------------+
 *   | u32 length  | u32 crc32   | u8   | fields ...     |
 *   | of the body | of the body | type |                |
 *   +-------------+-------------+------+----------------+
 *
 * Strings are u32 length + UTF-8, byte strings u32 length + bytes, numbers u8/u16/u32 or f64 (ids and
 * timestamps). All integers big-endian. FROZEN for format version 1: change it only with a new version
 * and a reader for the old one.
 */
import type { ProtocolVersion } from '../protocol/constants.js'
import { publishSize, writePublish } from '../protocol/encoder.js'
import type { PublishPacket } from '../protocol/packets.js'
import { utf8Length, writeChars, writeU16, writeU32 } from '../protocol/write.js'
import { crc32 } from './crc32.js'

export class RecordWriter {
  buf: Buffer
  pos = 0
  private recordStart = -1

  constructor(initial = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initial)
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  begin(type: number): this {
    this.ensure(9)
    this.recordStart = this.pos
    this.pos += 8
    this.buf[this.pos++] = type
    return this
  }

  end(): void {
    const bodyStart = this.recordStart + 8
    writeU32(this.buf, this.recordStart, this.pos - bodyStart)
    writeU32(this.buf, this.recordStart + 4, crc32(this.buf, bodyStart, this.pos))
    this.recordStart = -1
  }

  u8(v: number): this { this.ensure(1); this.buf[this.pos++] = v; return this }
  u16(v: number): this { this.ensure(2); this.pos = writeU16(this.buf, this.pos, v); return this }
  u32(v: number): this { this.ensure(4); this.pos = writeU32(this.buf, this.pos, v >>> 0); return this }
  f64(v: number): this { this.ensure(8); this.buf.writeDoubleBE(v, this.pos); this.pos += 8; return this }
  /** A delivery's subscription identifiers: a count (v5 allows one per matching subscription; a session holds far fewer than 255), then each. */
  ids(ids: readonly number[] | undefined): this {
    if (ids === undefined) return this.u8(0)
    const n = Math.min(ids.length, 255)
    this.u8(n)
    for (let i = 0; i < n; i++) this.u32(ids[i]!)
    return this
  }
  str(s: string): this {
    const n = utf8Length(s)
    this.ensure(4 + n)
    this.pos = writeChars(this.buf, writeU32(this.buf, this.pos, n), s, n)
    return this
  }
  bytes(b: Buffer): this {
    this.ensure(4 + b.length)
    writeU32(this.buf, this.pos, b.length)
    this.buf.set(b, this.pos + 4)
    this.pos += 4 + b.length
    return this
  }
  /** A PUBLISH packet as bytes() would hold its encoding, written in place (no intermediate Buffer). */
  publish(p: PublishPacket, version: ProtocolVersion): this {
    const n = publishSize(p, version)
    this.ensure(4 + n)
    writeU32(this.buf, this.pos, n)
    this.pos = writePublish(this.buf, this.pos + 4, p, version)
    return this
  }

  /** Appends records written elsewhere (whole records, as take() returned them). */
  append(records: Buffer): void {
    this.ensure(records.length)
    records.copy(this.buf, this.pos)
    this.pos += records.length
  }

  /** The bytes written so far (a view), then forgets them. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos)
    this.pos = 0
    return out
  }

  /** Drops the written bytes, shrinking a buffer that grew large for one burst. */
  reset(): void {
    this.pos = 0
    if (this.buf.length > 4 * 1024 * 1024) this.buf = Buffer.allocUnsafe(64 * 1024)
  }
}

export class RecordReader {
  readonly buf: Buffer
  pos: number
  end: number

  constructor(buf: Buffer, start: number, end: number) {
    this.buf = buf
    this.pos = start
    this.end = end
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new RangeError('record field runs past the record')
  }

  u8(): number { this.need(1); return this.buf[this.pos++]! }
  u16(): number { this.need(2); const v = this.buf.readUInt16BE(this.pos); this.pos += 2; return v }
  u32(): number { this.need(4); const v = this.buf.readUInt32BE(this.pos); this.pos += 4; return v }
  f64(): number { this.need(8); const v = this.buf.readDoubleBE(this.pos); this.pos += 8; return v }
  /** What RecordWriter.ids wrote: undefined for none. */
  ids(): number[] | undefined {
    const n = this.u8()
    if (n === 0) return undefined
    const ids: number[] = []
    for (let i = 0; i < n; i++) ids.push(this.u32())
    return ids
  }
  str(): string {
    const n = this.u32()
    this.need(n)
    const s = this.buf.toString('utf8', this.pos, this.pos + n)
    this.pos += n
    return s
  }
  bytes(): Buffer {
    const n = this.u32()
    this.need(n)
    const b = Buffer.from(this.buf.subarray(this.pos, this.pos + n))
    this.pos += n
    return b
  }
}

/** Result of scanning framed records: where the good prefix ends and why scanning stopped. */
export interface ScanResult {
  goodEnd: number
  damage: string | undefined
}

/** Calls onRecord(type, reader) for each intact record from `start`; stops at the first torn or corrupt one. */
export function scanRecords(buf: Buffer, start: number, onRecord: (type: number, r: RecordReader) => void): ScanResult {
  let pos = start
  while (pos < buf.length) {
    if (pos + 9 > buf.length) return { goodEnd: pos, damage: `a torn record header at byte ${pos}` }
    const len = buf.readUInt32BE(pos)
    const sum = buf.readUInt32BE(pos + 4)
    const bodyStart = pos + 8
    if (len === 0 || bodyStart + len > buf.length) return { goodEnd: pos, damage: `a torn record at byte ${pos} (length ${len}, ${buf.length - bodyStart} bytes present)` }
    if (crc32(buf, bodyStart, bodyStart + len) !== sum) return { goodEnd: pos, damage: `a record with a bad checksum at byte ${pos}` }
    const r = new RecordReader(buf, bodyStart + 1, bodyStart + len)
    try {
      onRecord(buf[bodyStart]!, r)
    } catch (err) {
      return { goodEnd: pos, damage: `an unreadable record at byte ${pos} (${(err as Error).message})` }
    }
    pos = bodyStart + len
  }
  return { goodEnd: pos, damage: undefined }
}
