/**
 * The typed result of loading a config: what server/ (the runtime), transport/ and auth/ consume. Option names map onto
 * these camelCase fields in schema.ts only.
 */
import type { BridgeOptions } from '../bridge/options.js'
import type { BrokerOptions } from '../broker/options.js'
import type { LogType } from '../observability/logger.js'
import type { ConfigWarning, SourceLocation } from './errors.js'
import type { TlsVersionName } from '../transport/tls-versions.js'

/** The BrokerOptions fields a config file can set (not the logger, auth objects and hooks, which server/ and createBroker build). */
export type ConfigurableBrokerOptions = Omit<BrokerOptions, 'logger' | 'authenticator' | 'authorizer' | 'hooks' | 'hookTimeoutMs' | 'authThrottle'>

export type LogDest =
  | { kind: 'stdout' }
  | { kind: 'stderr' }
  | { kind: 'topic' }
  | { kind: 'file'; path: string }
  /** facility: 0-7 for local0-local7 (log_facility); absent means daemon. */
  | { kind: 'syslog'; facility?: number }

export type TlsVersion = TlsVersionName

/** Security options: per listener with per_listener_settings true, else one global set copied to every listener. */
export interface SecuritySettings {
  /** undefined: not set (the default depends on whether any listener is configured). */
  allowAnonymous: boolean | undefined
  passwordFile: string | undefined
  aclFile: string | undefined
  allowZeroLengthClientId: boolean | undefined
  autoIdPrefix: string | undefined
}

export interface ListenerConfig {
  /** 0 = let the OS choose a free port (Midge extension, used by tests). */
  port: number
  /** undefined = all interfaces. May be a host name such as `localhost` (all its addresses are bound). */
  bindAddress: string | undefined
  bindInterface: string | undefined
  protocol: 'mqtt' | 'websockets' | 'http'
  /** protocol http: basic auth even on a loopback address (it is always required elsewhere). */
  httpRequireAuth: boolean
  /** protocol http without TLS on a non-loopback address: serve the dashboard's login anyway (refused otherwise). */
  httpAllowInsecureLogin: boolean
  socketDomain: 'ipv4' | 'ipv6' | undefined
  /** -1 = unlimited. */
  maxConnections: number
  /** handshake_timeout, seconds: TLS handshake and WebSocket upgrade. */
  handshakeTimeout: number
  /** TLS handshakes in progress at once; -1 = unlimited. */
  maxHandshakes: number
  /** TLS handshakes in progress at once from one address; -1 = unlimited. */
  maxHandshakesPerAddress: number
  mountPoint: string
  /** undefined = not set on this listener (the broker-wide value applies). */
  maxQos: 0 | 1 | 2 | undefined
  maxTopicAlias: number | undefined
  /** Effective security settings for this listener (after per_listener_settings and defaults are applied). */
  allowAnonymous: boolean
  passwordFile: string | undefined
  aclFile: string | undefined
  allowZeroLengthClientId: boolean | undefined
  autoIdPrefix: string | undefined
  /** Raw per-listener security options as written (per_listener_settings true). */
  security: SecuritySettings
  certfile: string | undefined
  keyfile: string | undefined
  cafile: string | undefined
  capath: string | undefined
  crlfile: string | undefined
  tlsVersion: TlsVersion | undefined
  ciphers: string | undefined
  ciphersTls13: string | undefined
  requireCertificate: boolean
  useIdentityAsUsername: boolean
  useSubjectAsUsername: boolean
  /** acme_domain: names whose certificate Midge obtains and renews (src/acme/); then certfile/keyfile stay unset. */
  acmeDomains?: string[] | undefined
  /** Where each option of this block was set (option name → file:line). */
  origins: Record<string, SourceLocation>
  /** The `listener` line (or the first `port`/`bind_address` line of the legacy default listener). */
  file: string
  line: number
  /** Name used in logs and ListenerInfo.name: the port, or `port@address` when the port is shared. */
  name: string
  /** True for the implicit local-only listeners used when the config defines none. */
  implicit: boolean
}

export interface GlobalConfig {
  perListenerSettings: boolean
  persistence: boolean
  persistenceFile: string
  /** undefined = the working directory, as Mosquitto. */
  persistenceLocation: string | undefined
  autosaveInterval: number
  autosaveOnChanges: boolean
  /** fdatasync after each group commit (Midge-only): survives power loss, at a measured cost. */
  persistenceFsync: boolean
  pidFile: string | undefined
  /** cluster_redis: the Redis URL of the cluster this node joins; undefined = no cluster. */
  clusterRedis: string | undefined
  /** cluster_node_id; undefined = host-pid-random. */
  clusterNodeId: string | undefined
  /** cluster_workers: processes to run (0 = this one only). */
  clusterWorkers: number
  /** undefined = not set: when started as root the broker switches to `mosquitto` (or `nobody`). */
  user: string | undefined
  logDest: LogDest[]
  logType: LogType[]
  /** log_facility: 0-7 (local0-local7); undefined = daemon. Copied into the syslog LogDest by the loader. */
  logFacility: number | undefined
  logTimestamp: boolean
  /** strftime-like; '' = ISO 8601. */
  logTimestampFormat: string
  setTcpNodelay: boolean
  /** Brute-force protection (auth/throttle.ts): failures per address that start a ban; 0 = off. */
  authFailLimit: number
  /** Seconds. */
  authFailWindow: number
  /** Seconds. */
  authBanTime: number
  authFailExemptLoopback: boolean
  /** Authentications one address may have in progress; 0 = no limit. */
  authMaxPendingPerAddress: number
  /** Password checks that may wait for a hashing thread, all clients together; 0 = no limit. */
  authMaxQueuedHashes: number
  /** ACME (acme_* options, src/acme/): account contact, CA, HTTP-01 answer, state directory. */
  acmeEmail: string | undefined
  acmeDirectory: string
  acmeChallengePort: number
  acmeChallengeAlways: boolean
  acmeWebroot: string | undefined
  acmeCaFile: string | undefined
  /** undefined = PERSISTENCE_LOCATION/acme. */
  acmeStateDir: string | undefined
  /** Global security settings (used by every listener when per_listener_settings is false). */
  security: SecuritySettings
  /** Where each global option was set (option name → file:line of its last occurrence). */
  origins: Record<string, SourceLocation>
}

export interface MidgeConfig {
  /** Main config file ('' when started without -c). */
  file: string
  /** Every file read (main first, then include_dir files). */
  files: string[]
  broker: Partial<ConfigurableBrokerOptions>
  listeners: ListenerConfig[]
  global: GlobalConfig
  warnings: ConfigWarning[]
  /** `connection` blocks, in file order (src/config/bridge-blocks.ts; run by src/bridge/). */
  bridges: BridgeOptions[]
}

export function isTlsListener(l: ListenerConfig): boolean {
  return (l.certfile !== undefined && l.keyfile !== undefined) || l.acmeDomains !== undefined
}
