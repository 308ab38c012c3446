/**
 * A throwaway PKI made with the `openssl` command at test time: a root CA, an intermediate, server and
 * client leaves, expired and not-yet-valid ones, and Let's Encrypt-style file sets (cert.pem,
 * chain.pem, fullchain.pem, privkey.pem, with live/ symlinks into archive/ as certbot lays them out).
 * Independent of src/: the code under test never makes the certificates it checks.
 *
 * EC P-256 keys keep generation fast on a 2-core machine; every certificate is issued with `openssl ca`
 * because only it takes explicit start and end dates (OpenSSL 3.0's `x509 -req` has only -days).
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface Issued {
  name: string
  cert: string
  key: string
  /** The `openssl x509 -subject -nameopt RFC2253` form, without the `subject=` prefix. */
  subject: string
  /** SHA-256 fingerprint as Node prints it (colon-separated upper-case hex). */
  fingerprint: string
}

export interface IssueOptions {
  /** Common name; default `name`. */
  cn?: string
  /** Extra subject components after CN, e.g. '/O=Midge Test/OU=Devices'. */
  subjectTail?: string
  issuer?: Issued
  /** subjectAltName entries, e.g. ['DNS:localhost', 'IP:127.0.0.1']; default for servers: localhost + 127.0.0.1. */
  sans?: string[]
  kind?: 'server' | 'client' | 'ca'
  /** openssl ca dates, YYYYMMDDHHMMSSZ; default now-1h .. now+days. */
  startDate?: string
  endDate?: string
  days?: number
  /** Reuse an existing key (a renewal with the same key, or a deliberate mismatch). */
  key?: string
  /** Encrypt the key with this passphrase. */
  passphrase?: string
}

/** UTCTime, YYMMDDHHMMSSZ, as `openssl ca -startdate/-enddate` takes it (dates before 2050). */
export function opensslDate(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z').slice(2)
}

function openssl(args: string[], cwd: string): string {
  try {
    return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as { code?: string; stderr?: string }
    if (e.code === 'ENOENT') throw new Error('the openssl command is missing: install the Debian package openssl')
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? String(err)}`)
  }
}

export class TestPki {
  readonly dir: string
  readonly root: Issued
  readonly intermediate: Issued
  private serial = 0x1000

  constructor (dir?: string) {
    this.dir = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'midge-pki-'))
    fs.mkdirSync(path.join(this.dir, 'ca-db', 'new'), { recursive: true })
    fs.writeFileSync(path.join(this.dir, 'ca-db', 'index.txt'), '')
    fs.writeFileSync(path.join(this.dir, 'ca-db', 'index.txt.attr'), 'unique_subject = no\n')
    fs.writeFileSync(path.join(this.dir, 'ca.cnf'), caConfig(path.join(this.dir, 'ca-db')))
    this.root = this.selfSigned('root', 'Midge Test Root CA')
    this.intermediate = this.issue('intermediate', { cn: 'Midge Test Intermediate', kind: 'ca', issuer: this.root, days: 3650 })
  }

  path(name: string): string { return path.join(this.dir, name) }

  newKey(name: string): string {
    const key = this.path(`${name}.key`)
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], this.dir)
    return key
  }

  /** A self-signed CA (another root, for "a CA Midge does not trust"). */
  selfSigned(name: string, cn: string): Issued {
    const key = this.newKey(name)
    const cert = this.path(`${name}.pem`)
    openssl(['req', '-x509', '-new', '-key', key, '-out', cert, '-days', '3650', '-subj', `/CN=${cn}/O=Midge Test`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], this.dir)
    return this.describe(name, cert, key)
  }

  issue(name: string, o: IssueOptions = {}): Issued {
    const kind = o.kind ?? 'server'
    const issuer = o.issuer ?? this.intermediate
    const key = o.key ?? this.newKey(name)
    const csr = this.path(`${name}.csr`)
    openssl(['req', '-new', '-key', key, '-out', csr, '-subj', `/CN=${o.cn ?? name}${o.subjectTail ?? '/O=Midge Test'}`], this.dir)
    const ext = this.path(`${name}.ext`)
    const lines = ['[v3]', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid,issuer']
    if (kind === 'ca') {
      lines.push('basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign')
    } else {
      lines.push('basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment')
      lines.push(`extendedKeyUsage=${kind === 'server' ? 'serverAuth' : 'clientAuth'}`)
      const sans = o.sans ?? (kind === 'server' ? ['DNS:localhost', 'IP:127.0.0.1'] : [])
      if (sans.length > 0) lines.push(`subjectAltName=${sans.join(',')}`)
    }
    fs.writeFileSync(ext, lines.join('\n') + '\n')
    const now = Date.now()
    const start = o.startDate ?? opensslDate(new Date(now - 3_600_000))
    const end = o.endDate ?? opensslDate(new Date(now + (o.days ?? 90) * 86_400_000))
    const cert = this.path(`${name}.pem`)
    fs.writeFileSync(path.join(this.dir, 'ca-db', 'serial'), (this.serial++).toString(16).toUpperCase().padStart(4, '0') + '\n')
    openssl(['ca', '-batch', '-notext', '-config', this.path('ca.cnf'), '-cert', issuer.cert, '-keyfile', issuer.key,
      '-in', csr, '-out', cert, '-startdate', start, '-enddate', end, '-extfile', ext, '-extensions', 'v3', '-preserveDN'], this.dir)
    let keyFile = key
    if (o.passphrase !== undefined) {
      keyFile = this.path(`${name}.enc.key`)
      openssl(['pkey', '-in', key, '-out', keyFile, '-aes256', '-passout', `pass:${o.passphrase}`], this.dir)
    }
    return this.describe(name, cert, keyFile)
  }

  private describe(name: string, cert: string, key: string): Issued {
    const subject = openssl(['x509', '-in', cert, '-noout', '-subject', '-nameopt', 'RFC2253'], this.dir).trim().replace(/^subject=/, '')
    const fingerprint = openssl(['x509', '-in', cert, '-noout', '-fingerprint', '-sha256'], this.dir).trim().replace(/^.*Fingerprint=/i, '')
    return { name, cert, key, subject, fingerprint }
  }

  /** Concatenates PEM files into `name` (a chain, a fullchain, a CA bundle). */
  bundle(name: string, ...files: string[]): string {
    const out = this.path(name)
    fs.writeFileSync(out, files.map((f) => fs.readFileSync(f, 'utf8')).join(''))
    return out
  }

  /** A capath directory holding `certs` as .pem files, hashed with `openssl rehash`. */
  capath(name: string, ...certs: Issued[]): string {
    const dir = this.path(name)
    fs.mkdirSync(dir, { recursive: true })
    for (const c of certs) fs.copyFileSync(c.cert, path.join(dir, `${c.name}.pem`))
    openssl(['rehash', dir], this.dir)
    return dir
  }

  /**
   * certbot's layout: archive/NAME/{cert,chain,fullchain,privkey}N.pem and live/NAME/*.pem symlinks
   * to the newest. Returns the live paths; call renew() to add generation N+1 as certbot does.
   */
  letsEncrypt(name: string, leaf: Issued): LetsEncryptLayout {
    return new LetsEncryptLayout(this, name, leaf)
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

export class LetsEncryptLayout {
  readonly live: string
  readonly archive: string
  generation = 0
  readonly cert: string
  readonly chain: string
  readonly fullchain: string
  readonly privkey: string

  constructor (private readonly pki: TestPki, readonly name: string, leaf: Issued) {
    this.live = pki.path(path.join('letsencrypt', 'live', name))
    this.archive = pki.path(path.join('letsencrypt', 'archive', name))
    fs.mkdirSync(this.live, { recursive: true })
    fs.mkdirSync(this.archive, { recursive: true })
    this.cert = path.join(this.live, 'cert.pem')
    this.chain = path.join(this.live, 'chain.pem')
    this.fullchain = path.join(this.live, 'fullchain.pem')
    this.privkey = path.join(this.live, 'privkey.pem')
    this.renew(leaf)
  }

  /**
   * Writes generation N+1 into archive/ and repoints the live/ symlinks the way certbot does (unlink,
   * then symlink, one file after another), so watchers see the same intermediate states. `parts`
   * lets a test break a renewal: e.g. { privkey: false } leaves the old key in place.
   */
  renew(leaf: Issued, parts: { cert?: boolean; chain?: boolean; fullchain?: boolean; privkey?: boolean } = {}, chainCert = this.pkiIntermediate()): void {
    const n = ++this.generation
    const files = {
      cert: fs.readFileSync(leaf.cert, 'utf8'),
      chain: fs.readFileSync(chainCert, 'utf8'),
      fullchain: fs.readFileSync(leaf.cert, 'utf8') + fs.readFileSync(chainCert, 'utf8'),
      privkey: fs.readFileSync(leaf.key, 'utf8'),
    }
    for (const [kind, text] of Object.entries(files) as Array<[keyof typeof files, string]>) {
      if (parts[kind] === false) continue
      const target = path.join(this.archive, `${kind}${n}.pem`)
      fs.writeFileSync(target, text, { mode: kind === 'privkey' ? 0o600 : 0o644 })
      const link = path.join(this.live, `${kind}.pem`)
      fs.rmSync(link, { force: true })
      fs.symlinkSync(path.relative(this.live, target), link)
    }
  }

  private pkiIntermediate(): string {
    return this.pki.intermediate.cert
  }
}

function caConfig(db: string): string {
  return `[ca]
default_ca = testca
[testca]
dir = ${db}
database = ${db}/index.txt
new_certs_dir = ${db}/new
serial = ${db}/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = optional
organizationName = optional
organizationalUnitName = optional
countryName = optional
stateOrProvinceName = optional
localityName = optional
emailAddress = optional
`
}
