/**
 * docs/configuration.md and `midge --help-config`, both rendered from the option table (schema.ts).
 * Regenerate the doc with `node scripts/gen-config-doc.js` after a build; test/config fails when it is stale.
 */
import { MosquittoOptionPrefixes, MosquittoOptions } from './mosquitto-options.js'
import { classifyOption, describeDefault, findOption, OptionTable, type OptionSpec } from './schema.js'

const ScopeText: Record<OptionSpec['scope'], string> = {
  global: 'global',
  listener: 'listener',
  security: 'listener or global (per_listener_settings)',
  'default-listener': 'default listener',
}

const Sections: ReadonlyArray<{ title: string; names: readonly string[] }> = [
  { title: 'Listeners', names: ['listener', 'port', 'bind_address', 'bind_interface', 'protocol', 'http_require_auth', 'http_allow_insecure_login', 'socket_domain', 'max_connections', 'mount_point', 'max_qos', 'max_topic_alias'] },
  { title: 'TLS', names: ['certfile', 'keyfile', 'cafile', 'capath', 'crlfile', 'tls_version', 'ciphers', 'ciphers_tls1.3', 'require_certificate', 'use_identity_as_username', 'use_subject_as_username'] },
  { title: 'ACME (certificates obtained by Midge)', names: ['acme_domain', 'acme_email', 'acme_directory', 'acme_challenge_port', 'acme_challenge_always', 'acme_webroot', 'acme_ca_file', 'acme_state_dir'] },
  { title: 'Authentication and access control', names: ['per_listener_settings', 'allow_anonymous', 'password_file', 'acl_file', 'allow_zero_length_clientid', 'auto_id_prefix', 'auth_fail_limit', 'auth_fail_window', 'auth_ban_time', 'auth_fail_exempt_loopback'] },
  { title: 'Persistence', names: ['persistence', 'persistence_file', 'persistence_location', 'autosave_interval', 'autosave_on_changes'] },
]

/** Options grouped for display; options not named in Sections land in "Broker behaviour" or a later issue's section. */
function grouped(): Array<{ title: string; options: OptionSpec[] }> {
  const used = new Set<string>()
  const out: Array<{ title: string; options: OptionSpec[] }> = []
  for (const s of Sections) {
    const options = s.names.map((n) => findOption(n)).filter((o): o is OptionSpec => o !== undefined)
    for (const o of options) used.add(o.name)
    out.push({ title: s.title, options })
  }
  const logging = OptionTable.filter((o) => !used.has(o.name) && (o.name.startsWith('log_') || o.name === 'connection_messages'))
  for (const o of logging) used.add(o.name)
  const process = OptionTable.filter((o) => !used.has(o.name) && (o.name === 'pid_file' || o.name === 'user'))
  for (const o of process) used.add(o.name)
  const ignored = OptionTable.filter((o) => !used.has(o.name) && o.noEffect !== undefined)
  for (const o of ignored) used.add(o.name)
  const rest = OptionTable.filter((o) => !used.has(o.name))
  out.splice(4, 0, { title: 'Limits and MQTT behaviour', options: rest })
  out.push({ title: 'Logging', options: logging }, { title: 'Process', options: process }, { title: NoEffectTitle, options: ignored })
  return out.filter((g) => g.options.length > 0)
}

const NoEffectTitle = 'Accepted for compatibility, no effect'

/** The description of an option, saying first when it has no effect or is deprecated. */
function describe(o: OptionSpec): string {
  if (o.noEffect !== undefined) return `No effect (accepted for compatibility; a start-up warning names the line): ${o.noEffect}. ${o.doc}`
  if (o.deprecated !== undefined) return `${o.doc} (Deprecated, with a start-up warning: ${o.deprecated}.)`
  return o.doc
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

export function renderConfigMarkdown(): string {
  const lines: string[] = [
    '<!-- Generated from src/config/schema.ts by `node scripts/gen-config-doc.js`; do not edit by hand. -->',
    '# Configuration',
    '',
    'Midge reads Mosquitto\'s `mosquitto.conf` syntax: `midge -c FILE` (or `midge check -c FILE` to validate',
    'without starting). One option per line, `option value`; lines whose first non-blank character is `#` are',
    'comments. `include_dir DIR` (main file only) reads every `*.conf` file in DIR in Mosquitto\'s order',
    '(case-insensitive, upper case first on a tie: `00.conf`, `A.conf`, `a.conf`, `B.conf`). Relative paths are',
    'resolved against the directory of the main config file.',
    '',
    'Without any `listener`, Midge listens on 127.0.0.1:1883 and [::1]:1883 only, and lets anonymous clients in',
    'there. As soon as a listener is configured, `allow_anonymous` defaults to false, as in Mosquitto 2, and Midge',
    'warns at start about any listener that accepts anonymous clients on a non-loopback address.',
    '',
    'Errors name the file and line: an unknown option (with a suggestion), a Mosquitto option Midge does not',
    'support yet, a bad value (with the expected type and range), a listener option before any `listener` line,',
    'a duplicate listener port, or a TLS listener without both `certfile` and `keyfile`. The broker exits with a',
    'non-zero status before opening any port.',
    '',
    '`SIGHUP` reloads the file: options marked *yes* under Reload take effect without dropping clients, the',
    'password file, ACL file and certificates are re-read, and the log file is reopened. A reload that fails',
    'validation keeps the running configuration and logs why. Other changes need a restart (Midge logs which).',
    '',
  ]
  for (const g of grouped()) {
    lines.push(`## ${g.title}`, '', '| Option | Value | Default | Scope | Reload | Description |', '|---|---|---|---|---|---|')
    for (const o of g.options) {
      lines.push(`| \`${o.name}\` | ${cell(o.type.label)} | ${cell(describeDefault(o))} | ${ScopeText[o.scope]} | ${o.reload ? 'yes' : 'no'} | ${cell(describe(o))} |`)
    }
    lines.push('')
  }
  // Bridge options live in their own table (docs/bridging.md): only what neither table knows is listed.
  const unsupported = [...MosquittoOptions].filter((n) => findOption(n) === undefined && n !== 'include_dir' && classifyOption(n) !== 'midge').sort()
  lines.push(
    '## Bridges',
    '',
    'A `connection NAME` line starts a bridge block (`address`, `topic`, `remote_username`, `bridge_cafile`, …),',
    'in mosquitto.conf syntax: see [bridging.md](bridging.md) for every bridge option.',
    '',
    '## Mosquitto options not supported yet',
    '',
    'These Mosquitto 2.0 options are refused with `FILE:LINE: option \'X\' is a Mosquitto option Midge does not',
    'support yet`, rather than silently ignored:',
    '',
    unsupported.map((n) => `\`${n}\``).join(', ') + ', ' + MosquittoOptionPrefixes.map((p) => `\`${p}*\``).join(', ') + '.',
    '',
  )
  return lines.join('\n')
}

/** Plain-text option list for `midge --help-config`. */
export function renderHelpConfig(): string {
  const lines: string[] = ['Configuration options (mosquitto.conf syntax; see docs/configuration.md):', '']
  for (const g of grouped()) {
    lines.push(`${g.title}:`)
    for (const o of g.options) {
      const def = describeDefault(o)
      const flags = [def === '(unset)' ? '' : `default ${def}`, o.scope === 'global' ? '' : ScopeText[o.scope], o.reload ? 'reloadable' : ''].filter((s) => s !== '')
      lines.push(`  ${o.name} ${o.type.label}`, `      ${describe(o).replace(/`/g, '')}`)
      if (flags.length > 0) lines.push(`      (${flags.join('; ')})`)
    }
    lines.push('')
  }
  return lines.join('\n')
}
