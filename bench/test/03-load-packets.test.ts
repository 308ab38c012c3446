import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeConnect, encodeSubscribe, publishTemplate, repeatTemplate } from '../load/packets.js'

test('[MQTT-3.1.2-1] CONNECT: 3.1.1, clean session, keepalive, client id', () => {
  const expected = Buffer.from([
    0x10, 0x0f, // CONNECT, remaining length 15
    0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, // "MQTT"
    0x04, // protocol level 4
    0x02, // clean session
    0x00, 0x3c, // keepalive 60
    0x00, 0x03, 0x61, 0x62, 0x63, // client id "abc"
  ])
  assert.deepEqual(encodeConnect('abc', 60), expected)
})

test('[MQTT-3.8.1-1] SUBSCRIBE: fixed header flags 0010, one filter', () => {
  const expected = Buffer.from([
    0x82, 0x0a, // SUBSCRIBE, remaining length 10
    0x00, 0x01, // packet id 1
    0x00, 0x05, 0x61, 0x2f, 0x62, 0x2f, 0x23, // "a/b/#"
    0x01, // QoS 1
  ])
  assert.deepEqual(encodeSubscribe(1, 'a/b/#', 1), expected)
})

test('PUBLISH template: QoS 0 and QoS 1 layouts', () => {
  const q0 = publishTemplate('t/1', 0, 16)
  assert.deepEqual(q0.bytes.subarray(0, 7), Buffer.from([0x30, 21, 0x00, 0x03, 0x74, 0x2f, 0x31]))
  assert.equal(q0.packetIdOffset, -1)
  assert.equal(q0.payloadOffset, 7)
  assert.equal(q0.bytes.length, 7 + 16)
  const q1 = publishTemplate('t/1', 1, 64)
  assert.equal(q1.bytes[0], 0x32)
  assert.equal(q1.bytes[1], 2 + 3 + 2 + 64)
  assert.equal(q1.packetIdOffset, 7)
  assert.equal(q1.payloadOffset, 9)
})

test('PUBLISH template: a 200-byte payload needs a two-byte Remaining Length', () => {
  const t = publishTemplate('x', 0, 200)
  assert.deepEqual(t.bytes.subarray(0, 3), Buffer.from([0x30, 0x80 | (203 & 0x7f), 203 >> 7]))
  assert.equal(t.payloadOffset, 6)
  assert.equal(repeatTemplate(t, 3).length, 3 * t.bytes.length)
})

test('PUBLISH template: payloads under 16 bytes cannot carry the stamp', () => {
  assert.throws(() => publishTemplate('x', 0, 15), RangeError)
})
