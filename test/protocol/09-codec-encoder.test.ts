/** Encoder choices the fixtures do not pin: refusals, short forms, properties the packet type may not carry. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { encode, encodedSize, encodePublish, MqttEncodeError } from '../../src/protocol/index.js'
import type { Packet } from '../../src/protocol/index.js'
import { ascii, bin, packet, prop, props, u16, utf8 } from '../helpers/wire.js'

const hex = (b: Buffer): string => b.toString('hex')

test('a string over 65,535 UTF-8 bytes is refused with MQTT_ERR_ENCODE', () => {
  const p: Packet = { type: 3, topic: '€'.repeat(21_846), payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, packetId: 0 }
  assert.throws(() => encode(p, 4), (e: unknown) => e instanceof MqttEncodeError && e.code === 'MQTT_ERR_ENCODE')
})

test('[MQTT-3.1.2-22] a 3.1.1 CONNECT with a password but no username is refused', () => {
  const p: Packet = { type: 1, protocolName: 'MQTT', protocolVersion: 4, bridge: false, cleanStart: true, keepAlive: 0, clientId: 'c', password: Buffer.from('x') }
  assert.throws(() => encode(p, 4), MqttEncodeError)
  assert.equal(hex(encode(p, 5)), hex(packet(0x10, utf8('MQTT'), 5, 0x42, u16(0), props(), utf8('c'), bin(ascii('x')))))
})

test('[MQTT-2.3.1-1] packet identifier 0 is refused where one is required', () => {
  assert.throws(() => encode({ type: 4, packetId: 0, reasonCode: 0 }, 4), MqttEncodeError)
  assert.throws(() => encode({ type: 3, topic: 't', payload: Buffer.alloc(0), qos: 1, retain: false, dup: false, packetId: 0 }, 4), MqttEncodeError)
})

test('AUTH cannot be encoded before 5.0', () => {
  assert.throws(() => encode({ type: 15, reasonCode: 0 }, 4), MqttEncodeError)
})

test('the CONNECT version comes from the argument: 3 writes MQIsdp level 3, 4 writes MQTT level 4', () => {
  const p: Packet = { type: 1, protocolName: 'MQTT', protocolVersion: 5, bridge: false, cleanStart: true, keepAlive: 5, clientId: 'x' }
  assert.equal(hex(encode(p, 3)), hex(packet(0x10, utf8('MQIsdp'), 3, 0x02, u16(5), utf8('x'))))
  assert.equal(hex(encode(p, 4)), hex(packet(0x10, utf8('MQTT'), 4, 0x02, u16(5), utf8('x'))))
})

test('v5 acks, DISCONNECT and AUTH drop the reason code and properties when they can', () => {
  assert.equal(hex(encode({ type: 4, packetId: 1, reasonCode: 0 }, 5)), '40020001')
  assert.equal(hex(encode({ type: 4, packetId: 1, reasonCode: 0, properties: {} }, 5)), '40020001')
  assert.equal(hex(encode({ type: 6, packetId: 1, reasonCode: 0x92 }, 5)), '6203000192')
  assert.equal(hex(encode({ type: 14, reasonCode: 0 }, 5)), 'e000')
  assert.equal(hex(encode({ type: 14, reasonCode: 0x8e }, 5)), 'e0018e')
  assert.equal(hex(encode({ type: 15, reasonCode: 0 }, 5)), 'f000')
  assert.equal(hex(encode({ type: 14, reasonCode: 0, properties: { reasonString: 'r' } }, 5)),
    hex(packet(0xe0, 0x00, props(prop.str(0x1f, 'r')))))
})

test('3.x encoding ignores v5-only fields (reason codes, properties)', () => {
  assert.equal(hex(encode({ type: 4, packetId: 1, reasonCode: 0x80, properties: { reasonString: 'x' } }, 4)), '40020001')
  assert.equal(hex(encode({ type: 14, reasonCode: 0x8e }, 4)), 'e000')
  assert.equal(hex(encode({ type: 11, packetId: 2, reasonCodes: [0x11] }, 4)), 'b0020002')
  assert.equal(hex(encode({ type: 8, packetId: 1, subscriptions: [{ topicFilter: 'a', qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 2 }] }, 4)),
    hex(packet(0x82, u16(1), utf8('a'), 0x01)))
})

test('properties a packet type may not carry are not written (here: session expiry on PUBLISH)', () => {
  const p: Packet = {
    type: 3, topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, packetId: 0,
    properties: { sessionExpiryInterval: 5, contentType: 'c' },
  }
  assert.equal(hex(encodePublish(p, 5)), hex(packet(0x30, utf8('t'), props(prop.str(0x03, 'c')), ascii('x'))))
})

test('encodedSize matches the encoded length across remaining-length boundaries', () => {
  for (const n of [0, 1, 120, 121, 122, 16_370, 16_380, 16_400, 2_097_140, 2_097_150]) {
    const p: Packet = { type: 3, topic: 't', payload: Buffer.alloc(n), qos: 0, retain: false, dup: false, packetId: 0 }
    assert.equal(encodedSize(p, 4), encode(p, 4).length, String(n))
  }
})

test('PINGREQ/PINGRESP buffers are fresh each time (a stream may keep them)', () => {
  const a = encode({ type: 12 }, 4)
  const b = encode({ type: 12 }, 4)
  assert.notEqual(a, b)
  assert.equal(hex(a), 'c000')
  assert.equal(hex(encode({ type: 13 }, 5)), 'd000')
})
