/**
 * `midge cert status|renew -c FILE`: the certificates the broker obtains itself (acme_domain listeners).
 *
 *   status   each managed certificate: names, issuer, expiry, next renewal, last error. Reads the state
 *            directory only (no network). Exit status 2 when one is missing or expired.
 *   renew    renews now what is due, or everything with --force (optionally only the NAMEs given). The
 *            new files land in the state directory, where a running broker's file watch picks them up
 *            and swaps them in. When the running broker holds the challenge port, it answers the
 *            challenges from the same state directory.
 */
import { acmeListeners, acmeSettings } from '../../acme/from-config.js'
import { AcmeManager, type CertificateStatus } from '../../acme/manager.js'
import { describeAcmeError } from '../../acme/errors.js'
import { ConfigInvalidError } from '../../config/errors.js'
import { brokerUser } from '../../config/file-access.js'
import { loadConfig } from '../../config/load.js'
import type { MidgeConfig } from '../../config/types.js'
import { Logger, LogTypes, stderrSink } from '../../observability/logger.js'

const Usage = `Usage: midge cert status -c FILE
       midge cert renew  -c FILE [--force] [-v] [NAME...]
Certificates Midge obtains itself for listeners with acme_domain (see docs/tls.md).
  status                  print each certificate's names, issuer, expiry and next renewal
                          (exit status 2 when one is missing or expired)
  renew                   renew now the certificates that are due; a running broker swaps them in
  -c, --config-file FILE  the broker's configuration
      --force             renew even when not due
  -v, --verbose           log every step, HTTP-01 requests included
  NAME                    only the certificates with this name (default: all)`

export async function run(argv: string[]): Promise<number> {
  const [action, ...rest] = argv
  if (action === undefined || action === '-h' || action === '--help') {
    process.stdout.write(Usage + '\n')
    return action === undefined ? 2 : 0
  }
  if (action !== 'status' && action !== 'renew') {
    process.stderr.write(`midge cert: unknown action '${action}'\n${Usage}\n`)
    return 2
  }
  let file: string | undefined
  let force = false
  let verbose = false
  const names: string[] = []
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] as string
    if (a === '-h' || a === '--help') { process.stdout.write(Usage + '\n'); return 0 }
    if ((a === '-c' || a === '--config-file') && rest[i + 1] !== undefined) { file = rest[++i]; continue }
    if (a === '--force' && action === 'renew') { force = true; continue }
    if ((a === '-v' || a === '--verbose') && action === 'renew') { verbose = true; continue }
    if (!a.startsWith('-') && action === 'renew') { names.push(a.toLowerCase()); continue }
    process.stderr.write(`midge cert ${action}: unexpected argument '${a}'\n${Usage}\n`)
    return 2
  }
  if (file === undefined) {
    process.stderr.write(`midge cert ${action}: -c FILE is required (the broker's configuration)\n${Usage}\n`)
    return 2
  }
  let cfg: MidgeConfig
  try {
    cfg = loadConfig(file, { from: { file: '(command line)', line: 0 } })
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err
    for (const e of err.errors) process.stderr.write(`Error: ${e.message}\n`)
    return 1
  }
  const wanted = acmeListeners(cfg)
  if (wanted.length === 0) {
    process.stderr.write(`midge cert: no listener in ${file} has acme_domain: there is no certificate Midge manages\n`)
    return 1
  }
  const bu = brokerUser(cfg.global.user)
  const logger = new Logger({ types: verbose ? LogTypes : ['error', 'warning', 'notice', 'information'], timestamp: false, sinks: [stderrSink] })
  const settings = acmeSettings(cfg)
  // acme_challenge_always is the broker's: this command listens only while its own challenges are pending.
  if (settings.challenge.kind === 'responder') settings.challenge = { ...settings.challenge, always: false }
  const manager = new AcmeManager({ ...settings, logger, owner: bu.switches ? bu.user : undefined, oneShot: true })
  try {
    for (const { domains } of wanted) manager.add(domains)
  } catch (err) {
    process.stderr.write(`midge cert: ${describeAcmeError(err)}\n`)
    return 1
  }
  const unknown = names.filter((n) => !manager.certificates().some((c) => c.id === n || c.domains.includes(n)))
  if (unknown.length > 0) {
    process.stderr.write(`midge cert renew: no acme_domain listener has ${unknown.join(', ')} (managed: ${manager.certificates().map((c) => c.id).join(', ')})\n`)
    return 2
  }
  if (action === 'status') {
    const now = new Date()
    const statuses = manager.status()
    process.stdout.write(statuses.map((s) => renderStatus(s, now)).join('\n'))
    return statuses.some((s) => s.certificate === undefined || s.certificate.notAfter <= now) ? 2 : 0
  }
  try {
    await manager.prepare()
    const results = await manager.renew({ force, ids: names })
    let failed = 0
    for (const r of results) {
      const label = r.domains.join(', ')
      if (r.outcome === 'issued') {
        process.stdout.write(`${label}: renewed, serial ${r.certificate?.serial ?? '?'}, valid until ${r.certificate?.notAfter.toISOString() ?? '?'}\n`)
      } else if (r.outcome === 'not-due') {
        const c = r.certificate
        const due = c === undefined ? '' : ` (valid until ${c.notAfter.toISOString()})`
        process.stdout.write(`${label}: not due yet${due}; --force renews anyway\n`)
      } else {
        failed++
        process.stdout.write(`${label}: failed: ${describeAcmeError(r.error)}\n`)
      }
    }
    if (results.some((r) => r.outcome === 'issued')) {
      process.stdout.write('A running broker swaps the new certificate in within seconds (it watches the files); open connections stay.\n')
    }
    return failed === 0 ? 0 : 1
  } catch (err) {
    process.stderr.write(`midge cert renew: ${describeAcmeError(err)}\n`)
    return 1
  } finally {
    await manager.close()
  }
}

function when(d: Date, now: Date): string {
  const ms = d.getTime() - now.getTime()
  const abs = Math.abs(ms)
  const span = abs >= 2 * 86_400_000 ? `${Math.floor(abs / 86_400_000)} days` : abs >= 2 * 3_600_000 ? `${Math.floor(abs / 3_600_000)} hours` : `${Math.max(0, Math.round(abs / 60_000))} minutes`
  return `${d.toISOString()} (${ms >= 0 ? `in ${span}` : `${span} ago`})`
}

function renderStatus(s: CertificateStatus, now: Date): string {
  const lines = [`${s.id}`, `  names:         ${s.domains.join(', ')}`]
  const c = s.certificate
  if (c === undefined) {
    lines.push('  certificate:   none yet (the broker obtains it at start)')
  } else {
    lines.push(`  issuer:        ${c.issuer}`, `  serial:        ${c.serial}`)
    lines.push(`  expires:       ${when(c.notAfter, now)}${c.notAfter <= now ? ' EXPIRED' : ''}`)
    if (s.renewAt !== undefined) lines.push(`  next renewal:  ${s.renewAt <= now ? `due now (since ${s.renewAt.toISOString()})` : when(s.renewAt, now)}`)
  }
  if (s.nextAttempt !== undefined && s.nextAttempt > now) lines.push(`  next check:    ${when(s.nextAttempt, now)}`)
  if (s.lastError !== undefined) lines.push(`  last error:    ${s.lastError}${s.lastAttempt === undefined ? '' : ` (${when(s.lastAttempt, now)})`}`)
  lines.push(`  files:         ${s.certfile}`, `                 ${s.keyfile}`)
  return lines.join('\n') + '\n'
}
