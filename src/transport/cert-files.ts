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

/** Certificates of a capath directory: the `openssl rehash` names (8 hex digits, dot, number). */
export function readCapath(dir: string, asUser?: UserIdentity): { certs: string[]; problems: TlsProblem[]; listing: string } {
  const denial = explainDirectoryAccess(dir, asUser ?? currentUser())
  if (denial !== undefined) {
    const code = denial.kind === 'missing' ? TlsProblemCode.FileMissing : TlsProblemCode.FileUnreadable
    return { certs: [], listing: '', problems: [tlsError(code, `capath ${dir} cannot be used: ${denial.message}`, dir)] }
  }
  let names: string[]
  try {
    names = fs.readdirSync(dir).sort()
  } catch (err) {
    return { certs: [], listing: '', problems: [tlsError(TlsProblemCode.FileUnreadable, `capath ${dir} cannot be listed: ${(err as Error).message}`, dir)] }
  }
  const hashed = names.filter((n) => /^[0-9a-f]{8}\.\d+$/.test(n))
  const problems: TlsProblem[] = []
  if (hashed.length === 0) {
    problems.push(tlsWarning(TlsProblemCode.CapathNotHashed,
      `capath ${dir} has no hashed certificate names (like 1a2b3c4d.0): run \`openssl rehash ${dir}\` after adding or removing a certificate`, dir))
  }
  const certs: string[] = []
  for (const name of hashed) {
    const file = path.join(dir, name)
    const read = readPemFile('capath certificate', file, asUser)
    if (!read.ok) { problems.push(read.problem); continue }
    for (const b of pemBlocks(read.text)) if (b.label === 'CERTIFICATE' || b.label === 'TRUSTED CERTIFICATE') certs.push(b.text)
  }
  return { certs, problems, listing: hashed.join('\n') }
}

/** A digest of everything a listener reads, to tell a real change from a touch or a no-op event. */
export function contentDigest(parts: readonly string[]): string {
  const h = crypto.createHash('sha256')
  for (const p of parts) { h.update(p); h.update('\0') }
  return h.digest('hex')
}
