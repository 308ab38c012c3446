/**
 * Every decoder rule as data: one byte input per row with the expected error code and reason code
 * (0x81 malformed, 0x82 protocol error, 0x84 unsupported version). Names lead with the spec id where one exists.
 * Each row is also fed byte by byte: the verdict must not depend on fragmentation.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { MqttProtocolErrorCode, ProtocolVersion } from '../../src/protocol/index.js'
import { ascii, bin, bytes, fromHex, packet, prop, props, u16, utf8 } from '../helpers/wire.js'
import type { Bytes } from '../helpers/wire.js'
import { byteByByte, decodeBytes, decodeChunks } from './codec-check.js'

const M = 'MQTT_ERR_MALFORMED'
const P = 'MQTT_ERR_PROTOCOL'
const U = 'MQTT_ERR_UNSUPPORTED_VERSION'
const Reason: Record<MqttProtocolErrorCode, number> = {
  MQTT_ERR_MALFORMED: 0x81, MQTT_ERR_PROTOCOL: 0x82, MQTT_ERR_UNSUPPORTED_VERSION: 0x84, MQTT_ERR_TOO_LARGE: 0x95,
}

interface Row {
  name: string
  version: ProtocolVersion
  bytes: Buffer
  code: MqttProtocolErrorCode
  /** For UNSUPPORTED_VERSION: the dialect the broker should answer in (undefined: just close). */
  errorVersion?: ProtocolVersion
}

/** CONNECT body pieces, so each row changes one field. */
const name4 = bytes(utf8('MQTT'), 0x04) //    protocol name, level 4
const name5 = bytes(utf8('MQTT'), 0x05) //    protocol name, level 5
const connect4 = (flags: number, ...rest: Bytes[]): Buffer => packet(0x10, name4, flags, u16(60), utf8('c'), ...rest)
const connect5 = (flags: number, connectProps: Bytes, ...rest: Bytes[]): Buffer =>
  packet(0x10, name5, flags, u16(60), connectProps, utf8('c'), ...rest)
const publish5 = (publishProps: Bytes): Buffer => packet(0x30, utf8('t'), publishProps)

const rows: Row[] = [
  // ---- fixed header ----
  { name: '[MQTT-2.2.2-2] CONNECT with fixed-header flags 0001', version: 4, bytes: fromHex('11 0d 0004 4d515454 04 02 003c 0001 63'), code: M },
  { name: '[MQTT-2.2.2-2] CONNACK with flags 0010', version: 4, bytes: fromHex('22 02 00 00'), code: M },
  { name: '[MQTT-2.2.2-2] PUBACK with flags 0001', version: 4, bytes: fromHex('41 02 0001'), code: M },
  { name: '[MQTT-2.2.2-2] PUBREC with flags 0010', version: 4, bytes: fromHex('52 02 0001'), code: M },
  { name: '[MQTT-3.6.1-1] PUBREL with flags 0000', version: 4, bytes: fromHex('60 02 0001'), code: M },
  { name: '[MQTT-2.2.2-2] PUBCOMP with flags 1000', version: 5, bytes: fromHex('78 02 0001'), code: M },
  { name: '[MQTT-3.8.1-1] SUBSCRIBE with flags 0000', version: 4, bytes: fromHex('80 06 0001 0001 61 00'), code: M },
  { name: '[MQTT-2.2.2-2] SUBACK with flags 0010', version: 4, bytes: fromHex('92 03 0001 00'), code: M },
  { name: '[MQTT-3.10.1-1] UNSUBSCRIBE with flags 0011', version: 4, bytes: fromHex('a3 05 0001 0001 61'), code: M },
  { name: '[MQTT-2.2.2-2] UNSUBACK with flags 0100', version: 4, bytes: fromHex('b4 02 0001'), code: M },
  { name: '[MQTT-2.2.2-2] PINGREQ with flags 0001', version: 4, bytes: fromHex('c1 00'), code: M },
  { name: '[MQTT-2.2.2-2] PINGRESP with flags 1000', version: 4, bytes: fromHex('d8 00'), code: M },
  { name: '[MQTT-2.2.2-2] DISCONNECT with flags 0010', version: 5, bytes: fromHex('e2 00'), code: M },
  { name: '[MQTT-2.2.2-2] AUTH with flags 0001', version: 5, bytes: fromHex('f1 00'), code: M },
  { name: '[MQTT-3.3.1-4] PUBLISH with QoS 3', version: 4, bytes: fromHex('36 05 0001 74 0001'), code: M },
  { name: '[MQTT-3.3.1-2] v5 PUBLISH QoS 0 with DUP set', version: 5, bytes: fromHex('38 04 0001 74 00'), code: M },
  { name: 'reserved packet type 0', version: 4, bytes: fromHex('00 00'), code: M },
  { name: 'AUTH (type 15) is reserved before 5.0', version: 4, bytes: fromHex('f0 00'), code: M },
  { name: 'remaining length with a 5th byte (max 4 bytes, 3.1.1 section 2.2.3)', version: 4, bytes: fromHex('30 ff ff ff ff 01'), code: M },

  // ---- lengths ----
  { name: '[MQTT-1.5.3] string length overruns the packet', version: 4, bytes: fromHex('30 03 # PUBLISH, remaining 3\n 0005 61 # topic length 5, one byte'), code: M },
  { name: 'packet ends inside the packet identifier', version: 4, bytes: fromHex('32 04 0001 74 00'), code: M },
  { name: 'binary (will payload) length overruns the packet', version: 4, bytes: connect4(0x06, utf8('w'), u16(9)), code: M },
  { name: 'PUBACK v3.1.1 with a trailing byte', version: 4, bytes: fromHex('40 03 0001 00'), code: M },
  { name: 'PUBACK with only one byte', version: 4, bytes: fromHex('40 01 00'), code: M },
  { name: 'CONNACK v3.1.1 with a trailing byte', version: 4, bytes: fromHex('20 03 00 00 00'), code: M },
  { name: 'UNSUBACK v3.1.1 with a trailing byte', version: 4, bytes: fromHex('b0 03 0001 00'), code: M },
  { name: 'PINGREQ with a body', version: 4, bytes: fromHex('c0 01 00'), code: M },
  { name: 'DISCONNECT v3.1.1 with a body', version: 4, bytes: fromHex('e0 01 00'), code: M },
  { name: 'CONNECT with a trailing byte', version: 4, bytes: connect4(0x02, [0x00]), code: M },
  { name: 'SUBSCRIBE filter without its options byte', version: 4, bytes: fromHex('82 05 0001 0001 61'), code: M },
  { name: 'v5 DISCONNECT properties after the reason overrun', version: 5, bytes: fromHex('e0 02 00 05'), code: M },

  // ---- packet identifiers ----
  { name: '[MQTT-2.3.1-1] PUBLISH QoS 1 with packet id 0', version: 4, bytes: fromHex('32 05 0001 74 0000'), code: P },
  { name: '[MQTT-2.3.1-1] PUBACK with packet id 0', version: 4, bytes: fromHex('40 02 0000'), code: P },
  { name: '[MQTT-2.3.1-1] PUBREL with packet id 0', version: 5, bytes: fromHex('62 02 0000'), code: P },
  { name: '[MQTT-2.3.1-1] SUBSCRIBE with packet id 0', version: 4, bytes: fromHex('82 06 0000 0001 61 00'), code: P },
  { name: '[MQTT-2.3.1-1] UNSUBSCRIBE with packet id 0', version: 4, bytes: fromHex('a2 05 0000 0001 61'), code: P },

  // ---- CONNECT ----
  { name: '[MQTT-3.1.2-3] CONNECT reserved flag bit 0 set', version: 4, bytes: connect4(0x03), code: M },
  { name: '[MQTT-3.1.2-11] [MQTT-3.1.2-13] will QoS 1 without the will flag', version: 4, bytes: connect4(0x08), code: M },
  { name: '[MQTT-3.1.2-13] will QoS 2 without the will flag (v5)', version: 5, bytes: connect5(0x10, props()), code: M },
  { name: '[MQTT-3.1.2-15] will retain without the will flag', version: 4, bytes: connect4(0x20), code: M },
  { name: '[MQTT-3.1.2-14] will QoS 3', version: 4, bytes: connect4(0x1c, utf8('w'), bin()), code: M },
  { name: '[MQTT-3.1.2-22] v3.1.1 password flag without username flag', version: 4, bytes: connect4(0x40, bin(ascii('pw'))), code: M },
  { name: '[MQTT-3.1.2-2] MQTT level 3 is unsupported: answer as 3.1.1', version: 4, bytes: packet(0x10, utf8('MQTT'), 0x03, 0x02, u16(0), utf8('c')), code: U, errorVersion: 4 },
  { name: '[MQTT-3.1.2-2] MQTT level 6 is unsupported: answer as 3.1.1', version: 4, bytes: packet(0x10, utf8('MQTT'), 0x06, 0x02, u16(0), utf8('c')), code: U, errorVersion: 4 },
  { name: '[MQTT-3.1.2-2] MQIsdp level 4 is unsupported: answer as 3.1', version: 4, bytes: packet(0x10, utf8('MQIsdp'), 0x04, 0x02, u16(0), utf8('c')), code: U, errorVersion: 3 },
  { name: '[MQTT-3.1.2-1] unknown protocol name: no CONNACK dialect', version: 4, bytes: packet(0x10, utf8('MQTX'), 0x04, 0x02, u16(0), utf8('c')), code: U },
  { name: '[MQTT-3.1.2-1] unknown protocol name even with level 5', version: 4, bytes: packet(0x10, utf8('mqtt'), 0x05, 0x02, u16(0), props(), utf8('c')), code: U },

  // ---- UTF-8 strings [MQTT-1.5.3-1] [MQTT-1.5.3-2] (5.0: MQTT-1.5.4-1, MQTT-1.5.4-2) ----
  { name: '[MQTT-1.5.3-1] topic with an invalid UTF-8 sequence (c3 28)', version: 4, bytes: fromHex('30 04 0002 c3 28'), code: M },
  { name: '[MQTT-1.5.3-1] topic with a UTF-16 surrogate encoded in UTF-8 (ed a0 80)', version: 4, bytes: fromHex('30 05 0003 ed a0 80'), code: M },
  { name: '[MQTT-1.5.3-1] topic with an overlong encoding of "/" (c0 af)', version: 4, bytes: fromHex('30 04 0002 c0 af'), code: M },
  { name: '[MQTT-1.5.3-1] topic cut inside a multi-byte sequence (e2 82)', version: 4, bytes: fromHex('30 04 0002 e2 82'), code: M },
  { name: '[MQTT-1.5.3-2] topic containing U+0000', version: 4, bytes: fromHex('30 05 0003 61 00 62'), code: M },
  { name: '[MQTT-1.5.3-2] non-ASCII topic containing U+0000', version: 4, bytes: fromHex('30 06 0004 c3 a9 00 62'), code: M },
  { name: '[MQTT-1.5.3-2] client id containing U+0000', version: 4, bytes: packet(0x10, name4, 0x02, u16(0), u16(1), 0x00), code: M },
  { name: '[MQTT-1.5.3-1] username with invalid UTF-8', version: 4, bytes: connect4(0x80, u16(1), [0xff]), code: M },
  { name: '[MQTT-1.5.3-1] subscription filter with invalid UTF-8', version: 4, bytes: fromHex('82 06 0001 0001 80 00'), code: M },
  { name: '[MQTT-1.5.4-2] v5 user property containing U+0000', version: 5, bytes: publish5(props([0x26, ...utf8('k'), ...u16(1), 0x00])), code: M },
  { name: '[MQTT-1.5.4-1] v5 reason string with invalid UTF-8', version: 5, bytes: packet(0x40, u16(1), 0x80, props([0x1f, ...u16(1), 0xfe])), code: M },

  // ---- SUBSCRIBE / UNSUBSCRIBE ----
  { name: '[MQTT-3.8.3-3] SUBSCRIBE without topic filters', version: 4, bytes: fromHex('82 02 0001'), code: P },
  { name: '[MQTT-3.8.3-3] v5 SUBSCRIBE without topic filters', version: 5, bytes: fromHex('82 03 0001 00'), code: P },
  { name: '[MQTT-3.10.3-2] UNSUBSCRIBE without topic filters', version: 4, bytes: fromHex('a2 02 0001'), code: P },
  { name: '[MQTT-3.10.3-2] v5 UNSUBSCRIBE without topic filters', version: 5, bytes: fromHex('a2 03 0001 00'), code: P },
  { name: '[MQTT-3-8.3-4] v3.1.1 subscription options with reserved bits (0x04)', version: 4, bytes: fromHex('82 06 0001 0001 61 04'), code: M },
  { name: '[MQTT-3.8.3-5] v5 subscription options with reserved bits 6-7', version: 5, bytes: fromHex('82 07 0001 00 0001 61 40'), code: M },
  { name: '[MQTT-3.8.3-4] v3.1.1 requested QoS 3', version: 4, bytes: fromHex('82 06 0001 0001 61 03'), code: M },
  { name: 'v5 requested QoS 3 (section 3.8.3.1)', version: 5, bytes: fromHex('82 07 0001 00 0001 61 03'), code: M },
  { name: 'v5 retain handling 3 (section 3.8.3.1)', version: 5, bytes: fromHex('82 07 0001 00 0001 61 30'), code: P },
  { name: 'SUBACK without return codes', version: 4, bytes: fromHex('90 02 0001'), code: P },
  { name: 'v5 UNSUBACK without reason codes', version: 5, bytes: fromHex('b0 03 0001 00'), code: P },

  // ---- v5 properties (section 2.2.2) ----
  { name: 'v5 property appearing twice (content type)', version: 5, bytes: publish5(props(prop.str(0x03, 'a'), prop.str(0x03, 'b'))), code: P },
  { name: 'v5 property appearing twice (session expiry in CONNECT)', version: 5, bytes: connect5(0x02, props(prop.u32(0x11, 1), prop.u32(0x11, 1))), code: P },
  { name: 'v5 property not allowed in PUBLISH (session expiry interval)', version: 5, bytes: publish5(props(prop.u32(0x11, 5))), code: P },
  { name: 'v5 property not allowed in PUBACK (content type)', version: 5, bytes: packet(0x40, u16(1), 0x00, props(prop.str(0x03, 'x'))), code: P },
  { name: 'v5 property not allowed in will properties (session expiry interval)', version: 5, bytes: connect5(0x06, props(), props(prop.u32(0x11, 1)), utf8('w'), bin()), code: P },
  { name: 'v5 will delay interval is not allowed in CONNECT properties', version: 5, bytes: connect5(0x02, props(prop.u32(0x18, 1))), code: P },
  { name: 'v5 property not allowed in UNSUBSCRIBE (reason string)', version: 5, bytes: packet(0xa2, u16(1), props(prop.str(0x1f, 'r')), utf8('a')), code: P },
  { name: 'v5 unknown property identifier 0x05', version: 5, bytes: publish5(props([0x05, 0x00])), code: M },
  { name: 'v5 property length overruns the packet', version: 5, bytes: fromHex('30 05 0001 74 09 01'), code: M },
  { name: 'v5 property value overruns the property length', version: 5, bytes: fromHex('30 07 0001 74 02 02 0000 # expiry needs 4 bytes, block has 2'), code: M },
  { name: 'v5 payload format indicator 2', version: 5, bytes: publish5(props(prop.byte(0x01, 2))), code: P },
  { name: 'v5 request problem information 2', version: 5, bytes: connect5(0x02, props(prop.byte(0x17, 2))), code: P },
  { name: 'v5 request response information 3', version: 5, bytes: connect5(0x02, props(prop.byte(0x19, 3))), code: P },
  { name: 'v5 receive maximum 0 in CONNECT', version: 5, bytes: connect5(0x02, props(prop.u16(0x21, 0))), code: P },
  { name: 'v5 maximum packet size 0 in CONNECT', version: 5, bytes: connect5(0x02, props(prop.u32(0x27, 0))), code: P },
  { name: 'v5 maximum QoS 2 in CONNACK', version: 5, bytes: packet(0x20, 0x00, 0x00, props(prop.byte(0x24, 2))), code: P },
  { name: 'v5 retain available 2 in CONNACK', version: 5, bytes: packet(0x20, 0x00, 0x00, props(prop.byte(0x25, 2))), code: P },
  { name: 'v5 subscription identifier 0 in SUBSCRIBE', version: 5, bytes: packet(0x82, u16(1), props(prop.vbi(0x0b, 0)), utf8('a'), 0x00), code: P },
  { name: 'v5 subscription identifier 0 in PUBLISH', version: 5, bytes: publish5(props(prop.vbi(0x0b, 0))), code: P },
  { name: 'v5 two subscription identifiers in SUBSCRIBE', version: 5, bytes: packet(0x82, u16(1), props(prop.vbi(0x0b, 1), prop.vbi(0x0b, 2)), utf8('a'), 0x00), code: P },
  { name: 'v5 authentication data without authentication method', version: 5, bytes: connect5(0x02, props(prop.bin(0x16, 1))), code: P },
  { name: '[MQTT-3.15.2-1] v5 AUTH with reason code 0x80', version: 5, bytes: fromHex('f0 02 80 00'), code: P },
  { name: '[MQTT-3.2.2-1] CONNACK reserved flag bits set', version: 4, bytes: fromHex('20 02 02 00'), code: M },
]

for (const row of rows) {
  test(row.name, () => {
    for (const [how, r] of [
      ['whole', decodeBytes(row.bytes, row.version)],
      ['byte by byte', decodeChunks(byteByByte(row.bytes), row.version)],
    ] as const) {
      assert.equal(r.packets.length, 0, `${how}: no packet emitted`)
      assert.ok(r.error !== null, `${how}: an error`)
      assert.equal(r.error.code, row.code, `${how}: ${r.error.message}`)
      assert.equal(r.error.reasonCode, Reason[row.code])
      if (row.code === U) assert.equal(r.error.protocolVersion, row.errorVersion)
    }
  })
}

test('[MQTT-3.3.1-2] v3.1.1 tolerates DUP on a QoS 0 PUBLISH (the 5.0 rule only)', () => {
  const r = decodeBytes(fromHex('38 04 0001 74 00'), 4)
  assert.equal(r.error, null)
  assert.equal(r.packets.length, 1)
})

test('v5 topic alias 0 is left to the broker (it knows the alias maximum)', () => {
  const r = decodeBytes(publish5(props(prop.u16(0x23, 0))), 5)
  assert.equal(r.error, null)
  assert.deepEqual(r.packets[0]?.type === 3 && r.packets[0].properties, { topicAlias: 0 })
})

test('MQTT 3.1 clients may send PUBREL/SUBSCRIBE/UNSUBSCRIBE without the 0010 flags', () => {
  const r = decodeBytes(fromHex('60 02 0001  80 06 0001 0001 61 00  a0 05 0001 0001 61'), 3)
  assert.equal(r.error, null)
  assert.deepEqual(r.packets.map(p => p.type), [6, 8, 10])
})

test('a CONNECT sets the decoder version before the rest of it is read', () => {
  // v5 CONNECT with a property error: the decoder already knows the peer speaks 5.0 (the broker answers in v5).
  const r = decodeBytes(connect5(0x02, props(prop.u16(0x21, 0))), 4)
  assert.equal(r.error?.code, P)
  assert.equal(r.decoder.protocolVersion, 5)
})

test('after an error every later push returns the same error and emits nothing', () => {
  const r = decodeBytes(fromHex('00 00'), 4)
  const err = r.error
  assert.ok(err !== null)
  assert.equal(r.decoder.push(fromHex('c0 00')), err)
  assert.equal(r.packets.length, 0)
  assert.equal(r.decoder.buffered, 0)
})

test('packets before the bad one in the same chunk are emitted', () => {
  const r = decodeBytes(fromHex('c0 00  d0 00  c1 00  c0 00'), 4)
  assert.deepEqual(r.packets.map(p => p.type), [12, 13])
  assert.equal(r.error?.code, M)
})
