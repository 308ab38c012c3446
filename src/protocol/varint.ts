/**
 * Variable Byte Integer (MQTT 3.1.1 section 2.2.3, 5.0 section 1.5.5): 7 bits per byte, low group first,
 * high bit = continuation, at most 4 bytes (max 268,435,455).
 */
import { MaxVarint } from './constants.js'

export function varintLength (n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4
}

/** Writes n (0..MaxVarint) at offset; returns the offset after it. */
export function writeVarint (buf: Buffer, offset: number, n: number): number {
  while (n > 127) {
    buf[offset++] = (n & 127) | 128
    n >>>= 7
  }
  buf[offset++] = n
  return offset
}

export const VarintStatus = { Ok: 0, Incomplete: 1, Malformed: 2 } as const

/** Out-parameter of readVarint, reused by its caller so a read allocates nothing. */
export class VarintResult {
  value = 0
  /** Bytes the encoding took (1..4). */
  length = 0
}

/**
 * Reads a Variable Byte Integer from buf[offset, end). Non-minimal encodings are accepted (the minimum-length
 * rule binds the sender; mosquitto reads them too). A continuation bit on the 4th byte is malformed.
 */
export function readVarint (buf: Buffer, offset: number, end: number, out: VarintResult): number {
  let value = 0
  let mul = 1
  for (let i = 0; i < 4; i++) {
    if (offset + i >= end) return VarintStatus.Incomplete
    const b = buf[offset + i]!
    value += (b & 127) * mul
    if (b < 128) {
      out.value = value
      out.length = i + 1
      return VarintStatus.Ok
    }
    mul *= 128
  }
  return VarintStatus.Malformed
}

export function isVarintValue (n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= MaxVarint
}
