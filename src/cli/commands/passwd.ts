/**
 * `midge passwd`: manage a Mosquitto-compatible password file, with the flags of mosquitto_passwd.
 *
 *   midge passwd [-H sha512-pbkdf2|sha512] [-I ITERATIONS] [-c | -D] FILE USERNAME
 *   midge passwd [-H ...] [-I ...] [-c] -b FILE USERNAME PASSWORD
 *   midge passwd [-H ...] [-I ...] -U FILE
 *
 * Differences from mosquitto_passwd 2.0, each on purpose:
 *  - new hashes use 10,000 PBKDF2 iterations, not 101 (src/auth/password-hash.ts says why);
 *  - the file is replaced atomically with mode 0600 (kept 0640 if it was group-readable; --group-readable
 *    makes it so), and its owner and group are kept when run as root;
 *  - -U leaves entries that are already hashed alone (mosquitto_passwd hashes the hash again) and keeps
 *    comments and blank lines (mosquitto_passwd -U stops at them);
 *  - usernames that Mosquitto could never match are refused: ':' (as mosquitto_passwd), leading or
 *    trailing blanks (the broker trims them), control characters, a leading '#' (a comment line).
 * Without -b the password is prompted for twice without echo on a TTY, or read from standard input
 * otherwise (one line, or two that must match, as scripts written for mosquitto_passwd send).
 */
import { readFile } from 'node:fs/promises'
import type { Writable } from 'node:stream'
import { writeFileAtomic } from '../../auth/atomic-write.js'
import {
  deletePasswordFileEntry,
  parsePasswordFileDocument,
  serializePasswordFileDocument,
  setPasswordFileEntry,
  usernameProblem,
  type PasswordFileDocument,
} from '../../auth/password-file.js'
import {
  DEFAULT_PBKDF2_ITERATIONS,
  HashAlgorithm,
  MAX_PBKDF2_ITERATIONS,
  formatPasswordHash,
  hashPassword,
  isPasswordHash,
} from '../../auth/password-hash.js'

export const PASSWD_USAGE = `midge passwd: manage a password file for midge (and mosquitto).

Usage: midge passwd [-H sha512-pbkdf2 | -H sha512] [-I iterations] [-c | -D] passwordfile username
       midge passwd [-H sha512-pbkdf2 | -H sha512] [-I iterations] [-c] -b passwordfile username password
       midge passwd [-H sha512-pbkdf2 | -H sha512] [-I iterations] -U passwordfile
 -b : batch mode: take the password from the command line (it is then visible to other local users).
 -c : create a new password file. This overwrites an existing file.
 -D : delete the username rather than adding/updating its password.
 -H : the hash: sha512-pbkdf2 (default, $7$) or sha512 ($6$, for Mosquitto 1.x; weak).
 -I : PBKDF2 iterations for sha512-pbkdf2 (default ${DEFAULT_PBKDF2_ITERATIONS}; mosquitto_passwd writes 101).
 -U : hash the plaintext passwords of a file; entries already hashed are kept.
 --group-readable : write the file with mode 0640 instead of 0600 (chgrp it to the broker's group).
Without -b the password is asked twice on a terminal, or read from standard input.
`

export interface PasswdIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown }
  stdout: Writable
  stderr: Writable
}

/** A refusal with a message for the user; `showUsage` adds the usage text (bad arguments). */
class UsageError extends Error {
  constructor(message: string, readonly showUsage = false) {
    super(message)
  }
}

interface PasswdArgs {
  create: boolean
  del: boolean
  batch: boolean
  upgrade: boolean
  groupReadable: boolean
  algorithm: HashAlgorithm
  iterations: number
  file: string
  username: string
  password: string | undefined
}

function parseArgs(argv: string[]): PasswdArgs | 'help' {
  const a: PasswdArgs = {
    create: false, del: false, batch: false, upgrade: false, groupReadable: false,
    algorithm: HashAlgorithm.Sha512Pbkdf2, iterations: DEFAULT_PBKDF2_ITERATIONS, file: '', username: '', password: undefined,
  }
  let i = 0
  for (; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') { i++; break }
    if (!arg.startsWith('-') || arg === '-') break
    switch (arg) {
      case '-h': case '--help': return 'help'
      case '-c': a.create = true; break
      case '-D': a.del = true; break
      case '-b': a.batch = true; break
      case '-U': a.upgrade = true; break
      case '--group-readable': a.groupReadable = true; break
      case '-H': {
        const v = argv[++i]
        if (v !== HashAlgorithm.Sha512Pbkdf2 && v !== HashAlgorithm.Sha512) {
          throw new UsageError(`Error: -H takes sha512-pbkdf2 or sha512${v === undefined ? '' : `, not '${v}'`}.`, true)
        }
        a.algorithm = v
        break
      }
      case '-I': {
        const v = argv[++i] ?? ''
        const n = /^[0-9]+$/.test(v) ? Number(v) : NaN
        if (!(n >= 1 && n <= MAX_PBKDF2_ITERATIONS)) throw new UsageError(`Error: -I takes an iteration count from 1 to ${MAX_PBKDF2_ITERATIONS}.`, true)
        a.iterations = n
        break
      }
      default: throw new UsageError(`Error: Unknown option '${arg}'.`, true)
    }
  }
  const rest = argv.slice(i)
  if (a.create && a.del) throw new UsageError('Error: -c and -D cannot be used together.', true)
  if (a.upgrade && (a.create || a.del || a.batch)) throw new UsageError('Error: -U cannot be used with -c, -D or -b.', true)
  if (a.del && a.batch) throw new UsageError('Error: -D and -b cannot be used together.', true)
  const want = a.upgrade ? 1 : a.batch ? 3 : 2
  if (rest.length !== want) {
    const what = a.upgrade ? 'passwordfile' : a.batch ? 'passwordfile username password' : 'passwordfile username'
    throw new UsageError(`Error: expected ${what}.`, true)
  }
  a.file = rest[0]!
  a.username = rest[1] ?? ''
  a.password = rest[2]
  return a
}

/** Reads lines typed without echo. Ctrl-C / Ctrl-D on an empty line abort. */
function readHiddenLines(io: PasswdIo, prompts: string[]): Promise<string[]> {
  const stdin = io.stdin
  return new Promise((resolve, reject) => {
    const lines: string[] = []
    let current = ''
    // Echo off before the prompt shows: input typed the moment it appears must not be echoed.
    stdin.setRawMode!(true)
    stdin.setEncoding('utf8')
    io.stderr.write(prompts[0]!)
    const finish = (err?: Error): void => {
      stdin.removeListener('data', onData)
      stdin.setRawMode!(false)
      stdin.pause()
      io.stderr.write('\n')
      if (err !== undefined) reject(err)
      else resolve(lines)
    }
    const onData = (chunk: string | Buffer): void => {
      for (const ch of String(chunk)) {
        if (ch === '\r' || ch === '\n') {
          lines.push(current)
          current = ''
          if (lines.length === prompts.length) {
            finish()
            return
          }
          io.stderr.write('\n' + prompts[lines.length]!)
        } else if (ch === '\u0003' || (ch === '\u0004' && current === '')) {
          finish(new UsageError('Error: Aborted.'))
          return
        } else if (ch === '\u007f' || ch === '\b') {
          current = Array.from(current).slice(0, -1).join('')
        } else if (ch === '\u0015') {
          current = ''
        } else if (ch >= ' ') {
          current += ch
        }
      }
    }
    stdin.on('data', onData)
    stdin.resume()
  })
}

/** Up to `max` lines from a non-TTY stdin; stops reading as soon as it has them. */
function readPipedLines(io: PasswdIo, max: number): Promise<string[]> {
  const stdin = io.stdin
  return new Promise((resolve, reject) => {
    let text = ''
    const done = (): void => {
      stdin.removeListener('data', onData)
      stdin.removeListener('end', done)
      stdin.removeListener('error', onError)
      stdin.pause()
      const parts = text.split('\n')
      if (parts[parts.length - 1] === '') parts.pop() // after the last newline, or an empty input
      resolve(parts.slice(0, max).map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l)))
    }
    const onData = (chunk: string | Buffer): void => {
      text += String(chunk)
      let count = 0
      for (let p = text.indexOf('\n'); p >= 0; p = text.indexOf('\n', p + 1)) count++
      if (count >= max) done()
    }
    const onError = (err: Error): void => reject(err)
    stdin.on('data', onData)
    stdin.on('end', done)
    stdin.on('error', onError)
    stdin.resume()
  })
}

async function readPassword(io: PasswdIo): Promise<string> {
  if (io.stdin.isTTY === true && typeof io.stdin.setRawMode === 'function') {
    const [first, second] = await readHiddenLines(io, ['Password: ', 'Reenter password: '])
    if (first !== second) throw new UsageError('Error: Passwords do not match.')
    return first!
  }
  const lines = await readPipedLines(io, 2)
  if (lines.length === 0) throw new UsageError('Error: No password given on standard input.')
  if (lines.length === 2 && lines[0] !== lines[1]) throw new UsageError('Error: Passwords do not match.')
  return lines[0]!
}

async function readDocument(file: string): Promise<PasswordFileDocument> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const hint = code === 'ENOENT' ? ' (use -c to create it)' : ''
    throw new UsageError(`Error: Unable to open password file ${file}: ${(err as Error).message}${hint}.`)
  }
  return parsePasswordFileDocument(text)
}

async function hashText(password: string, a: PasswdArgs): Promise<string> {
  return formatPasswordHash(await hashPassword(password, { algorithm: a.algorithm, iterations: a.iterations }))
}

async function upgrade(a: PasswdArgs, io: PasswdIo): Promise<PasswordFileDocument> {
  const doc = await readDocument(a.file)
  for (let i = 0; i < doc.lines.length; i++) {
    const l = doc.lines[i]!
    if (l.kind === 'invalid') {
      io.stderr.write(`Warning: ${a.file}:${i + 1}: not 'username:password'; left as it is.\n`)
      continue
    }
    if (l.kind !== 'entry' || isPasswordHash(l.secret)) continue
    if (l.secret === '' || l.username === '') {
      io.stderr.write(`Warning: ${a.file}:${i + 1}: no username or password; left as it is.\n`)
      continue
    }
    const secret = await hashText(l.secret, a)
    doc.lines[i] = { kind: 'entry', username: l.username, secret, extraField: false, raw: `${l.username}:${secret}` }
  }
  return doc
}

export async function runPasswd(argv: string[], io: PasswdIo): Promise<number> {
  try {
    const a = parseArgs(argv)
    if (a === 'help') {
      io.stdout.write(PASSWD_USAGE)
      return 0
    }
    const mode = a.groupReadable ? 0o640 : undefined
    if (a.upgrade) {
      const doc = await upgrade(a, io)
      await writeFileAtomic(a.file, serializePasswordFileDocument(doc), { mode })
      return 0
    }
    const problem = usernameProblem(a.username)
    if (problem !== undefined) throw new UsageError(`Error: ${problem}`)
    if (a.del) {
      const doc = await readDocument(a.file)
      if (!deletePasswordFileEntry(doc, a.username)) {
        io.stderr.write(`Warning: User ${a.username} not found in password file.\n`)
        return 1
      }
      await writeFileAtomic(a.file, serializePasswordFileDocument(doc), { mode })
      return 0
    }
    // Read the file before prompting, so a wrong path fails before the user types anything.
    const doc = a.create ? parsePasswordFileDocument('') : await readDocument(a.file)
    const password = a.password ?? await readPassword(io)
    if (Buffer.byteLength(password) > 65535) throw new UsageError('Error: Password is too long.')
    if (password === '') io.stderr.write('Warning: empty password.\n')
    setPasswordFileEntry(doc, a.username, await hashText(password, a))
    await writeFileAtomic(a.file, serializePasswordFileDocument(doc), { mode })
    return 0
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(err.message + '\n')
      if (err.showUsage) io.stderr.write('\n' + PASSWD_USAGE)
      return 1
    }
    io.stderr.write(`Error: ${(err as Error).message}\n`)
    return 1
  }
}

export async function run(argv: string[]): Promise<number> {
  return runPasswd(argv, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr })
}
