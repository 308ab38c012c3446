/**
 * Annotated byte fixtures for every MQTT 5.0 packet type, together covering every property identifier
 * (section 2.2.2.2) in each packet that may carry it. Same checks as the 3.1.1 fixtures.
 */
import { test } from 'node:test'
import type { Packet } from '../../src/protocol/index.js'
import { ascii, bin, packet, prop, props, u16, utf8 } from '../helpers/wire.js'
import { checkFixture } from './codec-check.js'
import type { Fixture } from './codec-check.js'

const v5 = (name: string, bytes: Buffer, pkt: Packet, encodes = true): Fixture => ({ name, version: 5, bytes, packet: pkt, encodes })

const fixtures: Fixture[] = [
  v5('CONNECT minimal, empty properties', packet(0x10, // CONNECT
    utf8('MQTT'), //                          protocol name
    0x05, //                                  protocol version 5
    0x02, //                                  flags: clean start
    u16(30), //                               keep alive
    props(), //                               property length 0
    utf8('c5')), //                           client id
  { type: 1, protocolName: 'MQTT', protocolVersion: 5, bridge: false, cleanStart: true, keepAlive: 30, clientId: 'c5' }),

  v5('CONNECT with every CONNECT and will property', packet(0x10, // CONNECT
    utf8('MQTT'), //                          protocol name
    0x05, //                                  protocol version 5
    0xec, //                                  flags: username, password, will retain, will QoS 1, will
    u16(120), //                              keep alive
    props( //                                 CONNECT properties (identifier order, as our encoder writes them)
      prop.u32(0x11, 3600), //                session expiry interval
      prop.str(0x15, 'SCRAM-SHA-1'), //       authentication method
      prop.bin(0x16, 1, 2, 3), //             authentication data
      prop.byte(0x17, 0), //                  request problem information
      prop.byte(0x19, 1), //                  request response information
      prop.u16(0x21, 20), //                  receive maximum
      prop.u16(0x22, 10), //                  topic alias maximum
      prop.pair('k', 'v1'), //                user property
      prop.pair('k', 'v2'), //                user property, same key again (order kept)
      prop.u32(0x27, 1048576)), //            maximum packet size
    utf8('client-5'), //                      client id
    props( //                                 will properties
      prop.byte(0x01, 1), //                  payload format indicator: UTF-8
      prop.u32(0x02, 600), //                 message expiry interval
      prop.str(0x03, 'text/plain'), //        content type
      prop.str(0x08, 'reply/here'), //        response topic
      prop.bin(0x09, 0xca, 0xfe), //          correlation data
      prop.u32(0x18, 30), //                  will delay interval
      prop.pair('w', 'x')), //                user property
    utf8('status/client-5'), //               will topic
    bin(ascii('offline')), //                 will payload
    utf8('alice'), //                         username
    bin(ascii('secret'))), //                 password
  {
    type: 1, protocolName: 'MQTT', protocolVersion: 5, bridge: false, cleanStart: false, keepAlive: 120,
    clientId: 'client-5', username: 'alice', password: Buffer.from('secret'),
    properties: {
      sessionExpiryInterval: 3600, receiveMaximum: 20, maximumPacketSize: 1048576, topicAliasMaximum: 10,
      requestResponseInformation: 1, requestProblemInformation: 0, userProperties: [['k', 'v1'], ['k', 'v2']],
      authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.from([1, 2, 3]),
    },
    will: {
      topic: 'status/client-5', payload: Buffer.from('offline'), qos: 1, retain: true,
      properties: {
        willDelayInterval: 30, payloadFormatIndicator: 1, messageExpiryInterval: 600, contentType: 'text/plain',
        responseTopic: 'reply/here', correlationData: Buffer.from([0xca, 0xfe]), userProperties: [['w', 'x']],
      },
    },
  }),

  v5('CONNECT password without username (allowed in 5.0)', packet(0x10, // CONNECT
    utf8('MQTT'), //                          protocol name
    0x05, //                                  protocol version 5
    0x40, //                                  flags: password only
    u16(0), //                                keep alive
    props(), //                               no properties
    utf8('p'), //                             client id
    bin(ascii('token'))), //                  password
  { type: 1, protocolName: 'MQTT', protocolVersion: 5, bridge: false, cleanStart: false, keepAlive: 0, clientId: 'p', password: Buffer.from('token') }),

  v5('CONNACK with every CONNACK property', packet(0x20, // CONNACK
    0x00, //                                  flags
    0x00, //                                  reason code: success
    props( //                                 properties
      prop.u32(0x11, 0xffffffff), //          session expiry interval: never
      prop.str(0x12, 'auto-1'), //            assigned client identifier
      prop.u16(0x13, 45), //                  server keep alive
      prop.str(0x15, 'SCRAM-SHA-1'), //       authentication method
      prop.bin(0x16, 9), //                   authentication data
      prop.str(0x1a, 'resp/'), //             response information
      prop.str(0x1c, 'other:1883'), //        server reference
      prop.str(0x1f, 'welcome'), //           reason string
      prop.u16(0x21, 100), //                 receive maximum
      prop.u16(0x22, 5), //                   topic alias maximum
      prop.byte(0x24, 1), //                  maximum QoS
      prop.byte(0x25, 0), //                  retain available: no
      prop.pair('srv', 'midge'), //           user property
      prop.u32(0x27, 65536), //               maximum packet size
      prop.byte(0x28, 1), //                  wildcard subscription available
      prop.byte(0x29, 0), //                  subscription identifiers available: no
      prop.byte(0x2a, 1))), //                shared subscription available
  {
    type: 2, sessionPresent: false, reasonCode: 0,
    properties: {
      sessionExpiryInterval: 0xffffffff, assignedClientIdentifier: 'auto-1', serverKeepAlive: 45,
      authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.from([9]), responseInformation: 'resp/',
      serverReference: 'other:1883', reasonString: 'welcome', receiveMaximum: 100, topicAliasMaximum: 5,
      maximumQoS: 1, retainAvailable: 0, userProperties: [['srv', 'midge']], maximumPacketSize: 65536,
      wildcardSubscriptionAvailable: 1, subscriptionIdentifiersAvailable: 0, sharedSubscriptionAvailable: 1,
    },
  }),

  v5('CONNACK refused 0x84, session present clear', packet(0x20, // CONNACK
    0x00, //                                  flags
    0x84, //                                  reason code: unsupported protocol version
    props()), //                              property length 0
  { type: 2, sessionPresent: false, reasonCode: 0x84 }),

  v5('CONNACK in the 3.x form read by a v5 client (no property length)', packet(0x20, // CONNACK
    0x00, //                                  flags
    0x01), //                                 3.x return code 1: a 3.1.1-only server refusing v5
  { type: 2, sessionPresent: false, reasonCode: 1 }, false),

  v5('PUBLISH QoS 1 with every PUBLISH property', packet(0x32, // PUBLISH, QoS 1
    utf8('a/b'), //                           topic
    u16(77), //                               packet id
    props( //                                 properties
      prop.byte(0x01, 0), //                  payload format indicator: bytes
      prop.u32(0x02, 60), //                  message expiry interval
      prop.str(0x03, 'application/json'), //  content type
      prop.str(0x08, 'res/1'), //             response topic
      prop.bin(0x09, 0x01), //                correlation data
      prop.vbi(0x0b, 1), //                   subscription identifier 1
      prop.vbi(0x0b, 268435455), //           subscription identifier, maximum (4-byte VBI)
      prop.u16(0x23, 3), //                   topic alias
      prop.pair('a', 'b')), //                user property
    ascii('{}')), //                          payload
  {
    type: 3, topic: 'a/b', payload: Buffer.from('{}'), qos: 1, retain: false, dup: false, packetId: 77,
    properties: {
      payloadFormatIndicator: 0, messageExpiryInterval: 60, contentType: 'application/json', responseTopic: 'res/1',
      correlationData: Buffer.from([1]), subscriptionIdentifiers: [1, 268435455], topicAlias: 3, userProperties: [['a', 'b']],
    },
  }),

  v5('PUBLISH QoS 0 with empty topic and topic alias', packet(0x30, // PUBLISH, QoS 0
    utf8(''), //                              empty topic: the alias names it
    props(prop.u16(0x23, 1)), //              topic alias 1
    ascii('x')), //                           payload
  { type: 3, topic: '', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, packetId: 0, properties: { topicAlias: 1 } }),

  v5('PUBLISH QoS 2 retain dup, no properties', packet(0x3d, // PUBLISH, DUP, QoS 2, retain
    utf8('t'), //                             topic
    u16(2), //                                packet id
    props()), //                              property length 0, empty payload
  { type: 3, topic: 't', payload: Buffer.alloc(0), qos: 2, retain: true, dup: true, packetId: 2 }),

  v5('PUBACK success, short form', packet(0x40, u16(1)), // PUBACK, packet id; reason and properties omitted
    { type: 4, packetId: 1, reasonCode: 0 }),
  v5('PUBACK no matching subscribers, reason only', packet(0x40, // PUBACK
    u16(2), //                                packet id
    0x10), //                                 reason: no matching subscribers
  { type: 4, packetId: 2, reasonCode: 0x10 }),
  v5('PUBACK with reason string and user property', packet(0x40, // PUBACK
    u16(3), //                                packet id
    0x87, //                                  reason: not authorized
    props(prop.str(0x1f, 'denied'), prop.pair('x', 'y'))), // reason string, user property
  { type: 4, packetId: 3, reasonCode: 0x87, properties: { reasonString: 'denied', userProperties: [['x', 'y']] } }),
  v5('PUBACK success with an explicit empty property block (decode only)', packet(0x40, // PUBACK
    u16(4), //                                packet id
    0x00, //                                  reason: success, written out
    props()), //                              property length 0
  { type: 4, packetId: 4, reasonCode: 0 }, false),
  v5('PUBREC with reason string', packet(0x50, // PUBREC
    u16(5), //                                packet id
    0x80, //                                  reason: unspecified error
    props(prop.str(0x1f, 'full'))), //        reason string
  { type: 5, packetId: 5, reasonCode: 0x80, properties: { reasonString: 'full' } }),
  v5('PUBREL packet identifier not found', packet(0x62, // PUBREL (flags 0010)
    u16(6), //                                packet id
    0x92), //                                 reason: packet identifier not found
  { type: 6, packetId: 6, reasonCode: 0x92 }),
  v5('PUBCOMP with user property', packet(0x70, // PUBCOMP
    u16(7), //                                packet id
    0x00, //                                  reason: success (needed before properties)
    props(prop.pair('t', '1'))), //           user property
  { type: 7, packetId: 7, reasonCode: 0, properties: { userProperties: [['t', '1']] } }),

  v5('SUBSCRIBE with subscription identifier and all options', packet(0x82, // SUBSCRIBE (flags 0010)
    u16(10), //                               packet id
    props(prop.vbi(0x0b, 300), prop.pair('s', '1')), // subscription identifier 300 (2-byte VBI), user property
    utf8('a/#'), 0x2d, //                     filter; options: retain handling 2, RAP, no local, QoS 1
    utf8('$share/g/b'), 0x12), //             shared filter; options: retain handling 1, QoS 2
  {
    type: 8, packetId: 10, properties: { subscriptionIdentifiers: [300], userProperties: [['s', '1']] },
    subscriptions: [
      { topicFilter: 'a/#', qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 2 },
      { topicFilter: '$share/g/b', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 1 },
    ],
  }),

  v5('SUBACK with reason string', packet(0x90, // SUBACK
    u16(10), //                               packet id
    props(prop.str(0x1f, 'partial'), prop.pair('a', '')), // reason string, user property with empty value
    0x01, 0x8f, 0xa2), //                     granted QoS 1, topic filter invalid, wildcards not supported
  { type: 9, packetId: 10, reasonCodes: [1, 0x8f, 0xa2], properties: { reasonString: 'partial', userProperties: [['a', '']] } }),

  v5('UNSUBSCRIBE with user property', packet(0xa2, // UNSUBSCRIBE (flags 0010)
    u16(11), //                               packet id
    props(prop.pair('u', 'v')), //            user property
    utf8('a/#')), //                          filter
  { type: 10, packetId: 11, topicFilters: ['a/#'], properties: { userProperties: [['u', 'v']] } }),

  v5('UNSUBACK with reason codes', packet(0xb0, // UNSUBACK
    u16(11), //                               packet id
    props(prop.str(0x1f, 'r')), //            reason string
    0x00, 0x11), //                           success, no subscription existed
  { type: 11, packetId: 11, reasonCodes: [0, 0x11], properties: { reasonString: 'r' } }),

  v5('UNSUBACK without properties', packet(0xb0, // UNSUBACK
    u16(12), //                               packet id
    props(), //                               property length 0
    0x00), //                                 success
  { type: 11, packetId: 12, reasonCodes: [0] }),

  v5('PINGREQ', packet(0xc0), { type: 12 }), //   PINGREQ, remaining length 0
  v5('PINGRESP', packet(0xd0), { type: 13 }), //  PINGRESP, remaining length 0

  v5('DISCONNECT normal, short form', packet(0xe0), { type: 14, reasonCode: 0 }), // remaining length 0 = normal
  v5('DISCONNECT with will message, reason only', packet(0xe0, // DISCONNECT
    0x04), //                                 reason: disconnect with will message
  { type: 14, reasonCode: 4 }),
  v5('DISCONNECT with every DISCONNECT property', packet(0xe0, // DISCONNECT
    0x9c, //                                  reason: use another server
    props( //                                 properties
      prop.u32(0x11, 0), //                   session expiry interval
      prop.str(0x1c, 'b2:1883'), //           server reference
      prop.str(0x1f, 'moving'), //            reason string
      prop.pair('why', 'maintenance'))), //   user property
  {
    type: 14, reasonCode: 0x9c,
    properties: { sessionExpiryInterval: 0, serverReference: 'b2:1883', reasonString: 'moving', userProperties: [['why', 'maintenance']] },
  }),

  v5('AUTH success, short form', packet(0xf0), { type: 15, reasonCode: 0 }), // remaining length 0 = success
  v5('AUTH continue with every AUTH property', packet(0xf0, // AUTH
    0x18, //                                  reason: continue authentication
    props( //                                 properties
      prop.str(0x15, 'SCRAM-SHA-1'), //       authentication method
      prop.bin(0x16, ascii('r=abc')), //      authentication data
      prop.str(0x1f, 'step 2'), //            reason string
      prop.pair('n', '2'))), //               user property
  {
    type: 15, reasonCode: 0x18,
    properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.from('r=abc'), reasonString: 'step 2', userProperties: [['n', '2']] },
  }),
  v5('AUTH re-authenticate, reason only', packet(0xf0, 0x19), { type: 15, reasonCode: 0x19 }), // AUTH, reason 0x19
]

for (const fx of fixtures) {
  test(`v5 fixture: ${fx.name}`, () => {
    checkFixture(fx)
  })
}
