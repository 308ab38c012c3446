/**
 * One listener's certificate over time: loaded and checked at start, reloaded when its files change
 * (watch + poll) or on SIGHUP, swapped only when the new files pass every check, and watched for
 * expiry. The listener (tls.ts) gives each accepted pair to `server.setSecureContext()`; a wss listener
 * can subscribe the same way. A refused pair is logged once per distinct content, and the previous
 * certificate keeps serving.
 */
import type tls from 'node:tls'
import { notAfter, notBefore } from './cert-checks.js'
import { buildMaterial, readTlsFiles, type CertificateMaterial, type CheckSettings, type TlsFiles } from './cert-material.js'
import { certLabel, certNames, subjectRfc2253 } from './cert-names.js'
import { CertWatcher } from './cert-watch.js'
import type { UserIdentity } from './file-access.js'
import { contextProblems, protocolProblems, secureContextOptions, type TlsProtocolOptions } from './tls-context.js'
import { hasErrors, type TlsProblem } from './tls-errors.js'
import type { Logger } from '../observability/logger.js'

const DAY_MS = 86_400_000

export interface CertificateInfo {
  /** RFC 2253, as `openssl x509 -subject -nameopt RFC2253` prints it. */
  subject: string
  issuer: string
  notBefore: Date
  notAfter: Date
  /** Hex, as OpenSSL prints it. */
  serial: string
  /** SHA-256, colon-separated hex. */
  fingerprint: string
  /** DNS names and IP addresses the certificate is for. */
  names: string[]
}

export interface TlsCertificateOptions extends TlsFiles, TlsProtocolOptions {
  /** For log lines: the listener's name, e.g. '8883'. */
  name: string
  domain?: string | undefined
  logger: Logger
  /** Warn (at start, daily, after a swap) when fewer days than this remain. Default 14. */
  expiryWarningDays?: number
  /** Use fs.watch on the files and their directories. Default true. */
  watch?: boolean
  /** Quiet time after the last file event before reloading. Default 250 ms. */
  watchDebounceMs?: number
  /** Stat-free poll: re-read the files this often and reload if their content changed. Default 60 s; 0 = off. */
  certCheckIntervalMs?: number
  /** Called with the certificate in use at start and after every swap (e.g. for $SYS). */
  onCertificate?: ((info: CertificateInfo) => void) | undefined
}

export function describeCertificate(m: CertificateMaterial): CertificateInfo {
  return {
    subject: subjectRfc2253(m.leaf.subject),
    issuer: subjectRfc2253(m.leaf.issuer),
    notBefore: notBefore(m.leaf),
    notAfter: notAfter(m.leaf),
    serial: m.leaf.serialNumber,
    fingerprint: m.leaf.fingerprint256,
    names: certNames(m.leaf),
  }
}

export interface LoadResult {
  material?: CertificateMaterial
  contextOptions?: tls.SecureContextOptions
  digest: string
  problems: TlsProblem[]
}

/** Reads and checks the files once: what `midge check` and a (re)load both run. */
export function loadCertificate(opts: TlsFiles & TlsProtocolOptions & { domain?: string | undefined; expiryWarningDays?: number }, asUser?: UserIdentity): LoadResult {
  const settings: CheckSettings = { domain: opts.domain, expiryWarningDays: opts.expiryWarningDays ?? 14 }
  const contents = readTlsFiles(opts, asUser)
  const { material, problems } = buildMaterial(contents, settings)
  problems.unshift(...protocolProblems(opts))
  if (material === undefined || hasErrors(problems)) return { digest: contents.digest, problems }
  const contextOptions = secureContextOptions(material, opts)
  problems.push(...contextProblems(contextOptions, opts))
  if (hasErrors(problems)) return { digest: contents.digest, problems }
  return { material, contextOptions, digest: contents.digest, problems }
}

export class TlsCertificate {
  private readonly opts: TlsCertificateOptions
  private material: CertificateMaterial
  private options: tls.SecureContextOptions
  private lastDigest: string
  private readonly swapListeners: Array<(options: tls.SecureContextOptions, info: CertificateInfo) => void> = []
  private watcher: CertWatcher | undefined
  private expiryTimer: NodeJS.Timeout | undefined

  /** Use TlsCertificate.load(): construction assumes a checked first load. */
  private constructor (opts: TlsCertificateOptions, first: Required<Pick<LoadResult, 'material' | 'contextOptions'>> & LoadResult) {
    this.opts = opts
    this.material = first.material
    this.options = first.contextOptions
    this.lastDigest = first.digest
  }

  /** Loads and checks; returns the problems instead of a certificate when any is an error. */
  static load(opts: TlsCertificateOptions): TlsCertificate | TlsProblem[] {
    const r = loadCertificate(opts)
    if (r.material === undefined || r.contextOptions === undefined) return r.problems
    const cert = new TlsCertificate(opts, { ...r, material: r.material, contextOptions: r.contextOptions })
    for (const p of r.problems) opts.logger.warning(`TLS listener ${opts.name}: ${p.message}`)
    return cert
  }

  /** Starts watching the files and the daily expiry check. */
  start(): void {
    const o = this.opts
    const paths = [o.certfile, o.keyfile, o.cafile, o.capath, o.crlfile].filter((p): p is string => p !== undefined && p !== '')
    this.watcher = new CertWatcher({
      paths,
      watch: o.watch ?? true,
      debounceMs: o.watchDebounceMs ?? 250,
      pollIntervalMs: o.certCheckIntervalMs ?? 60_000,
      onChange: (reason) => { this.check(reason) },
    })
    this.expiryTimer = setInterval(() => this.checkExpiry(), DAY_MS)
    this.expiryTimer.unref()
    this.opts.onCertificate?.(this.info())
  }

  contextOptions(): tls.SecureContextOptions { return this.options }

  info(): CertificateInfo { return describeCertificate(this.material) }

  /** Called with the new context options and certificate after each swap. */
  onSwap(listener: (options: tls.SecureContextOptions, info: CertificateInfo) => void): void {
    this.swapListeners.push(listener)
  }

  /** SIGHUP: re-read and swap if the files pass the checks, even when their content looks unchanged. */
  reload(): boolean {
    return this.check('signal')
  }

  /** Re-reads the files; swaps when they changed (or on a signal) and pass. True when swapped. */
  check(trigger: 'watch' | 'poll' | 'signal'): boolean {
    const r = loadCertificate(this.opts)
    if (trigger !== 'signal' && r.digest === this.lastDigest) return false
    this.lastDigest = r.digest
    const o = this.opts
    if (r.material === undefined || r.contextOptions === undefined) {
      const current = this.material.leaf
      o.logger.error(`TLS listener ${o.name}: the certificate files ${trigger === 'signal' ? 'were reloaded' : 'changed'}, but the new ones are refused; still serving ${certLabel(current)} (serial ${current.serialNumber}, valid until ${notAfter(current).toISOString()}).`)
      for (const p of r.problems) o.logger.log(p.severity === 'error' ? 'error' : 'warning', `TLS listener ${o.name}: ${p.message}`)
      return false
    }
    const before = this.material.leaf.fingerprint256
    this.material = r.material
    this.options = r.contextOptions
    const info = this.info()
    const what = before === info.fingerprint ? 'reloaded the same certificate' : 'now serves a new certificate'
    o.logger.notice(`TLS listener ${o.name} ${what}: ${certLabel(r.material.leaf)} (serial ${info.serial}, valid until ${info.notAfter.toISOString()}).`)
    for (const p of r.problems) o.logger.warning(`TLS listener ${o.name}: ${p.message}`)
    for (const l of this.swapListeners) l(r.contextOptions, info)
    o.onCertificate?.(info)
    return true
  }

  /** Logs a warning (or an error once expired) when the certificate in use is near its end. */
  checkExpiry(now = new Date()): void {
    const o = this.opts
    const until = notAfter(this.material.leaf)
    const left = until.getTime() - now.getTime()
    const label = `the certificate of TLS listener ${o.name} (${certLabel(this.material.leaf)}, from ${o.certfile})`
    if (left <= 0) {
      o.logger.error(`${label} expired on ${until.toISOString()}: clients refuse it; renew it, Midge picks up the renewed files`)
    } else if (left < (o.expiryWarningDays ?? 14) * DAY_MS) {
      o.logger.warning(`${label} expires on ${until.toISOString()}, in ${Math.floor(left / DAY_MS)} days: renew it, Midge picks up the renewed files`)
    }
  }

  close(): void {
    this.watcher?.close()
    if (this.expiryTimer !== undefined) clearInterval(this.expiryTimer)
  }
}
