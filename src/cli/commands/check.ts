/**
 * `midge check -c FILE [--user NAME]`: everything a start would validate, without opening a port. The config
 * is loaded and validated, then every file it names is examined as the user the broker will run as (the
 * `user` option when run as root, else whoever runs the check): readable? well-formed? certificates
 * matching their keys and in date? Each problem is printed as `file:line: what is wrong`, with a `fix:` line
 * when there is one obvious fix. Exit status 0 only when the broker would start.
 */
import { lookup } from 'node:dns/promises'
import { readFileSync } from 'node:fs'
import { networkInterfaces } from 'node:os'
import { parseAcl } from '../../auth/acl.js'
import { parsePasswordFile } from '../../auth/password-file.js'
import { type ConfigError, ConfigInvalidError, formatLocation, type SourceLocation } from '../../config/errors.js'
import { brokerUser, checkRead, checkWrite, currentUser, lookupUser, type AccessProblem, type UserIdentity } from '../../config/file-access.js'
import { loadConfig } from '../../config/load.js'
import { isTlsListener, type ListenerConfig, type MidgeConfig } from '../../config/types.js'
import { checkTlsFiles } from '../../transport/tls.js'
import { checkBridgeFiles } from '../../config/bridge-check.js'

const Usage = `Usage: midge check -c FILE [--user NAME]
Validates FILE and every file it refers to (password, ACL, certificates, keys, log and persistence
locations) as the user the broker will run as, without opening any port. Exit status 0 when the
broker would start.
  -c, --config-file FILE  the configuration to check
      --user NAME         check file access for NAME instead of the user the broker would run as`

interface Problem {
  loc: SourceLocation
  message: string
  fix: string | undefined
  severity: 'error' | 'warning'
}

export async function run(argv: string[]): Promise<number> {
  let file: string | undefined
  let userOverride: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '-h' || a === '--help') { process.stdout.write(Usage + '\n'); return 0 }
    if ((a === '-c' || a === '--config-file') && argv[i + 1] !== undefined) { file = argv[++i]; continue }
    if (a === '--user' && argv[i + 1] !== undefined) { userOverride = argv[++i]; continue }
    process.stderr.write(`midge check: unexpected argument '${a}'\n${Usage}\n`)
    return 2
  }
  if (file === undefined) {
    process.stderr.write(`midge check: -c FILE is required\n${Usage}\n`)
    return 2
  }
  const report = await checkConfigFile(file, userOverride)
  process.stdout.write(report.text)
  return report.ok ? 0 : 1
}

export interface CheckReport {
  ok: boolean
  problems: Problem[]
  text: string
}

/** The whole check, returning the report instead of printing it (tests and serve's dry runs use it). */
export async function checkConfigFile(file: string, userOverride?: string): Promise<CheckReport> {
  let cfg: MidgeConfig
  try {
    cfg = loadConfig(file, { from: { file: '(command line)', line: 0 } })
  } catch (e) {
    if (!(e instanceof ConfigInvalidError)) throw e
    const problems = e.errors.map((x) => fromConfigError(x))
    return finish(file, problems, undefined, undefined)
  }
  const problems: Problem[] = cfg.warnings.map((w) => ({ loc: w, message: w.message, fix: undefined, severity: 'warning' as const }))
  let user: UserIdentity | undefined
  if (userOverride !== undefined) {
    user = lookupUser(userOverride)
    if (user === undefined) problems.push(err({ file: '(command line)', line: 0 }, `--user ${userOverride}: no such user on this machine`))
  } else {
    const bu = brokerUser(cfg.global.user)
    user = bu.user
    if (bu.error !== undefined) problems.push(err(cfg.global.origins['user'] ?? { file: cfg.file, line: 0 }, bu.error, `create the user, or set 'user' to an existing account`))
  }
  if (user !== undefined) checkFiles(cfg, user, problems)
  await checkAddresses(cfg, problems)
  return finish(cfg.file, problems, cfg, user)
}

function err(loc: SourceLocation, message: string, fix?: string): Problem {
  return { loc, message, fix, severity: 'error' }
}

function fromConfigError(e: ConfigError): Problem {
  return { loc: { file: e.file, line: e.line }, message: e.detail, fix: e.fix, severity: 'error' }
}

function originOf(cfg: MidgeConfig, l: ListenerConfig | undefined, option: string): SourceLocation {
  return (l === undefined ? undefined : l.origins[option]) ?? cfg.global.origins[option] ?? (l === undefined ? { file: cfg.file, line: 0 } : l)
}

function checkFiles(cfg: MidgeConfig, user: UserIdentity, problems: Problem[]): void {
  const done = new Set<string>()
  const access = (loc: SourceLocation, p: AccessProblem | undefined): boolean => {
    if (p === undefined) return true
    problems.push(err(loc, p.message, p.fix))
    return false
  }
  const once = (key: string): boolean => {
    if (done.has(key)) return false
    done.add(key)
    return true
  }

  for (const l of cfg.listeners) {
    if (l.passwordFile !== undefined && once(`password_file ${l.passwordFile}`)) {
      const loc = originOf(cfg, l, 'password_file')
      if (access(loc, checkRead(`password_file ${l.passwordFile}`, l.passwordFile, user))) {
        try {
          parsePasswordFile(readFileSync(l.passwordFile, 'utf8'), l.passwordFile)
        } catch (e) {
          problems.push(err(loc, `password_file ${l.passwordFile} is not valid: ${(e as Error).message}`))
        }
      }
    }
    if (l.aclFile !== undefined && once(`acl_file ${l.aclFile}`)) {
      const loc = originOf(cfg, l, 'acl_file')
      if (access(loc, checkRead(`acl_file ${l.aclFile}`, l.aclFile, user))) {
        try {
          parseAcl(readFileSync(l.aclFile, 'utf8'), l.aclFile)
        } catch (e) {
          problems.push(err(loc, `acl_file ${l.aclFile} is not valid: ${(e as Error).message}`))
        }
      }
    }
    if (isTlsListener(l)) checkTls(cfg, l, user, problems, access)
  }

  for (const d of cfg.global.logDest) {
    if (d.kind === 'file') access(originOf(cfg, undefined, 'log_dest'), checkWrite(`log_dest file ${d.path}`, d.path, user, 'file'))
  }
  if (cfg.global.persistence) {
    const dir = cfg.global.persistenceLocation ?? process.cwd()
    const loc = cfg.global.origins['persistence_location'] ?? originOf(cfg, undefined, 'persistence')
    access(loc, checkWrite(`persistence_location ${dir}`, dir, user, 'directory'))
  }
  for (const b of cfg.bridges) {
    for (const p of checkBridgeFiles(b, user, cfg.file)) problems.push(err(p.loc, p.message, p.fix))
  }
  if (cfg.global.pidFile !== undefined) {
    // The pid file is written before the broker switches user.
    access(originOf(cfg, undefined, 'pid_file'), checkWrite(`pid_file ${cfg.global.pidFile}`, cfg.global.pidFile, currentUser(), 'file'))
  }
}

function checkTls(cfg: MidgeConfig, l: ListenerConfig, user: UserIdentity, problems: Problem[], access: (loc: SourceLocation, p: AccessProblem | undefined) => boolean): void {
  let readable = true
  for (const [option, path] of [['certfile', l.certfile], ['keyfile', l.keyfile], ['cafile', l.cafile], ['crlfile', l.crlfile]] as const) {
    if (path !== undefined) readable = access(originOf(cfg, l, option), checkRead(`${option} ${path}`, path, user)) && readable
  }
  if (l.capath !== undefined) readable = access(originOf(cfg, l, 'capath'), checkRead(`capath ${l.capath}`, l.capath, user, 'directory')) && readable
  // Content checks only once every file can be read, so one cause is not reported twice.
  if (!readable || l.certfile === undefined || l.keyfile === undefined) return
  const found = checkTlsFiles({
    name: l.name, host: l.bindAddress, certfile: l.certfile, keyfile: l.keyfile, cafile: l.cafile, capath: l.capath, crlfile: l.crlfile,
    tlsVersion: l.tlsVersion, ciphers: l.ciphers, ciphersTls13: l.ciphersTls13,
    requireCertificate: l.requireCertificate, useIdentityAsUsername: l.useIdentityAsUsername, useSubjectAsUsername: l.useSubjectAsUsername,
  }, user)
  for (const p of found) {
    const option = p.file === l.keyfile ? 'keyfile' : p.file === l.cafile ? 'cafile' : p.file === l.capath ? 'capath' : 'certfile'
    problems.push({ loc: originOf(cfg, l, option), message: p.message, fix: undefined, severity: p.severity })
  }
}

async function checkAddresses(cfg: MidgeConfig, problems: Problem[]): Promise<void> {
  const interfaces = networkInterfaces()
  let unprivilegedFrom = 1024
  try { unprivilegedFrom = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim()) } catch { /* not Linux */ }
  const root = (process.getuid?.() ?? 0) === 0
  for (const l of cfg.listeners) {
    if (l.implicit) continue
    if (l.bindInterface !== undefined && interfaces[l.bindInterface] === undefined) {
      problems.push(err(originOf(cfg, l, 'bind_interface'), `bind_interface ${l.bindInterface}: no such network interface (this machine has ${Object.keys(interfaces).join(', ')})`))
    }
    if (l.bindAddress !== undefined) {
      try {
        await lookup(l.bindAddress, { all: true })
      } catch {
        problems.push(err(l, `listener ${l.port} ${l.bindAddress}: cannot resolve '${l.bindAddress}' to an address`))
      }
    }
    if (!root && l.port !== 0 && l.port < unprivilegedFrom) {
      problems.push({ loc: l, message: `listener ${l.port}: ports below ${unprivilegedFrom} need root or CAP_NET_BIND_SERVICE, and this check runs as an unprivileged user`, fix: 'start the broker as root (it switches to `user` after opening its ports) or use a port above 1023', severity: 'warning' })
    }
  }
}

function finish(file: string, problems: Problem[], cfg: MidgeConfig | undefined, user: UserIdentity | undefined): CheckReport {
  const lines: string[] = []
  const order = cfg?.files ?? [file]
  const rank = (f: string): number => { const i = order.indexOf(f); return i === -1 ? order.length : i }
  problems = problems.map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p.loc.file) - rank(b.p.loc.file) || a.p.loc.line - b.p.loc.line || a.i - b.i)
    .map((x) => x.p)
  const errors = problems.filter((p) => p.severity === 'error')
  for (const p of problems) {
    const where = p.loc.file === '' ? '' : `${formatLocation(p.loc)}: `
    lines.push(`${where}${p.severity === 'warning' ? 'warning: ' : ''}${p.message}`)
    if (p.fix !== undefined) lines.push(`  fix: ${p.fix}`)
  }
  if (errors.length > 0) {
    lines.push(`${file}: ${errors.length} problem${errors.length === 1 ? '' : 's'}; the broker would not start`)
  } else if (cfg !== undefined) {
    const ls = cfg.listeners.map((l) => `${l.port}${isTlsListener(l) ? ' (TLS)' : ''} on ${l.bindAddress ?? l.bindInterface ?? 'all interfaces'}`)
    lines.push(`${file}: OK; the broker would start with listeners ${ls.join(', ')}${user === undefined ? '' : ` and run as user '${user.name}'`}`)
  }
  return { ok: errors.length === 0, problems, text: lines.map((l) => l + '\n').join('') }
}

