/**
 * The broker's Authenticator for a Mosquitto `password_file`.
 *
 * Cost model: an uncached `$7$` check is one PBKDF2 (about 7 ms at the default 10,000 iterations;
 * docs/security.md), run on a low-priority hashing thread (hash-threads.ts), never on the event loop nor on
 * libuv's pool. Three things keep that from hurting other clients:
 *  - at most `maxConcurrentHashes` (default 2) PBKDF2 jobs are handed to the hashing threads at once (which
 *    run one per core but one, at most two), the rest wait in a FIFO; the threads yield to the event loop;
 *  - a successful check is remembered as HMAC-SHA256(process-random key, password) per user, so a
 *    reconnect storm of valid clients costs one HMAC each. The key never leaves memory and the tag is
 *    useless for offline guessing without it. Reload and setUsers() drop the whole cache;
 *  - identical checks in flight (same user, same password) share one PBKDF2.
 * Brute force across many attempts is AuthThrottle's job (throttle.ts), not this class's.
 *
 * Usernames and passwords are compared exactly: no trimming, no case folding, every byte of the password.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { AuthError, AuthErrorCode } from './errors.js'
import { sharedHashThreads, type HashThreads } from './hash-threads.js'
import { loadPasswordFile } from './password-file.js'
import { DEFAULT_PBKDF2_ITERATIONS, HashAlgorithm, verifyPassword, type PasswordHash } from './password-hash.js'
import type { AuthRequest, AuthResult, Authenticator } from './types.js'

export interface PasswordFileAuthenticatorOptions {
  /** The file reload() reads again. */
  file?: string
  /** PBKDF2 computations handed to the hashing threads at once; the rest queue. Default 2. */
  maxConcurrentHashes?: number
  /** Where PBKDF2 runs; default the process's shared low-priority pool. */
  hashThreads?: HashThreads
}

const OK_ANONYMOUS: AuthResult = { ok: true, username: undefined }
const REFUSED_ANONYMOUS: AuthResult = { ok: false, reason: 'not-authorized', detail: 'anonymous clients are not allowed on this listener' }

/** FIFO gate in front of the thread pool. */
class HashSlots {
  private active = 0
  private readonly waiting: Array<() => void> = []
  constructor(private readonly max: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.active++
    try {
      return await job()
    } finally {
      const next = this.waiting.shift()
      // The slot passes straight to the next waiter, so `active` only drops when nobody waits.
      if (next !== undefined) next()
      else this.active--
    }
  }

  get queued(): number { return this.waiting.length }
}

export class PasswordFileAuthenticator implements Authenticator {
  readonly file: string | undefined
  private users: Map<string, PasswordHash>
  /** Bumped by every setUsers(); a check that started before it is redone against the new entries. */
  private generation = 0
  private readonly cacheKey = randomBytes(32)
  private readonly verified = new Map<string, Buffer>()
  private readonly inflight = new Map<string, Promise<boolean>>()
  private readonly slots: HashSlots
  private readonly threads: HashThreads
  /** Checked for unknown users so that "no such user" takes as long as "wrong password". */
  private decoy: PasswordHash

  constructor(users: Map<string, PasswordHash>, opts: PasswordFileAuthenticatorOptions = {}) {
    this.file = opts.file
    this.slots = new HashSlots(Math.max(1, opts.maxConcurrentHashes ?? 2))
    this.threads = opts.hashThreads ?? sharedHashThreads()
    this.users = users
    this.decoy = makeDecoy(users)
  }

  static async fromFile(file: string, opts: Omit<PasswordFileAuthenticatorOptions, 'file'> = {}): Promise<PasswordFileAuthenticator> {
    return new PasswordFileAuthenticator(await loadPasswordFile(file), { ...opts, file })
  }

  get userCount(): number { return this.users.size }
  /** Users whose last successful password is cached (for $SYS / tests). */
  get cachedUsers(): number { return this.verified.size }
  /** PBKDF2 jobs waiting for a slot. */
  get queuedHashes(): number { return this.slots.queued }

  /**
   * Reads the file again. On any error the current users stay in force and the AuthError is thrown for the
   * caller to log: a broken edit must neither lock everyone out nor let anyone in. Returns the user count.
   */
  async reload(): Promise<number> {
    if (this.file === undefined) throw new AuthError(AuthErrorCode.FileAccess, 'this authenticator was not loaded from a file')
    this.setUsers(await loadPasswordFile(this.file))
    return this.users.size
  }

  setUsers(users: Map<string, PasswordHash>): void {
    this.users = users
    this.decoy = makeDecoy(users)
    this.generation++
    this.verified.clear()
    this.inflight.clear()
  }

  authenticate(req: AuthRequest): AuthResult | Promise<AuthResult> {
    if (req.certificateUsername !== undefined) return { ok: true, username: req.certificateUsername }
    const username = req.username
    if (username === undefined) return req.allowAnonymous ? OK_ANONYMOUS : REFUSED_ANONYMOUS
    const password = req.password
    if (password === undefined) return { ok: false, reason: 'bad-credentials', detail: `no password given for user '${username}'` }
    const tag = createHmac('sha256', this.cacheKey).update(password).digest()
    const known = this.verified.get(username)
    // Fast path: same user, same password as a check that already succeeded since the last reload.
    if (known !== undefined && timingSafeEqual(known, tag)) return { ok: true, username }
    return this.check(username, password, tag)
  }

  private async check(username: string, password: Buffer, tag: Buffer): Promise<AuthResult> {
    for (;;) {
      const generation = this.generation
      const entry = this.users.get(username)
      if (entry === undefined) {
        await this.slots.run(() => this.pbkdf2Matches(this.decoy, password))
        return { ok: false, reason: 'bad-credentials', detail: `unknown user '${username}'` }
      }
      const key = `${generation}\0${username}\0${tag.toString('base64')}`
      let pending = this.inflight.get(key)
      if (pending === undefined) {
        const p = this.verify(entry, password)
        this.inflight.set(key, p)
        p.then(() => { if (this.inflight.get(key) === p) this.inflight.delete(key) }, () => { this.inflight.delete(key) })
        pending = p
      }
      const ok = await pending
      // The file was reloaded while we hashed: the entry we checked may be gone or changed, so check again.
      if (generation !== this.generation) continue
      if (!ok) return { ok: false, reason: 'bad-credentials', detail: `wrong password for user '${username}'` }
      this.verified.set(username, tag)
      return { ok: true, username }
    }
  }

  private verify(entry: PasswordHash, password: Buffer): Promise<boolean> {
    if (entry.algorithm === HashAlgorithm.Sha512) return verifyPassword(entry, password)
    return this.slots.run(() => this.pbkdf2Matches(entry, password))
  }

  /** Constant-time comparison of a `$7$` entry with the password, hashed on the low-priority threads. */
  private async pbkdf2Matches(entry: PasswordHash, password: Buffer): Promise<boolean> {
    if (entry.algorithm !== HashAlgorithm.Sha512Pbkdf2) return verifyPassword(entry, password)
    const computed = await this.threads.pbkdf2(password, entry.salt, entry.iterations, entry.hash.length)
    return computed.length === entry.hash.length && timingSafeEqual(computed, entry.hash)
  }
}

/** A `$7$` hash with the iteration count most users have, so unknown users cost the same time. */
function makeDecoy(users: Map<string, PasswordHash>): PasswordHash {
  const counts = new Map<number, number>()
  for (const h of users.values()) {
    if (h.algorithm === HashAlgorithm.Sha512Pbkdf2) counts.set(h.iterations, (counts.get(h.iterations) ?? 0) + 1)
  }
  let iterations = DEFAULT_PBKDF2_ITERATIONS
  let best = 0
  for (const [it, n] of counts) if (n > best) { best = n; iterations = it }
  return { algorithm: HashAlgorithm.Sha512Pbkdf2, iterations, salt: randomBytes(12), hash: randomBytes(64) }
}
