/** The log store's record checksum: slice-by-8 must give the CRC-32 (IEEE) of every range, as the byte loop does. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { crc32 } from '../../src/persistence/crc32.js'

/** The textbook bit-at-a-time CRC-32 (IEEE, reflected, polynomial 0xEDB88320): the reference. */
function reference(buf: Buffer, start: number, end: number): number {
  let c = 0xffffffff
  for (let i = start; i < end; i++) {
    c ^= buf[i]!
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1
  }
  return (c ^ 0xffffffff) >>> 0
}

test('the standard check values: "123456789" is 0xCBF43926, the empty range 0', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926)
  assert.equal(crc32(Buffer.alloc(0)), 0)
  assert.equal(crc32(Buffer.from('The quick brown fox jumps over the lazy dog')), 0x414fa339)
})

test('every start and length up to 300 bytes, over random and all-ones data, agrees with the bitwise reference', () => {
  const random = Buffer.alloc(400)
  let x = 0x12345678
  for (let i = 0; i < random.length; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; random[i] = x >>> 24 }
  for (const buf of [random, Buffer.alloc(400, 0xff)]) {
    for (let start = 0; start < 17; start++) {
      for (let len = 0; len <= 300; len++) {
        assert.equal(crc32(buf, start, start + len), reference(buf, start, start + len), `start ${start}, length ${len}`)
      }
    }
  }
})
