/**
 * Mosquitto's bridge topic mapping, reproduced exactly (mosquitto's bridge__add_topic, and the remapping in
 * send__publish / handle__publish):
 *
 *   local topic  = LOCAL_PREFIX + PATTERN     subscribed on this broker for `out` and `both`
 *   remote topic = REMOTE_PREFIX + PATTERN    subscribed on the remote for `in` and `both`
 *
 *   out: a local message matching the first prefixed out/both entry's local topic loses LOCAL_PREFIX (when
 *        it starts with it) and gains REMOTE_PREFIX; a message no prefixed entry matches goes unchanged.
 *   in:  the same, mirrored: REMOTE_PREFIX off, LOCAL_PREFIX on.
 *
 * The `""` placeholder stands for an absent prefix, or, as the pattern, for "the prefixes are whole topics"
 * (`topic "" out 0 home/temp vps/temp` maps that one topic). `""` as the pattern needs both prefixes.
 *
 * One addition to Mosquitto: an incoming message whose topic matches no in/both remote topic is dropped
 * (a remote session kept from an older configuration must not inject topics this one never asked for).
 */
import { isValidTopicFilter, isValidTopicName, topicMatches } from '../protocol/index.js'
import type { QoS } from '../protocol/index.js'
import type { BridgeDirection, BridgeTopicSpec } from './options.js'

export class BridgeTopic {
  readonly direction: BridgeDirection
  readonly qos: QoS
  readonly localPrefix: string | undefined
  readonly remotePrefix: string | undefined
  /** Filter subscribed on this broker (out, both). */
  readonly localTopic: string
  /** Filter subscribed on the remote (in, both). */
  readonly remoteTopic: string

  constructor (spec: BridgeTopicSpec) {
    this.direction = spec.direction
    this.qos = spec.qos
    this.localPrefix = spec.localPrefix
    this.remotePrefix = spec.remotePrefix
    const pattern = spec.pattern ?? ''
    this.localTopic = (spec.localPrefix ?? '') + pattern
    this.remoteTopic = (spec.remotePrefix ?? '') + pattern
  }

  get outgoing (): boolean { return this.direction !== 'in' }
  get incoming (): boolean { return this.direction !== 'out' }
  get remapped (): boolean { return this.localPrefix !== undefined || this.remotePrefix !== undefined }
}

/** Why a `topic` line cannot work, in an operator's words; undefined when it is valid. */
export function topicSpecProblem (spec: BridgeTopicSpec): string | undefined {
  if (spec.localPrefix !== undefined && !isValidTopicName(spec.localPrefix)) {
    return `local prefix '${spec.localPrefix}' is not a valid topic prefix (no '+' or '#')`
  }
  if (spec.remotePrefix !== undefined && !isValidTopicName(spec.remotePrefix)) {
    return `remote prefix '${spec.remotePrefix}' is not a valid topic prefix (no '+' or '#')`
  }
  if (spec.pattern === undefined && (spec.localPrefix === undefined || spec.remotePrefix === undefined)) {
    return 'the pattern "" needs both a local and a remote prefix, which then name the whole local and remote topics'
  }
  const t = new BridgeTopic(spec)
  for (const [side, filter, prefix] of [['local', t.localTopic, t.localPrefix], ['remote', t.remoteTopic, t.remotePrefix]] as const) {
    if (isValidTopicFilter(filter)) continue
    const hint = prefix !== undefined && spec.pattern !== undefined && /^[+#]/.test(spec.pattern) && !prefix.endsWith('/')
      ? ` (does the ${side} prefix '${prefix}' need a trailing '/'?)`
      : ''
    return `the ${side} topic '${filter}' is not a valid topic filter${hint}`
  }
  return undefined
}

/** The remote topic of a local message (Mosquitto's send__publish remapping). */
export function mapOutgoing (topics: readonly BridgeTopic[], topic: string): string {
  for (let i = 0; i < topics.length; i++) {
    const t = topics[i]!
    if (!t.outgoing || !t.remapped || !topicMatches(t.localTopic, topic)) continue
    let mapped = topic
    if (t.localPrefix !== undefined && mapped.startsWith(t.localPrefix)) mapped = mapped.slice(t.localPrefix.length)
    if (t.remotePrefix !== undefined) mapped = t.remotePrefix + mapped
    return mapped
  }
  return topic
}

/**
 * The local topic of a remote message (Mosquitto's handle__publish remapping), or undefined when no in/both
 * entry asked for it.
 */
export function mapIncoming (topics: readonly BridgeTopic[], topic: string): string | undefined {
  let wanted = false
  for (let i = 0; i < topics.length; i++) {
    const t = topics[i]!
    if (!t.incoming || !topicMatches(t.remoteTopic, topic)) continue
    if (!t.remapped) { wanted = true; continue }
    let mapped = topic
    if (t.remotePrefix !== undefined && mapped.startsWith(t.remotePrefix)) mapped = mapped.slice(t.remotePrefix.length)
    if (t.localPrefix !== undefined) mapped = t.localPrefix + mapped
    return mapped
  }
  return wanted ? topic : undefined
}
