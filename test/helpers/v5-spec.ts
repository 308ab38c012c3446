/**
 * MQTT 5.0 tables typed in from the spec for test generators (section 2.2.2.2 property table, section 2.4
 * reason codes per packet). Kept apart from src/protocol/properties.ts on purpose: the tests compare the two.
 */

/** Packet names as the spec's property table lists them; 'will' = Will Properties of CONNECT. */
export type Carrier = 'CONNECT' | 'CONNACK' | 'PUBLISH' | 'will' | 'PUBACK' | 'PUBREC' | 'PUBREL' | 'PUBCOMP' |
  'SUBSCRIBE' | 'SUBACK' | 'UNSUBSCRIBE' | 'UNSUBACK' | 'DISCONNECT' | 'AUTH'

export type SpecType = 'byte' | 'u16' | 'u32' | 'vbi' | 'utf8' | 'binary' | 'pair'

export interface SpecProperty {
  id: number
  /** Field name in Midge's Properties interface. */
  field: string
  type: SpecType
  in: Carrier[]
  /** Values a well-behaved sender may use (for generators). */
  range?: readonly [number, number]
}

const acks: Carrier[] = ['PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP']

export const SpecProperties: SpecProperty[] = [
  { id: 0x01, field: 'payloadFormatIndicator', type: 'byte', in: ['PUBLISH', 'will'], range: [0, 1] },
  { id: 0x02, field: 'messageExpiryInterval', type: 'u32', in: ['PUBLISH', 'will'] },
  { id: 0x03, field: 'contentType', type: 'utf8', in: ['PUBLISH', 'will'] },
  { id: 0x08, field: 'responseTopic', type: 'utf8', in: ['PUBLISH', 'will'] },
  { id: 0x09, field: 'correlationData', type: 'binary', in: ['PUBLISH', 'will'] },
  { id: 0x0b, field: 'subscriptionIdentifiers', type: 'vbi', in: ['PUBLISH', 'SUBSCRIBE'], range: [1, 268_435_455] },
  { id: 0x11, field: 'sessionExpiryInterval', type: 'u32', in: ['CONNECT', 'CONNACK', 'DISCONNECT'] },
  { id: 0x12, field: 'assignedClientIdentifier', type: 'utf8', in: ['CONNACK'] },
  { id: 0x13, field: 'serverKeepAlive', type: 'u16', in: ['CONNACK'] },
  { id: 0x15, field: 'authenticationMethod', type: 'utf8', in: ['CONNECT', 'CONNACK', 'AUTH'] },
  { id: 0x16, field: 'authenticationData', type: 'binary', in: ['CONNECT', 'CONNACK', 'AUTH'] },
  { id: 0x17, field: 'requestProblemInformation', type: 'byte', in: ['CONNECT'], range: [0, 1] },
  { id: 0x18, field: 'willDelayInterval', type: 'u32', in: ['will'] },
  { id: 0x19, field: 'requestResponseInformation', type: 'byte', in: ['CONNECT'], range: [0, 1] },
  { id: 0x1a, field: 'responseInformation', type: 'utf8', in: ['CONNACK'] },
  { id: 0x1c, field: 'serverReference', type: 'utf8', in: ['CONNACK', 'DISCONNECT'] },
  { id: 0x1f, field: 'reasonString', type: 'utf8', in: ['CONNACK', ...acks, 'SUBACK', 'UNSUBACK', 'DISCONNECT', 'AUTH'] },
  { id: 0x21, field: 'receiveMaximum', type: 'u16', in: ['CONNECT', 'CONNACK'], range: [1, 65_535] },
  { id: 0x22, field: 'topicAliasMaximum', type: 'u16', in: ['CONNECT', 'CONNACK'] },
  { id: 0x23, field: 'topicAlias', type: 'u16', in: ['PUBLISH'], range: [1, 65_535] },
  { id: 0x24, field: 'maximumQoS', type: 'byte', in: ['CONNACK'], range: [0, 1] },
  { id: 0x25, field: 'retainAvailable', type: 'byte', in: ['CONNACK'], range: [0, 1] },
  {
    id: 0x26, field: 'userProperties', type: 'pair',
    in: ['CONNECT', 'CONNACK', 'PUBLISH', 'will', ...acks, 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'DISCONNECT', 'AUTH'],
  },
  { id: 0x27, field: 'maximumPacketSize', type: 'u32', in: ['CONNECT', 'CONNACK'], range: [1, 0xffff_ffff] },
  { id: 0x28, field: 'wildcardSubscriptionAvailable', type: 'byte', in: ['CONNACK'], range: [0, 1] },
  { id: 0x29, field: 'subscriptionIdentifiersAvailable', type: 'byte', in: ['CONNACK'], range: [0, 1] },
  { id: 0x2a, field: 'sharedSubscriptionAvailable', type: 'byte', in: ['CONNACK'], range: [0, 1] },
]

/** Reason codes each packet may carry (section 2.4 and each packet's reason code section). */
export const SpecReasonCodes = {
  CONNACK: [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f],
  PUBACK: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  PUBREC: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  PUBREL: [0x00, 0x92],
  PUBCOMP: [0x00, 0x92],
  SUBACK: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2],
  UNSUBACK: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91],
  DISCONNECT: [0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96,
    0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2],
  AUTH: [0x00, 0x18, 0x19],
} as const

/** 3.1.1 CONNACK return codes and SUBACK return codes. */
export const V3ConnackCodes = [0, 1, 2, 3, 4, 5] as const
export const V3SubackCodes = [0, 1, 2, 0x80] as const
