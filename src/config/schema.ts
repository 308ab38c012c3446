/**
 * THE option table: every option Midge accepts is defined here once — name, value type (which is also its
 * validator), default, scope, whether SIGHUP applies it, and one line of documentation — together with the
 * camelCase field it sets. load.ts, `midge --help-config` and docs/configuration.md (scripts/gen-config-doc.js)
 * are all driven by it; test/config checks that the doc is not stale.
 *
 * Scopes:
 *   global    applies to the whole broker wherever it appears
 *   listener  applies to the listener block it appears in (a `listener` line must come first)
 *   security  per listener when per_listener_settings is true, else global (Mosquitto's rule)
 *   default-listener  the deprecated `port` / `bind_address`, which configure Mosquitto's default listener
 *
 * Defaults of options that set a BrokerOptions field come from defaultBrokerOptions(), so the broker's own
 * defaults and the documented ones cannot drift apart.
 *
 * No option without an effect: an option either does what its doc says, proven by the test files
 * test/config/17-option-effects.test.ts lists for it, or carries `noEffect` (accepted for compatibility with
 * Mosquitto's mosquitto.conf, ignored), which --help-config and docs/configuration.md show and which the loader
 * turns into a start-up warning naming file:line. That test walks this table and fails on an option in neither
 * state.
 */
import { LetsEncryptProduction, LetsEncryptStaging } from '../acme/policy.js'
import { DEFAULT_MAX_QUEUED_HASHES } from '../auth/password-authenticator.js'
import { AUTH_THROTTLE_DEFAULTS } from '../auth/throttle.js'
import { HandshakeDefaults } from '../transport/handshake-guard.js'
import { defaultBrokerOptions } from '../broker/options.js'
import { isMosquittoOption } from './mosquitto-options.js'
import { BridgeOptionTable, isBridgeOption } from './bridge-options.js'
import type { ConfigurableBrokerOptions, GlobalConfig, ListenerConfig, SecuritySettings } from './types.js'
import {
  bool, dirPath, nodeName, redisUrl, domainNames, duration, emailAddress, fileName, httpsUrl, int, listenerArgs, logDest, logType, oneOf, path,
  text, timestampFormat, tlsVersion, type ValueType,
} from './value-types.js'

export type Scope = 'global' | 'listener' | 'security' | 'default-listener'

export type Target =
  | { broker: keyof ConfigurableBrokerOptions }
  | { global: keyof GlobalConfig }
  | { listener: keyof ListenerConfig }
  | { security: keyof SecuritySettings }
  /** Handled structurally by load.ts (listener, port, bind_address). */
  | { special: 'listener' | 'port' | 'bind_address' }
  /** Accepted and ignored: the option has `noEffect`. */
  | { ignored: true }

export interface OptionSpec {
  name: string
  type: ValueType<unknown>
  scope: Scope
  /** Applied by SIGHUP without a restart. */
  reload: boolean
  doc: string
  target: Target
  /** Default for non-broker targets (undefined = unset). Broker targets: defaultBrokerOptions(). */
  default?: unknown
  /** Each line adds to a list instead of replacing the value (log_dest, log_type). */
  repeatable?: boolean
  /**
   * Accepted for compatibility, no effect: why Midge ignores it. Shown in --help-config and the docs, and
   * warned about (file:line) at start-up when a config file uses the option.
   */
  noEffect?: string
  /** The option works, but Mosquitto 2 deprecates it: warned about (file:line) when used, as Mosquitto does. */
  deprecated?: string
}

function opt<T>(spec: Omit<OptionSpec, 'type' | 'default'> & { type: ValueType<T>; default?: T }): OptionSpec {
  return spec as OptionSpec
}

const U16 = 65535
const MAX_SAFE = Number.MAX_SAFE_INTEGER
/** MQTT's largest Remaining Length, 268 435 455 bytes, plus the 5-byte fixed header. */
const MQTT_MAX_PACKET = 268_435_460
const MQTT_MAX_PAYLOAD = 268_435_455

export const OptionTable: readonly OptionSpec[] = [
  // ---- listeners -------------------------------------------------------------------------------------------
  opt({ name: 'listener', type: listenerArgs, scope: 'global', reload: false, target: { special: 'listener' },
    doc: 'Starts a listener block: `listener PORT [ADDRESS]`. Options after it up to the next `listener` apply to it. Without any listener Midge listens on 127.0.0.1:1883 and [::1]:1883 only. Port 0 picks a free port.' }),
  opt({ name: 'port', type: int(0, U16), scope: 'default-listener', reload: false, target: { special: 'port' },
    doc: 'Deprecated: port of the default listener (use `listener PORT` instead).' }),
  opt({ name: 'bind_address', type: text, scope: 'default-listener', reload: false, target: { special: 'bind_address' },
    doc: 'Deprecated: address the default listener binds to (use `listener PORT ADDRESS` instead).' }),
  opt({ name: 'bind_interface', type: text, scope: 'listener', reload: false, target: { listener: 'bindInterface' },
    doc: 'Bind the listener to the addresses of this network interface (e.g. eth0) instead of an address.' }),
  opt({ name: 'protocol', type: oneOf(['mqtt', 'websockets', 'http'] as const), scope: 'listener', reload: false, target: { listener: 'protocol' }, default: 'mqtt',
    doc: 'Protocol of the listener: MQTT over TCP, MQTT over WebSockets (subprotocol `mqtt`, binary frames; docs/websockets.md), or `http`: the monitoring endpoints `/metrics` (Prometheus) and `/healthz` (docs/monitoring.md). With `certfile`/`keyfile` it serves wss:// or https://.' }),
  opt({ name: 'http_require_auth', type: bool, scope: 'listener', reload: false, target: { listener: 'httpRequireAuth' }, default: false,
    doc: 'On a `protocol http` listener: require HTTP basic auth (a password_file user whom the ACL lets read `$SYS/#`) even on a loopback address, e.g. behind a reverse proxy on the same host or where other local users must not read the metrics. Non-loopback http listeners always require it.' }),
  opt({ name: 'http_allow_insecure_login', type: bool, scope: 'listener', reload: false, target: { listener: 'httpAllowInsecureLogin' }, default: false,
    doc: 'On a plain (non-TLS) `protocol http` listener bound to a non-loopback address: serve the dashboard and its login anyway. Without it they are refused there (403), since passwords and the session cookie would cross the network in clear text; give the block `certfile`/`keyfile` or ACME instead where you can. Loopback and TLS listeners never need it.' }),
  opt({ name: 'socket_domain', type: oneOf(['ipv4', 'ipv6'] as const), scope: 'listener', reload: false, target: { listener: 'socketDomain' },
    doc: 'Listen on IPv4 or IPv6 only (default: both).' }),
  opt({ name: 'max_connections', type: int(-1, MAX_SAFE), scope: 'listener', reload: false, target: { listener: 'maxConnections' }, default: -1,
    doc: 'Most clients connected to this listener at once; -1 means unlimited.' }),
  opt({ name: 'handshake_timeout', type: int(1, 3600, { unit: 'seconds' }), scope: 'listener', reload: false, target: { listener: 'handshakeTimeout' }, default: HandshakeDefaults.timeoutSeconds,
    doc: 'Seconds a client has to finish the TLS handshake (TLS listeners) and to send its WebSocket upgrade request (websockets listeners); then the connection is closed. MQTT\'s own CONNECT must follow within 10 s.' }),
  opt({ name: 'max_handshakes', type: int(-1, MAX_SAFE), scope: 'listener', reload: false, target: { listener: 'maxHandshakes' }, default: HandshakeDefaults.maxPending,
    doc: 'Most TLS handshakes in progress at once on this TLS listener (MQTT or WebSockets); connections beyond are closed at once. Bounds the memory that clients which never finish a handshake can hold. -1 means unlimited.' }),
  opt({ name: 'max_handshakes_per_address', type: int(-1, MAX_SAFE), scope: 'listener', reload: false, target: { listener: 'maxHandshakesPerAddress' }, default: HandshakeDefaults.maxPendingPerAddress,
    doc: 'Most TLS handshakes in progress at once from one client address on this TLS listener (MQTT or WebSockets), so one address cannot take all of `max_handshakes`. -1 means unlimited.' }),
  opt({ name: 'mount_point', type: text, scope: 'listener', reload: false, target: { listener: 'mountPoint' }, default: '',
    doc: 'Prefix added to every topic of this listener\'s clients, isolating them from other listeners.' }),
  opt({ name: 'max_qos', type: int(0, 2), scope: 'listener', reload: false, target: { listener: 'maxQos' },
    doc: 'Highest QoS clients of this listener may use (default 2). Midge applies one value to all listeners for now.' }),
  opt({ name: 'max_topic_alias', type: int(0, U16), scope: 'listener', reload: false, target: { listener: 'maxTopicAlias' },
    doc: 'Topic aliases an MQTT 5 client may create (default 10, 0 disables). Midge applies one value to all listeners for now.' }),

  // ---- TLS (per listener) ----------------------------------------------------------------------------------
  opt({ name: 'certfile', type: path, scope: 'listener', reload: true, target: { listener: 'certfile' },
    doc: 'PEM server certificate (chain) of a TLS listener; needs `keyfile`. Re-read on SIGHUP.' }),
  opt({ name: 'keyfile', type: path, scope: 'listener', reload: true, target: { listener: 'keyfile' },
    doc: 'PEM private key matching `certfile`. Re-read on SIGHUP.' }),
  opt({ name: 'cafile', type: path, scope: 'listener', reload: true, target: { listener: 'cafile' },
    doc: 'PEM CA certificates trusted for client certificates. Re-read on SIGHUP.' }),
  opt({ name: 'capath', type: dirPath, scope: 'listener', reload: true, target: { listener: 'capath' },
    doc: 'Directory of CA certificates trusted for client certificates: every regular file in it holding PEM certificates (hash links made by `openssl rehash` followed), other entries skipped. Re-read on SIGHUP.' }),
  opt({ name: 'crlfile', type: path, scope: 'listener', reload: true, target: { listener: 'crlfile' },
    doc: 'PEM certificate revocation lists checked against client certificates (with `require_certificate`). Revocation is checked along the whole chain, so with an intermediate CA the file holds the CRL of each CA below the root (Mosquitto checks the client\'s own certificate only). Re-read on SIGHUP.' }),
  opt({ name: 'tls_version', type: tlsVersion, scope: 'listener', reload: false, target: { listener: 'tlsVersion' },
    doc: 'Lowest TLS version accepted (default tlsv1.2).' }),
  opt({ name: 'ciphers', type: text, scope: 'listener', reload: false, target: { listener: 'ciphers' },
    doc: 'OpenSSL cipher list for TLS 1.2 and below, colon separated.' }),
  opt({ name: 'ciphers_tls1.3', type: text, scope: 'listener', reload: false, target: { listener: 'ciphersTls13' },
    doc: 'TLS 1.3 cipher suites, colon separated.' }),
  opt({ name: 'require_certificate', type: bool, scope: 'listener', reload: false, target: { listener: 'requireCertificate' }, default: false,
    doc: 'Clients must present a certificate signed by `cafile`/`capath`.' }),
  opt({ name: 'use_identity_as_username', type: bool, scope: 'listener', reload: false, target: { listener: 'useIdentityAsUsername' }, default: false,
    doc: 'Use the client certificate\'s CN as the username (needs `require_certificate true`); the password file is not consulted.' }),
  opt({ name: 'use_subject_as_username', type: bool, scope: 'listener', reload: false, target: { listener: 'useSubjectAsUsername' }, default: false,
    doc: 'Use the client certificate\'s full subject as the username (needs `require_certificate true`).' }),

  // ---- ACME: certificates obtained and renewed by Midge (src/acme/; docs/tls.md) ---------------------------
  opt({ name: 'acme_domain', type: domainNames, scope: 'listener', reload: false, target: { listener: 'acmeDomains' },
    doc: 'Makes this a TLS listener whose certificate Midge obtains and renews itself from an ACME CA (Let\'s Encrypt by default), instead of `certfile`/`keyfile`: one or more DNS names, the first naming the certificate. The other listeners run while it is obtained; renewals are swapped in without a restart.' }),
  opt({ name: 'acme_email', type: emailAddress, scope: 'global', reload: false, target: { global: 'acmeEmail' },
    doc: 'Contact address of the ACME account (optional).' }),
  opt({ name: 'acme_directory', type: httpsUrl, scope: 'global', reload: false, target: { global: 'acmeDirectory' }, default: LetsEncryptProduction,
    doc: `ACME directory URL of the CA. For trials use Let's Encrypt staging: ${LetsEncryptStaging}` }),
  opt({ name: 'acme_challenge_port', type: int(1, U16), scope: 'global', reload: false, target: { global: 'acmeChallengePort' }, default: 80,
    doc: 'Port of the built-in HTTP-01 responder, which answers only `/.well-known/acme-challenge/` and listens only while a challenge is pending. A port below 1024 is bound at start, before the broker drops root, and kept. The CA always connects to port 80: forward it here if you change this.' }),
  opt({ name: 'acme_challenge_always', type: bool, scope: 'global', reload: false, target: { global: 'acmeChallengeAlways' }, default: false,
    doc: 'Keep the HTTP-01 responder listening all the time instead of only while a challenge is pending.' }),
  opt({ name: 'acme_webroot', type: dirPath, scope: 'global', reload: false, target: { global: 'acmeWebroot' },
    doc: 'Instead of the built-in responder, write challenge files to DIR/.well-known/acme-challenge/ for a web server that already serves port 80 from DIR.' }),
  opt({ name: 'acme_ca_file', type: path, scope: 'global', reload: false, target: { global: 'acmeCaFile' },
    doc: 'PEM CA certificates trusted for the ACME server\'s own HTTPS (a private ACME server, tests); default the system\'s CAs.' }),
  opt({ name: 'acme_state_dir', type: dirPath, scope: 'global', reload: false, target: { global: 'acmeStateDir' },
    doc: 'Directory of the ACME account key and certificates (mode 0700, files 0600, owned by the broker user). Default: `acme` in `persistence_location`.' }),

  // ---- security (per listener with per_listener_settings) ---------------------------------------------------
  opt({ name: 'per_listener_settings', type: bool, scope: 'global', reload: false, target: { global: 'perListenerSettings' }, default: false,
    doc: 'When true, allow_anonymous, password_file, acl_file, allow_zero_length_clientid and auto_id_prefix apply to the listener block they are in; when false they apply to all listeners.' }),
  opt({ name: 'allow_anonymous', type: bool, scope: 'security', reload: true, target: { security: 'allowAnonymous' },
    doc: 'Accept clients that send no username. Default false once any listener is configured; true only for the built-in local-only listeners.' }),
  opt({ name: 'password_file', type: path, scope: 'security', reload: true, target: { security: 'passwordFile' },
    doc: 'Password file (`midge passwd` / mosquitto_passwd format). Re-read on SIGHUP and when the file changes; connected clients stay. A broken edit is logged and the previous users stay.' }),
  opt({ name: 'acl_file', type: path, scope: 'security', reload: true, target: { security: 'aclFile' },
    doc: 'Access control list file (Mosquitto syntax). Re-read on SIGHUP and when the file changes; new rules apply to connected clients from their next message. A broken edit is logged and the previous rules stay.' }),
  opt({ name: 'allow_zero_length_clientid', type: bool, scope: 'security', reload: true, target: { security: 'allowZeroLengthClientId' },
    doc: 'Let clients connect with an empty client id and have the broker assign one.' }),
  opt({ name: 'auto_id_prefix', type: text, scope: 'security', reload: true, target: { security: 'autoIdPrefix' },
    doc: 'Prefix of client ids the broker assigns.' }),

  // ---- brute-force protection (Midge only; src/auth/throttle.ts) ----------------------------------------------
  opt({ name: 'auth_fail_limit', type: int(0, 1000), scope: 'global', reload: true, target: { global: 'authFailLimit' }, default: AUTH_THROTTLE_DEFAULTS.failLimit,
    doc: 'Failed authentications from one address within `auth_fail_window` that ban it for `auth_ban_time`; 0 turns the protection off. Counted across all listeners, including those without a password file that refuse anonymous clients.' }),
  opt({ name: 'auth_fail_window', type: int(1, MAX_SAFE, { unit: 'seconds' }), scope: 'global', reload: true, target: { global: 'authFailWindow' }, default: AUTH_THROTTLE_DEFAULTS.failWindowMs / 1000,
    doc: 'Sliding window in which `auth_fail_limit` failures must fall to ban an address.' }),
  opt({ name: 'auth_ban_time', type: int(1, MAX_SAFE, { unit: 'seconds' }), scope: 'global', reload: true, target: { global: 'authBanTime' }, default: AUTH_THROTTLE_DEFAULTS.banTimeMs / 1000,
    doc: 'How long a banned address is refused: each of its CONNECTs waits 1 s, then gets CONNACK Banned (v5 0x8A, v3 5) without a password check.' }),
  opt({ name: 'auth_fail_exempt_loopback', type: bool, scope: 'global', reload: true, target: { global: 'authFailExemptLoopback' }, default: AUTH_THROTTLE_DEFAULTS.exemptLoopback,
    doc: 'Never count failures from or ban loopback addresses (127.0.0.0/8, ::1), so local tools and health checks cannot lock themselves out.' }),
  opt({ name: 'auth_max_pending_per_address', type: int(0, 100_000), scope: 'global', reload: true, target: { global: 'authMaxPendingPerAddress' }, default: AUTH_THROTTLE_DEFAULTS.maxPendingPerAddress,
    doc: 'Authentications one address may have in progress at once (waiting for or running a password hash, or held while banned); further CONNECTs from it are refused at once with Server busy (v5 0x89, v3 3), which does not count as a failure. Bounds how many parallel guesses are evaluated before a ban applies. Loopback is exempt while `auth_fail_exempt_loopback` is true; 0 = no limit.' }),
  opt({ name: 'auth_max_queued_hashes', type: int(0, 1_000_000), scope: 'global', reload: true, target: { global: 'authMaxQueuedHashes' }, default: DEFAULT_MAX_QUEUED_HASHES,
    doc: 'Password checks that may wait for a hashing thread, all clients together (each holds its CONNECT meanwhile); further CONNECTs that need a hash are refused at once with Server busy (v5 0x89, v3 3). 0 = no limit.' }),

  // ---- persistence ------------------------------------------------------------------------------------------
  opt({ name: 'persistence', type: bool, scope: 'global', reload: false, target: { global: 'persistence' }, default: false,
    doc: 'Save sessions, subscriptions and retained messages to disk and restore them at start.' }),
  opt({ name: 'persistence_file', type: fileName, scope: 'global', reload: false, target: { global: 'persistenceFile' }, default: 'mosquitto.db',
    doc: 'File name of the persistence database, inside `persistence_location`.' }),
  opt({ name: 'persistence_location', type: dirPath, scope: 'global', reload: false, target: { global: 'persistenceLocation' },
    doc: 'Directory of the persistence database (default: the working directory).' }),
  opt({ name: 'persistence_fsync', type: bool, scope: 'global', reload: false, target: { global: 'persistenceFsync' }, default: false,
    doc: 'Midge only: fdatasync the store after each group commit, so acknowledged messages survive a power loss too (a kill -9 loses nothing either way); the write and fdatasync run off the event loop, pipelined: QoS 1 to a persistent subscriber measured at 0.85-0.9x of persistence without it, and above Mosquitto without any persistence; it depends on the disk (docs/persistence.md).' }),
  opt({ name: 'autosave_interval', type: int(0, MAX_SAFE, { unit: 'seconds' }), scope: 'global', reload: false, target: { global: 'autosaveInterval' }, default: 1800,
    doc: 'Seconds between checks whether to compact the persistence file (it is compacted once the log since the last compaction is as large as the live state; 0: only at exit), or a change count with `autosave_on_changes`. Every change is written at once; nothing is lost between compactions.' }),
  opt({ name: 'autosave_on_changes', type: bool, scope: 'global', reload: false, target: { global: 'autosaveOnChanges' }, default: false,
    doc: 'Treat `autosave_interval` as a number of changes rather than seconds.' }),

  // ---- limits and MQTT behaviour (BrokerOptions) ------------------------------------------------------------
  opt({ name: 'max_queued_messages', type: int(0, MAX_SAFE), scope: 'global', reload: true, target: { broker: 'maxQueuedMessages' },
    doc: 'QoS 1/2 messages queued per client beyond those in flight; 0 means unlimited.' }),
  opt({ name: 'max_queued_bytes', type: int(0, MAX_SAFE, { unit: 'bytes' }), scope: 'global', reload: true, target: { broker: 'maxQueuedBytes' },
    doc: 'Payload bytes queued per client beyond those in flight; 0 means unlimited.' }),
  opt({ name: 'max_inflight_messages', type: int(0, U16), scope: 'global', reload: true, target: { broker: 'maxInflightMessages' },
    doc: 'QoS 1/2 messages in flight per client: the most Midge sends before it waits for acknowledgements, and the Receive Maximum it announces to MQTT 5 clients (one sending more QoS 2 messages awaiting PUBREL is disconnected with 0x93). 0 means 65535.' }),
  opt({ name: 'max_inflight_bytes', type: int(0, MAX_SAFE, { unit: 'bytes' }), scope: 'global', reload: true, target: { broker: 'maxInflightBytes' },
    doc: 'Payload bytes of outgoing QoS 1/2 messages in flight per client: further messages wait in the queue (max_queued_*) until acknowledgements bring the bytes in flight below the limit. As in Mosquitto, a message larger than the limit still goes, alone. Applies together with max_inflight_messages. 0 means no byte limit.' }),
  opt({ name: 'max_subscriptions_per_client', type: int(0, MAX_SAFE), scope: 'global', reload: true, target: { broker: 'maxSubscriptionsPerClient' },
    doc: 'Subscriptions one client may hold; further filters get SUBACK 0x97 Quota exceeded (MQTT 5) or 0x80. Bounds what one client adds to the cost of matching every PUBLISH. 0 means unlimited (Mosquitto has no such limit).' }),
  opt({ name: 'max_outgoing_topic_alias_bytes', type: int(0, MAX_SAFE, { unit: 'bytes' }), scope: 'global', reload: true, target: { broker: 'maxOutgoingTopicAliasBytes' },
    doc: 'Bytes of topic names the topic aliases Midge uses towards one MQTT 5 client may stand for (their number is bounded by the client\'s Topic Alias Maximum); when full, the least recently assigned alias is re-mapped. 0 disables outgoing topic aliases.' }),
  opt({ name: 'max_packet_size', type: int(20, MQTT_MAX_PACKET, { allowZero: true, unit: 'bytes' }), scope: 'global', reload: true, target: { broker: 'maxPacketSize' },
    doc: 'Largest packet accepted from clients; larger ones disconnect the client. 0 means the protocol limit.' }),
  opt({ name: 'message_size_limit', type: int(0, MQTT_MAX_PAYLOAD, { unit: 'bytes' }), scope: 'global', reload: true, target: { broker: 'messageSizeLimit' },
    doc: 'Largest PUBLISH payload accepted; larger messages are dropped. 0 means no limit.' }),
  opt({ name: 'max_keepalive', type: int(0, U16, { unit: 'seconds' }), scope: 'global', reload: true, target: { broker: 'maxKeepalive' },
    doc: 'Largest keep alive granted; MQTT 5 clients asking more get this value, MQTT 3 clients are refused. 0 means 65535.' }),
  opt({ name: 'retain_available', type: bool, scope: 'global', reload: true, target: { broker: 'retainAvailable' },
    doc: 'Support retained messages; when false, a PUBLISH with the retain flag disconnects the client.' }),
  opt({ name: 'allow_duplicate_messages', type: bool, scope: 'global', reload: true, target: { broker: 'allowDuplicateMessages' },
    deprecated: 'Mosquitto 2 deprecates it and will remove it, making true the only behaviour',
    doc: 'When true, an MQTT 3 client whose subscriptions overlap (`foo/#` and `foo/+/baz`) gets a message once per matching subscription, each at that subscription\'s QoS; when false, once, at the highest of their QoS. MQTT 5 clients always get one copy carrying every Subscription Identifier. Mosquitto 2.0\'s default is false, like Midge\'s.' }),
  opt({ name: 'queue_qos0_messages', type: bool, scope: 'global', reload: true, target: { broker: 'queueQos0Messages' },
    doc: 'Queue QoS 0 messages for disconnected persistent clients too (they count against max_queued_messages); not kept across a restart.' }),
  opt({ name: 'use_username_as_clientid', type: bool, scope: 'global', reload: true, target: { broker: 'useUsernameAsClientId' },
    doc: 'Use the authenticated username as the client id, so one user has one session whatever id its device sends.' }),
  opt({ name: 'upgrade_outgoing_qos', type: bool, scope: 'global', reload: true, target: { broker: 'upgradeOutgoingQos' },
    doc: 'Deliver at the subscription\'s QoS even when the message was published at a lower QoS (non-standard).' }),
  opt({ name: 'persistent_client_expiration', type: duration, scope: 'global', reload: true, target: { broker: 'persistentClientExpiration' },
    doc: 'Drop persistent MQTT 3 sessions whose client has not reconnected within this time (e.g. 14d); unset means never.' }),
  // ---- accepted for compatibility, no effect (noEffect) ---------------------------------------------------
  opt({ name: 'retry_interval', type: int(0, MAX_SAFE, { unit: 'seconds' }), scope: 'global', reload: true, target: { ignored: true },
    noEffect: 'removed in Mosquitto 2.0, which ignores it with a warning: unacknowledged QoS 1/2 messages are resent when the client reconnects, as MQTT 3.1.1 and 5 require, never on a timer',
    doc: 'Seconds before an unacknowledged QoS 1/2 message was resent (Mosquitto 1.x).' }),
  opt({ name: 'websockets_log_level', type: int(0, MAX_SAFE), scope: 'global', reload: false, target: { ignored: true },
    noEffect: 'the logging level of libwebsockets, which Midge does not use; its WebSocket listeners log through log_type like everything else',
    doc: 'libwebsockets\' own logging level (Mosquitto).' }),

  // ---- cluster (docs/cluster.md) -----------------------------------------------------------------------------
  opt({ name: 'cluster_redis', type: redisUrl, scope: 'global', reload: false, target: { global: 'clusterRedis' },
    doc: 'Midge only: join a cluster of Midge nodes sharing one MQTT namespace through this Redis (`redis://[:password@]host:port`, `rediss://` for TLS, `redis+sentinel://h1:26379,h2:26379/mymaster`). Messages cross to the nodes whose clients subscribed; retained messages and takeovers are cluster-wide (docs/cluster.md).' }),
  opt({ name: 'cluster_node_id', type: nodeName, scope: 'global', reload: false, target: { global: 'clusterNodeId' },
    doc: 'Midge only: this node\'s name in the cluster (default: host name, process id and a random suffix, new at each start). A fixed name lets a restarted node take back what was sent to it while it was down.' }),
  opt({ name: 'cluster_workers', type: int(0, 256), scope: 'global', reload: false, target: { global: 'clusterWorkers' }, default: 0,
    doc: 'Midge only: run this many broker processes sharing the listeners (all cores of one machine), joined as a cluster through `cluster_redis`, which is then required; 0: one process. Same as `midge --workers N`.' }),

  // ---- limits and MQTT behaviour, continued -----------------------------------------------------------------
  opt({ name: 'sys_interval', type: int(0, MAX_SAFE, { unit: 'seconds' }), scope: 'global', reload: false, target: { broker: 'sysInterval' },
    doc: 'Seconds between `$SYS` updates; 0 disables the `$SYS` tree.' }),
  opt({ name: 'set_tcp_nodelay', type: bool, scope: 'global', reload: false, target: { global: 'setTcpNodelay' }, default: true,
    doc: 'Disable Nagle\'s algorithm on client sockets of every listener (MQTT, WebSockets, TLS, wss): lower latency, more packets. Midge defaults to true (Mosquitto to false); the broker already batches its writes.' }),

  // ---- logging ----------------------------------------------------------------------------------------------
  opt({ name: 'log_dest', type: logDest, scope: 'global', reload: true, target: { global: 'logDest' }, repeatable: true,
    doc: 'Where log lines go; may be repeated. `file PATH` is reopened on SIGHUP (for logrotate); `syslog` sends each line to the local syslog socket `/dev/log` (the journal under systemd), facility daemon, tag `midge`; `topic` publishes under `$SYS/broker/log/`; `none` disables logging. Default stderr.' }),
  opt({ name: 'log_facility', type: int(0, 7), scope: 'global', reload: true, target: { global: 'logFacility' },
    doc: 'With `log_dest syslog`: log to the syslog facility local0 to local7 (0 to 7) instead of daemon.' }),
  opt({ name: 'log_type', type: logType, scope: 'global', reload: true, target: { global: 'logType' }, repeatable: true,
    doc: 'Which messages to log; may be repeated. Default error, warning, notice, information.' }),
  opt({ name: 'log_timestamp', type: bool, scope: 'global', reload: true, target: { global: 'logTimestamp' }, default: true,
    doc: 'Prefix each log line with a timestamp.' }),
  opt({ name: 'log_timestamp_format', type: timestampFormat, scope: 'global', reload: true, target: { global: 'logTimestampFormat' }, default: '',
    doc: 'strftime-style timestamp format (%Y %m %d %H %M %S %s %z %F %T %y %b %B %a %A %e %j %I %p %%); default ISO 8601 in UTC.' }),
  opt({ name: 'connection_messages', type: bool, scope: 'global', reload: true, target: { broker: 'connectionMessages' },
    doc: 'Log each client connection and disconnection.' }),

  // ---- process ----------------------------------------------------------------------------------------------
  opt({ name: 'pid_file', type: path, scope: 'global', reload: false, target: { global: 'pidFile' },
    doc: 'Write the broker\'s process id to this file at start (and remove it at exit).' }),
  opt({ name: 'user', type: text, scope: 'global', reload: false, target: { global: 'user' },
    doc: 'When started as root, switch to this user after opening the listeners (default mosquitto, or nobody if it does not exist). No effect when not root.' }),
]

const byName = new Map<string, OptionSpec>(OptionTable.map((o) => [o.name, o]))

export function findOption(name: string): OptionSpec | undefined {
  return byName.get(name)
}

export type OptionKind = 'midge' | 'unsupported-mosquitto' | 'unknown'

export function classifyOption(name: string): OptionKind {
  if (byName.has(name)) return 'midge'
  if (name === 'include_dir') return 'midge'
  // Bridge blocks have their own table (bridge-options.ts); load.ts hands them over before asking here.
  if (isBridgeOption(name)) return 'midge'
  return isMosquittoOption(name) ? 'unsupported-mosquitto' : 'unknown'
}

/** The default shown in docs, for any option. */
export function describeDefault(o: OptionSpec): string {
  if ('broker' in o.target) {
    const v = defaultBrokerOptions()[o.target.broker]
    if (o.name === 'persistent_client_expiration' && v === 0) return 'never'
    return String(v)
  }
  if (o.name === 'log_dest') return 'stderr'
  if (o.name === 'log_type') return 'error, warning, notice, information'
  if (o.name === 'allow_anonymous') return 'false (true without listeners)'
  if (o.default === undefined) return '(unset)'
  return o.type.show(o.default)
}

/** Edit distance with transpositions (optimal string alignment), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d: number[][] = []
  for (let i = 0; i <= a.length; i++) d.push([i])
  for (let j = 1; j <= b.length; j++) (d[0] as number[])[j] = j
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[]
    const prev = d[i - 1] as number[]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, ((d[i - 2] as number[])[j - 2] as number) + 1)
      row[j] = v
    }
  }
  return (d[a.length] as number[])[b.length] as number
}

/** The closest supported option name to a misspelt one, if it is close enough to be a plausible typo. */
export function suggestOption(name: string): string | undefined {
  let best: string | undefined
  let bestDist = Infinity
  for (const candidate of [...byName.keys(), 'include_dir', 'connection', ...BridgeOptionTable.map((o) => o.name)]) {
    const dist = editDistance(name.toLowerCase(), candidate)
    if (dist < bestDist) {
      best = candidate
      bestDist = dist
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(name.length / 4)))
  return bestDist <= limit ? best : undefined
}
