/**
 * The size guard runs before buffering (STYLE habit 1): a packet announced larger than maxPacketSize is
 * refused (0x95) as soon as its Remaining Length is read, and held bytes are only bytes actually received.
 * Also pins which decoded buffers are views and that reassembled packets own fresh memory.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Decoder } from '../../src/protocol/index.js'
import type { Packet, PublishPacket } from '../../src/protocol/index.js'
import { fromHex, packet, u16, utf8, vbi } from '../helpers/wire.js'
import { byteByByte, decodeBytes, decodeChunks } from './codec-check.js'

function publishOfSize (total: number): Buffer {
  // 1 type byte + remaining length + topic "t" (3 bytes) + payload
  let rl = total - 2
  while (1 + vbi(rl).length + rl > total) rl--
  const b = packet(0x30, utf8('t'), Buffer.alloc(rl - 3, 0x61))
  assert.equal(b.length, total)
  return b
}

test('[MQTT-3.1.2-24] a header announcing more than maxPacketSize is refused before any body byte', () => {
  const d = new Decoder(() => assert.fail('no packet'), { maxPacketSize: 1000 })
  const err = d.push(fromHex('30 80 80 40 # PUBLISH, remaining length 1,048,576, no body yet'))
  assert.equal(err?.code, 'MQTT_ERR_TOO_LARGE')
  assert.equal(err.reasonCode, 0x95)
  assert.equal(d.buffered, 0)
})

test('the size verdict is the same when the header arrives byte by byte', () => {
  const r = decodeChunks(byteByByte(fromHex('30 80 80 40')), 4, 1000)
  assert.equal(r.error?.code, 'MQTT_ERR_TOO_LARGE')
  assert.equal(r.decoder.buffered, 0)
})

test('a packet of exactly maxPacketSize bytes passes, one byte more is refused', () => {
  for (const split of [false, true]) {
    const ok = publishOfSize(300)
    const r1 = split ? decodeChunks(byteByByte(ok), 4, 300) : decodeBytes(ok, 4, 300)
    assert.equal(r1.error, null)
    assert.equal(r1.packets.length, 1)
    const r2 = split ? decodeChunks(byteByByte(publishOfSize(301)), 4, 300) : decodeBytes(publishOfSize(301), 4, 300)
    assert.equal(r2.error?.code, 'MQTT_ERR_TOO_LARGE')
    assert.equal(r2.packets.length, 0)
  }
})

test('the whole packet counts: fixed header included (5.0 section 3.1.2.11.4)', () => {
  // remaining length 126 + 2 header bytes = 128 total
  const b = publishOfSize(128)
  assert.equal(decodeBytes(b, 4, 127).error?.code, 'MQTT_ERR_TOO_LARGE')
  assert.equal(decodeBytes(b, 4, 128).error, null)
})

test('maxPacketSize may change between pushes (after CONNECT negotiates it)', () => {
  const packets: Packet[] = []
  const d = new Decoder(p => packets.push(p))
  assert.equal(d.push(publishOfSize(500)), null)
  d.maxPacketSize = 100
  assert.equal(d.push(publishOfSize(101))?.code, 'MQTT_ERR_TOO_LARGE')
  assert.equal(packets.length, 1)
})

test('maxPacketSize 0 means the protocol maximum: a 268,435,455-byte announcement only holds what arrived', () => {
  const before = process.memoryUsage().arrayBuffers
  const decoders: Decoder[] = []
  for (let i = 0; i < 20; i++) {
    const d = new Decoder(() => assert.fail('no packet'))
    assert.equal(d.push(fromHex('30 ff ff ff 7f # remaining length 268,435,455')), null)
    assert.equal(d.buffered, 5)
    assert.equal(d.push(Buffer.from(utf8('t'))), null)
    assert.equal(d.buffered, 8)
    decoders.push(d)
  }
  // 20 decoders each waiting for 256 MB: a few 64 KiB buffers, not 5 GB.
  const grown = process.memoryUsage().arrayBuffers - before
  assert.ok(grown < 16 * 1024 * 1024, `grew ${grown} bytes`)
  assert.equal(decoders.length, 20)
})

test('a packet larger than 64 KiB dripped one byte per chunk decodes (the partial buffer grows)', () => {
  const big = publishOfSize(70_000)
  const r = decodeChunks(byteByByte(big), 4, 70_000)
  assert.equal(r.error, null)
  assert.equal(r.packets.length, 1)
  assert.ok((r.packets[0] as PublishPacket).payload.every(b => b === 0x61))
})

test('held bytes grow only with received bytes while a large packet arrives in pieces', () => {
  const big = publishOfSize(100_000)
  const packets: Packet[] = []
  const d = new Decoder(p => packets.push(p), { maxPacketSize: 100_000 })
  let sent = 0
  for (let i = 0; i < big.length; i += 1000) {
    const piece = big.subarray(i, i + 1000)
    assert.equal(d.push(piece), null)
    sent += piece.length
    if (sent < big.length) assert.equal(d.buffered, sent)
  }
  assert.equal(d.buffered, 0)
  assert.equal(packets.length, 1)
  assert.equal((packets[0] as PublishPacket).payload.length, 100_000 - 4 - 3) // minus fixed header and topic
})

test('a packet inside one chunk: the payload is a zero-copy view of that chunk', () => {
  const chunk = packet(0x30, utf8('t'), Buffer.from('payload'))
  const [p] = decodeBytes(chunk, 4).packets as PublishPacket[]
  assert.equal(p!.payload.buffer, chunk.buffer)
  assert.equal(p!.payload.toString(), 'payload')
})

test('a reassembled packet owns fresh memory: reusing the chunks afterwards does not change it', () => {
  const bytes = packet(0x32, utf8('a/b'), u16(5), Buffer.from('payload'))
  const chunks = [Buffer.from(bytes.subarray(0, 4)), Buffer.from(bytes.subarray(4))]
  const r = decodeChunks(chunks, 4)
  for (const c of chunks) c.fill(0)
  const p = r.packets[0] as PublishPacket
  assert.equal(p.topic, 'a/b')
  assert.equal(p.payload.toString(), 'payload')
})

test('two reassembled packets do not share a buffer', () => {
  const a = packet(0x30, utf8('t'), Buffer.from('first'))
  const b = packet(0x30, utf8('t'), Buffer.from('second'))
  const r = decodeChunks(byteByByte(Buffer.concat([a, b])), 4)
  const [p1, p2] = r.packets as PublishPacket[]
  p1!.payload.fill(0x7a)
  assert.equal(p2!.payload.toString(), 'second')
})
