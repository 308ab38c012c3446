/**
 * Broker-wide settings, in the broker's own camelCase. config/ maps mosquitto.conf keys onto these;
 * an embedded broker (tests, `npm start` without a config) gets these defaults, which match
 * Mosquitto 2's where Mosquitto has the option.
 */
import type { Authenticator, Authorizer } from '../auth/types.js'
import type { AuthThrottle } from '../auth/throttle.js'
import { DefaultHookTimeoutMs, type BrokerHooks } from './hooks.js'
import { Logger } from '../observability/logger.js'
import type { Store } from '../persistence/store.js'

/**
 * Largest packet (and WebSocket message) accepted before the client has authenticated: a CONNECT's fields are
 * at most 64 KiB each, so an anonymous peer never makes us buffer the protocol's 256 MB.
 */
export const PreAuthMaxPacketSize = 512 * 1024

export interface BrokerOptions {
  /** Per-session queue cap for offline / over-window QoS 1-2 messages (0 = unlimited). */
  maxQueuedMessages: number
  /** Per-session queue cap in payload bytes (0 = unlimited). */
  maxQueuedBytes: number
  /**
   * QoS 1-2 messages in flight per client, each way: outgoing (a v5 client's Receive Maximum lowers it) and the
   * Receive Maximum announced to v5 clients for incoming ones, as in mosquitto. 0 = 65535.
   */
  maxInflightMessages: number
  /** Outgoing in-flight payload bytes per client (0 = unlimited). */
  maxInflightBytes: number
  /** Largest packet accepted from clients, in bytes (0 = the protocol's limit). */
  maxPacketSize: number
  /** Largest PUBLISH payload accepted (0 = no limit beyond maxPacketSize). */
  messageSizeLimit: number
  /** Keep alive values above this are refused (v3) or overridden with Server Keep Alive (v5). 0 = 65535. */
  maxKeepalive: number
  maxQos: 0 | 1 | 2
  retainAvailable: boolean
  allowZeroLengthClientId: boolean
  autoIdPrefix: string
  /** Deliver a message once per matching subscription (true) or once per client (false) in 3.x. */
  allowDuplicateMessages: boolean
  /** Queue QoS 0 messages for offline persistent sessions too (queue_qos0_messages; off as in mosquitto). */
  queueQos0Messages: boolean
  /** Replace each client's id with its username once authenticated (use_username_as_clientid). */
  useUsernameAsClientId: boolean
  /** Deliver at the publish QoS rather than min(publish, subscription). */
  upgradeOutgoingQos: boolean
  /** Seconds after which a disconnected v3 persistent session is dropped (0 = never). */
  persistentClientExpiration: number
  /** Milliseconds a TCP connection may stay open without sending CONNECT. */
  connectTimeoutMs: number
  /** Seconds between $SYS updates (0 = off). */
  sysInterval: number
  /** Subscriptions one client may hold; more get SUBACK 0x97 / 0x80 (0 = unlimited). */
  maxSubscriptionsPerClient: number
  /** UTF-8 bytes of topic names the outgoing topic aliases of one connection may stand for (0 = no outgoing aliases). */
  maxOutgoingTopicAliasBytes: number
  /** Largest Topic Alias Maximum the broker grants to v5 clients for inbound PUBLISH (0 = no aliases). */
  topicAliasMaximum: number
  logger: Logger
  /** Log each client's connect and disconnect (connection_messages). */
  connectionMessages: boolean
  authenticator: Authenticator | undefined
  authorizer: Authorizer | undefined
  /** Where persistent state goes; undefined = in memory only (persistence false). */
  store: Store | undefined
  /** Seconds between store compactions (autosave_interval); 0 = only by change count and at shutdown. */
  autosaveInterval: number
  /** Compact after this many changes (autosave_on_changes); 0 = off. */
  autosaveOnChanges: number
  /**
   * Milliseconds a pipelined commit waits after the one before it began, when they come back to back (under
   * sustained persistent QoS 1 load): fewer, larger commits (commit-pipeline.ts). 0 = the next at once.
   */
  commitGapMs: number
  /** The host application's hooks (hooks.ts): after the password file and ACL, which must allow too. */
  hooks: BrokerHooks
  /** Milliseconds a hook may take to answer before it counts as a refusal. */
  hookTimeoutMs: number
  /**
   * The throttle the authenticate hook runs behind when the listener's authenticator has none (no password
   * file): bans and auth_max_pending_per_address apply to the hook as to the password check.
   */
  authThrottle: AuthThrottle | undefined
}

export function defaultBrokerOptions(): BrokerOptions {
  return {
    maxQueuedMessages: 1000,
    maxQueuedBytes: 0,
    maxInflightMessages: 20,
    maxInflightBytes: 0,
    maxPacketSize: 0,
    messageSizeLimit: 0,
    maxKeepalive: 65535,
    maxQos: 2,
    retainAvailable: true,
    allowZeroLengthClientId: true,
    autoIdPrefix: 'auto-',
    allowDuplicateMessages: false,
    upgradeOutgoingQos: false,
    queueQos0Messages: false,
    useUsernameAsClientId: false,
    persistentClientExpiration: 0,
    connectTimeoutMs: 10_000,
    sysInterval: 10,
    topicAliasMaximum: 10,
    maxSubscriptionsPerClient: 10_000,
    maxOutgoingTopicAliasBytes: 64 * 1024,
    logger: new Logger(),
    connectionMessages: true,
    authenticator: undefined,
    authorizer: undefined,
    store: undefined,
    autosaveInterval: 1800,
    autosaveOnChanges: 0,
    commitGapMs: 1,
    hooks: {},
    hookTimeoutMs: DefaultHookTimeoutMs,
    authThrottle: undefined,
  }
}

/** Per-listener settings, handed to broker.handle() with each connection. */
export interface ListenerInfo {
  /** e.g. '1883' or '8883' or 'embedded'; used in logs and per_listener_settings. */
  name: string
  allowAnonymous: boolean
  /** Prefix added to every topic a client of this listener uses (mosquitto's mount_point). */
  mountPoint: string
  /** Per-listener authenticator/authorizer (per_listener_settings); falls back to the broker's. */
  authenticator?: Authenticator
  authorizer?: Authorizer
  /** The listener's protocol ('http' serves monitoring, never MQTT: server/http-listener.ts). */
  protocol: 'mqtt' | 'websockets' | 'http'
}
