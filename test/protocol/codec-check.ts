/**
 * Shared checks for the protocol tests (not a test file itself): feed bytes to a Decoder in various splits,
 * strip undefined fields for comparison, and run one annotated fixture through decode, encode, split decoding
 * at every offset and byte-by-byte decoding (STYLE habit 2).
 */
import assert from 'node:assert/strict'
import { Decoder, encode, encodedSize } from '../../src/protocol/index.js'
import type { MqttProtocolError, Packet, ProtocolVersion } from '../../src/protocol/index.js'
import { toHex } from '../helpers/wire.js'

export interface Fixture {
  name: string
  version: ProtocolVersion
  bytes: Buffer
  packet: Packet
  /** false when the bytes are a valid but non-canonical form our encoder does not produce. */
  encodes?: boolean
}

export interface DecodeResult {
  packets: Packet[]
  error: MqttProtocolError | null
  decoder: Decoder
}

/** Pushes the chunks in order into a fresh decoder; stops at the first error. */
export function decodeChunks (chunks: Buffer[], version: ProtocolVersion, maxPacketSize = 0): DecodeResult {
  const packets: Packet[] = []
  const decoder = new Decoder(p => packets.push(p), { protocolVersion: version, maxPacketSize })
  let error: MqttProtocolError | null = null
  for (const c of chunks) {
    error = decoder.push(c)
    if (error !== null) break
  }
  return { packets, error, decoder }
}

export function decodeBytes (bytes: Buffer, version: ProtocolVersion, maxPacketSize = 0): DecodeResult {
  return decodeChunks([bytes], version, maxPacketSize)
}

export function byteByByte (bytes: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < bytes.length; i++) out.push(bytes.subarray(i, i + 1))
  return out
}

/** Deep copy without undefined-valued keys, so `{ a: undefined }` equals `{}`. Buffers become plain copies. */
export function strip (v: unknown): unknown {
  if (Buffer.isBuffer(v)) return Buffer.from(v)
  if (Array.isArray(v)) return v.map(strip)
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = strip(x)
    return out
  }
  return v
}

export function assertPackets (actual: Packet[], expected: Packet[], context: string): void {
  assert.deepStrictEqual(strip(actual), strip(expected), context)
}

export function checkFixture (fx: Fixture): void {
  const whole = decodeBytes(fx.bytes, fx.version)
  assert.equal(whole.error, null, `decode error: ${String(whole.error?.message)}`)
  assertPackets(whole.packets, [fx.packet], 'decoded whole')
  assert.equal(whole.decoder.buffered, 0)

  if (fx.encodes !== false) {
    const enc = encode(fx.packet, fx.version)
    assert.equal(toHex(enc), toHex(fx.bytes), 'encoded bytes')
    assert.equal(encodedSize(fx.packet, fx.version), fx.bytes.length, 'encodedSize')
  }

  for (let i = 1; i < fx.bytes.length; i++) {
    const r = decodeChunks([fx.bytes.subarray(0, i), fx.bytes.subarray(i)], fx.version)
    assert.equal(r.error, null, `split at ${i}`)
    assertPackets(r.packets, [fx.packet], `split at ${i}`)
  }

  const bb = decodeChunks(byteByByte(fx.bytes), fx.version)
  assert.equal(bb.error, null, 'byte by byte')
  assertPackets(bb.packets, [fx.packet], 'byte by byte')

  // Three copies back to back in one chunk: framing must find each packet boundary.
  const three = decodeBytes(Buffer.concat([fx.bytes, fx.bytes, fx.bytes]), fx.version)
  assert.equal(three.error, null, 'three in one chunk')
  assertPackets(three.packets, [fx.packet, fx.packet, fx.packet], 'three in one chunk')
}
