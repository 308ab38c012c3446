/**
 * The configuration `midge init` writes: the seed tutorial's final config.conf (a loopback listener, TLS
 * on 8883, passwords, persistence) with a comment above each line saying why it is there, so the file
 * teaches what the tutorial taught. Comments stand on their own lines: mosquitto.conf has no trailing
 * comments, and the file stays readable by Mosquitto apart from the acme_* options.
 */

export interface InitPlan {
  /** The broker's system user (the `user` option). */
  brokerUser: string
  port: number
  tlsPort: number
  configFile: string
  passwordFile: string
  dataDir: string
  logFile: string
  tls:
    | { kind: 'lan'; caFile: string; certFile: string; keyFile: string; names: string[] }
    | { kind: 'acme'; domain: string; email?: string; directory?: string; caFile?: string; challengePort?: number }
}

function withSlash(dir: string): string {
  return dir.endsWith('/') ? dir : `${dir}/`
}

export function initConfigText(p: InitPlan, when: Date = new Date()): string {
  const out: string[] = []
  const add = (why: string[], line?: string): void => {
    for (const w of why) out.push(`# ${w}`)
    if (line !== undefined) out.push(line)
    out.push('')
  }
  add([
    `Written by \`midge init\` on ${when.toISOString().slice(0, 10)}. Mosquitto's syntax (mosquitto.conf(5)); Midge's`,
    'options are in docs/configuration.md, this set-up in docs/quick-setup.md. After an edit, check it with:',
    `  midge check -c ${p.configFile}`,
  ])
  add([
    'Started as root (by systemd or sudo), the broker opens its ports and then runs as this user, so a flaw',
    'in it cannot reach the rest of the system. `midge init` run as root made this file, the password file',
    `and the TLS key root:${p.brokerUser} 0640: the broker reads them but cannot change them.`,
    '(packaging/midge.service starts the broker as this user directly.)',
  ], `user ${p.brokerUser}`)
  add([
    'Every client must log in, on every listener: a broker open to anyone is found and abused within hours.',
  ], 'allow_anonymous false')
  add([
    'Users and their password hashes ($7$: PBKDF2-SHA512). Add or change one with',
    `  sudo midge passwd ${p.passwordFile} NAME`,
    'The broker re-reads the file when it changes: no restart.',
  ], `password_file ${p.passwordFile}`)
  add([
    'Keep sessions, queued messages and retained messages across restarts.',
  ], 'persistence true')
  add([
    `Owned by ${p.brokerUser} (packaging/midge.service's StateDirectory).${p.tls.kind === 'acme' ? ' The ACME account and certificates live in its acme/ folder.' : ''}`,
  ], `persistence_location ${withSlash(p.dataDir)}`)
  add([
    'A log file as Debian\'s Mosquitto keeps one (packaging/midge.logrotate rotates it; SIGHUP reopens it).',
    'Add "log_dest stderr" to also see the log in a terminal or in journalctl.',
  ], `log_dest file ${p.logFile}`)
  if (p.tls.kind === 'acme') {
    if (p.tls.email !== undefined) add(['Where the CA sends notices about the certificate (optional).'], `acme_email ${p.tls.email}`)
    if (p.tls.directory !== undefined) add(['The ACME server (default Let\'s Encrypt; its staging server for trials).'], `acme_directory ${p.tls.directory}`)
    if (p.tls.caFile !== undefined) add(['Trust for the ACME server\'s own HTTPS certificate (a private ACME server).'], `acme_ca_file ${p.tls.caFile}`)
    if (p.tls.challengePort !== undefined) add(['The port of the HTTP-01 responder (the CA connects to port 80: forward it here).'], `acme_challenge_port ${p.tls.challengePort}`)
  }
  add([
    'The options above apply to every listener. Each listener\'s own options follow its line.',
  ])
  add([
    'Plain MQTT on the loopback interface only: programs on this machine may skip TLS, nothing on the',
    'network can reach an unencrypted port. They still need a user name and password (allow_anonymous above).',
  ], `listener ${p.port} 127.0.0.1`)
  add([
    'MQTT over TLS on every interface: passwords and messages cross the network encrypted.',
  ], `listener ${p.tlsPort}`)
  if (p.tls.kind === 'lan') {
    add([
      `This machine's own CA issued this certificate for: ${p.tls.names.join(', ')}. The CA's certificate`,
      'follows it in the file, so the broker sends the whole chain (midge check looks for it there).',
      `Clients verify it with the CA certificate ${p.tls.caFile} (public: copy it to them, --cafile).`,
      'To add a name, run `midge init --force` again with --host NAME for each name: the CA is kept.',
    ], `certfile ${p.tls.certFile}`)
    add([
      `Its private key: root:${p.brokerUser} 0640, readable by the broker only. The CA's key (ca.key) is root's`,
      'alone: the broker never needs it.',
    ], `keyfile ${p.tls.keyFile}`)
  } else {
    add([
      'Midge obtains the certificate for this name from the ACME CA (Let\'s Encrypt) and renews it itself: no',
      'certbot, no cron job, no restart (docs/tls.md). The name\'s DNS must point at this machine, and the CA',
      'must reach port 80 here (forward it on the router) for the HTTP-01 challenge. Clients use the',
      'system\'s CAs: --capath /etc/ssl/certs.',
    ], `acme_domain ${p.tls.domain}`)
  }
  return out.join('\n')
}
