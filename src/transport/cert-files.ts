/**
 * Reading the PEM files a TLS listener names, with errors that say why a read failed (whose permission,
 * which directory) and whether a file looks half-written (a BEGIN line without its END line).
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { currentUser, explainDirectoryAccess, explainFileAccess, type UserIdentity } from './file-access.js'
import { TlsProblemCode, tlsError, tlsWarning, type TlsProblem } from './tls-errors.js'

export interface PemBlock {
  /** The label between BEGIN and the dashes: CERTIFICATE, PRIVATE KEY, EC PRIVATE KEY, X509 CRL, ... */
  label: string
  /** The whole block, BEGIN and END lines included. */
  text: string
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g
const PEM_BEGIN = /-----BEGIN ([A-Z0-9 ]+)-----/g

export function pemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = []
  for (const m of text.matchAll(PEM_BLOCK)) blocks.push({ label: m[1] as string, text: m[0] })
  return blocks
}

/** True when a BEGIN line has no matching END line: the file is cut short (still being written?). */
export function pemTruncated(text: string): boolean {
  const begins = [...text.matchAll(PEM_BEGIN)].length
  return begins > pemBlocks(text).length
}

/** What the loader read: the text, or the problem that stopped it. */
export type FileRead = { ok: true; text: string } | { ok: false; problem: TlsProblem }

/**
 * Reads `file` (the `role` is the option name, e.g. 'keyfile', for the message). On EACCES, explains which
 * permission of which path is missing for the user the process runs as (or `asUser` for `midge check`).
 */
export function readPemFile(role: string, file: string, asUser?: UserIdentity): FileRead {
  if (asUser !== undefined) {
    const denial = explainFileAccess(file, asUser)
    if (denial !== undefined) return { ok: false, problem: accessProblem(role, file, denial.kind, denial.message, asUser) }
  }
  try {
    return { ok: true, text: fs.readFileSync(file, 'latin1') }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const user = asUser ?? currentUser()
    const denial = explainFileAccess(file, user)
    if (denial !== undefined) return { ok: false, problem: accessProblem(role, file, denial.kind, denial.message, user) }
    if (code === 'ENOENT') return { ok: false, problem: tlsError(TlsProblemCode.FileMissing, `${role} ${file} does not exist`, file) }
    return { ok: false, problem: tlsError(TlsProblemCode.FileUnreadable, `${role} ${file} cannot be read: ${(err as Error).message}`, file) }
  }
}

function accessProblem(role: string, file: string, kind: string, why: string, user: UserIdentity): TlsProblem {
  if (kind === 'missing') return tlsError(TlsProblemCode.FileMissing, `${role} ${file} cannot be found: ${why}`, file)
  if (kind === 'not-a-file') return tlsError(TlsProblemCode.FileUnreadable, `${role} ${file} cannot be used: ${why}`, file)
  const hint = kind === 'directory-search'
    ? ` Rather than making it world-readable, give a group of '${user.name}' access (chgrp GROUP DIR; chmod g+x DIR); see docs/tls.md.`
    : ` Give a group of '${user.name}' read access (chgrp GROUP FILE; chmod g+r FILE); see docs/tls.md.`
  return tlsError(TlsProblemCode.FileUnreadable, `${role} ${file} is unreadable for user '${user.name}': ${why}.${hint}`, file)
}

/** The PEM certificates in a text, each block whole (BEGIN and END lines included). */
export function pemCertificates(text: string): string[] {
  const out: string[] = []
  for (const b of pemBlocks(text)) if (b.label === 'CERTIFICATE' || b.label === 'TRUSTED CERTIFICATE') out.push(b.text)
  return out
}

export interface CapathRead {
  /** Each certificate once, however many names lead to it. */
  certs: string[]
  /** Entries not used, each `NAME: reason`. */
  skipped: string[]
  /** The directory cannot be used, or a file in it cannot be read. */
  problems: TlsProblem[]
  /** The names, for the change digest. */
  listing: string
}

const HashName = /^[0-9a-f]{8}\.\d+$/

/**
 * A capath directory: the one rule for listeners, bridges and `midge pub/sub`. OpenSSL (so mosquitto) looks a CA
 * up when it needs it, by subject hash, in files named HASH.N that `openssl rehash` (c_rehash) links to the
 * certificates. Node has no lookup by hash, so what OpenSSL could find is loaded up front: every regular file in
 * the directory (symlinks followed, as the hash names usually are links) holding PEM certificates. Other entries
 * are skipped with a reason: subdirectories, dangling links, files with no certificate (keys, READMEs, DER files).
 * A file that cannot be read is a problem, not a skip: trusting less than the operator put there would show only
 * as a failed handshake. A directory without hash names works here but not with OpenSSL-based tools: a warning.
 */
export function readCapath(dir: string, asUser?: UserIdentity): CapathRead {
  const denial = explainDirectoryAccess(dir, asUser ?? currentUser())
  if (denial !== undefined) {
    const code = denial.kind === 'missing' ? TlsProblemCode.FileMissing : TlsProblemCode.FileUnreadable
    return { certs: [], skipped: [], listing: '', problems: [tlsError(code, `capath ${dir} cannot be used: ${denial.message}`, dir)] }
  }
  let names: string[]
  try {
    names = fs.readdirSync(dir).sort()
  } catch (err) {
    return { certs: [], skipped: [], listing: '', problems: [tlsError(TlsProblemCode.FileUnreadable, `capath ${dir} cannot be listed: ${(err as Error).message}`, dir)] }
  }
  const problems: TlsProblem[] = []
  const skipped: string[] = []
  const seen = new Set<string>()
  const certs: string[] = []
  for (const name of names) {
    const file = path.join(dir, name)
    let st: fs.Stats
    try {
      st = fs.statSync(file)
    } catch {
      skipped.push(`${name}: a link to nothing`)
      continue
    }
    if (!st.isFile()) { skipped.push(`${name}: not a regular file`); continue }
    const read = readPemFile('capath certificate', file, asUser)
    if (!read.ok) { problems.push(read.problem); continue }
    const found = pemCertificates(read.text)
    if (found.length === 0) { skipped.push(`${name}: no PEM certificate in it`); continue }
    for (const c of found) {
      const key = c.replace(/\r\n/g, '\n')
      if (!seen.has(key)) { seen.add(key); certs.push(c) }
    }
  }
  if (!names.some((n) => HashName.test(n))) {
    problems.push(tlsWarning(TlsProblemCode.CapathNotHashed,
      `capath ${dir} has no hashed certificate names (like 1a2b3c4d.0): Midge reads every certificate file in it, but OpenSSL-based tools (mosquitto, mosquitto_sub --capath) find none; run \`openssl rehash ${dir}\` after adding or removing a certificate`, dir))
  }
  return { certs, skipped, problems, listing: names.join('\n') }
}

/** A digest of everything a listener reads, to tell a real change from a touch or a no-op event. */
export function contentDigest(parts: readonly string[]): string {
  const h = crypto.createHash('sha256')
  for (const p of parts) { h.update(p); h.update('\0') }
  return h.digest('hex')
}
