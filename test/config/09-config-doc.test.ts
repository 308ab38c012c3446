import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { renderConfigMarkdown, renderHelpConfig } from '../../src/config/doc.js'
import { MosquittoOptions } from '../../src/config/mosquitto-options.js'
import { classifyOption, OptionTable } from '../../src/config/schema.js'

const root = resolve(import.meta.dirname, '../../..')

test('docs/configuration.md is generated from the option table and up to date', () => {
  const committed = readFileSync(resolve(root, 'docs/configuration.md'), 'utf8')
  assert.equal(committed, renderConfigMarkdown(), 'docs/configuration.md is stale: run `npx tsc -p . && node scripts/gen-config-doc.js`')
})

test('every option of the table is documented, with its scope and reload flag', () => {
  const doc = renderConfigMarkdown()
  for (const o of OptionTable) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${o.name}\` |`))
    assert.ok(row !== undefined, `${o.name} missing from docs/configuration.md`)
    assert.ok(row.includes(o.reload ? '| yes |' : '| no |'), row)
  }
})

test('the options the issue names are all in the table', () => {
  const required = ['listener', 'bind_address', 'bind_interface', 'port', 'protocol', 'max_connections', 'socket_domain', 'mount_point',
    'allow_anonymous', 'password_file', 'acl_file', 'certfile', 'keyfile', 'cafile', 'capath', 'tls_version', 'ciphers', 'ciphers_tls1.3',
    'require_certificate', 'use_identity_as_username', 'use_subject_as_username', 'persistence', 'persistence_file', 'persistence_location',
    'autosave_interval', 'autosave_on_changes', 'max_queued_messages', 'max_queued_bytes', 'max_inflight_messages', 'max_inflight_bytes',
    'max_packet_size', 'message_size_limit', 'max_keepalive', 'max_qos', 'retain_available', 'allow_zero_length_clientid', 'auto_id_prefix',
    'allow_duplicate_messages', 'upgrade_outgoing_qos', 'persistent_client_expiration', 'set_tcp_nodelay', 'sys_interval', 'log_dest',
    'log_type', 'log_timestamp', 'log_timestamp_format', 'connection_messages', 'pid_file', 'user', 'per_listener_settings']
  for (const name of required) assert.equal(classifyOption(name), 'midge', name)
})

test('every Mosquitto 2.0 option is either supported or refused as not supported yet; none is unknown', () => {
  for (const name of MosquittoOptions) assert.notEqual(classifyOption(name), 'unknown', name)
  assert.equal(classifyOption('plugin_opt_config_file'), 'unsupported-mosquitto')
  assert.equal(classifyOption('persistance'), 'unknown')
})

test('midge --help-config lists every option', () => {
  const r = spawnSync(process.execPath, [resolve(root, 'bin/midge.js'), '--help-config'], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, renderHelpConfig())
  for (const o of OptionTable) assert.match(r.stdout, new RegExp(`^  ${o.name.replace('.', '\\.')} `, 'm'))
})
