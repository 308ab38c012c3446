/**
 * Annotated byte fixtures for every MQTT 3.1.1 packet type (and the 3.1 CONNECT). Expected bytes come from
 * test/helpers/wire.ts, never from src/protocol. Each fixture is decoded whole, encoded back to the same
 * bytes, decoded split at every offset, byte by byte, and three times back to back.
 */
import { test } from 'node:test'
import type { Packet } from '../../src/protocol/index.js'
import { ascii, bin, packet, u16, utf8 } from '../helpers/wire.js'
import { checkFixture } from './codec-check.js'
import type { Fixture } from './codec-check.js'

const v4 = (name: string, bytes: Buffer, pkt: Packet): Fixture => ({ name, version: 4, bytes, packet: pkt })

const fixtures: Fixture[] = [
  v4('CONNECT minimal, clean session', packet(0x10, // CONNECT
    utf8('MQTT'), //                          protocol name
    0x04, //                                  protocol level 4
    0x02, //                                  flags: clean session
    u16(60), //                               keep alive 60 s
    utf8('c1')), //                           client id
  { type: 1, protocolName: 'MQTT', protocolVersion: 4, bridge: false, cleanStart: true, keepAlive: 60, clientId: 'c1' }),

  v4('CONNECT with will, username, password, empty client id', packet(0x10, // CONNECT
    utf8('MQTT'), //                          protocol name
    0x04, //                                  protocol level 4
    0xf4, //                                  flags: username, password, will retain, will QoS 2, will
    u16(0), //                                keep alive 0 (disabled)
    utf8(''), //                              client id (empty: server assigns)
    utf8('last/will'), //                     will topic
    bin(ascii('bye')), //                     will payload
    utf8('user'), //                          username
    bin(0x00, 0xff, 0x10)), //                password (binary)
  {
    type: 1, protocolName: 'MQTT', protocolVersion: 4, bridge: false, cleanStart: false, keepAlive: 0, clientId: '',
    username: 'user', password: Buffer.from([0x00, 0xff, 0x10]),
    will: { topic: 'last/will', payload: Buffer.from('bye'), qos: 2, retain: true },
  }),

  v4('CONNECT from a bridge (level byte 0x84), username only', packet(0x10, // CONNECT
    utf8('MQTT'), //                          protocol name
    0x84, //                                  protocol level 4 | 0x80 bridge bit
    0x82, //                                  flags: username, clean session
    u16(65535), //                            keep alive maximum
    utf8('bridge-1'), //                      client id
    utf8('ü')), //                            username, non-ASCII
  { type: 1, protocolName: 'MQTT', protocolVersion: 4, bridge: true, cleanStart: true, keepAlive: 65535, clientId: 'bridge-1', username: 'ü' }),

  {
    name: 'CONNECT MQTT 3.1 (MQIsdp level 3) with QoS 1 will',
    version: 3,
    bytes: packet(0x10, // CONNECT
      utf8('MQIsdp'), //                      protocol name of 3.1
      0x03, //                                protocol level 3
      0x0e, //                                flags: will QoS 1, will, clean session
      u16(10), //                             keep alive
      utf8('old-client'), //                  client id
      utf8('w'), //                           will topic
      bin()), //                              empty will payload
    packet: {
      type: 1, protocolName: 'MQIsdp', protocolVersion: 3, bridge: false, cleanStart: true, keepAlive: 10,
      clientId: 'old-client', will: { topic: 'w', payload: Buffer.alloc(0), qos: 1, retain: false },
    },
  },

  v4('CONNACK accepted, session present', packet(0x20, // CONNACK
    0x01, //                                  flags: session present
    0x00), //                                 return code 0 accepted
  { type: 2, sessionPresent: true, reasonCode: 0 }),

  v4('CONNACK refused: not authorized', packet(0x20, // CONNACK
    0x00, //                                  flags
    0x05), //                                 return code 5 not authorized
  { type: 2, sessionPresent: false, reasonCode: 5 }),

  v4('PUBLISH QoS 0', packet(0x30, // PUBLISH, QoS 0
    utf8('a/b'), //                           topic
    ascii('hello')), //                       payload
  { type: 3, topic: 'a/b', payload: Buffer.from('hello'), qos: 0, retain: false, dup: false, packetId: 0 }),

  v4('PUBLISH QoS 1 retain, empty payload', packet(0x33, // PUBLISH, QoS 1, retain
    utf8('r'), //                             topic
    u16(1)), //                               packet id; no payload
  { type: 3, topic: 'r', payload: Buffer.alloc(0), qos: 1, retain: true, dup: false, packetId: 1 }),

  v4('PUBLISH QoS 2 dup, UTF-8 topic', packet(0x3c, // PUBLISH, DUP, QoS 2
    utf8('温度/€/😀'), //                     topic with 3- and 4-byte UTF-8
    u16(65535), //                            packet id
    0x00, 0x01, 0xff), //                     binary payload
  { type: 3, topic: '温度/€/😀', payload: Buffer.from([0, 1, 0xff]), qos: 2, retain: false, dup: true, packetId: 65535 }),

  v4('PUBLISH QoS 0 with a 200-byte payload (2-byte remaining length)', packet(0x30, // PUBLISH
    utf8('t'), //                             topic
    Buffer.alloc(200, 0x78)), //              payload
  { type: 3, topic: 't', payload: Buffer.alloc(200, 0x78), qos: 0, retain: false, dup: false, packetId: 0 }),

  v4('PUBACK', packet(0x40, u16(7)), { type: 4, packetId: 7, reasonCode: 0 }), //   PUBACK, packet id 7
  v4('PUBREC', packet(0x50, u16(8)), { type: 5, packetId: 8, reasonCode: 0 }), //   PUBREC, packet id 8
  v4('PUBREL', packet(0x62, u16(9)), { type: 6, packetId: 9, reasonCode: 0 }), //   PUBREL (flags 0010), packet id 9
  v4('PUBCOMP', packet(0x70, u16(10)), { type: 7, packetId: 10, reasonCode: 0 }), // PUBCOMP, packet id 10

  v4('SUBSCRIBE two filters', packet(0x82, // SUBSCRIBE (flags 0010)
    u16(3), //                                packet id
    utf8('a/+'), 0x01, //                     filter, requested QoS 1
    utf8('#'), 0x02), //                      filter, requested QoS 2
  {
    type: 8, packetId: 3, subscriptions: [
      { topicFilter: 'a/+', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      { topicFilter: '#', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
    ],
  }),

  v4('SUBACK with a failure', packet(0x90, // SUBACK
    u16(3), //                                packet id
    0x01, 0x80, 0x00), //                     granted QoS 1, failure, granted QoS 0
  { type: 9, packetId: 3, reasonCodes: [1, 0x80, 0] }),

  v4('UNSUBSCRIBE two filters', packet(0xa2, // UNSUBSCRIBE (flags 0010)
    u16(4), //                                packet id
    utf8('a/+'), //                           filter
    utf8('$SYS/#')), //                       filter
  { type: 10, packetId: 4, topicFilters: ['a/+', '$SYS/#'] }),

  v4('UNSUBACK', packet(0xb0, u16(4)), { type: 11, packetId: 4, reasonCodes: [] }), // UNSUBACK, packet id 4
  v4('PINGREQ', packet(0xc0), { type: 12 }), //                                        PINGREQ, remaining length 0
  v4('PINGRESP', packet(0xd0), { type: 13 }), //                                       PINGRESP, remaining length 0
  v4('DISCONNECT', packet(0xe0), { type: 14, reasonCode: 0 }), //                      DISCONNECT, remaining length 0
]

for (const fx of fixtures) {
  test(`v${fx.version} fixture: ${fx.name}`, () => {
    checkFixture(fx)
  })
}
