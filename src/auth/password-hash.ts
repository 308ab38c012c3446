/**
 * Mosquitto 2's password hash formats, shared by the broker (verify) and `midge passwd` (create).
 *
 *   $7$ITERATIONS$SALT$HASH   PBKDF2-HMAC-SHA512, HASH = 64 bytes         (mosquitto_passwd default)
 *   $6$SALT$HASH              HASH = SHA-512(password ‖ salt), 64 bytes   (mosquitto 1.x; read, and written with -H sha512)
 *
 * SALT and HASH are standard base64 with `=` padding. The salt is always 12 bytes: Mosquitto 2.0 drops
 * any entry whose salt decodes to another length, so a file Midge writes must keep 12 to stay loadable
 * there. These bytes are frozen by compatibility with mosquitto_passwd (test/auth/09-interop-*).
 *
 * Verification of `$7$` runs on libuv's thread pool (async crypto.pbkdf2), never on the event loop;
 * the comparison is constant-time.
 */
import { createHash, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto'
import { AuthError, AuthErrorCode } from './errors.js'

export const HashAlgorithm = {
  Sha512Pbkdf2: 'sha512-pbkdf2',
  Sha512: 'sha512',
} as const
export type HashAlgorithm = (typeof HashAlgorithm)[keyof typeof HashAlgorithm]

export const SALT_BYTES = 12
export const HASH_BYTES = 64
/**
 * Midge's default for new hashes: about 7 ms per uncached CONNECT on a 2-core x86-64 VM (see the table in
 * docs/security.md), 100x the offline-guessing cost of Mosquitto's 101. Reconnects of a known user are
 * served from the verification cache, so this cost is paid once per user and password after each reload.
 */
export const DEFAULT_PBKDF2_ITERATIONS = 10_000
/** Refuse absurd counts in a file: one CONNECT must not be able to pin a hashing thread for minutes. */
export const MAX_PBKDF2_ITERATIONS = 10_000_000

export type PasswordHash =
  | { algorithm: 'sha512-pbkdf2'; iterations: number; salt: Buffer; hash: Buffer }
  | { algorithm: 'sha512'; salt: Buffer; hash: Buffer }

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const DIGITS = /^[0-9]+$/

function hashError(message: string): AuthError {
  return new AuthError(AuthErrorCode.HashFormat, message)
}

/** Buffer.from(s, 'base64') skips junk silently; a hash field must be exact base64 or it is refused. */
function decodeBase64(field: string, what: string, bytes: number): Buffer {
  if (field === '' || !BASE64.test(field)) throw hashError(`${what} is not valid base64`)
  const buf = Buffer.from(field, 'base64')
  if (buf.length !== bytes) throw hashError(`${what} is ${buf.length} bytes, expected ${bytes}`)
  return buf
}

/** Parses the part after `user:`. Throws AuthError AUTH_ERR_HASH_FORMAT (no file/line: the caller adds them). */
export function parsePasswordHash(text: string): PasswordHash {
  const parts = text.split('$')
  // A leading '$' gives an empty first part: ['', '7', iterations, salt, hash]
  if (parts[0] !== '' || parts.length < 2) throw hashError('not a hash (expected $7$ITERATIONS$SALT$HASH or $6$SALT$HASH)')
  const kind = parts[1]
  if (kind === '7') {
    if (parts.length !== 5) throw hashError('a $7$ hash has the form $7$ITERATIONS$SALT$HASH')
    const it = parts[2]!
    if (!DIGITS.test(it)) throw hashError(`iteration count '${it}' is not a positive integer`)
    const iterations = Number(it)
    if (iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) throw hashError(`iteration count ${it} is outside 1..${MAX_PBKDF2_ITERATIONS}`)
    return {
      algorithm: HashAlgorithm.Sha512Pbkdf2,
      iterations,
      salt: decodeBase64(parts[3]!, 'salt', SALT_BYTES),
      hash: decodeBase64(parts[4]!, 'hash', HASH_BYTES),
    }
  }
  if (kind === '6') {
    if (parts.length !== 4) throw hashError('a $6$ hash has the form $6$SALT$HASH')
    return {
      algorithm: HashAlgorithm.Sha512,
      salt: decodeBase64(parts[2]!, 'salt', SALT_BYTES),
      hash: decodeBase64(parts[3]!, 'hash', HASH_BYTES),
    }
  }
  throw hashError(`unknown hash type '$${kind}$' (expected $7$ or $6$)`)
}

/** True when `text` parses as a hash; used by `passwd -U` to leave hashed entries alone. */
export function isPasswordHash(text: string): boolean {
  try {
    parsePasswordHash(text)
    return true
  } catch {
    return false
  }
}

export function formatPasswordHash(h: PasswordHash): string {
  if (h.algorithm === HashAlgorithm.Sha512Pbkdf2) {
    return `$7$${h.iterations}$${h.salt.toString('base64')}$${h.hash.toString('base64')}`
  }
  return `$6$${h.salt.toString('base64')}$${h.hash.toString('base64')}`
}

function sha512Digest(password: Buffer, salt: Buffer): Buffer {
  return createHash('sha512').update(password).update(salt).digest()
}

function pbkdf2Async(password: Buffer, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, HASH_BYTES, 'sha512', (err, key) => {
      if (err !== null) reject(err)
      else resolve(key)
    })
  })
}

export interface HashOptions {
  algorithm?: HashAlgorithm
  /** sha512-pbkdf2 only; default DEFAULT_PBKDF2_ITERATIONS. */
  iterations?: number
  /** For tests and fixtures; a fresh random 12-byte salt otherwise. */
  salt?: Buffer
}

export async function hashPassword(password: Buffer | string, opts: HashOptions = {}): Promise<PasswordHash> {
  const pw = typeof password === 'string' ? Buffer.from(password, 'utf8') : password
  const salt = opts.salt ?? randomBytes(SALT_BYTES)
  if (salt.length !== SALT_BYTES) throw hashError(`salt must be ${SALT_BYTES} bytes (Mosquitto refuses other lengths)`)
  const algorithm = opts.algorithm ?? HashAlgorithm.Sha512Pbkdf2
  if (algorithm === HashAlgorithm.Sha512) return { algorithm, salt, hash: sha512Digest(pw, salt) }
  const iterations = opts.iterations ?? DEFAULT_PBKDF2_ITERATIONS
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) {
    throw hashError(`iteration count ${iterations} is outside 1..${MAX_PBKDF2_ITERATIONS}`)
  }
  return { algorithm, iterations, salt, hash: await pbkdf2Async(pw, salt, iterations) }
}

/**
 * Constant-time check of `password` against `h`. `$7$` hashes are computed on the thread pool.
 * `$6$` is one SHA-512 of a few dozen bytes (microseconds), so it runs inline.
 */
export async function verifyPassword(h: PasswordHash, password: Buffer): Promise<boolean> {
  const computed = h.algorithm === HashAlgorithm.Sha512Pbkdf2
    ? await pbkdf2Async(password, h.salt, h.iterations)
    : sha512Digest(password, h.salt)
  return computed.length === h.hash.length && timingSafeEqual(computed, h.hash)
}

/** Synchronous variant for tools and benchmarks; the broker never calls it. */
export function verifyPasswordSync(h: PasswordHash, password: Buffer): boolean {
  const computed = h.algorithm === HashAlgorithm.Sha512Pbkdf2
    ? pbkdf2Sync(password, h.salt, h.iterations, HASH_BYTES, 'sha512')
    : sha512Digest(password, h.salt)
  return computed.length === h.hash.length && timingSafeEqual(computed, h.hash)
}
