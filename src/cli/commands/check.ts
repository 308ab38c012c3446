/**
 * `midge check -c FILE [--user NAME]`: the broker's own start-up checks (server/start-checks.ts, the code a
 * start runs before it opens anything), without starting: every file as the user the broker will run as
 * (the `user` option when run as root, else whoever runs the check), the store and its lock, pid_file,
 * ACME, bridges, and each listener's addresses (bound for an instant). Each problem is printed as
 * `file:line: what is wrong`, with a `fix:` line when there is one obvious fix, in the same words a refused
 * start prints. Exit status 0 only when the broker would start.
 */
import { type ConfigError, ConfigInvalidError } from '../../config/errors.js'
import { lookupUser, type UserIdentity } from '../../config/file-access.js'
import { loadConfig } from '../../config/load.js'
import { isTlsListener, type MidgeConfig } from '../../config/types.js'
import { formatProblem, startChecks, type Problem } from '../../server/start-checks.js'

const Usage = `Usage: midge check -c FILE [--user NAME]
Runs the broker's start-up checks on FILE without starting it: every file it refers to (password,
ACL, certificates, keys, log, pid and persistence files, ACME state, bridges) as the user the broker
will run as, the store and its lock, and each listener's address (bound for an instant, then closed).
Exit status 0 when the broker would start.
  -c, --config-file FILE  the configuration to check
      --user NAME         check file access for NAME instead of the user the broker would run as
      --running           the broker of FILE (Midge, or the Mosquitto it replaces) is running: its
                          store lock and ports in use are warnings, not problems`

export async function run(argv: string[]): Promise<number> {
  let file: string | undefined
  let userOverride: string | undefined
  let running = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '-h' || a === '--help') { process.stdout.write(Usage + '\n'); return 0 }
    if ((a === '-c' || a === '--config-file') && argv[i + 1] !== undefined) { file = argv[++i]; continue }
    if (a === '--user' && argv[i + 1] !== undefined) { userOverride = argv[++i]; continue }
    if (a === '--running') { running = true; continue }
    process.stderr.write(`midge check: unexpected argument '${a}'\n${Usage}\n`)
    return 2
  }
  if (file === undefined) {
    process.stderr.write(`midge check: -c FILE is required\n${Usage}\n`)
    return 2
  }
  const report = await checkConfigFile(file, userOverride, { running })
  process.stdout.write(report.text)
  return report.ok ? 0 : 1
}

export interface CheckReport {
  ok: boolean
  problems: Problem[]
  text: string
}

/** The whole check, returning the report instead of printing it (tests use it). */
export async function checkConfigFile(file: string, userOverride?: string, opts: { running?: boolean } = {}): Promise<CheckReport> {
  let cfg: MidgeConfig
  try {
    cfg = loadConfig(file, { from: { file: '(command line)', line: 0 } })
  } catch (e) {
    if (!(e instanceof ConfigInvalidError)) throw e
    const problems = e.errors.map((x) => fromConfigError(x))
    return finish(file, problems, undefined, undefined)
  }
  let override: UserIdentity | undefined
  if (userOverride !== undefined) {
    override = lookupUser(userOverride)
    if (override === undefined) {
      const problem: Problem = { loc: { file: '(command line)', line: 0 }, message: `--user ${userOverride}: no such user on this machine`, fix: undefined, severity: 'error' }
      return finish(cfg.file, [problem], cfg, undefined)
    }
  }
  // The broker's own start-up checks (server/start-checks.ts), as a start as this user would run them.
  const pre = await startChecks(cfg, 'check', { user: override, running: opts.running })
  return finish(cfg.file, pre.problems, cfg, pre.user)
}

function fromConfigError(e: ConfigError): Problem {
  return { loc: { file: e.file, line: e.line }, message: e.detail, fix: e.fix, severity: 'error' }
}

function finish(file: string, problems: Problem[], cfg: MidgeConfig | undefined, user: UserIdentity | undefined): CheckReport {
  const lines: string[] = []
  const order = cfg?.files ?? [file]
  const rank = (f: string): number => { const i = order.indexOf(f); return i === -1 ? order.length : i }
  problems = problems.map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p.loc.file) - rank(b.p.loc.file) || a.p.loc.line - b.p.loc.line || a.i - b.i)
    .map((x) => x.p)
  const errors = problems.filter((p) => p.severity === 'error')
  for (const p of problems) lines.push(formatProblem(p))
  if (errors.length > 0) {
    lines.push(`${file}: ${errors.length} problem${errors.length === 1 ? '' : 's'}; the broker would not start`)
  } else if (cfg !== undefined) {
    const ls = cfg.listeners.map((l) => `${l.port}${isTlsListener(l) ? ' (TLS)' : ''} on ${l.bindAddress ?? l.bindInterface ?? 'all interfaces'}`)
    lines.push(`${file}: OK; the broker would start with listeners ${ls.join(', ')}${user === undefined ? '' : ` and run as user '${user.name}'`}`)
  }
  return { ok: errors.length === 0, problems, text: lines.map((l) => l + '\n').join('') }
}
