/**
 * The ACME state directory (acme_state_dir, default PERSISTENCE_LOCATION/acme). Everything in it is the
 * broker user's and nobody else's: directories 0700, files 0600, written atomically (temporary file, then
 * rename) so a reader never sees half a key. When a root process writes here (the broker before it drops
 * root, `sudo midge cert renew`), each file is handed to the broker's user.
 *
 *   STATE/                          0700
 *     account.key                   the ACME account's private key
 *     accounts.json                 its URL at each ACME server it registered with
 *     certs/NAME/fullchain.pem      certificate + intermediates: the listener's certfile
 *     certs/NAME/privkey.pem        its private key: the listener's keyfile
 *     certs/NAME/status.json        last attempt and error, next attempt (for `midge cert status`)
 *     http-01/TOKEN                 pending HTTP-01 answers, served by the built-in responder
 *
 * NAME is the first name of the listener's acme_domain, so the files read like certbot's live/NAME/.
 */
import { X509Certificate } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { handOver, makeDirFor, type FileOwner } from '../config/hand-over.js'
import { AcmeError, AcmeErrorCode } from './errors.js'
import { subjectRfc2253 } from '../transport/cert-names.js'

export type { FileOwner }

export interface CertificateFiles {
  /** Directory name under certs/. */
  id: string
  domains: readonly string[]
  certfile: string
  keyfile: string
  statusFile: string
}

/** What status.json holds: written after every attempt. */
export interface AttemptStatus {
  lastAttempt?: string
  lastSuccess?: string
  lastError?: string
  /** The ACME directory the certificate on disk came from (a change of acme_directory renews it). */
  directoryUrl?: string
  /** When the broker will try again (after a failure) or check next. */
  nextAttempt?: string
}

/** The certificate now on disk, as far as renewal decisions go. */
export interface StoredCertificate {
  notBefore: Date
  notAfter: Date
  issuer: string
  serial: string
  /** DNS names of subjectAltName. */
  names: string[]
}

export class AcmeStateDir {
  readonly dir: string
  private readonly owner: FileOwner | undefined

  /** `owner`: who the files must belong to, applied when this process runs as root. */
  constructor (dir: string, owner?: FileOwner) {
    this.dir = path.resolve(dir)
    this.owner = owner
  }

  get accountKeyFile(): string { return path.join(this.dir, 'account.key') }
  get accountsFile(): string { return path.join(this.dir, 'accounts.json') }

  /** The account URL registered at `directoryUrl` with account.key, if any. */
  accountUrl(directoryUrl: string): string | undefined {
    const v = this.readAccounts()[directoryUrl]
    return typeof v === 'string' ? v : undefined
  }

  setAccountUrl(directoryUrl: string, url: string): void {
    this.write(this.accountsFile, JSON.stringify({ ...this.readAccounts(), [directoryUrl]: url }, null, 2) + '\n')
  }

  private readAccounts(): Record<string, unknown> {
    try {
      const v = JSON.parse(fs.readFileSync(this.accountsFile, 'utf8')) as unknown
      return typeof v === 'object' && v !== null ? v as Record<string, unknown> : {}
    } catch {
      return {}
    }
  }
  get challengeDir(): string { return path.join(this.dir, 'http-01') }

  certificateFiles(domains: readonly string[]): CertificateFiles {
    const id = certificateId(domains)
    const dir = path.join(this.dir, 'certs', id)
    return { id, domains, certfile: path.join(dir, 'fullchain.pem'), keyfile: path.join(dir, 'privkey.pem'), statusFile: path.join(dir, 'status.json') }
  }

  /** Creates the directory tree (0700, the broker user's; an existing folder keeps its owner: preflight checks it). */
  ensure(): void {
    for (const d of [this.dir, path.join(this.dir, 'certs'), this.challengeDir]) this.mkdir(d)
  }

  mkdir(dir: string): void {
    try {
      makeDirFor(dir, this.owner)
    } catch (err) {
      throw stateError(`cannot create the ACME state directory ${dir}`, err)
    }
  }

  /** Writes `data` to `file` atomically, mode 0600, owned by the broker user. */
  write(file: string, data: string): void {
    const tmp = `${file}.${process.pid}.tmp`
    try {
      this.mkdir(path.dirname(file))
      fs.writeFileSync(tmp, data, { mode: 0o600 })
      fs.chmodSync(tmp, 0o600)
      this.chown(tmp)
      fs.renameSync(tmp, file)
    } catch (err) {
      fs.rmSync(tmp, { force: true })
      if (err instanceof AcmeError) throw err
      throw stateError(`cannot write ${file}`, err)
    }
  }

  /**
   * Installs a new certificate and key. The key goes first: the listener's watcher groups events for
   * 250 ms, and the runtime (server/runtime.ts) reloads explicitly once both are in place.
   */
  installCertificate(files: CertificateFiles, fullchain: string, key: string): void {
    this.write(files.keyfile, key)
    this.write(files.certfile, fullchain)
  }

  readCertificate(files: CertificateFiles): StoredCertificate | undefined {
    return readStoredCertificate(files)
  }

  readStatus(files: CertificateFiles): AttemptStatus {
    return readAttemptStatus(files)
  }

  writeStatus(files: CertificateFiles, status: AttemptStatus): void {
    try {
      this.write(files.statusFile, JSON.stringify(status, null, 2) + '\n')
    } catch { /* the status file only feeds `midge cert status`; the log has the same facts */ }
  }

  private chown(p: string): void {
    handOver(p, this.owner)
  }
}

/** Directory name of a certificate: its first name, lower-cased (names are validated by the config). */
export function certificateId(domains: readonly string[]): string {
  const first = (domains[0] ?? '').toLowerCase()
  if (!/^[a-z0-9.-]+$/.test(first)) throw new AcmeError(AcmeErrorCode.State, `'${first}' cannot name a certificate directory`)
  return first
}

export function readStoredCertificate(files: Pick<CertificateFiles, 'certfile' | 'keyfile'>): StoredCertificate | undefined {
  let pem: string
  try {
    pem = fs.readFileSync(files.certfile, 'latin1')
    if (!fs.existsSync(files.keyfile)) return undefined
  } catch {
    return undefined
  }
  const first = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(pem)
  if (first === null) return undefined
  try {
    const x = new X509Certificate(first[0])
    const names = (x.subjectAltName ?? '').split(/,\s*/).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4).toLowerCase())
    return { notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo), issuer: subjectRfc2253(x.issuer), serial: x.serialNumber, names }
  } catch {
    return undefined
  }
}

export function readAttemptStatus(files: Pick<CertificateFiles, 'statusFile'>): AttemptStatus {
  try {
    const v = JSON.parse(fs.readFileSync(files.statusFile, 'utf8')) as unknown
    return typeof v === 'object' && v !== null ? v as AttemptStatus : {}
  } catch {
    return {}
  }
}

function stateError(what: string, err: unknown): AcmeError {
  const e = err as NodeJS.ErrnoException
  const hint = e.code === 'EACCES' || e.code === 'EPERM'
    ? 'the broker\'s user must own the ACME state directory (acme_state_dir, default PERSISTENCE_LOCATION/acme); start the broker as root once, or chown it'
    : undefined
  return new AcmeError(AcmeErrorCode.State, `${what}: ${e.message}`, { hint, cause: err })
}
