/** The two primitive encodings: MQTT strings (UTF-8 rules) and the Variable Byte Integer. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { isValidMqttString, readVarint, VarintResult, VarintStatus, varintLength, writeVarint } from '../../src/protocol/index.js'
import { vbi } from '../helpers/wire.js'

/** Oracle: WHATWG's fatal UTF-8 decoder, plus the MQTT ban on U+0000. */
function oracle (b: Uint8Array): boolean {
  try {
    return !new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(b).includes('\u0000')
  } catch {
    return false
  }
}

test('[MQTT-1.5.3-1] [MQTT-1.5.3-2] isValidMqttString agrees with a strict UTF-8 decoder on random bytes', () => {
  const smallBytes = fc.uint8Array({ maxLength: 24 })
  const utf8ish = fc.string({ unit: 'grapheme', maxLength: 8 }).map(s => new TextEncoder().encode(s))
  fc.assert(fc.property(fc.oneof(smallBytes, utf8ish), fc.nat(4), (b, pad) => {
    const buf = Buffer.concat([Buffer.alloc(pad, 0xff), b, Buffer.alloc(pad, 0xff)])
    assert.equal(isValidMqttString(buf, pad, pad + b.length), oracle(b))
  }), { numRuns: 2000 })
})

test('[MQTT-1.5.3-1] isValidMqttString: the classic ill-formed sequences', () => {
  const bad = ['c0 80', 'c1 bf', 'e0 80 80', 'ed a0 80', 'ed bf bf', 'f4 90 80 80', 'f5 80 80 80', 'ff', 'fe', '80', 'c3', 'e2 82']
  for (const hex of bad) {
    const b = Buffer.from(hex.replace(/ /g, ''), 'hex')
    assert.equal(isValidMqttString(b, 0, b.length), false, hex)
  }
  const good = Buffer.from('aé€😀\u0001\u007f\uffff', 'utf8') // control chars and U+FFFF are allowed
  assert.equal(isValidMqttString(good, 0, good.length), true)
})

test('[MQTT-1.5.3-2] isValidMqttString rejects U+0000 on both the ASCII and the UTF-8 path', () => {
  assert.equal(isValidMqttString(Buffer.from('a\u0000'), 0, 2), false)
  const b = Buffer.from('é\u0000', 'utf8')
  assert.equal(isValidMqttString(b, 0, b.length), false)
  assert.equal(isValidMqttString(Buffer.alloc(0), 0, 0), true)
})

test('varint boundaries match the spec table (5.0 section 1.5.5)', () => {
  const rows: Array<[number, string]> = [
    [0, '00'], [127, '7f'], [128, '8001'], [16_383, 'ff7f'], [16_384, '808001'],
    [2_097_151, 'ffff7f'], [2_097_152, '80808001'], [268_435_455, 'ffffff7f'],
  ]
  const out = new VarintResult()
  for (const [n, hex] of rows) {
    assert.equal(Buffer.from(vbi(n)).toString('hex'), hex, 'builder agrees with the spec table')
    const buf = Buffer.alloc(6, 0xee)
    const end = writeVarint(buf, 1, n)
    assert.equal(buf.subarray(1, end).toString('hex'), hex)
    assert.equal(varintLength(n), hex.length / 2)
    assert.equal(readVarint(buf, 1, end, out), VarintStatus.Ok)
    assert.deepEqual([out.value, out.length], [n, hex.length / 2])
  }
})

test('varint: random values round-trip and match the independent builder', () => {
  const out = new VarintResult()
  fc.assert(fc.property(fc.integer({ min: 0, max: 268_435_455 }), n => {
    const buf = Buffer.alloc(4)
    const end = writeVarint(buf, 0, n)
    assert.deepEqual([...buf.subarray(0, end)], vbi(n))
    assert.equal(readVarint(buf, 0, end, out), VarintStatus.Ok)
    assert.equal(out.value, n)
  }), { numRuns: 500 })
})

test('varint: incomplete input asks for more, a 4th continuation bit is malformed', () => {
  const out = new VarintResult()
  assert.equal(readVarint(Buffer.from([0x80, 0x80]), 0, 2, out), VarintStatus.Incomplete)
  assert.equal(readVarint(Buffer.alloc(0), 0, 0, out), VarintStatus.Incomplete)
  assert.equal(readVarint(Buffer.from([0x80, 0x80, 0x80, 0x80]), 0, 4, out), VarintStatus.Malformed)
  assert.equal(readVarint(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x01]), 0, 5, out), VarintStatus.Malformed)
})
