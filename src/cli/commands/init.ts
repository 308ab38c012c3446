/**
 * `midge init [--domain NAME] [--user NAME] [--dir /etc/midge]`: the seed tutorial in one command. Writes
 * a commented configuration (cli/init-config.ts) with a loopback-only plain listener, a TLS listener, no
 * anonymous clients, persistence and a log file; the password file with its first user; the TLS material:
 * with --domain, nothing (the broker obtains the certificate by ACME), else a CA and a server certificate
 * for a LAN (cli/lan-certificates.ts). Then it runs `midge check` on the result and prints the lines that
 * prove the set-up works.
 *
 * The password is asked for and written by `midge passwd -c` itself (same prompt, same $7$ hash, same
 * atomic write): on a TTY twice without echo, else one line (or two that must match) from standard input.
 *
 * Who owns what, when run as root (else everything belongs to whoever runs it, with the same modes):
 *
 *   DIR/midge.conf, DIR/passwd, DIR/server.key   root:BROKER 0640  the broker reads, cannot change
 *   DIR/server.crt, DIR/ca.crt                   root:root   0644  public
 *   DIR/ca.key                                   root:root   0600  signs the next server certificate
 *   DATA-DIR/, LOG-DIR/ (when created here)      BROKER:BROKER 0750
 *   LOG-DIR/midge.log (when created here)        BROKER:BROKER 0640
 *
 * BROKER is `midge` by default, the account packaging/midge.service runs as; it is created (as
 * docs/service.md does) when missing. Nothing is replaced without --force; on --force an existing CA is
 * kept so clients keep their copy of ca.crt, and an existing password file keeps its other users. A
 * failure puts back the files this run replaced and removes those it created.
 */
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join, resolve } from 'node:path'
import { isIP } from 'node:net'
import { writeFileAtomic } from '../../auth/atomic-write.js'
import { BadValue, domainNames, emailAddress, httpsUrl, type ValueType } from '../../config/value-types.js'
import { describeMode, lookupUser, type UserIdentity } from '../../config/file-access.js'
import { initConfigText, type InitPlan } from '../init-config.js'
import { lanNames, makeLanCertificates, requireOpenssl } from '../lan-certificates.js'
import { ensureSystemUser } from '../system-user.js'
import { checkConfigFile } from './check.js'
import { usernameProblem } from '../../auth/password-file.js'
import { runPasswd, type PasswdIo } from './passwd.js'

export const INIT_USAGE = `Usage: midge init [--domain NAME [--email ADDRESS]] [--user NAME] [--dir DIR] [OPTIONS]
Writes a secure broker set-up: DIR/midge.conf, the password file DIR/passwd with one user, and for TLS
either a certificate obtained from Let's Encrypt for --domain (ACME) or, without a domain, a CA of this
machine and a server certificate for the LAN (DIR/ca.crt is for the clients). See docs/quick-setup.md.
  --domain NAME          the broker's public DNS name (or several: "NAME NAME2"): TLS certificate from
                         Let's Encrypt (port 80 must reach this machine)
  --email ADDRESS        contact address for the ACME account (acme_email)
  --user NAME            the first MQTT user (default: the user who ran sudo); its password is asked twice
                         on a terminal, or read from standard input (one line, as midge passwd)
  --dir DIR              where the configuration, password file and certificates go (default /etc/midge)
  --host NAME            without --domain: a name or address clients use for this machine, put in the
                         server certificate; repeatable (default: the host name and NAME.local)
  --broker-user NAME     the system user the broker runs as (default midge; created when missing)
  --data-dir DIR         persistence_location (default /var/lib/midge)
  --log-dir DIR          where midge.log goes (default /var/log/midge)
  --port N               the plain listener's port on 127.0.0.1 (default 1883)
  --tls-port N           the TLS listener's port (default 8883)
  --acme-directory URL   the ACME server (default Let's Encrypt; staging for trials)
  --acme-ca-file FILE    trust for a private ACME server's HTTPS certificate
  --acme-challenge-port N  the HTTP-01 responder's port (default 80)
  --force                replace an existing set-up in DIR: midge.conf and the server certificate are
                         written anew; the CA and the password file's other users are kept`

class InitError extends Error {}

interface InitArgs {
  domain: string | undefined
  email: string | undefined
  user: string | undefined
  dir: string
  hosts: string[]
  brokerUser: string
  dataDir: string
  logDir: string
  port: number
  tlsPort: number
  acmeDirectory: string | undefined
  acmeCaFile: string | undefined
  acmeChallengePort: number | undefined
  force: boolean
}

/** A value checked by the option's own type in config/value-types.ts, so init accepts what the config will. */
function configValue<T>(type: ValueType<T>, option: string, raw: string): T {
  try {
    return type.parse(raw, { baseDir: process.cwd() })
  } catch (err) {
    if (!(err instanceof BadValue)) throw err
    throw new InitError(`midge init: ${err.detail ?? `${option} expects ${type.expects}, not '${raw}'`}`)
  }
}

/** A name or address for the LAN certificate: one host name (dots allowed, no dot needed) or an IP address. */
function hostName(raw: string): string {
  if (isIP(raw) !== 0 || /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(raw)) return raw
  throw new InitError(`midge init: --host expects a host name such as raspberrypi.local or an IP address, not '${raw}'`)
}

function parseArgs(argv: string[]): InitArgs | 'help' {
  const a: InitArgs = {
    domain: undefined, email: undefined, user: undefined, dir: '/etc/midge', hosts: [], brokerUser: 'midge',
    dataDir: '/var/lib/midge', logDir: '/var/log/midge', port: 1883, tlsPort: 8883,
    acmeDirectory: undefined, acmeCaFile: undefined, acmeChallengePort: undefined, force: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined || v === '') throw new InitError(`midge init: ${arg} needs a value`)
      return v
    }
    const port = (): number => {
      const v = value()
      const n = /^[0-9]+$/.test(v) ? Number(v) : NaN
      if (!(n >= 1 && n <= 65535)) throw new InitError(`midge init: ${arg} takes a port from 1 to 65535, not '${v}'`)
      return n
    }
    switch (arg) {
      case '-h': case '--help': return 'help'
      case '--domain': a.domain = configValue(domainNames, arg, value()).join(' '); break
      case '--email': a.email = configValue(emailAddress, arg, value()); break
      case '--user': a.user = value(); break
      case '--dir': a.dir = value(); break
      case '--host': a.hosts.push(hostName(value())); break
      case '--broker-user': a.brokerUser = value(); break
      case '--data-dir': a.dataDir = value(); break
      case '--log-dir': a.logDir = value(); break
      case '--port': a.port = port(); break
      case '--tls-port': a.tlsPort = port(); break
      case '--acme-directory': a.acmeDirectory = configValue(httpsUrl, arg, value()); break
      case '--acme-ca-file': a.acmeCaFile = resolve(value()); break
      case '--acme-challenge-port': a.acmeChallengePort = port(); break
      case '--force': a.force = true; break
      default: throw new InitError(`midge init: unknown option '${arg}'`)
    }
  }
  if (a.domain === undefined) {
    const acmeOnly = [['--email', a.email], ['--acme-directory', a.acmeDirectory], ['--acme-ca-file', a.acmeCaFile], ['--acme-challenge-port', a.acmeChallengePort]]
    const given = acmeOnly.filter(([, v]) => v !== undefined).map(([n]) => n)
    if (given.length > 0) throw new InitError(`midge init: ${given.join(', ')} only apply with --domain (a certificate from ACME)`)
  } else if (a.hosts.length > 0) {
    throw new InitError('midge init: --host only applies without --domain (the LAN certificate\'s names)')
  }
  if (a.port === a.tlsPort) throw new InitError(`midge init: --port and --tls-port are both ${a.port}`)
  if (a.brokerUser === 'root') throw new InitError('midge init: --broker-user root would leave the broker running as root; choose a system user')
  return a
}

/** The first MQTT user: --user, else whoever ran sudo, else (not root) whoever runs this. */
function mqttUser(a: InitArgs): string {
  const name = a.user ?? process.env['SUDO_USER'] ?? (process.getuid?.() !== 0 ? userInfo().username : undefined)
  if (name === undefined || name === 'root') throw new InitError('midge init: --user NAME is required (the first MQTT user)')
  const problem = usernameProblem(name)
  if (problem !== undefined) throw new InitError(`midge init: --user: ${problem}`)
  return name
}

/** A word the shell takes as it is, quoted when it would not. */
function sh(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}

interface Written { path: string; what: string }

/** What a failed run puts back: the paths it created, the old contents of the files it replaced. */
interface Undo { created: string[]; replaced: Map<string, Buffer> }

/** Notes how to undo a write to `path` about to happen. */
async function before(undo: Undo, path: string): Promise<void> {
  if (!existsSync(path)) undo.created.push(path)
  else if (!undo.replaced.has(path)) undo.replaced.set(path, await readFile(path))
}

export async function runInit(argv: string[], io: PasswdIo): Promise<number> {
  let args: InitArgs | 'help'
  try {
    args = parseArgs(argv)
  } catch (err) {
    if (!(err instanceof InitError)) throw err
    io.stderr.write(`${err.message}\n\n${INIT_USAGE}\n`)
    return 2
  }
  if (args === 'help') {
    io.stdout.write(INIT_USAGE + '\n')
    return 0
  }
  const undo: Undo = { created: [], replaced: new Map() }
  try {
    await init(args, io, undo)
    return 0
  } catch (err) {
    // Put back what this run replaced (--force) and remove what it created, newest first: a failed run
    // leaves the set-up as it found it, and a second run does not meet half a set-up.
    for (const [p, old] of undo.replaced) await writeFileAtomic(p, old).catch(() => {})
    for (const p of undo.created.reverse()) await rm(p, { recursive: true, force: true }).catch(() => {})
    if (err instanceof InitError) io.stderr.write(err.message + '\n')
    else io.stderr.write(`midge init: ${(err as Error).message}\n`)
    return 1
  }
}

async function init(a: InitArgs, io: PasswdIo, undo: Undo): Promise<void> {
  const written: Written[] = []
  const user = mqttUser(a)
  const root = process.getuid?.() === 0
  const dir = resolve(a.dir)
  const dataDir = resolve(a.dataDir)
  const logDir = resolve(a.logDir)
  const f = {
    config: join(dir, 'midge.conf'),
    passwd: join(dir, 'passwd'),
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
  }
  const replaced = [f.config, f.passwd, ...(a.domain === undefined ? [f.cert, f.key] : [])].filter((p) => existsSync(p))
  if (replaced.length > 0 && !a.force) {
    throw new InitError(`midge init: ${replaced.join(', ')} already exist${replaced.length === 1 ? 's' : ''}; nothing was changed. --force replaces ${replaced.length === 1 ? 'it' : 'them'} (the CA and the password file's other users are kept).`)
  }
  // Everything that can fail for want of a tool or a right fails here, before the password is asked.
  if (a.domain === undefined) requireOpenssl()
  let broker: UserIdentity | undefined
  if (root) {
    const su = await ensureSystemUser(a.brokerUser, dataDir)
    broker = su.user
    if (su.created) io.stdout.write(`midge init: created the system user ${a.brokerUser} (no login, home ${dataDir})\n`)
  } else {
    // Without root nothing can be handed to another user: the files are the runner's, and so is the broker.
    broker = lookupUser(String(process.getuid?.()))
    io.stdout.write(`midge init: not run as root, so the files belong to ${userInfo().username}, and the broker runs as that user (--broker-user needs root).\n`)
  }
  const gid = root ? broker!.gid : undefined

  const mkdirOwned = async (path: string, mode: number, owner: UserIdentity | undefined): Promise<void> => {
    const first = await mkdir(path, { recursive: true, mode })
    if (first === undefined) return
    undo.created.push(first)
    await chmod(path, mode) // mkdir's mode is filtered by the umask
    if (root && owner !== undefined) await chown(path, owner.uid, owner.gid)
  }
  await mkdirOwned(dir, 0o755, undefined)

  // The password file first: if the prompt is abandoned, nothing else has been written.
  // With --force an existing password file keeps its other users: only --user's password is set.
  const passwdExisted = existsSync(f.passwd)
  await before(undo, f.passwd)
  const passwdCode = await runPasswd(['--group-readable', ...(passwdExisted ? [] : ['-c']), f.passwd, user], io)
  if (passwdCode !== 0) throw new InitError('midge init: stopped; nothing was changed.')
  written.push({ path: f.passwd, what: passwdExisted ? `the password file, kept, with ${user}'s new password` : `the password file, with user ${user}` })
  if (gid !== undefined) await chown(f.passwd, 0, gid)

  const place = async (path: string, data: string, mode: number, group: number | undefined, what: string): Promise<void> => {
    await before(undo, path)
    await writeFileAtomic(path, data, { mode })
    written.push({ path, what })
    if (root) await chown(path, 0, group ?? 0)
  }

  let tls: InitPlan['tls']
  let keptCa = false
  if (a.domain === undefined) {
    const names = lanNames(a.hosts)
    let existingCa: { cert: string; key: string } | undefined
    if (existsSync(f.caCert) && existsSync(f.caKey)) {
      existingCa = { cert: await readFile(f.caCert, 'utf8'), key: await readFile(f.caKey, 'utf8') }
      keptCa = true
    }
    const certs = await makeLanCertificates(names, existingCa)
    if (certs.caKey !== undefined) {
      await place(f.caKey, certs.caKey, 0o600, undefined, 'the CA\'s key (root only): it signs this broker\'s next certificate')
      await place(f.caCert, certs.caCert, 0o644, undefined, 'the CA certificate: copy it to every client (it is public)')
    }
    await place(f.cert, certs.serverCert, 0o644, undefined, `the broker's certificate, for ${names.join(', ')}`)
    await place(f.key, certs.serverKey, 0o640, gid, 'its private key')
    tls = { kind: 'lan', caFile: f.caCert, certFile: f.cert, keyFile: f.key, names }
  } else {
    tls = {
      kind: 'acme', domain: a.domain, email: a.email, directory: a.acmeDirectory, caFile: a.acmeCaFile, challengePort: a.acmeChallengePort,
    }
  }

  await mkdirOwned(dataDir, 0o750, broker)
  await mkdirOwned(logDir, 0o750, broker)
  const logFile = join(logDir, 'midge.log')
  if (!existsSync(logFile)) {
    // Made here, the broker's own: a broker started as root would otherwise create it as root, and then
    // the broker's user could not reopen it after a logrotate SIGHUP.
    undo.created.push(logFile)
    await writeFile(logFile, '', { mode: 0o640, flag: 'wx' })
    await chmod(logFile, 0o640)
    if (root && broker !== undefined) await chown(logFile, broker.uid, broker.gid)
  }
  const plan: InitPlan = {
    brokerUser: root ? a.brokerUser : userInfo().username, port: a.port, tlsPort: a.tlsPort, configFile: f.config, passwordFile: f.passwd, dataDir,
    logFile, tls,
  }
  await place(f.config, initConfigText(plan), 0o640, gid, 'the configuration')

  // The broker's own start-up checks on the result, as the broker's user: what init wrote must start
  // (--force beside the running broker: its store lock and ports are its own).
  const report = await checkConfigFile(f.config, undefined, { running: true })
  if (!report.ok) throw new InitError(`${report.text}midge init: the set-up above would not start; the files are as they were before.`)

  const out: string[] = ['midge init: wrote']
  const width = Math.max(...written.map((w) => w.path.length))
  for (const w of [...written].reverse()) out.push(`  ${w.path.padEnd(width)}  ${w.what} (${describeMode(await stat(w.path))})`)
  if (keptCa) out.push(`  kept the existing CA ${f.caCert}: clients keep trusting the new certificate`)
  out.push(`  persistence in ${dataDir}, log in ${plan.logFile}`)
  out.push(report.text.trimEnd())
  out.push('', 'Start the broker (in a terminal; as a service: docs/service.md):', `  ${root ? 'sudo ' : ''}midge -c ${sh(f.config)}`)
  const host = tls.kind === 'lan' ? tls.names[0]! : tls.domain.split(' ')[0]!
  const trust = a.domain === undefined ? `--cafile ${sh(f.caCert)}` : '--capath /etc/ssl/certs'
  const common = `-h ${sh(host)} -p ${a.tlsPort} ${trust} -u ${sh(user)} -P 'PASSWORD'`
  out.push(`Then prove it works, in two terminals (PASSWORD: ${user}'s password):`,
    `  midge sub ${common} -t test -v`,
    `  midge pub ${common} -t test -m 'hello world'`,
    'mosquitto_sub and mosquitto_pub take the same options.')
  if (a.domain === undefined) out.push(`On other machines, give --cafile a copy of ${f.caCert}, and -h a name or address the certificate holds.`)
  else out.push(`The first start obtains the certificate: ${a.domain} must resolve to this machine and port 80 reach it.`)
  io.stdout.write(out.join('\n') + '\n')
}

export async function run(argv: string[]): Promise<number> {
  return runInit(argv, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr })
}
