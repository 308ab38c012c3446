/**
 * The decoded shape of every MQTT control packet. One interface per packet, shared by the decoder,
 * the encoder, the broker and the client. Fields absent on the wire are left undefined (not null), and
 * v5-only fields stay undefined for 3.1/3.1.1.
 */
import type { ProtocolVersion, QoS } from './constants.js'

/** MQTT 5.0 properties. Each appears at most once except userProperties and subscriptionIdentifiers. */
export interface Properties {
  payloadFormatIndicator?: number
  messageExpiryInterval?: number
  contentType?: string
  responseTopic?: string
  correlationData?: Buffer
  /** In PUBLISH there may be several; in SUBSCRIBE exactly one. */
  subscriptionIdentifiers?: number[]
  sessionExpiryInterval?: number
  assignedClientIdentifier?: string
  serverKeepAlive?: number
  authenticationMethod?: string
  authenticationData?: Buffer
  requestProblemInformation?: number
  willDelayInterval?: number
  requestResponseInformation?: number
  responseInformation?: string
  serverReference?: string
  reasonString?: string
  receiveMaximum?: number
  topicAliasMaximum?: number
  topicAlias?: number
  maximumQoS?: number
  retainAvailable?: number
  /** Order and duplicate keys are preserved, as the spec requires. */
  userProperties?: Array<[string, string]>
  maximumPacketSize?: number
  wildcardSubscriptionAvailable?: number
  subscriptionIdentifiersAvailable?: number
  sharedSubscriptionAvailable?: number
}

export interface WillMessage {
  topic: string
  payload: Buffer
  qos: QoS
  retain: boolean
  properties?: Properties
}

export interface ConnectPacket {
  type: 1
  /** 'MQTT' for 3.1.1 and 5.0, 'MQIsdp' for 3.1. */
  protocolName: string
  protocolVersion: ProtocolVersion
  /** Mosquitto's bridge flag: the high bit of the protocol level byte (0x80). */
  bridge: boolean
  /** Clean Session (3.x) / Clean Start (5.0). */
  cleanStart: boolean
  keepAlive: number
  clientId: string
  username?: string
  password?: Buffer
  will?: WillMessage
  properties?: Properties
}

export interface ConnackPacket {
  type: 2
  sessionPresent: boolean
  /** v5 reason code, or the 3.x return code (0..5). */
  reasonCode: number
  properties?: Properties
}

export interface PublishPacket {
  type: 3
  topic: string
  payload: Buffer
  qos: QoS
  retain: boolean
  dup: boolean
  /** 0 when qos is 0. */
  packetId: number
  properties?: Properties
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP: identical layout. */
export interface AckPacket {
  type: 4 | 5 | 6 | 7
  packetId: number
  /** 0 (Success) when absent on the wire, and always 0 for 3.x. */
  reasonCode: number
  properties?: Properties
}

export interface Subscription {
  topicFilter: string
  qos: QoS
  /** v5 subscription options; false/false/0 for 3.x. */
  noLocal: boolean
  retainAsPublished: boolean
  retainHandling: 0 | 1 | 2
}

export interface SubscribePacket {
  type: 8
  packetId: number
  subscriptions: Subscription[]
  properties?: Properties
}

export interface SubackPacket {
  type: 9
  packetId: number
  /** Granted QoS or failure code per subscription (0x80 in 3.1.1; v5 reason codes). */
  reasonCodes: number[]
  properties?: Properties
}

export interface UnsubscribePacket {
  type: 10
  packetId: number
  topicFilters: string[]
  properties?: Properties
}

export interface UnsubackPacket {
  type: 11
  packetId: number
  /** v5 only; empty for 3.x. */
  reasonCodes: number[]
  properties?: Properties
}

export interface PingreqPacket {
  type: 12
}

export interface PingrespPacket {
  type: 13
}

export interface DisconnectPacket {
  type: 14
  /** 0 when absent on the wire, and always 0 for 3.x. */
  reasonCode: number
  properties?: Properties
}

export interface AuthPacket {
  type: 15
  reasonCode: number
  properties?: Properties
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | AckPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket
