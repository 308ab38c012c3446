/**
 * `midge install-service [--user NAME] [--config FILE] [--disable-mosquitto] [--root DIR]`: installs Midge
 * as a systemd service (docs/service.md): the unit from packaging/midge.service with ExecStart naming this
 * installation, the service's user, the logrotate rule, then `systemctl daemon-reload` and `enable`.
 * `--root DIR` installs into a system image at DIR instead (packagers, tests): files under DIR, `useradd
 * --prefix DIR`, `systemctl --root=DIR`, and nothing that acts on the running system.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync, chmodSync } from 'node:fs'
import { dirname, join, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../config/load.js'
import { ConfigInvalidError } from '../../config/errors.js'
import type { MidgeConfig } from '../../config/types.js'
import { explainFileAccess, lookupUser } from '../../config/file-access.js'
import { renderLogrotate, renderUnit, unitDirectories, writableFolders } from '../service-unit.js'

export const InstallServiceUsage = `Usage: midge install-service [--user NAME] [--config FILE] [--disable-mosquitto] [--root DIR]

Installs Midge as a systemd service (run as root): /etc/systemd/system/midge.service running this
installation of midge with FILE, the user NAME (created when missing), /etc/logrotate.d/midge when the
configuration logs to a file, then systemctl daemon-reload and systemctl enable midge. Start it with
'systemctl start midge'.

  --config FILE         the configuration (default /etc/midge/midge.conf, as 'midge init' writes it)
  --user NAME           the service's user (default: the configuration's 'user', else mosquitto for a
                        configuration in /etc/mosquitto, else midge); created when missing
  --disable-mosquitto   also 'systemctl disable --now mosquitto': Midge takes over Mosquitto's ports
  --root DIR            install into the system image at DIR: files under DIR, useradd --prefix DIR,
                        systemctl --root=DIR enable; nothing is reloaded, stopped or started`

/** The package's own folder: dist/src/cli/commands/ is four levels below it. */
const PackageDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..')

export interface InstallServiceArgs {
  user: string | undefined
  config: string
  disableMosquitto: boolean
  root: string
  help: boolean
}

export function parseInstallServiceArgs(argv: readonly string[]): InstallServiceArgs {
  const a: InstallServiceArgs = { user: undefined, config: '/etc/midge/midge.conf', disableMosquitto: false, root: '/', help: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined || v === '') throw new Error(`${arg} needs a value`)
      return v
    }
    switch (arg) {
      case '--user': a.user = value(); break
      case '--config': case '-c': a.config = resolve(value()); break
      case '--disable-mosquitto': a.disableMosquitto = true; break
      case '--root': a.root = resolve(value()); break
      case '--help': case '-h': a.help = true; break
      default: throw new Error(`unknown option '${arg}'`)
    }
  }
  if (a.user !== undefined && !/^[a-z_][a-z0-9_-]*\$?$/.test(a.user)) throw new Error(`'${a.user}' is not a valid user name`)
  return a
}

/**
 * The service's user: --user; else the configuration's own `user` (the user a broker started as root switches
 * to; under systemd the service starts as that user directly); else `mosquitto` for a configuration in
 * /etc/mosquitto (Debian's package made that user, owns /var/lib/mosquitto and /var/log/mosquitto with it,
 * and made its files readable by it), else `midge` (what `midge init` configures).
 */
export function serviceUser(args: Pick<InstallServiceArgs, 'user' | 'config'>, configured: string | undefined): string {
  return args.user ?? configured ?? (args.config.startsWith('/etc/mosquitto/') ? 'mosquitto' : 'midge')
}

export interface CommandResult { status: number | null; stderr: string }

/** Every external command goes through here, so that what is run is printed and can be faked in tests. */
export type Runner = (cmd: string, args: string[]) => CommandResult

/** Runs with PATH plus the sbin folders (useradd), which a root shell from plain `su` may lack. */
export const runCommand: Runner = (cmd, args) => {
  process.stdout.write(`+ ${[cmd, ...args].join(' ')}\n`)
  const PATH = [process.env['PATH'] ?? '', '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'].filter((p) => p !== '').join(':')
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, PATH }, stdio: ['ignore', 'inherit', 'pipe'] })
  if (r.error !== undefined) {
    const pkg = cmd === 'useradd' ? 'passwd' : cmd === 'systemctl' ? 'systemd' : cmd
    return { status: null, stderr: `cannot run ${cmd} (Debian package ${pkg}): ${r.error.message}` }
  }
  if (r.stderr !== '') process.stderr.write(r.stderr)
  return { status: r.status, stderr: r.stderr }
}

/** useradd's "username already in use" status. */
const UserExists = 9

/** The systemctl commands, in order: on the running system, or (with --root) on the image's unit files only. */
export function systemctlCommands(root: string, disableMosquitto: boolean): string[][] {
  if (root !== '/') {
    return [...(disableMosquitto ? [['systemctl', `--root=${root}`, 'disable', 'mosquitto.service']] : []), ['systemctl', `--root=${root}`, 'enable', 'midge.service']]
  }
  return [
    ...(disableMosquitto ? [['systemctl', 'disable', '--now', 'mosquitto.service']] : []),
    ['systemctl', 'daemon-reload'],
    ['systemctl', 'enable', 'midge.service'],
  ]
}

class InstallError extends Error {}

/** Why the service's user could not run this installation of midge, or undefined. */
function installationProblem(user: string, mainJs: string): string | undefined {
  const node = realpathSync(process.execPath)
  for (const [what, file] of [['Midge', mainJs], ['Node.js', node]] as const) {
    // ProtectHome=true in the unit: /home, /root and /run/user do not exist for the service.
    if (['/root', '/home', '/run/user'].some((h) => file === h || file.startsWith(h + sep))) {
      return `${what} is installed at ${file}, under ${file.split(sep).slice(0, 2).join(sep)}, which the service cannot see (ProtectHome=true in the unit) and the user '${user}' cannot read. Install ${what === 'Midge' ? "it system-wide: sudo npm install -g midge (or the tarball), which puts it under /usr or /usr/local" : 'Node.js system-wide (README: Install)'}, then run install-service again with that midge.`
    }
    // The user as this system knows it (in an image made with --root, only if this system has it too).
    const identity = lookupUser(user)
    const denied = identity === undefined ? undefined : explainFileAccess(file, identity)
    if (denied !== undefined) return `${denied.message}. The service runs ${what} as '${user}': make ${denied.blockedBy} readable (and its folders searchable) by that user, or install ${what} elsewhere.`
  }
  return undefined
}

export async function run(argv: string[]): Promise<number> {
  let args: InstallServiceArgs
  try {
    args = parseInstallServiceArgs(argv)
  } catch (err) {
    process.stderr.write(`midge install-service: ${(err as Error).message}\n${InstallServiceUsage}\n`)
    return 1
  }
  if (args.help) { process.stdout.write(InstallServiceUsage + '\n'); return 0 }
  try {
    install(args, runCommand)
    return 0
  } catch (err) {
    if (!(err instanceof InstallError)) throw err
    process.stderr.write(`midge install-service: ${err.message}\n`)
    return 1
  }
}

/** The steps, in an order that leaves nothing enabled when an earlier one fails. */
export function install(args: InstallServiceArgs, run: Runner): void {
  const { root } = args
  const inRoot = (p: string): string => (root === '/' ? p : join(root, p))
  if (root === '/' && process.getuid?.() !== 0) throw new InstallError('run it as root: sudo midge install-service …')
  const configFile = inRoot(args.config)
  if (!existsSync(configFile)) {
    throw new InstallError(`there is no configuration at ${configFile}: write one with 'sudo midge init' (docs/quick-setup.md), or name yours with --config FILE`)
  }
  let cfg: MidgeConfig
  try {
    cfg = loadConfig(configFile)
  } catch (err) {
    const errors = err instanceof ConfigInvalidError ? err.errors.map((e) => e.message) : [(err as Error).message]
    throw new InstallError(`${configFile} is not a valid configuration:\n  ${errors.join('\n  ')}\n(midge check -c ${configFile} says more)`)
  }
  const user = serviceUser(args, cfg.global.user)
  const mainJs = realpathSync(join(PackageDir, 'bin', 'midge.js'))

  // Before anything is created: an installation the service could not run is refused at once.
  const problem = installationProblem(user, mainJs)
  if (problem !== undefined) throw new InstallError(problem)
  // On this system the passwd database says whether it exists; in an image, useradd --prefix does (status 9).
  if (root !== '/' || lookupUser(user) === undefined) {
    const made = run('useradd', [...(root === '/' ? [] : ['--prefix', root]), '--system', '--user-group', '--home-dir', '/var/lib/midge', '--no-create-home', '--shell', '/usr/sbin/nologin', user])
    if (made.status !== 0 && made.status !== UserExists) throw new InstallError(`cannot create the user '${user}': ${made.stderr.trim()}`)
    // A user made just now: the access check above could not ask about it yet.
    const late = installationProblem(user, mainJs)
    if (late !== undefined) throw new InstallError(late)
  }

  const g = cfg.global
  const unit = renderUnit(readFileSync(join(PackageDir, 'packaging', 'midge.service'), 'utf8'), {
    execStart: [realpathSync(process.execPath), mainJs, '-c', args.config],
    user,
    dirs: unitDirectories(writableFolders(cfg)),
  })
  const unitFile = inRoot('/etc/systemd/system/midge.service')
  mkdirSync(dirname(unitFile), { recursive: true })
  writeFileSync(unitFile, unit, { mode: 0o644 })
  chmodSync(unitFile, 0o644)
  process.stdout.write(`Wrote ${unitFile} (user ${user}, ExecStart ${mainJs} -c ${args.config}).\n`)

  const logFile = g.logDest.find((d) => d.kind === 'file')
  if (logFile !== undefined && logFile.kind === 'file') {
    const rule = renderLogrotate(readFileSync(join(PackageDir, 'packaging', 'midge.logrotate'), 'utf8'), logFile.path, user, g.pidFile)
    const ruleFile = inRoot('/etc/logrotate.d/midge')
    mkdirSync(dirname(ruleFile), { recursive: true })
    writeFileSync(ruleFile, rule, { mode: 0o644 })
    chmodSync(ruleFile, 0o644)
    process.stdout.write(`Wrote ${ruleFile} (rotates ${logFile.path}).\n`)
  }

  for (const [cmd, ...rest] of systemctlCommands(root, args.disableMosquitto)) {
    const r = run(cmd as string, rest)
    if (r.status === 0) continue
    // Nothing to disable is not a failure of the install.
    if (rest.includes('mosquitto.service')) { process.stderr.write(`midge install-service: mosquitto.service was not disabled (see above); carrying on.\n`); continue }
    throw new InstallError(`${[cmd, ...rest].join(' ')} failed${r.stderr.trim() === '' ? '' : `: ${r.stderr.trim()}`}`)
  }
  process.stdout.write(root === '/'
    ? `Installed. Start it: sudo systemctl start midge; see it: systemctl status midge; its log: journalctl -u midge\n`
    : `Installed into ${root}; midge.service is enabled there.\n`)
}
