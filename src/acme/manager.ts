/**
 * The certificates a broker obtains and renews itself (acme_domain). For each: obtain at start when the
 * files are missing or unusable, then check at start and every 12 hours (or sooner, when the renewal time
 * comes first) and renew once less than 30 days or a third of the lifetime remains. A failure is logged
 * with the CA's detail and a hint, and retried with a growing delay; the listener keeps the certificate it
 * has. New files are installed atomically in the state directory and announced to onCertificate()
 * listeners, which reload the TLS listeners (transport/tls.ts swaps without dropping connections).
 *
 * Decisions are made from the files on disk at each check, so a renewal done by `midge cert renew` in
 * another process is seen, not repeated.
 */
import fs from 'node:fs'
import { AcmeError, AcmeErrorCode, describeAcmeError } from './errors.js'
import { ChallengeResponder, WebrootChallenges, type Http01Challenges } from './http-01.js'
import { newAccountKey, orderCertificate } from './order.js'
import { RenewalPolicy, renewalTime, retryDelay } from './policy.js'
export { LetsEncryptProduction, LetsEncryptStaging } from './policy.js'
import {
  AcmeStateDir, readAttemptStatus, readStoredCertificate, type AttemptStatus, type CertificateFiles, type FileOwner,
  type StoredCertificate,
} from './state-dir.js'
import type { Logger } from '../observability/logger.js'

export type ChallengeSettings =
  | { kind: 'responder'; port: number; host?: string | undefined; always: boolean }
  | { kind: 'webroot'; dir: string }

/** What the acme_* options say. */
export interface AcmeSettings {
  directoryUrl: string
  email: string | undefined
  /** acme_ca_file: CA certificates trusted for the ACME server itself. */
  caFile: string | undefined
  stateDir: string
  challenge: ChallengeSettings
}

export interface AcmeTiming {
  checkIntervalMs: number
  retryMinMs: number
  retryMaxMs: number
  /** Polling of pending challenges and orders. */
  pollMinMs: number
  pollMaxMs: number
}

export interface AcmeManagerOptions extends AcmeSettings {
  logger: Logger
  /** The broker's user: owner of every file written while running as root. */
  owner?: FileOwner | undefined
  /** Shorter intervals for tests. */
  timing?: Partial<AcmeTiming>
  /** Fetch each HTTP-01 answer from loopback before asking the CA to validate. Default true. */
  selfCheck?: boolean
  /** `midge cert renew`: no schedule; the running broker keeps its own. */
  oneShot?: boolean
}

export type ManagedCertificate = CertificateFiles

export interface RenewResult {
  id: string
  domains: readonly string[]
  outcome: 'issued' | 'not-due' | 'failed'
  error?: unknown
  certificate?: StoredCertificate | undefined
}

export interface CertificateStatus {
  id: string
  domains: readonly string[]
  certfile: string
  keyfile: string
  /** undefined: none on disk yet (or unreadable). */
  certificate: StoredCertificate | undefined
  renewAt: Date | undefined
  /** When this broker checks or retries next (from status.json when asked from another process). */
  nextAttempt: Date | undefined
  lastAttempt: Date | undefined
  lastError: string | undefined
}

interface Entry {
  files: ManagedCertificate
  timer: NodeJS.Timeout | undefined
  running: Promise<RenewResult> | undefined
  failures: number
}

export class AcmeManager {
  readonly state: AcmeStateDir
  readonly challenges: Http01Challenges
  private readonly opts: AcmeManagerOptions
  private readonly timing: AcmeTiming
  private readonly entries = new Map<string, Entry>()
  private readonly certificateListeners: Array<(cert: ManagedCertificate, info: StoredCertificate) => void> = []
  private closed = false
  private readonly abort = new AbortController()
  /** acme_ca_file as read by prepare(), still as root: the broker's user may not be able to read it. */
  private caText: string | undefined

  constructor (opts: AcmeManagerOptions) {
    this.opts = opts
    this.timing = { ...RenewalPolicy, pollMinMs: 1000, pollMaxMs: 10_000, ...opts.timing }
    this.state = new AcmeStateDir(opts.stateDir, opts.owner)
    const c = opts.challenge
    this.challenges = c.kind === 'webroot'
      ? new WebrootChallenges(c.dir, opts.logger)
      : new ChallengeResponder({ port: c.port, host: c.host, state: this.state, keepListening: c.always, selfCheck: opts.selfCheck ?? true, logger: opts.logger })
  }

  /** Registers a certificate for `domains`; listeners asking for the same names share it. */
  add(domains: readonly string[]): ManagedCertificate {
    const files = this.state.certificateFiles(domains)
    const known = this.entries.get(files.id)
    if (known !== undefined) {
      if (known.files.domains.join(' ') !== domains.join(' ')) {
        throw new AcmeError(AcmeErrorCode.State, `acme_domain '${domains.join(' ')}' and '${known.files.domains.join(' ')}' start with the same name but differ: give listeners sharing a first name the same acme_domain line`)
      }
      return known.files
    }
    this.entries.set(files.id, { files, timer: undefined, running: undefined, failures: 0 })
    return files
  }

  certificates(): ManagedCertificate[] {
    return [...this.entries.values()].map((e) => e.files)
  }

  /** The certificate on disk, when there is one that covers its names and has not expired. */
  usable(cert: ManagedCertificate, now = new Date()): StoredCertificate | undefined {
    const c = readStoredCertificate(cert)
    if (c === undefined || c.notAfter <= now || !cert.domains.every((d) => c.names.includes(d.toLowerCase()))) return undefined
    return c
  }

  /**
   * Creates the state directory and, with `holdChallengePort` (a port below 1024 while still root) or
   * acme_challenge_always, binds the HTTP-01 port now and keeps it. Call before dropping root.
   */
  async prepare(opts: { holdChallengePort?: boolean } = {}): Promise<void> {
    this.state.ensure()
    if (this.opts.caFile !== undefined) this.caText = this.readCaFile()
    const c = this.opts.challenge
    if (c.kind === 'responder' && (c.always || opts.holdChallengePort === true) && this.challenges instanceof ChallengeResponder) {
      await this.challenges.hold()
      if (!c.always) this.opts.logger.info(`ACME: keeping port ${c.port} open for HTTP-01 challenges: it cannot be bound again once the broker has dropped root.`)
    }
  }

  /**
   * Checks every certificate now (obtaining missing ones), then on the schedule. `force`: ids to renew
   * whatever their dates say (files the TLS listener refused, e.g. a key that does not match).
   */
  start(opts: { force?: readonly string[] } = {}): void {
    for (const e of this.entries.values()) void this.run(e, opts.force?.includes(e.files.id) === true)
  }

  /** Called after a new certificate is installed (to reload or start its listeners). */
  onCertificate(fn: (cert: ManagedCertificate, info: StoredCertificate) => void): void {
    this.certificateListeners.push(fn)
  }

  /** `midge cert renew`: checks now (renews whatever is due, or everything with `force`). */
  async renew(opts: { force?: boolean; ids?: readonly string[] } = {}): Promise<RenewResult[]> {
    const chosen = [...this.entries.values()].filter((e) => opts.ids === undefined || opts.ids.length === 0 || opts.ids.includes(e.files.id) || e.files.domains.some((d) => opts.ids?.includes(d)))
    return Promise.all(chosen.map((e) => this.run(e, opts.force === true)))
  }

  status(): CertificateStatus[] {
    return [...this.entries.values()].map((e) => certificateStatus(e.files))
  }

  async close(): Promise<void> {
    this.closed = true
    this.abort.abort()
    for (const e of this.entries.values()) {
      if (e.timer !== undefined) clearTimeout(e.timer)
      e.timer = undefined
    }
    await this.challenges.close()
  }

  private run(e: Entry, force: boolean): Promise<RenewResult> {
    if (e.running !== undefined) return e.running
    const p = this.attempt(e, force).finally(() => { e.running = undefined })
    e.running = p
    return p
  }

  private async attempt(e: Entry, force: boolean): Promise<RenewResult> {
    if (e.timer !== undefined) clearTimeout(e.timer)
    e.timer = undefined
    const log = this.opts.logger
    const { files } = e
    const names = files.domains.join(', ')
    const base = { id: files.id, domains: files.domains }
    const now = new Date()
    const current = readStoredCertificate(files)
    const previous = readAttemptStatus(files)
    const why = previous.directoryUrl !== undefined && previous.directoryUrl !== this.opts.directoryUrl && current !== undefined
      ? `the current one comes from ${previous.directoryUrl}`
      : dueReason(current, files.domains, now, force)
    if (why === undefined) {
      const renewAt = renewalTime((current as StoredCertificate).notBefore, (current as StoredCertificate).notAfter)
      const next = this.schedule(e, renewAt.getTime() - now.getTime())
      log.debug(`ACME: certificate for ${names} is valid until ${(current as StoredCertificate).notAfter.toISOString()}; renewal due ${renewAt.toISOString()}${next === undefined ? '' : `, next check ${next.toISOString()}`}.`)
      if (next !== undefined) this.state.writeStatus(files, { ...previous, nextAttempt: next.toISOString() })
      return { ...base, outcome: 'not-due', certificate: current }
    }
    log.notice(`ACME: ${current === undefined ? 'obtaining a certificate' : 'renewing the certificate'} for ${names} (${why}) from ${this.opts.directoryUrl}.`)
    try {
      const issued = await orderCertificate({
        directoryUrl: this.opts.directoryUrl,
        ca: this.readCaFile(),
        accountKey: await this.accountKey(),
        accountUrl: this.state.accountUrl(this.opts.directoryUrl),
        onAccount: (url) => { this.state.setAccountUrl(this.opts.directoryUrl, url) },
        email: this.opts.email,
        domains: files.domains,
        challenges: this.challenges,
        logger: log,
        pollMinMs: this.timing.pollMinMs,
        pollMaxMs: this.timing.pollMaxMs,
        signal: this.abort.signal,
      })
      this.state.installCertificate(files, issued.fullchain, issued.key)
      const info = readStoredCertificate(files)
      if (info === undefined) throw new AcmeError(AcmeErrorCode.State, `the certificate just written to ${files.certfile} cannot be read back`)
      e.failures = 0
      const renewAt = renewalTime(info.notBefore, info.notAfter)
      const next = this.schedule(e, renewAt.getTime() - Date.now())
      log.notice(`ACME: certificate for ${names} issued by ${info.issuer} (serial ${info.serial}, valid until ${info.notAfter.toISOString()}); renewal due ${renewAt.toISOString()}.`)
      const at = new Date().toISOString()
      this.state.writeStatus(files, { lastAttempt: at, lastSuccess: at, directoryUrl: this.opts.directoryUrl, ...(next === undefined ? {} : { nextAttempt: next.toISOString() }) })
      if (!this.closed) {
        for (const fn of this.certificateListeners) {
          try { fn(files, info) } catch (err) { log.error(`ACME: installing the new certificate for ${names}: ${(err as Error).message}`) }
        }
      }
      return { ...base, outcome: 'issued', certificate: info }
    } catch (err) {
      if (this.closed) {
        log.info(`ACME: the order for ${names} was abandoned: Midge is stopping.`)
        return { ...base, outcome: 'failed', error: err, certificate: current }
      }
      e.failures++
      const delay = retryDelay(e.failures, this.timing.retryMinMs, Math.min(this.timing.retryMaxMs, this.timing.checkIntervalMs))
      const detail = describeAcmeError(err)
      log.error(`ACME: ${current === undefined ? 'obtaining a certificate' : 'renewing the certificate'} for ${names} failed: ${detail}`)
      const next = this.schedule(e, delay, true)
      const keeping = current === undefined
        ? 'the listener starts once a certificate is obtained'
        : current.notAfter > new Date() ? `the listener keeps serving the current certificate (serial ${current.serial}, valid until ${current.notAfter.toISOString()})` : `the current certificate expired on ${current.notAfter.toISOString()}`
      log.warning(`ACME: ${keeping}${next === undefined ? '.' : `; next attempt at ${next.toISOString()} (attempt ${e.failures + 1}).`}`)
      const status: AttemptStatus = { ...previous, lastAttempt: now.toISOString(), lastError: detail }
      if (next !== undefined) status.nextAttempt = next.toISOString()
      else if (this.opts.oneShot !== true) delete status.nextAttempt
      this.state.writeStatus(files, status)
      return { ...base, outcome: 'failed', error: err, certificate: current }
    }
  }

  /** Next look at `e` after `ms` (never later than the 12-hour check); returns when, or undefined when none. */
  private schedule(e: Entry, ms: number, exact = false): Date | undefined {
    if (e.timer !== undefined) clearTimeout(e.timer)
    e.timer = undefined
    if (this.closed || this.opts.oneShot === true) return undefined
    const delay = Math.max(exact ? 0 : 1000, Math.min(ms, this.timing.checkIntervalMs))
    e.timer = setTimeout(() => { e.timer = undefined; void this.run(e, false) }, delay)
    return new Date(Date.now() + delay)
  }

  private readCaFile(): string | undefined {
    const f = this.opts.caFile
    if (f === undefined) return undefined
    try {
      return fs.readFileSync(f, 'utf8')
    } catch (err) {
      if (this.caText !== undefined) return this.caText
      throw new AcmeError(AcmeErrorCode.DirectoryUntrusted, `cannot read acme_ca_file ${f}: ${(err as Error).message}`, { cause: err })
    }
  }

  private async accountKey(): Promise<string> {
    const file = this.state.accountKeyFile
    try {
      return fs.readFileSync(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new AcmeError(AcmeErrorCode.State, `cannot read the ACME account key ${file}: ${(err as Error).message}`, { cause: err })
      }
    }
    const key = await newAccountKey()
    // URLs registered with a previous key belong to other accounts.
    fs.rmSync(this.state.accountsFile, { force: true })
    this.state.write(file, key)
    this.opts.logger.notice(`ACME: created a new account key in ${file}.`)
    return key
  }
}

function dueReason(current: StoredCertificate | undefined, domains: readonly string[], now: Date, force: boolean): string | undefined {
  if (current === undefined) return 'none in the state directory yet'
  const missing = domains.filter((d) => !current.names.includes(d.toLowerCase()))
  if (missing.length > 0) return `the current one does not cover ${missing.join(', ')}`
  if (force) return 'renewal forced'
  if (current.notAfter <= now) return `the current one expired on ${current.notAfter.toISOString()}`
  const at = renewalTime(current.notBefore, current.notAfter)
  if (at <= now) return `the current one expires on ${current.notAfter.toISOString()}`
  return undefined
}

/** What `midge cert status` prints for one certificate, from the files (no network). */
export function certificateStatus(files: ManagedCertificate): CertificateStatus {
  const certificate = readStoredCertificate(files)
  const s = readAttemptStatus(files)
  const date = (v: string | undefined): Date | undefined => v === undefined || Number.isNaN(Date.parse(v)) ? undefined : new Date(v)
  const renewAt = certificate === undefined ? undefined : renewalTime(certificate.notBefore, certificate.notAfter)
  return {
    id: files.id,
    domains: files.domains,
    certfile: files.certfile,
    keyfile: files.keyfile,
    certificate,
    renewAt,
    nextAttempt: date(s.nextAttempt),
    lastAttempt: date(s.lastAttempt),
    lastError: (s.lastSuccess !== undefined && s.lastAttempt !== undefined && s.lastSuccess >= s.lastAttempt) ? undefined : s.lastError,
  }
}
