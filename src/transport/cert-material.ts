/**
 * From a listener's file names to what a secure context needs: the leaf certificate and the chain to
 * send after it, the key, and the CAs trusted for client certificates. Reading and checking are split
 * so the watcher can hash the files cheaply and only parse them when they changed.
 *
 * The chain sent to clients: the certificates after the leaf in certfile (fullchain.pem) when there
 * are any; otherwise the path from the leaf towards its root found in cafile/capath (cert.pem +
 * chain.pem, the seed's setup) — what OpenSSL's automatic chain building does for Mosquitto.
 */
import crypto, { X509Certificate } from 'node:crypto'
import { checkCertificate, findIssuer, isSelfSigned } from './cert-checks.js'
import { contentDigest, pemBlocks, pemTruncated, readCapath, readPemFile } from './cert-files.js'
import { certLabel } from './cert-names.js'
import type { UserIdentity } from './file-access.js'
import { TlsProblemCode, hasErrors, tlsError, type TlsProblem } from './tls-errors.js'

export interface TlsFiles {
  certfile: string
  keyfile: string
  cafile?: string | undefined
  capath?: string | undefined
  crlfile?: string | undefined
}

/** The raw text of every file, read at one moment. */
export interface TlsFileContents {
  files: TlsFiles
  cert?: string
  key?: string
  ca?: string
  capathCerts: string[]
  crl?: string
  /** Changes whenever any file's content (or capath's hashed listing) changes. */
  digest: string
  problems: TlsProblem[]
}

export interface CertificateMaterial {
  leaf: X509Certificate
  /** Intermediates sent after the leaf, nearest first. */
  chain: X509Certificate[]
  /** Leaf and chain, PEM, as given to the secure context's `cert`. */
  certPem: string
  keyPem: string
  /** CAs trusted for client certificates (cafile + capath), or undefined for none configured. */
  ca: string[] | undefined
  crl: string | undefined
  digest: string
}

export interface CheckSettings {
  /** The name clients use for this listener; the certificate must cover it. */
  domain?: string | undefined
  /** Warn when the certificate expires within this many days. */
  expiryWarningDays: number
  now?: Date
}

export function readTlsFiles(files: TlsFiles, asUser?: UserIdentity): TlsFileContents {
  const problems: TlsProblem[] = []
  const parts: string[] = []
  const out: TlsFileContents = { files, capathCerts: [], digest: '', problems }
  const take = (role: string, file: string | undefined): string | undefined => {
    if (file === undefined || file === '') return undefined
    const r = readPemFile(role, file, asUser)
    parts.push(role, file, r.ok ? r.text : `!${r.problem.code}`)
    if (!r.ok) { problems.push(r.problem); return undefined }
    return r.text
  }
  const cert = take('certfile', files.certfile)
  const key = take('keyfile', files.keyfile)
  const ca = take('cafile', files.cafile)
  const crl = take('crlfile', files.crlfile)
  if (cert !== undefined) out.cert = cert
  if (key !== undefined) out.key = key
  if (ca !== undefined) out.ca = ca
  if (crl !== undefined) out.crl = crl
  if (files.capath !== undefined && files.capath !== '') {
    const cp = readCapath(files.capath, asUser)
    out.capathCerts = cp.certs
    problems.push(...cp.problems)
    parts.push('capath', files.capath, cp.listing, ...cp.certs)
  }
  out.digest = contentDigest(parts)
  return out
}

function parseCertificates(role: string, file: string, text: string, problems: TlsProblem[], code: TlsProblemCode): X509Certificate[] {
  const blocks = pemBlocks(text).filter((b) => b.label === 'CERTIFICATE' || b.label === 'TRUSTED CERTIFICATE')
  if (pemTruncated(text)) {
    problems.push(tlsError(code, `${role} ${file} ends inside a PEM block: it looks half-written (a renewal still in progress?)`, file))
    return []
  }
  if (blocks.length === 0) {
    let why = 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)'
    if (text.trim() === '') why = 'is empty'
    else if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) why = 'holds a private key, not a certificate (are certfile and keyfile swapped?)'
    else if (!text.includes('-----BEGIN')) why += `; if it is DER, convert it: openssl x509 -inform der -in ${file} -out ${file}.pem`
    problems.push(tlsError(code, `${role} ${file} ${why}`, file))
    return []
  }
  const certs: X509Certificate[] = []
  blocks.forEach((b, i) => {
    try {
      certs.push(new X509Certificate(b.text))
    } catch (err) {
      problems.push(tlsError(code, `certificate ${i + 1} in ${role} ${file} cannot be parsed: ${(err as Error).message}`, file))
    }
  })
  return certs
}

function parseKey(file: string, text: string, problems: TlsProblem[]): crypto.KeyObject | undefined {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text) || /Proc-Type: 4,ENCRYPTED/.test(text)) {
    problems.push(tlsError(TlsProblemCode.KeyEncrypted,
      `keyfile ${file} is encrypted with a passphrase, and listeners (as in Mosquitto) have no passphrase option: store it decrypted with restrictive permissions (openssl pkey -in ${file} -out NEWFILE)`, file))
    return undefined
  }
  if (pemTruncated(text)) {
    problems.push(tlsError(TlsProblemCode.KeyUnparseable, `keyfile ${file} ends inside a PEM block: it looks half-written (a renewal still in progress?)`, file))
    return undefined
  }
  const block = pemBlocks(text).find((b) => b.label.endsWith('PRIVATE KEY'))
  if (block === undefined) {
    let why = 'holds no PEM private key (-----BEGIN PRIVATE KEY-----)'
    if (text.trim() === '') why = 'is empty'
    else if (text.includes('-----BEGIN CERTIFICATE-----')) why = 'holds a certificate, not a private key (are certfile and keyfile swapped?)'
    problems.push(tlsError(TlsProblemCode.KeyUnparseable, `keyfile ${file} ${why}`, file))
    return undefined
  }
  try {
    return crypto.createPrivateKey(block.text)
  } catch (err) {
    problems.push(tlsError(TlsProblemCode.KeyUnparseable, `keyfile ${file} holds a private key that cannot be parsed: ${(err as Error).message}`, file))
    return undefined
  }
}

/**
 * Parses and checks what readTlsFiles read. Returns the material when there are no errors; the
 * problems (warnings included) either way.
 */
export function buildMaterial(contents: TlsFileContents, settings: CheckSettings): { material?: CertificateMaterial; problems: TlsProblem[] } {
  const problems: TlsProblem[] = [...contents.problems]
  const { files } = contents
  const certs = contents.cert === undefined ? [] : parseCertificates('certfile', files.certfile, contents.cert, problems, TlsProblemCode.CertUnparseable)
  const key = contents.key === undefined ? undefined : parseKey(files.keyfile, contents.key, problems)
  const caCerts = contents.ca === undefined || files.cafile === undefined ? [] : parseCertificates('cafile', files.cafile, contents.ca, problems, TlsProblemCode.CaUnparseable)
  const capathCerts: X509Certificate[] = []
  for (const pem of contents.capathCerts) {
    try { capathCerts.push(new X509Certificate(pem)) } catch { /* openssl rehash only links parseable certificates */ }
  }
  if (contents.crl !== undefined && files.crlfile !== undefined && !pemBlocks(contents.crl).some((b) => b.label === 'X509 CRL')) {
    problems.push(tlsError(TlsProblemCode.CrlUnparseable, `crlfile ${files.crlfile} holds no PEM CRL (-----BEGIN X509 CRL-----)`, files.crlfile))
  }

  const leaf = certs[0]
  if (leaf === undefined) return { problems }
  let chain = certs.slice(1)
  if (key !== undefined) {
    let matches = false
    try { matches = leaf.checkPrivateKey(key) } catch { /* a key of another type: not a match */ }
    if (!matches) {
      problems.push(tlsError(TlsProblemCode.KeyMismatch,
        `keyfile ${files.keyfile} does not match the certificate in certfile ${files.certfile} (${certLabel(leaf)}, serial ${leaf.serialNumber}): they come from different key pairs, e.g. one file renewed and the other not`, files.keyfile))
    }
  }
  if (chain.length === 0) chain = buildChain(leaf, [...caCerts, ...capathCerts])
  problems.push(...checkCertificate(leaf, chain, {
    certfile: files.certfile,
    chainSource: certs.length > 1 ? `certfile ${files.certfile}` : chainSourceLabel(files),
    pool: [...caCerts, ...capathCerts],
    settings,
  }))
  if (hasErrors(problems) || key === undefined) return { problems }

  const caPems = [...caCerts.map((c) => c.toString()), ...contents.capathCerts]
  const material: CertificateMaterial = {
    leaf,
    chain,
    certPem: [leaf, ...chain].map((c) => c.toString()).join(''),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string,
    ca: files.cafile === undefined && files.capath === undefined ? undefined : caPems,
    crl: contents.crl,
    digest: contents.digest,
  }
  return { material, problems }
}

function chainSourceLabel(files: TlsFiles): string {
  const where = [files.cafile !== undefined ? `cafile ${files.cafile}` : '', files.capath !== undefined ? `capath ${files.capath}` : ''].filter((s) => s !== '')
  return where.length === 0 ? `certfile ${files.certfile}` : where.join(' and ')
}

/** The path from `leaf` up to, not including, a self-signed root, through certificates in `pool`. */
function buildChain(leaf: X509Certificate, pool: X509Certificate[]): X509Certificate[] {
  const chain: X509Certificate[] = []
  let cur = leaf
  for (let depth = 0; depth < 10 && !isSelfSigned(cur); depth++) {
    const issuer = findIssuer(cur, pool)
    if (issuer === undefined || isSelfSigned(issuer) || chain.includes(issuer)) break
    chain.push(issuer)
    cur = issuer
  }
  return chain
}
