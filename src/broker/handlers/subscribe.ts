/**
 * SUBSCRIBE: validate and authorize each filter, store it (replacing an identical one [MQTT-3.8.4-3]),
 * answer SUBACK, then send matching retained messages per Retain Handling [MQTT-3.3.1-9..11].
 */
import type { SubscribePacket, Subscription } from '../../protocol/packets.js'
import { PacketType, ReasonCode, SubackFailure, type QoS } from '../../protocol/constants.js'
import { isValidTopicFilter, parseSharedFilter, withinByteLimit } from '../../protocol/topic.js'
import type { ClientLink } from '../client-link.js'
import { protocolViolation } from '../errors.js'
import { SubEntry } from '../session.js'
import { mountFilter } from './unsubscribe.js'
import { askHook, refusalCode, type AuthorizeSubscribeHook } from '../hooks.js'

export function handleSubscribe(conn: ClientLink, p: SubscribePacket): void {
  const broker = conn.broker
  const opts = broker.options
  const session = conn.session!
  const v5 = conn.version === 5
  const mount = conn.listener.mountPoint
  const authorizer = broker.authorizer(conn.listener)
  const list = p.subscriptions
  // Per entry: its reason code (the QoS granted, or a failure), and for an accepted one its key and filter.
  // Sized at once: an empty literal grows to 17 slots at its first push.
  const n = list.length
  const codes = new Array<number>(n)
  const keys = new Array<string>(n)
  const filters = new Array<string>(n)
  for (let i = 0; i < n; i++) {
    const s = list[i]!
    const raw = s.topicFilter
    keys[i] = ''
    filters[i] = ''
    if (!isValidTopicFilter(raw)) {
      codes[i] = v5 ? ReasonCode.TopicFilterInvalid : SubackFailure
      opts.logger.notice(`Client ${conn.label} subscribed to invalid topic filter '${raw}'; refused.`)
      continue
    }
    const shared = parseSharedFilter(raw)
    if (shared !== null && s.noLocal) {
      // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
      throw protocolViolation(`No Local set on shared subscription '${raw}'`)
    }
    const key = mount === '' ? raw : mountFilter(mount, raw)
    if (mount !== '' && !withinByteLimit(key)) {
      // Stored and bridged as one MQTT string: the mounted filter must still fit 65,535 bytes.
      codes[i] = v5 ? ReasonCode.TopicFilterInvalid : SubackFailure
      opts.logger.notice(`Client ${conn.label} subscribed to a topic filter that is too long under mount point '${mount}' (${Buffer.byteLength(raw)} bytes); refused.`)
      continue
    }
    const filter = shared === null ? key : (mount === '' ? shared.filter : mount + shared.filter)
    if (!authorizer.canSubscribe(session.identity, filter)) {
      codes[i] = v5 ? ReasonCode.NotAuthorized : SubackFailure
      opts.logger.notice(`Denied SUBSCRIBE from client ${conn.label} (u'${session.identity.username ?? ''}') to '${filter}': not authorised by the ACL.`)
      continue
    }
    keys[i] = key
    filters[i] = filter
    codes[i] = s.qos > opts.maxQos ? opts.maxQos : s.qos
  }
  const hook = opts.hooks.authorizeSubscribe
  if (hook === undefined) {
    finishSubscribe(conn, p, codes, keys, filters)
    return
  }
  askSubscribeHook(conn, p, codes, keys, filters, hook)
}

/**
 * The application's authorizeSubscribe hook, once per filter the ACL allowed (all asked at once): it may refuse
 * a filter or lower its QoS. Any async answer holds the client's next packets until every answer is in.
 */
function askSubscribeHook(conn: ClientLink, p: SubscribePacket, codes: number[], keys: string[], filters: string[], hook: AuthorizeSubscribeHook): void {
  const opts = conn.broker.options
  const client = conn.session!.identity
  const v5 = conn.version === 5
  let waiting = 1
  let held = false
  const done = (): void => {
    if (--waiting > 0) return
    if (held) conn.finishHeld(PacketType.Subscribe, () => finishSubscribe(conn, p, codes, keys, filters))
    else finishSubscribe(conn, p, codes, keys, filters)
  }
  for (let i = 0; i < codes.length; i++) {
    if (keys[i] === '') continue
    const s = p.subscriptions[i]!
    const shared = parseSharedFilter(s.topicFilter)
    const asked = { topic: filters[i]!, qos: codes[i] as QoS, group: shared === null ? undefined : shared.group }
    waiting++
    askHook(() => hook(client, asked), opts.hookTimeoutMs, (answer, error) => {
      if (error !== undefined) opts.logger.error(`The authorizeSubscribe hook ${error} for client ${conn.label} on '${asked.topic.slice(0, 200)}': refused.`)
      if (answer === true) {
        // Granted as asked.
      } else if (error === undefined && typeof answer === 'object' && answer !== null && 'qos' in answer && (answer.qos === 0 || answer.qos === 1 || answer.qos === 2)) {
        if (answer.qos < codes[i]!) codes[i] = answer.qos
      } else {
        if (error === undefined) opts.logger.notice(`Denied SUBSCRIBE from client ${conn.label} (u'${client.username ?? ''}') to '${asked.topic.slice(0, 200)}': refused by the authorizeSubscribe hook.`)
        codes[i] = v5 ? (error === undefined ? refusalCode(answer, ReasonCode.NotAuthorized) : ReasonCode.NotAuthorized) : SubackFailure
        keys[i] = ''
      }
      done()
    })
  }
  if (waiting > 1) {
    held = true
    conn.holdRead()
  }
  done()
}

/** Applies the accepted filters within max_subscriptions_per_client, answers SUBACK, then sends retained messages. */
function finishSubscribe(conn: ClientLink, p: SubscribePacket, codes: number[], keys: string[], filters: string[]): void {
  const broker = conn.broker
  const opts = broker.options
  const session = conn.session!
  const v5 = conn.version === 5
  const list = p.subscriptions
  const subId = p.properties?.subscriptionIdentifiers?.[0] ?? 0
  // The index of each filter subscribed, in the order of its first occurrence, pointing at its last: a filter
  // repeated in one SUBSCRIBE is one subscription, the later replacing the earlier [MQTT-3.8.4-3], and gets
  // its retained messages once; every occurrence still gets its own reason code [MQTT-3.8.4-6]. `at` (key ->
  // position in `chosen`) only when there can be repeats: not for the usual SUBSCRIBE of one filter.
  const chosen: number[] = []
  const at = list.length > 1 ? new Map<string, number>() : undefined
  const limit = opts.maxSubscriptionsPerClient
  let added = 0
  let overQuota = 0
  for (let i = 0; i < list.length; i++) {
    const key = keys[i]!
    if (key === '') continue
    const pos = at?.get(key)
    if (pos !== undefined) {
      chosen[pos] = i
      continue
    }
    if (!session.subscriptions.has(key)) {
      if (limit > 0 && session.subscriptions.size + added >= limit) {
        codes[i] = v5 ? ReasonCode.QuotaExceeded : SubackFailure
        overQuota++
        continue
      }
      added++
    }
    at?.set(key, chosen.length)
    chosen.push(i)
  }
  if (overQuota > 0) {
    opts.logger.notice(`Refused ${overQuota} of ${list.length} filters SUBSCRIBEd by client ${conn.label} from ${conn.meta.remoteAddress} (u'${session.identity.username ?? ''}'): it holds the most subscriptions allowed (max_subscriptions_per_client ${limit}).`)
  }
  // The entries whose retained messages are due, in `chosen`'s slots (undefined: none due).
  const retainedFor = new Array<SubEntry | undefined>(chosen.length)
  for (let c = 0; c < chosen.length; c++) {
    const i = chosen[c]!
    retainedFor[c] = subscribeOne(conn, keys[i]!, filters[i]!, list[i]!, subId, codes[i] as QoS)
  }
  broker.work += list.length
  conn.sendPacket({ type: PacketType.Suback, packetId: p.packetId, reasonCodes: codes })
  if (chosen.length > 0 && broker.events.listeners.subscribed !== undefined) {
    const granted: Array<{ topic: string; qos: QoS }> = []
    for (const i of chosen) granted.push({ topic: keys[i]!, qos: codes[i] as QoS })
    broker.events.emit('subscribed', session.identity, granted)
  }
  for (let c = 0; c < retainedFor.length; c++) {
    const entry = retainedFor[c]
    if (entry !== undefined) broker.sendRetained(session, entry)
  }
}

/** Stores one subscription. Returns it when its retained messages are due (Retain Handling). */
function subscribeOne(conn: ClientLink, key: string, filter: string, s: Subscription, subId: number, qos: QoS): SubEntry | undefined {
  const broker = conn.broker
  const session = conn.session!
  const shared = parseSharedFilter(s.topicFilter)
  const bridge = conn.privateBridge && shared === null
  const entry = new SubEntry(session, filter, shared === null ? '' : shared.group, qos, s.noLocal || bridge, s.retainAsPublished || bridge, s.retainHandling, subId)
  const existed = broker.subscribe(session, key, entry)
  const logger = broker.options.logger
  if (logger.enabled('subscribe')) logger.log('subscribe', `${session.clientId} ${qos} ${s.topicFilter}`)
  // Shared subscriptions get no retained messages on subscribe (MQTT 5 section 4.8.2).
  if (shared === null && (s.retainHandling === 0 || (s.retainHandling === 1 && !existed))) return entry
  return undefined
}
