/**
 * Bounds-checked cursor over one packet's bytes. One instance per Decoder, reset per packet (no allocation).
 * Every read past `end` throws a MALFORMED error [MQTT-1.5.x]: a length field that overruns the packet.
 */
import { malformed } from './errors.js'
import type { FastBuffer } from './fast-buffer.js'
import { isValidUtf8NoNul } from './utf8.js'
import { readVarint, VarintResult, VarintStatus } from './varint.js'

const Empty = Buffer.alloc(0)

export class Reader {
  buf: Buffer = Empty
  pos = 0
  end = 0
  private readonly vr = new VarintResult()

  reset (buf: Buffer, pos: number, end: number): void {
    this.buf = buf
    this.pos = pos
    this.end = end
  }

  get remaining (): number {
    return this.end - this.pos
  }

  u8 (): number {
    if (this.pos >= this.end) throw malformed('packet ends inside a byte field')
    return this.buf[this.pos++]!
  }

  u16 (): number {
    const p = this.pos
    if (p + 2 > this.end) throw malformed('packet ends inside a two-byte integer')
    this.pos = p + 2
    return (this.buf[p]! << 8) | this.buf[p + 1]!
  }

  u32 (): number {
    const p = this.pos
    if (p + 4 > this.end) throw malformed('packet ends inside a four-byte integer')
    this.pos = p + 4
    return this.buf.readUInt32BE(p)
  }

  varint (): number {
    const st = readVarint(this.buf, this.pos, this.end, this.vr)
    if (st !== VarintStatus.Ok) throw malformed('bad variable byte integer')
    this.pos += this.vr.length
    return this.vr.value
  }

  /** UTF-8 string: 2-byte length, well-formed UTF-8, no U+0000 [MQTT-1.5.3-1, MQTT-1.5.3-2]. */
  string (): string {
    const len = this.u16()
    const start = this.pos
    const end = start + len
    if (end > this.end) throw malformed('string length overruns the packet')
    this.pos = end
    const buf = this.buf
    // ASCII fast path: latin1Slice is exact for bytes < 0x80 and skips UTF-8 decoding.
    for (let i = start; i < end; i++) {
      const b = buf[i]!
      if (b === 0) throw malformed('string contains U+0000')
      if (b > 127) {
        if (!isValidUtf8NoNul(buf, i, end)) throw malformed('string is not well-formed UTF-8 or contains U+0000')
        return (buf as FastBuffer).utf8Slice(start, end)
      }
    }
    return (buf as FastBuffer).latin1Slice(start, end)
  }

  /** Binary data: 2-byte length + bytes, returned as a view (see Decoder on why views are safe to keep). */
  binary (): Buffer {
    const len = this.u16()
    const start = this.pos
    if (start + len > this.end) throw malformed('binary length overruns the packet')
    this.pos = start + len
    return this.buf.subarray(start, start + len)
  }

  /** Everything left in the packet, as a view. */
  rest (): Buffer {
    const v = this.buf.subarray(this.pos, this.end)
    this.pos = this.end
    return v
  }
}
