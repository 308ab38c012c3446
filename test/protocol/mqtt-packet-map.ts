/**
 * Translation between Midge packets and mqtt-packet's objects, for the differential test. mqtt-packet quirks
 * mapped here:
 * - field names: cmd/messageId/clean/keepalive/protocolId/granted/unsubscriptions; subscriptions use
 *   topic/nl/rap/rh; CONNACK uses returnCode in 3.x and reasonCode in 5.0; bridge is bridgeMode.
 * - userProperties is an object: a repeated key becomes an array and order across keys is lost
 *   (canonicalUserProperties gives both sides that order); subscriptionIdentifier is a number or an array.
 * - one-byte 0/1 properties (payloadFormatIndicator, request*Information, *Available) are booleans,
 *   except maximumQoS, which stays a number.
 * - it parses a missing property block as no properties, and writes DISCONNECT/AUTH always with a reason byte.
 * - it cannot parse the short AUTH (remaining length 0, section 3.15.2.1) and writes a broken v5 CONNECT in
 *   bridgeMode (level byte 3): the differential test steps around both, the fixtures cover them.
 */
import type { Packet, ProtocolVersion, Properties } from '../../src/protocol/index.js'

/* eslint-disable @typescript-eslint/no-explicit-any -- mqtt-packet's objects are loosely typed by nature */
type Any = Record<string, any>

const BooleanProps = new Set(['payloadFormatIndicator', 'requestProblemInformation', 'requestResponseInformation',
  'retainAvailable', 'wildcardSubscriptionAvailable', 'subscriptionIdentifiersAvailable', 'sharedSubscriptionAvailable'])

const Cmd = ['', 'connect', 'connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'suback',
  'unsubscribe', 'unsuback', 'pingreq', 'pingresp', 'disconnect', 'auth']

/** User properties grouped the way an object keyed by name groups them (mqtt-packet's representation). */
export function canonicalUserProperties (pairs: Array<[string, string]>): Array<[string, string]> {
  return fromTheirUserProperties(toTheirUserProperties(pairs))
}

function toTheirUserProperties (pairs: Array<[string, string]>): Any {
  const o: Any = Object.create(null)
  for (const [k, v] of pairs) {
    if (o[k] === undefined) o[k] = v
    else if (Array.isArray(o[k])) o[k].push(v)
    else o[k] = [o[k], v]
  }
  return o
}

function fromTheirUserProperties (o: Any): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const k of Object.getOwnPropertyNames(o)) {
    const v = o[k]
    if (Array.isArray(v)) for (const x of v) out.push([k, String(x)])
    else out.push([k, String(v)])
  }
  return out
}

export function toTheirProperties (p: Properties | undefined): Any | undefined {
  if (p === undefined) return undefined
  const out: Any = {}
  for (const [k, v] of Object.entries(p)) {
    if (v === undefined) continue
    if (k === 'userProperties') out.userProperties = toTheirUserProperties(v as Array<[string, string]>)
    else if (k === 'subscriptionIdentifiers') {
      const ids = v as number[]
      out.subscriptionIdentifier = ids.length === 1 ? ids[0] : ids
    } else if (BooleanProps.has(k)) out[k] = v === 1
    else out[k] = v
  }
  return out
}

export function fromTheirProperties (t: Any | undefined): Properties | undefined {
  if (t === undefined || Object.keys(t).length === 0) return undefined
  const out: Any = {}
  for (const [k, v] of Object.entries(t)) {
    if (k === 'userProperties') out.userProperties = fromTheirUserProperties(v)
    else if (k === 'subscriptionIdentifier') out.subscriptionIdentifiers = Array.isArray(v) ? v : [v]
    else if (BooleanProps.has(k)) out[k] = v === true ? 1 : 0
    else out[k] = v
  }
  return out as Properties
}

/** A Midge packet with user properties in mqtt-packet's order, to compare with what went through it. */
export function canonical (p: Packet): Packet {
  const fix = (props: Properties | undefined): Properties | undefined => props?.userProperties === undefined
    ? props
    : { ...props, userProperties: canonicalUserProperties(props.userProperties) }
  const out: Any = { ...p }
  if ('properties' in p) out.properties = fix(p.properties)
  if (p.type === 1 && p.will !== undefined) out.will = { ...p.will, properties: fix(p.will.properties) }
  return out as Packet
}

export function toTheirs (p: Packet, version: ProtocolVersion): Any {
  const v5 = version === 5
  const props = v5 && 'properties' in p ? toTheirProperties(p.properties) : undefined
  const base: Any = { cmd: Cmd[p.type] }
  if (props !== undefined) base.properties = props
  switch (p.type) {
    case 1: {
      const t: Any = {
        ...base, protocolId: version === 3 ? 'MQIsdp' : 'MQTT', protocolVersion: version, clean: p.cleanStart,
        keepalive: p.keepAlive, clientId: p.clientId, bridgeMode: p.bridge,
      }
      if (p.username !== undefined) t.username = p.username
      if (p.password !== undefined) t.password = p.password
      if (p.will !== undefined) {
        t.will = { topic: p.will.topic, payload: p.will.payload, qos: p.will.qos, retain: p.will.retain }
        const wp = v5 ? toTheirProperties(p.will.properties) : undefined
        if (wp !== undefined) t.will.properties = wp
      }
      return t
    }
    case 2: return v5
      ? { ...base, sessionPresent: p.sessionPresent, reasonCode: p.reasonCode }
      : { ...base, sessionPresent: p.sessionPresent, returnCode: p.reasonCode }
    case 3: {
      const t: Any = { ...base, topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup }
      if (p.qos > 0) t.messageId = p.packetId
      return t
    }
    case 4: case 5: case 6: case 7: return v5
      ? { ...base, messageId: p.packetId, reasonCode: p.reasonCode }
      : { ...base, messageId: p.packetId }
    case 8: return {
      ...base,
      messageId: p.packetId,
      subscriptions: p.subscriptions.map(s => v5
        ? { topic: s.topicFilter, qos: s.qos, nl: s.noLocal, rap: s.retainAsPublished, rh: s.retainHandling }
        : { topic: s.topicFilter, qos: s.qos }),
    }
    case 9: return { ...base, messageId: p.packetId, granted: p.reasonCodes }
    case 10: return { ...base, messageId: p.packetId, unsubscriptions: p.topicFilters }
    case 11: return v5 ? { ...base, messageId: p.packetId, granted: p.reasonCodes } : { ...base, messageId: p.packetId }
    case 12: case 13: return base
    case 14: case 15: return v5 ? { ...base, reasonCode: p.reasonCode } : base
  }
}

export function fromTheirs (t: Any, version: ProtocolVersion): Packet {
  const v5 = version === 5
  const properties = v5 ? fromTheirProperties(t.properties) : undefined
  switch (t.cmd) {
    case 'connect': return {
      type: 1, protocolName: t.protocolId, protocolVersion: t.protocolVersion, bridge: t.bridgeMode === true,
      cleanStart: t.clean, keepAlive: t.keepalive, clientId: t.clientId, username: t.username, password: t.password,
      will: t.will === undefined
        ? undefined
        : { topic: t.will.topic, payload: t.will.payload, qos: t.will.qos, retain: t.will.retain, properties: fromTheirProperties(t.will.properties) },
      properties,
    }
    case 'connack': return { type: 2, sessionPresent: t.sessionPresent, reasonCode: v5 ? t.reasonCode : t.returnCode, properties }
    case 'publish': return {
      type: 3, topic: t.topic, payload: t.payload, qos: t.qos, retain: t.retain, dup: t.dup,
      packetId: t.qos > 0 ? t.messageId : 0, properties,
    }
    case 'puback': case 'pubrec': case 'pubrel': case 'pubcomp':
      return { type: Cmd.indexOf(t.cmd) as 4 | 5 | 6 | 7, packetId: t.messageId, reasonCode: t.reasonCode ?? 0, properties }
    case 'subscribe': return {
      type: 8, packetId: t.messageId, properties,
      subscriptions: t.subscriptions.map((s: Any) => ({
        topicFilter: s.topic, qos: s.qos, noLocal: s.nl ?? false, retainAsPublished: s.rap ?? false, retainHandling: s.rh ?? 0,
      })),
    }
    case 'suback': return { type: 9, packetId: t.messageId, reasonCodes: t.granted, properties }
    case 'unsubscribe': return { type: 10, packetId: t.messageId, topicFilters: t.unsubscriptions, properties }
    case 'unsuback': return { type: 11, packetId: t.messageId, reasonCodes: v5 ? t.granted : [], properties }
    case 'pingreq': return { type: 12 }
    case 'pingresp': return { type: 13 }
    case 'disconnect': return { type: 14, reasonCode: t.reasonCode ?? 0, properties }
    case 'auth': return { type: 15, reasonCode: t.reasonCode ?? 0, properties }
    default: throw new Error(`unknown mqtt-packet cmd ${String(t.cmd)}`)
  }
}
