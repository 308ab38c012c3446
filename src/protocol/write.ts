/**
 * Low-level writers for the encoder. Each takes (buf, offset, ...) and returns the next offset: no cursor object,
 * nothing allocated. Lengths are computed by the caller first, so the buffer is always exactly the right size.
 */
import { MqttEncodeError } from './errors.js'
import type { FastBuffer } from './fast-buffer.js'

/** UTF-8 byte length of s, refusing strings the 2-byte length prefix cannot express. */
export function stringLength (s: string): number {
  const n = utf8Length(s)
  if (n > 65_535) throw new MqttEncodeError(`string of ${n} bytes exceeds the 65,535-byte MQTT limit`)
  return n
}

/** UTF-8 byte length of s, any size (the log store's strings have a 4-byte prefix). */
export function utf8Length (s: string): number {
  return s.length < 128 && isAscii(s) ? s.length : Buffer.byteLength(s)
}

/** For short strings a charCodeAt scan is cheaper than the native byteLength call. */
function isAscii (s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false
  return true
}

export function binaryLength (b: Uint8Array): number {
  const n = b.length
  if (n > 65_535) throw new MqttEncodeError(`binary data of ${n} bytes exceeds the 65,535-byte MQTT limit`)
  return n
}

export function writeU16 (buf: Buffer, off: number, v: number): number {
  buf[off] = v >>> 8
  buf[off + 1] = v & 255
  return off + 2
}

export function writeU32 (buf: Buffer, off: number, v: number): number {
  buf[off] = v >>> 24
  buf[off + 1] = (v >>> 16) & 255
  buf[off + 2] = (v >>> 8) & 255
  buf[off + 3] = v & 255
  return off + 4
}

/** byteLen must come from stringLength(s). */
export function writeString (buf: Buffer, off: number, s: string, byteLen: number): number {
  buf[off] = byteLen >>> 8
  buf[off + 1] = byteLen & 255
  return writeChars(buf, off + 2, s, byteLen)
}

/** The UTF-8 bytes of s, no prefix; byteLen must come from utf8Length(s). Returns the next offset. */
export function writeChars (buf: Buffer, off: number, s: string, byteLen: number): number {
  if (byteLen === s.length) {
    // byteLen === length only when every unit is ASCII; short ones are copied in JS to skip the native call.
    if (byteLen < 48) {
      for (let i = 0; i < byteLen; i++) buf[off + i] = s.charCodeAt(i)
    } else {
      (buf as FastBuffer).latin1Write(s, off, byteLen)
    }
  } else {
    (buf as FastBuffer).utf8Write(s, off, byteLen)
  }
  return off + byteLen
}

export function writeBinary (buf: Buffer, off: number, b: Uint8Array): number {
  const n = b.length
  buf[off] = n >>> 8
  buf[off + 1] = n & 255
  buf.set(b, off + 2)
  return off + 2 + n
}
