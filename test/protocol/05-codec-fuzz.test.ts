/**
 * Fuzzing the decoder (STYLE habit 2): random and mutated byte streams, cut into random chunks, never make
 * push() throw, never leave more than maxPacketSize bytes buffered, and whatever the decoder accepts the
 * encoder writes back into bytes that decode to the same packet. Bounded run counts keep this to a few seconds.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { Decoder, encode, encodedSize, encodePublish, publishSize, writePublish } from '../../src/protocol/index.js'
import type { MqttProtocolError, Packet, ProtocolVersion, PublishPacket } from '../../src/protocol/index.js'
import { anyPacketArb, packetArb } from './arbitraries.js'
import { decodeBytes, strip } from './codec-check.js'

/** `npm run fuzz` (MIDGE_FUZZ_SECONDS) runs many more cases than CI's few seconds. */
const scale = Math.max(1, Math.floor(Number(process.env.MIDGE_FUZZ_SECONDS ?? '0') / 10))
const version = fc.constantFrom<ProtocolVersion>(3, 4, 5)
const maxSize = fc.oneof(fc.constant(0), fc.integer({ min: 8, max: 400 }))

/** Cuts bytes at the given fractions into chunks (empty chunks included: push must accept them). */
function cut (bytes: Uint8Array, fractions: number[]): Buffer[] {
  const points = fractions.map(f => Math.floor(f * bytes.length)).sort((a, b) => a - b)
  const out: Buffer[] = []
  let last = 0
  for (const p of points) {
    out.push(Buffer.from(bytes.subarray(last, p)))
    last = p
  }
  out.push(Buffer.from(bytes.subarray(last)))
  return out
}

interface Emitted { packet: Packet; version: ProtocolVersion }

/** Feeds every chunk, checking the invariants after each push. */
function feed (chunks: Buffer[], v: ProtocolVersion, max: number): { emitted: Emitted[]; error: MqttProtocolError | null } {
  const emitted: Emitted[] = []
  const decoder: Decoder = new Decoder(p => emitted.push({ packet: p, version: decoder.protocolVersion }), { protocolVersion: v, maxPacketSize: max })
  let error: MqttProtocolError | null = null
  for (const c of chunks) {
    const r = decoder.push(c) // a throw here fails the property
    if (error !== null) assert.equal(r, error, 'the first error sticks')
    error = r
    if (max > 0) assert.ok(decoder.buffered <= max, `buffered ${decoder.buffered} > max ${max}`)
    if (error !== null) assert.equal(decoder.buffered, 0, 'nothing held after an error')
  }
  return { emitted, error }
}

/** Anything the decoder accepted re-encodes, and the bytes decode to the same packet. */
function assertReencodes (emitted: Emitted[]): void {
  for (const { packet, version } of emitted) {
    const bytes = encode(packet, version)
    assert.equal(encodedSize(packet, version), bytes.length)
    const again = decodeBytes(bytes, version)
    assert.equal(again.error, null, again.error?.message)
    assert.deepStrictEqual(strip(again.packets), strip([packet]))
  }
}

test('random bytes in random chunks: push never throws, buffering stays bounded', () => {
  fc.assert(fc.property(
    fc.uint8Array({ maxLength: 300 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), version, maxSize,
    (bytes, fractions, v, max) => {
      assertReencodes(feed(cut(bytes, fractions), v, max).emitted)
    }), { numRuns: 1500 * scale })
})

test('random bytes after a valid packet prefix: the type byte is valid, the rest is noise', () => {
  const first = fc.constantFrom(0x10, 0x20, 0x30, 0x32, 0x35, 0x3b, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xa2, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0)
  fc.assert(fc.property(
    first, fc.integer({ min: 0, max: 120 }), fc.uint8Array({ maxLength: 120 }), version,
    (type, len, body, v) => {
      const bytes = Buffer.from([type, len, ...body])
      assertReencodes(feed([bytes], v, 0).emitted)
      assertReencodes(feed(cut(bytes, [0.3, 0.6]), v, 0).emitted)
    }), { numRuns: 1500 * scale })
})

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
)

type Mutation = { kind: 'flip'; at: number; xor: number } | { kind: 'set' | 'insert'; at: number; value: number } |
  { kind: 'delete' | 'truncate'; at: number }

function mutate (bytes: Buffer, ms: Mutation[]): Buffer {
  const b = [...bytes]
  for (const m of ms) {
    if (b.length === 0) break
    const at = m.at % b.length
    switch (m.kind) {
      case 'flip': b[at] = b[at]! ^ m.xor; break
      case 'set': b[at] = m.value; break
      case 'insert': b.splice(at, 0, m.value); break
      case 'delete': b.splice(at, 1); break
      case 'truncate': b.length = at; break
    }
  }
  return Buffer.from(b)
}

test('mutated valid packet streams: push never throws, accepted packets re-encode', () => {
  fc.assert(fc.property(
    version.chain(v => fc.tuple(fc.constant(v), fc.array(anyPacketArb(v), { minLength: 1, maxLength: 4 }))),
    fc.array(mutation, { minLength: 1, maxLength: 4 }),
    fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 }),
    maxSize,
    ([v, packets], ms, fractions, max) => {
      const stream = mutate(Buffer.concat(packets.map(p => encode(p, v))), ms)
      assertReencodes(feed(cut(stream, fractions), v, max).emitted)
    }), { numRuns: 1000 * scale })
})

test('valid packet streams decode identically however they are cut', () => {
  fc.assert(fc.property(
    version.chain(v => fc.tuple(fc.constant(v), fc.array(anyPacketArb(v), { minLength: 1, maxLength: 5 }))),
    fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
    ([v, packets], fractions) => {
      const stream = Buffer.concat(packets.map(p => encode(p, v)))
      const r = feed(cut(stream, fractions), v, 0)
      assert.equal(r.error, null, r.error?.message)
      assert.deepStrictEqual(strip(r.emitted.map(e => e.packet)), strip(packets))
    }), { numRuns: 500 * scale })
})

test('stop() from inside onPacket ends emission at once, even mid-chunk', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), (total, stopAfter) => {
    const seen: Packet[] = []
    const decoder: Decoder = new Decoder(p => {
      seen.push(p)
      if (seen.length === stopAfter) decoder.stop()
    })
    const stream = Buffer.concat(Array.from({ length: total }, () => Buffer.from([0xc0, 0x00])))
    assert.equal(decoder.push(stream), null)
    assert.equal(decoder.push(stream), null)
    assert.equal(seen.length, Math.min(2 * total, stopAfter))
    assert.equal(decoder.buffered, 0)
  }), { numRuns: 50 * scale })
})

test('writePublish writes into a larger buffer, at any offset, exactly the bytes encodePublish returns; publishSize is their length', () => {
  fc.assert(fc.property(packetArb(3, 5), packetArb(3, 4), fc.nat(64), (p5, p4, off) => {
    for (const [p, v] of [[p5, 5], [p4, 4]] as const) {
      const want = encodePublish(p as PublishPacket, v)
      assert.equal(publishSize(p as PublishPacket, v), want.length)
      const buf = Buffer.alloc(off + want.length + 8, 0xee)
      assert.equal(writePublish(buf, off, p as PublishPacket, v), off + want.length)
      assert.equal(buf.subarray(off, off + want.length).toString('hex'), want.toString('hex'))
      assert.ok(buf.subarray(0, off).every((b) => b === 0xee) && buf.subarray(off + want.length).every((b) => b === 0xee), 'nothing written outside the packet')
    }
  }), { numRuns: 500 })
})
