/**
 * Independent MQTT wire builders for expected bytes in tests. Written from the spec, sharing no code with
 * src/protocol (never import it here): a bug in the codec cannot also hide in the expected bytes.
 *
 * Use them as annotated byte lists, one field per line:
 *
 *   packet(0x30,          // PUBLISH, QoS 0
 *     utf8('a/b'),        // topic
 *     ascii('hi'))        // payload
 */

export type Bytes = number[]
export type Part = number | Bytes | Uint8Array

function flat (parts: Part[]): Bytes {
  const out: Bytes = []
  for (const p of parts) {
    if (typeof p === 'number') out.push(p)
    else for (const b of p) out.push(b)
  }
  return out
}

/** Concatenates fields into a byte list. */
export function bytes (...parts: Part[]): Bytes {
  return flat(parts)
}

export function u16 (n: number): Bytes {
  return [(n >> 8) & 0xff, n & 0xff]
}

export function u32 (n: number): Bytes {
  return [Math.floor(n / 0x1000000) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]
}

/** Variable Byte Integer, written the way section 1.5.5 of MQTT 5.0 spells out the algorithm. */
export function vbi (n: number): Bytes {
  const out: Bytes = []
  do {
    let encodedByte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) encodedByte = encodedByte | 128
    out.push(encodedByte)
  } while (n > 0)
  return out
}

/** Raw UTF-8 bytes of s (no length prefix). */
export function raw (s: string): Bytes {
  return [...new TextEncoder().encode(s)]
}

/** Raw bytes of an ASCII/latin1 string, e.g. a payload. */
export function ascii (s: string): Bytes {
  return [...s].map(c => c.charCodeAt(0) & 0xff)
}

/** UTF-8 Encoded String: 2-byte length + bytes. */
export function utf8 (s: string): Bytes {
  const b = raw(s)
  return [...u16(b.length), ...b]
}

/** Binary Data: 2-byte length + bytes. */
export function bin (...parts: Part[]): Bytes {
  const b = flat(parts)
  return [...u16(b.length), ...b]
}

/** A whole packet: first byte (type << 4 | flags), the Remaining Length, then the body. */
export function packet (first: number, ...body: Part[]): Buffer {
  const b = flat(body)
  return Buffer.from([first, ...vbi(b.length), ...b])
}

/** A v5 property block: Property Length (VBI) + the properties. */
export function props (...entries: Bytes[]): Bytes {
  const b = flat(entries)
  return [...vbi(b.length), ...b]
}

/** One property each, by data type (section 2.2.2.2). */
export const prop = {
  byte: (id: number, v: number): Bytes => [id, v],
  u16: (id: number, v: number): Bytes => [id, ...u16(v)],
  u32: (id: number, v: number): Bytes => [id, ...u32(v)],
  vbi: (id: number, v: number): Bytes => [id, ...vbi(v)],
  str: (id: number, s: string): Bytes => [id, ...utf8(s)],
  bin: (id: number, ...b: Part[]): Bytes => [id, ...bin(...b)],
  /** User Property (0x26): a UTF-8 string pair. */
  pair: (k: string, v: string): Bytes => [0x26, ...utf8(k), ...utf8(v)],
}

/** Hex with spaces, newlines and `# comments` allowed: fromHex('30 05 # PUBLISH\n 00 01 61 # topic "a"'). */
export function fromHex (s: string): Buffer {
  const clean = s.replace(/#[^\n]*/g, '').replace(/\s+/g, '')
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new Error(`bad hex fixture: ${s}`)
  return Buffer.from(clean, 'hex')
}

export function toHex (b: Uint8Array): string {
  return Buffer.from(b).toString('hex').replace(/(..)(?!$)/g, '$1 ')
}
