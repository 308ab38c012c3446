/**
 * The bridge option table: every option of a `connection` block Midge accepts, defined once — name, value
 * type (its validator), default (the value and how docs show it), one line of documentation, and where the
 * value goes. The block parser (bridge-blocks.ts) and the option reference in docs/bridging.md are driven by it;
 * a test keeps that doc in step. Defaults are Mosquitto 2.0's (mosquitto.conf(5), "Configuring Bridges") and live
 * here alone: the bridge module is handed resolved BridgeOptions.
 *
 * Spellings are mosquitto.conf's. The pre-1.5 names `clientid`, `username` and `password` are accepted as
 * aliases of the remote_* ones inside a block, as Mosquitto 2 still does.
 */
import { hostname } from 'node:os'
import type { BridgeTlsOptions, BridgeTopicSpec } from '../bridge/options.js'
import {
  bridgeAddresses, bridgeProtocolVersion, bridgeTopic, restartTimeout, startType, topicName, word,
} from './bridge-values.js'
import { bool, dirPath, int, path, text, tlsVersion, type ValueType } from './value-types.js'
import type { BridgeAddress } from '../bridge/options.js'
import type { ProtocolVersion } from '../protocol/index.js'

/** A `connection` block as it is read: every field unset until its line comes. */
export interface BridgeDraft {
  addresses?: BridgeAddress[]
  topics: BridgeTopicSpec[]
  remoteClientId?: string
  localClientId?: string
  remoteUsername?: string
  remotePassword?: string
  localUsername?: string
  localPassword?: string
  cleanSession?: boolean
  localCleanSession?: boolean
  keepalive?: number
  restartTimeout?: { base: number; cap: number }
  protocolVersion?: ProtocolVersion
  tryPrivate?: boolean
  notifications?: boolean
  notificationsLocalOnly?: boolean
  notificationTopic?: string
  tls: Partial<BridgeTlsOptions>
  bindAddress?: string
  startType?: 'automatic' | 'once'
  roundRobin?: boolean
  outgoingRetain?: boolean
  maxPacketSize?: number
  attemptUnsubscribe?: boolean
}

export interface BridgeOptionSpec {
  name: string
  type: ValueType<unknown>
  /** As shown in docs; '(unset)' when there is none. */
  default: string
  /** Gives the option its default in a block that left it unset; runs in table order after the whole block is read. */
  fallback?(d: BridgeDraft, name: string): void
  doc: string
  /** Stores a parsed value into the block. */
  set(d: BridgeDraft, value: unknown): void
  /** Each line adds (topic); otherwise a repeat replaces, with a warning. */
  repeatable?: boolean
}

function opt<T> (spec: Omit<BridgeOptionSpec, 'type' | 'set'> & { type: ValueType<T>; set(d: BridgeDraft, value: T): void }): BridgeOptionSpec {
  return spec as unknown as BridgeOptionSpec
}

type FlatKey = { [K in keyof BridgeDraft]-?: BridgeDraft[K] extends string | number | boolean | object | undefined ? K : never }[keyof BridgeDraft]

/** A constant default: the value the block gets and the text docs show, from one literal. */
function dflt<K extends Exclude<FlatKey, 'topics' | 'tls'>> (key: K, value: NonNullable<BridgeDraft[K]>, shown = String(value)): Pick<BridgeOptionSpec, 'default' | 'fallback'> {
  return { default: shown, fallback: (d) => { if (d[key] === undefined) d[key] = value } }
}

/** MQTT's largest packet: 268 435 455 bytes of Remaining Length plus a 5-byte fixed header. */
const MqttMaxPacket = 268_435_460

export const BridgeOptionTable: readonly BridgeOptionSpec[] = [
  opt({ name: 'address', type: bridgeAddresses, default: '(required)', set: (d, v) => { d.addresses = v },
    doc: 'Remote broker(s): `host[:port]`, port 1883 when omitted; several are tried in turn when one fails (see `round_robin`). `addresses` is the same option. An IPv6 address needs its port: `[::1]:8883`.' }),
  opt({ name: 'addresses', type: bridgeAddresses, default: '(required)', set: (d, v) => { d.addresses = v },
    doc: 'Same as `address`.' }),
  opt({ name: 'topic', type: bridgeTopic, default: '(at least one)', repeatable: true, set: (d, v) => { d.topics.push(v) },
    doc: '`topic PATTERN [[[out | in | both] QOS] LOCAL_PREFIX REMOTE_PREFIX]`: what is shared. Direction defaults to out, QoS to 0. The local topic is LOCAL_PREFIX+PATTERN, the remote one REMOTE_PREFIX+PATTERN; `""` stands for an empty prefix, or, as the pattern, maps one topic to another (`topic "" out 1 home/temp vps/temp`). Repeat for more topics.' }),
  opt({ name: 'remote_clientid', type: word, default: 'HOSTNAME.NAME', fallback: (d, name) => { d.remoteClientId ??= `${hostname()}.${name}` }, set: (d, v) => { d.remoteClientId = v },
    doc: 'Client id on the remote broker (`clientid` is an old spelling).' }),
  opt({ name: 'local_clientid', type: word, default: 'local.REMOTE_CLIENTID', fallback: (d) => { d.localClientId ??= `local.${d.remoteClientId!}` }, set: (d, v) => { d.localClientId = v },
    doc: 'Client id of the bridge\'s session on this broker; must differ from `remote_clientid` when bridging a broker to itself.' }),
  opt({ name: 'remote_username', type: text, default: '(unset)', set: (d, v) => { d.remoteUsername = v },
    doc: 'Username for the remote broker (`username` is an old spelling).' }),
  opt({ name: 'remote_password', type: text, default: '(unset)', set: (d, v) => { d.remotePassword = v },
    doc: 'Password for the remote broker; needs `remote_username` (`password` is an old spelling). Keep the config file unreadable to others.' }),
  opt({ name: 'local_username', type: text, default: '(unset)', set: (d, v) => { d.localUsername = v },
    doc: 'Username of the bridge\'s session on this broker, as logs and plugins see it. The bridge is not subject to `acl_file`: its `topic` lines say what it carries.' }),
  opt({ name: 'local_password', type: text, default: '(unset)', set: (d, v) => { d.localPassword = v },
    doc: 'Accepted for compatibility and not used: the bridge runs inside the broker and is not authenticated by it.' }),
  opt({ name: 'cleansession', type: bool, ...dflt('cleanSession', false), set: (d, v) => { d.cleanSession = v },
    doc: 'Clean session on the remote. false keeps the remote subscriptions and queued `in` messages across disconnections.' }),
  opt({ name: 'local_cleansession', type: bool, default: 'cleansession', fallback: (d) => { d.localCleanSession ??= d.cleanSession! }, set: (d, v) => { d.localCleanSession = v },
    doc: 'Clean session of the local session. false keeps `out` messages of QoS 1 and 2 queued (within `max_queued_messages`) while the remote is unreachable, and sends them after the reconnection.' }),
  // Mosquitto refuses keepalive_interval below 5.
  opt({ name: 'keepalive_interval', type: int(5, 65535, { unit: 'seconds' }), ...dflt('keepalive', 60), set: (d, v) => { d.keepalive = v },
    doc: 'Keep alive towards the remote: a ping after this many idle seconds, and the connection counts as lost when the answer does not come.' }),
  opt({ name: 'restart_timeout', type: restartTimeout, ...dflt('restartTimeout', { base: 5, cap: 30 }, '5 30'), set: (d, v) => { d.restartTimeout = v },
    doc: 'Wait before reconnecting: one number of seconds is a constant delay; `BASE CAP` is a randomised backoff from BASE up to CAP ("decorrelated jitter"), restarting from BASE after each successful connection.' }),
  opt({ name: 'bridge_protocol_version', type: bridgeProtocolVersion, ...dflt('protocolVersion', 4, 'mqttv311'), set: (d, v) => { d.protocolVersion = v },
    doc: 'MQTT version spoken to the remote. With mqttv50 the remote subscriptions use No Local, so nothing the bridge sends comes back.' }),
  opt({ name: 'try_private', type: bool, ...dflt('tryPrivate', true), set: (d, v) => { d.tryPrivate = v },
    doc: 'Tell the remote this is a bridge (bit 0x80 of the protocol level): a Mosquitto remote then sends nothing back that came from the bridge and keeps retained flags. Set false for brokers that refuse such connections.' }),
  opt({ name: 'notifications', type: bool, ...dflt('notifications', true), set: (d, v) => { d.notifications = v },
    doc: 'Publish the bridge state, retained: `1` when connected, `0` when not, on this broker and on the remote (there as the connection\'s will, so a dead link shows too).' }),
  opt({ name: 'notifications_local_only', type: bool, ...dflt('notificationsLocalOnly', false), set: (d, v) => { d.notificationsLocalOnly = v },
    doc: 'Publish the state notifications on this broker only.' }),
  opt({ name: 'notification_topic', type: topicName, default: '$SYS/broker/connection/REMOTE_CLIENTID/state', fallback: (d) => { d.notificationTopic ??= `$SYS/broker/connection/${d.remoteClientId!}/state` }, set: (d, v) => { d.notificationTopic = v },
    doc: 'Topic of the state notifications.' }),
  opt({ name: 'round_robin', type: bool, ...dflt('roundRobin', false), set: (d, v) => { d.roundRobin = v },
    doc: 'With several addresses: false treats the first as the main one, probed every 5 s while connected to another and returned to when it answers; true treats them as equals and stays wherever it is connected.' }),
  opt({ name: 'start_type', type: startType, ...dflt('startType', 'automatic'), set: (d, v) => { d.startType = v },
    doc: 'automatic: connect at start and reconnect after any loss; once: connect at start, never reconnect. (Mosquitto\'s `lazy` is not supported.)' }),
  opt({ name: 'bridge_outgoing_retain', type: bool, ...dflt('outgoingRetain', true), set: (d, v) => { d.outgoingRetain = v },
    doc: 'false clears the retain flag of everything sent to the remote, for brokers that refuse retained messages.' }),
  opt({ name: 'bridge_max_packet_size', type: int(0, MqttMaxPacket, { unit: 'bytes' }), ...dflt('maxPacketSize', 0), set: (d, v) => { d.maxPacketSize = v },
    doc: 'Largest PUBLISH sent to the remote; larger messages are dropped with a warning. 0: no limit beyond the remote\'s own Maximum Packet Size (MQTT 5).' }),
  opt({ name: 'bridge_attempt_unsubscribe', type: bool, ...dflt('attemptUnsubscribe', true), set: (d, v) => { d.attemptUnsubscribe = v },
    doc: 'Unsubscribe `out`-only topics on the remote at each connection, so a topic changed from in to out stops arriving from a kept session.' }),
  opt({ name: 'bridge_bind_address', type: word, default: '(unset)', set: (d, v) => { d.bindAddress = v },
    doc: 'Local IP address the connection to the remote is made from.' }),
  // ---- TLS to the remote ----
  opt({ name: 'bridge_cafile', type: path, default: '(unset)', set: (d, v) => { d.tls.cafile = v },
    doc: 'PEM CA certificate(s) that signed the remote\'s certificate. Setting this or `bridge_capath` turns TLS on; the remote\'s name is checked against the address.' }),
  opt({ name: 'bridge_capath', type: dirPath, default: '(unset)', set: (d, v) => { d.tls.capath = v },
    doc: 'Directory of CA certificates, e.g. /etc/ssl/certs for a Let\'s Encrypt certificate: every regular file in it holding PEM certificates is trusted (as `capath`).' }),
  opt({ name: 'bridge_certfile', type: path, default: '(unset)', set: (d, v) => { d.tls.certfile = v },
    doc: 'PEM client certificate for a remote that requires one; needs `bridge_keyfile`.' }),
  opt({ name: 'bridge_keyfile', type: path, default: '(unset)', set: (d, v) => { d.tls.keyfile = v },
    doc: 'PEM private key of `bridge_certfile`.' }),
  opt({ name: 'bridge_insecure', type: bool, default: 'false', fallback: (d) => { d.tls.insecure ??= false }, set: (d, v) => { d.tls.insecure = v },
    doc: 'Do not check that the remote certificate names the host connected to (the chain is still verified). For tests only: anyone with a certificate from the same CA could pose as the remote.' }),
  opt({ name: 'bridge_tls_version', type: tlsVersion, default: 'tlsv1.2', set: (d, v) => { d.tls.version = v },
    doc: 'Lowest TLS version used with the remote.' }),
  opt({ name: 'bridge_alpn', type: word, default: '(unset)', set: (d, v) => { d.tls.alpn = v },
    doc: 'ALPN protocol name offered in the TLS handshake, for remotes serving several protocols on one port.' }),
]

/** Old names Mosquitto 2 still accepts inside a bridge block. */
export const BridgeOptionAliases: Readonly<Record<string, string>> = {
  clientid: 'remote_clientid',
  username: 'remote_username',
  password: 'remote_password',
}

const byName = new Map<string, BridgeOptionSpec>(BridgeOptionTable.map((o) => [o.name, o]))

export function findBridgeOption (name: string): BridgeOptionSpec | undefined {
  return byName.get(name) ?? byName.get(BridgeOptionAliases[name] ?? '')
}

/** Whether `name` is `connection` or an option of a bridge block (aliases excluded: they are only valid inside one). */
export function isBridgeOption (name: string): boolean {
  return name === 'connection' || byName.has(name)
}

/** The option reference of docs/bridging.md. */
export function renderBridgeOptionsMarkdown (): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
  const lines = [
    '| Option | Value | Default | Description |',
    '|---|---|---|---|',
    '| `connection` | NAME | (required) | Starts a bridge block; the options below, up to the next `connection` or `listener` line, belong to it. NAME appears in logs and in the default client ids. |',
  ]
  for (const o of BridgeOptionTable) lines.push(`| \`${o.name}\` | ${cell(o.type.label)} | ${cell(o.default)} | ${cell(o.doc)} |`)
  return lines.join('\n') + '\n'
}
