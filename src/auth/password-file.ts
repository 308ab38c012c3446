/**
 * Mosquitto's `password_file`: one `username:HASH` per line, `#` in the first column starts a comment.
 *
 * Reading follows Mosquitto 2.0 (username and hash trimmed of blanks; the hash is the text between the
 * first and a second `:`), but is strict where Mosquitto silently drops an entry: a malformed line is an
 * error naming file:line, so a typo never locks a user out (or in) without a word. Plaintext passwords
 * (Mosquitto without TLS support) are refused with a pointer to `midge passwd -U`.
 *
 * The same line model backs `midge passwd`, which edits a file in place: every line it does not touch
 * (comments, blank lines, other users) is written back byte for byte.
 */
import { readFile } from 'node:fs/promises'
import { AuthError, AuthErrorCode } from './errors.js'
import { parsePasswordHash, type PasswordHash } from './password-hash.js'

export interface PasswordFileEntryLine {
  kind: 'entry'
  /** Trimmed, as Mosquitto compares it. */
  username: string
  /** The trimmed text between the first and the second `:` (a hash, or plaintext before `-U`). */
  secret: string
  /** True when the line has a second `:` (Mosquitto ignores what follows it; Midge refuses it). */
  extraField: boolean
  raw: string
}
export interface PasswordFileOtherLine {
  kind: 'comment' | 'blank' | 'invalid'
  raw: string
}
export type PasswordFileLine = PasswordFileEntryLine | PasswordFileOtherLine

/** A password file as lines, for editing; `finalNewline` keeps a file without one as it was. */
export interface PasswordFileDocument {
  lines: PasswordFileLine[]
  finalNewline: boolean
}

export function parsePasswordFileDocument(text: string): PasswordFileDocument {
  const finalNewline = text.length === 0 || text.endsWith('\n')
  const body = text.endsWith('\n') ? text.slice(0, -1) : text
  const lines: PasswordFileLine[] = []
  if (text.length > 0) {
    for (let raw of body.split('\n')) {
      if (raw.endsWith('\r')) raw = raw.slice(0, -1)
      lines.push(parseLine(raw))
    }
  }
  return { lines, finalNewline }
}

function parseLine(raw: string): PasswordFileLine {
  if (raw.startsWith('#')) return { kind: 'comment', raw }
  if (raw.trim() === '') return { kind: 'blank', raw }
  const colon = raw.indexOf(':')
  if (colon < 0) return { kind: 'invalid', raw }
  const rest = raw.slice(colon + 1)
  const second = rest.indexOf(':')
  return {
    kind: 'entry',
    username: raw.slice(0, colon).trim(),
    secret: (second < 0 ? rest : rest.slice(0, second)).trim(),
    extraField: second >= 0,
    raw,
  }
}

export function serializePasswordFileDocument(doc: PasswordFileDocument): string {
  if (doc.lines.length === 0) return ''
  return doc.lines.map((l) => l.raw).join('\n') + (doc.finalNewline ? '\n' : '')
}

/** Sets `username`'s line to `username:secret`: replaces its first line (dropping repeats) or appends one. */
export function setPasswordFileEntry(doc: PasswordFileDocument, username: string, secret: string): void {
  const line: PasswordFileEntryLine = { kind: 'entry', username, secret, extraField: false, raw: `${username}:${secret}` }
  let replaced = false
  const out: PasswordFileLine[] = []
  for (const l of doc.lines) {
    if (l.kind === 'entry' && l.username === username) {
      if (!replaced) out.push(line)
      replaced = true
    } else {
      out.push(l)
    }
  }
  if (!replaced) {
    out.push(line)
    doc.finalNewline = true
  }
  doc.lines = out
}

/** Why `username` cannot go in a password file, or undefined when it can (`midge passwd` and the dashboard). */
export function usernameProblem(username: string): string | undefined {
  if (username === '') return 'Username must not be empty.'
  if (username.includes(':')) return "Username must not contain the ':' character."
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(username)) return 'Username must not contain control characters.'
  if (username.trim() !== username) return 'Username must not begin or end with blanks (the broker trims them).'
  if (username.startsWith('#')) return "Username must not begin with '#' (the line would be a comment)."
  if (Buffer.byteLength(username) > 65535) return 'Username is too long.'
  return undefined
}

/** Removes every line of `username`; false when there was none. */
export function deletePasswordFileEntry(doc: PasswordFileDocument, username: string): boolean {
  const before = doc.lines.length
  doc.lines = doc.lines.filter((l) => !(l.kind === 'entry' && l.username === username))
  return doc.lines.length !== before
}

/**
 * Validates a whole file and returns username -> hash. Every malformed line is an AuthError
 * AUTH_ERR_PASSWORD_FILE naming file:line (the first one found is thrown).
 */
export function parsePasswordFile(text: string, file = '<password_file>'): Map<string, PasswordHash> {
  const doc = parsePasswordFileDocument(text)
  const users = new Map<string, PasswordHash>()
  const firstLine = new Map<string, number>()
  for (let i = 0; i < doc.lines.length; i++) {
    const l = doc.lines[i]!
    const where = { file, line: i + 1 }
    if (l.kind !== 'entry') {
      if (l.kind === 'invalid') throw new AuthError(AuthErrorCode.PasswordFile, "expected 'username:hash'", where)
      continue
    }
    if (l.username === '') throw new AuthError(AuthErrorCode.PasswordFile, 'empty username', where)
    if (l.extraField) throw new AuthError(AuthErrorCode.PasswordFile, `more than one ':' in the entry of user '${l.username}'`, where)
    if (!l.secret.startsWith('$')) {
      throw new AuthError(AuthErrorCode.PasswordFile,
        `user '${l.username}' has a plaintext password (or none); hash the file with 'midge passwd -U ${file}'`, where)
    }
    let hash: PasswordHash
    try {
      hash = parsePasswordHash(l.secret)
    } catch (err) {
      throw new AuthError(AuthErrorCode.PasswordFile, `user '${l.username}': ${(err as Error).message}`, where, { cause: err })
    }
    const earlier = firstLine.get(l.username)
    if (earlier !== undefined) {
      throw new AuthError(AuthErrorCode.PasswordFile, `user '${l.username}' is listed twice (first at line ${earlier})`, where)
    }
    firstLine.set(l.username, i + 1)
    users.set(l.username, hash)
  }
  return users
}

export async function loadPasswordFile(file: string): Promise<Map<string, PasswordHash>> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new AuthError(AuthErrorCode.FileAccess, `cannot read password file: ${(err as Error).message}`, { file }, { cause: err })
  }
  return parsePasswordFile(text, file)
}
