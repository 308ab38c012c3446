/**
 * Every option of Mosquitto 2.0's mosquitto.conf(5) (taken from the 2.0.11 man page, plus the `plugin` /
 * `plugin_opt_*` spellings 2.0 accepts as aliases of `auth_plugin` / `auth_opt_*`). An option in this list
 * that schema.ts does not define is refused with "is a Mosquitto option Midge does not support yet" rather
 * than "unknown option", so a migrating user learns it is a gap, not a typo. Later issues that implement
 * one of these simply add it to schema.ts.
 */

export const MosquittoOptions = [
  // general
  'acl_file', 'allow_anonymous', 'allow_duplicate_messages', 'allow_zero_length_clientid', 'auth_plugin',
  'auth_plugin_deny_special_chars', 'auto_id_prefix', 'autosave_interval', 'autosave_on_changes',
  'check_retain_source', 'clientid_prefixes', 'connection_messages', 'include_dir', 'log_dest', 'log_facility',
  'log_timestamp', 'log_timestamp_format', 'log_type', 'max_inflight_bytes', 'max_inflight_messages',
  'max_keepalive', 'max_packet_size', 'max_queued_bytes', 'max_queued_messages', 'memory_limit',
  'message_size_limit', 'password_file', 'per_listener_settings', 'persistence', 'persistence_file',
  'persistence_location', 'persistent_client_expiration', 'pid_file', 'plugin', 'psk_file',
  'queue_qos0_messages', 'retain_available', 'set_tcp_nodelay', 'sys_interval', 'upgrade_outgoing_qos', 'user',
  // listeners
  'bind_address', 'bind_interface', 'http_dir', 'listener', 'max_connections', 'max_qos', 'max_topic_alias',
  'mount_point', 'port', 'protocol', 'socket_domain', 'use_username_as_clientid', 'websockets_log_level',
  'websockets_headers_size',
  // certificate and PSK based TLS
  'cafile', 'capath', 'certfile', 'ciphers', 'ciphers_tls1.3', 'crlfile', 'dhparamfile', 'keyfile',
  'require_certificate', 'tls_engine', 'tls_engine_kpass_sha1', 'tls_keyform', 'tls_version',
  'use_identity_as_username', 'use_subject_as_username', 'psk_hint',
  // bridges
  'address', 'addresses', 'bridge_alpn', 'bridge_attempt_unsubscribe', 'bridge_bind_address', 'bridge_cafile',
  'bridge_capath', 'bridge_certfile', 'bridge_identity', 'bridge_insecure', 'bridge_keyfile',
  'bridge_max_packet_size', 'bridge_outgoing_retain', 'bridge_protocol_version', 'bridge_psk',
  'bridge_require_ocsp', 'bridge_tls_version', 'cleansession', 'connection', 'idle_timeout',
  'keepalive_interval', 'local_cleansession', 'local_clientid', 'local_password', 'local_username',
  'notification_topic', 'notifications', 'notifications_local_only', 'remote_clientid', 'remote_password',
  'remote_username', 'restart_timeout', 'round_robin', 'start_type', 'threshold', 'topic', 'try_private',
] as const

/** Option families written as a prefix (`auth_opt_db_host`, `plugin_opt_config_file`). */
export const MosquittoOptionPrefixes = ['auth_opt_', 'plugin_opt_'] as const

export function isMosquittoOption(name: string): boolean {
  if ((MosquittoOptions as readonly string[]).includes(name)) return true
  return MosquittoOptionPrefixes.some((p) => name.startsWith(p) && name.length > p.length)
}
