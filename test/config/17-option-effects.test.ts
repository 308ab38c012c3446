/**
 * No option without an effect (issue #14): every option of the table (src/config/schema.ts) is either proven
 * to do something by the test files named for it below, or carries `noEffect` ("accepted for compatibility,
 * no effect"), which --help-config, docs/configuration.md and a start-up warning naming file:line all show.
 *
 * Adding an option to the table fails this test until it is listed here with the test files that exercise it
 * (each must exist and name the option, by its config key or its camelCase field), or is given `noEffect`.
 * The list was audited by reading each named test: it sets the option and checks what changes. Where no test
 * did, test/config/18-option-config-to-effect was written (and found upgrade_outgoing_qos doing nothing).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { renderConfigMarkdown, renderHelpConfig } from '../../src/config/doc.js'
import { loadConfig } from '../../src/config/load.js'
import { OptionTable, type OptionSpec } from '../../src/config/schema.js'

const root = resolve(import.meta.dirname, '../../..')

/** Option -> the test files (under test/) that prove its effect. */
const Proofs: Record<string, readonly string[]> = {
  listener: ['config/07-serve-seed-config.test.ts', 'transport/45-tls-midge-process.test.ts'],
  port: ['config/18-option-config-to-effect.test.ts'],
  bind_address: ['config/18-option-config-to-effect.test.ts'],
  bind_interface: ['config/18-option-config-to-effect.test.ts'],
  protocol: ['config/11-serve-websockets-sys.test.ts', 'transport/54-ws-mosquitto.test.ts', 'server/03-http-monitoring.test.ts'],
  http_require_auth: ['server/03-http-monitoring.test.ts'],
  http_allow_insecure_login: ['server/04-dashboard-login.test.ts'],
  socket_domain: ['config/18-option-config-to-effect.test.ts'],
  max_connections: ['transport/52-ws-handshake.test.ts'],
  handshake_timeout: ['attack/40-tls-half-open.test.ts'],
  max_handshakes: ['attack/40-tls-half-open.test.ts'],
  max_handshakes_per_address: ['attack/40-tls-half-open.test.ts'],
  mount_point: ['attack/20-mount-point-topic-overflow.test.ts', 'bridge/13-bridge-midge-to-midge.test.ts'],
  max_qos: ['config/18-option-config-to-effect.test.ts', 'broker/11-publish-qos.test.ts'],
  max_topic_alias: ['config/18-option-config-to-effect.test.ts'],
  certfile: ['transport/41-tls-listener.test.ts', 'transport/45-tls-midge-process.test.ts'],
  keyfile: ['transport/41-tls-listener.test.ts', 'transport/45-tls-midge-process.test.ts'],
  cafile: ['transport/43-tls-client-cert.test.ts', 'transport/45-tls-midge-process.test.ts'],
  capath: ['transport/40-tls-cert-checks.test.ts', 'transport/44-tls-mosquitto-clients.test.ts'],
  crlfile: ['transport/48-tls-crlfile.test.ts'],
  tls_version: ['transport/41-tls-listener.test.ts', 'transport/47-tls-handshake-errors.test.ts'],
  ciphers: ['transport/41-tls-listener.test.ts', 'transport/47-tls-handshake-errors.test.ts'],
  'ciphers_tls1.3': ['transport/41-tls-listener.test.ts'],
  require_certificate: ['transport/43-tls-client-cert.test.ts', 'transport/44-tls-mosquitto-clients.test.ts'],
  use_identity_as_username: ['transport/43-tls-client-cert.test.ts', 'transport/45-tls-midge-process.test.ts'],
  use_subject_as_username: ['transport/43-tls-client-cert.test.ts'],
  acme_domain: ['acme/12-acme-serve-process.test.ts'],
  acme_email: ['acme/12-acme-serve-process.test.ts', 'acme/01-acme-policy-config.test.ts'],
  acme_directory: ['acme/12-acme-serve-process.test.ts', 'acme/10-acme-pebble-issue.test.ts'],
  acme_challenge_port: ['acme/12-acme-serve-process.test.ts', 'acme/02-acme-http-01-state.test.ts'],
  acme_challenge_always: ['acme/12-acme-serve-process.test.ts', 'acme/02-acme-http-01-state.test.ts'],
  acme_webroot: ['acme/02-acme-http-01-state.test.ts'],
  acme_ca_file: ['acme/12-acme-serve-process.test.ts', 'acme/10-acme-pebble-issue.test.ts'],
  acme_state_dir: ['acme/12-acme-serve-process.test.ts'],
  per_listener_settings: ['config/07-serve-seed-config.test.ts', 'config/03-config-seed.test.ts'],
  allow_anonymous: ['auth/20-e2e-password-file.test.ts', 'config/07-serve-seed-config.test.ts'],
  password_file: ['auth/20-e2e-password-file.test.ts', 'auth/09-interop-mosquitto-passwd.test.ts'],
  acl_file: ['auth/21-e2e-acl.test.ts', 'auth/22-e2e-reload.test.ts'],
  allow_zero_length_clientid: ['config/18-option-config-to-effect.test.ts', 'broker/10-connect.test.ts'],
  auto_id_prefix: ['config/18-option-config-to-effect.test.ts'],
  auth_fail_limit: ['auth/23-e2e-auth-throttle.test.ts'],
  auth_fail_window: ['auth/23-e2e-auth-throttle.test.ts'],
  auth_ban_time: ['auth/23-e2e-auth-throttle.test.ts'],
  auth_fail_exempt_loopback: ['auth/23-e2e-auth-throttle.test.ts'],
  auth_max_pending_per_address: ['auth/28-auth-parallel-guesses.test.ts', 'attack/30-auth-parallel-guesses.test.ts'],
  auth_max_queued_hashes: ['auth/29-auth-failure-timing.test.ts', 'attack/31-preauth-memory.test.ts'],
  persistence: ['persistence/32-mosquitto-import-start.test.ts', 'config/07-serve-seed-config.test.ts'],
  persistence_file: ['config/07-serve-seed-config.test.ts', 'persistence/33-import-mosquitto-cli.test.ts'],
  persistence_location: ['persistence/04-log-store-files.test.ts', 'config/16-serve-lazy-load.test.ts'],
  persistence_fsync: ['persistence/04-log-store-files.test.ts'],
  autosave_interval: ['config/18-option-config-to-effect.test.ts'],
  autosave_on_changes: ['persistence/21-store-owner-compaction-errors.test.ts'],
  max_queued_messages: ['broker/15-session.test.ts', 'config/08-serve-reload.test.ts'],
  max_queued_bytes: ['broker/15-session.test.ts'],
  max_inflight_messages: ['broker/25-receive-maximum.test.ts', 'broker/11-publish-qos.test.ts'],
  max_inflight_bytes: ['broker/27-inflight-bytes-duplicates.test.ts', 'config/18-option-config-to-effect.test.ts'],
  max_subscriptions_per_client: ['broker/19-subscribe-limits.test.ts', 'attack/11-wildcard-subscriptions.test.ts'],
  max_outgoing_topic_alias_bytes: ['broker/19-subscribe-limits.test.ts', 'attack/12-topic-alias-memory.test.ts'],
  max_packet_size: ['broker/16-v5-features.test.ts', 'transport/51-ws-frames.test.ts'],
  message_size_limit: ['config/18-option-config-to-effect.test.ts'],
  max_keepalive: ['broker/18-keepalive.test.ts', 'broker/10-connect.test.ts'],
  retain_available: ['config/18-option-config-to-effect.test.ts', 'broker/13-retained.test.ts'],
  allow_duplicate_messages: ['broker/27-inflight-bytes-duplicates.test.ts', 'config/18-option-config-to-effect.test.ts'],
  queue_qos0_messages: ['broker/15-session.test.ts'],
  use_username_as_clientid: ['broker/15-session.test.ts'],
  upgrade_outgoing_qos: ['config/18-option-config-to-effect.test.ts'],
  persistent_client_expiration: ['broker/15-session.test.ts'],
  sys_interval: ['config/11-serve-websockets-sys.test.ts', 'interop/01-mosquitto-clients.test.ts'],
  set_tcp_nodelay: ['config/18-option-config-to-effect.test.ts'],
  log_dest: ['config/10-log-sinks.test.ts', 'config/14-log-syslog.test.ts', 'config/15-logrotate.test.ts'],
  log_type: ['config/18-option-config-to-effect.test.ts'],
  log_timestamp: ['config/18-option-config-to-effect.test.ts'],
  log_timestamp_format: ['config/10-log-sinks.test.ts'],
  log_facility: ['config/14-log-syslog.test.ts'],
  connection_messages: ['config/18-option-config-to-effect.test.ts'],
  pid_file: ['config/12-daemon.test.ts', 'config/15-logrotate.test.ts'],
  user: ['config/07-serve-seed-config.test.ts', 'persistence/21-store-owner-compaction-errors.test.ts'],
  cluster_redis: ['cluster/01-cluster-routing.test.ts', 'cluster/04-cluster-redis-restart.test.ts'],
  cluster_node_id: ['cluster/03-cluster-node-loss.test.ts'],
  cluster_workers: ['cluster/05-cluster-workers.test.ts'],
}

/** Where a proving file names what it exercises by another word than the key or field (audited by hand). */
const Mentions: Record<string, string> = {
  persistence_fsync: 'fsync',
  max_packet_size: 'maxPacketSize',
  port: 'port 1884',
  user: 'Uid',
}

function field(o: OptionSpec): string | undefined {
  const t = o.target as Record<string, unknown>
  const v = t.broker ?? t.global ?? t.listener ?? t.security
  return typeof v === 'string' ? v : undefined
}

test('every option of the table is proven effective by named tests, or flagged "accepted for compatibility, no effect"', () => {
  const problems: string[] = []
  for (const o of OptionTable) {
    const proofs = Proofs[o.name]
    if (o.noEffect !== undefined) {
      if (proofs !== undefined) problems.push(`${o.name}: flagged noEffect but listed as proven effective`)
      continue
    }
    if (proofs === undefined || proofs.length === 0) {
      problems.push(`${o.name}: no test proves its effect; add test files to Proofs in test/config/17-option-effects.test.ts, or give it noEffect in schema.ts`)
      continue
    }
    const words = [o.name, field(o), Mentions[o.name]].filter((w): w is string => w !== undefined)
    for (const f of proofs) {
      const path = join(root, 'test', f)
      if (!existsSync(path)) {
        problems.push(`${o.name}: test/${f} does not exist`)
        continue
      }
      const text = readFileSync(path, 'utf8')
      if (!words.some((w) => text.includes(w))) problems.push(`${o.name}: test/${f} mentions none of ${words.join(', ')}`)
    }
  }
  for (const name of Object.keys(Proofs)) if (!OptionTable.some((o) => o.name === name)) problems.push(`${name}: listed in Proofs but not in the option table`)
  assert.deepEqual(problems, [])
})

test('an option without effect says so in --help-config and docs/configuration.md, and warns at start-up naming file:line', () => {
  const ignored = OptionTable.filter((o) => o.noEffect !== undefined)
  assert.ok(ignored.length > 0, 'retry_interval and websockets_log_level are accepted for compatibility')
  const help = renderHelpConfig()
  const doc = renderConfigMarkdown()
  const dir = mkdtempSync(join(tmpdir(), 'midge-noeffect-'))
  try {
    for (const o of ignored) {
      const helpAt = help.indexOf(`  ${o.name} `)
      assert.ok(helpAt >= 0 && help.slice(helpAt).split('\n').slice(0, 2).join('\n').includes('No effect (accepted for compatibility'), `${o.name} in --help-config`)
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${o.name}\` |`))
      assert.ok(row?.includes('No effect (accepted for compatibility'), `${o.name} in docs/configuration.md: ${row}`)
      const file = join(dir, `${o.name}.conf`)
      writeFileSync(file, `# line 1\n${o.name} 5\n`)
      const cfg = loadConfig(file)
      const w = cfg.warnings.find((x) => x.message.includes(`'${o.name}' is accepted for compatibility and has no effect`))
      assert.ok(w !== undefined, `${o.name}: no start-up warning in ${JSON.stringify(cfg.warnings)}`)
      assert.equal(w.file, file)
      assert.equal(w.line, 2)
    }
    // Mosquitto 2.0.11 says the same of retry_interval ("no longer available") and goes on; so does Midge.
    assert.ok(ignored.some((o) => o.name === 'retry_interval'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a deprecated option works and warns naming file:line (allow_duplicate_messages, as Mosquitto 2 warns)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-deprecated-'))
  try {
    const file = join(dir, 'd.conf')
    writeFileSync(file, 'listener 1883 127.0.0.1\nallow_duplicate_messages true\n')
    const cfg = loadConfig(file)
    assert.equal(cfg.broker.allowDuplicateMessages, true)
    assert.deepEqual(cfg.warnings.filter((w) => w.message.includes('allow_duplicate_messages')).map((w) => [w.file, w.line, w.message]), [[file, 2, "'allow_duplicate_messages' is deprecated: Mosquitto 2 deprecates it and will remove it, making true the only behaviour"]])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
